"""Sampling in the Paper B (Zhou et al. 2026) experiments: seeded initial noise, the adaptive sigma* sampler
(Sec. 4.1), samplers with a nearest-training-point distance trace, and sample summaries (memorized fraction,
Sec. 3.1's ``d1/d2 < 1/3``; distances to train and held-out test)."""

from __future__ import annotations

import torch

from ...metrics import distance_summary, memorization_fraction
from ...metrics.bootstrap import memorized_fraction_interval, nn_distance_interval
from ...sampling import sample
from ...search import NeighborIndex


def sigma_star_run(
    field,
    train,
    x0,
    *,
    alpha: float,
    n_steps: int,
    index: NeighborIndex | None = None,
    noise: float = 0.0,
    generator=None,
) -> torch.Tensor:
    """Sample ``field`` with the adaptive sigma* sampler (``smoothscore.sampling.sigma_star``) from ``x0``."""
    out = sample(
        field,
        x0,
        [1.0, 0.5],
        method="sigma_star",
        train=train,
        index=index,
        alpha=alpha,
        n_steps=n_steps,
        noise=noise,
        generator=generator,
    )
    return out.cpu()


def sample_report(samples: torch.Tensor, train: torch.Tensor, test: torch.Tensor) -> dict[str, float]:
    """Memorized fraction and distances: median NN distance of the samples to train (``nn_train_median``) and to
    held-out test (``nn_test_median``), the test digits' own median distance to train (``test_to_train_median``)
    and ``quality_ratio = nn_test_median / test_to_train_median`` (NaN everywhere if a sample is not finite)."""
    ref = distance_summary(test, train)["median"]
    if not bool(torch.isfinite(samples).all()):
        nan = float("nan")
        return {
            "memorized_fraction": nan,
            "nn_train_median": nan,
            "nn_test_median": nan,
            "test_to_train_median": ref,
            "quality_ratio": nan,
        }
    d_tr = distance_summary(samples, train)["median"]
    d_te = distance_summary(samples, test)["median"]
    return {
        "memorized_fraction": memorization_fraction(samples, train),
        "nn_train_median": d_tr,
        "nn_test_median": d_te,
        "test_to_train_median": ref,
        "quality_ratio": d_te / ref,
    }


def sample_intervals(samples: torch.Tensor, train: torch.Tensor, test: torch.Tensor) -> dict[str, list[float]]:
    """90% bootstrap intervals over samples (:mod:`smoothscore.metrics.bootstrap`, fixed generator) of
    :func:`sample_report`'s ``memorized_fraction``, ``nn_train_median`` and ``nn_test_median`` (empty when a sample
    is not finite)."""
    if not bool(torch.isfinite(samples).all()):
        return {}
    return {
        "memorized_fraction": memorized_fraction_interval(samples, train),
        "nn_train_median": nn_distance_interval(samples, train),
        "nn_test_median": nn_distance_interval(samples, test),
    }


def yerr(values, intervals) -> list[list[float]]:
    """Asymmetric matplotlib error bars ``[[below...], [above...]]`` from ``[lo, hi]`` intervals (0 where none)."""
    lo = [max(0.0, v - iv[0]) if iv else 0.0 for v, iv in zip(values, intervals)]
    hi = [max(0.0, iv[1] - v) if iv else 0.0 for v, iv in zip(values, intervals)]
    return [lo, hi]


def init_noise(ctx, n: int, shape, sigma: float, stream: str = "noise") -> torch.Tensor:
    """``n`` initial noises ``sigma * N(0, I)`` of ``shape`` from the run's random stream ``stream``."""
    return float(sigma) * torch.randn(n, *shape, generator=ctx.generator(stream))


def run_sampler(field, x0, sigmas, method: str, *, index: NeighborIndex, generator=None, **options):
    """Sample and record the median / per-sample nearest-training-point distance after every step.

    Returns ``(samples, trace)`` with ``trace = {"median": [...], "per_sample": (steps, N)}``."""
    per: list[torch.Tensor] = []

    def cb(info):
        x = info["x"].detach().cpu().float()
        ok = torch.isfinite(x.reshape(x.shape[0], -1)).all(1)
        dist = torch.full((x.shape[0],), float("inf"), dtype=torch.float64)  # a diverged sample counts as inf
        if bool(ok.any()):
            dist[ok] = index.search(x[ok], 1)[0][:, 0]
        per.append(dist)

    if method == "sigma_star":
        options.setdefault("index", index)
    out = sample(field, x0, sigmas, method=method, generator=generator, callback=cb, **options).cpu()
    ps = torch.stack(per) if per else torch.zeros(0, x0.shape[0], dtype=torch.float64)
    return out, {"median": ps.median(dim=1).values.tolist(), "per_sample": ps}
