"""Shared pieces of the Paper B (Zhou et al. 2026) experiments: data, initial noise, sampling with a distance
trace, sample summaries and small trained networks."""

from __future__ import annotations

import torch

from ..data import load_digits
from ..metrics import distance_summary, memorization_fraction
from ..sampling import sample
from ..search import NeighborIndex

#: defaults shared by the experiments (digits upsampled to 16x16: d = 256)
BASE = {"image_size": 16, "n_train": 200, "n_test": 64, "sigma_min": 0.01, "sigma_max": 50.0, "sigma_init": 20.0}


def digits_split(c, seed: int = 0):
    """``(train, test)``: ``n_train + n_test`` digits at ``image_size`` (seeded)."""
    data = load_digits(n=c["n_train"] + c["n_test"], size=c["image_size"], seed=seed)
    return data.x[: c["n_train"]], data.x[c["n_train"] :]


def load_split(ctx):
    """:func:`digits_split` with the run's config and seed; records the dimension."""
    train, test = digits_split(ctx.config, ctx.seed)
    ctx.metric("dimension", int(train[0].numel()))
    return train, test


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
    from ..metrics.bootstrap import memorized_fraction_interval, nn_distance_interval

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


def init_noise(ctx, n: int, shape, sigma: float, offset: int = 1) -> torch.Tensor:
    g = ctx.generator(offset)
    return float(sigma) * torch.randn(n, *shape, generator=g)


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


def train_mlp(ctx, train: torch.Tensor, conditioned: bool, *, steps: int, width: int = 256, offset: int = 50):
    """A small MLP score model trained with Eq. 8 (conditioned) or Eq. 9 (unconditioned); returns a NeuralScore."""
    from ..nets import build_model
    from ..scores.neural import NeuralScore
    from ..training import ConditionedDSM, TrainConfig, UnconditionedDSM
    from ..training import train as fit

    c = ctx.config
    torch.manual_seed(ctx.seed * 7919 + offset + int(conditioned))
    model = build_model(
        "mlp", tuple(train.shape[1:]), conditioning="sigma" if conditioned else "none", width=width, depth=2
    )
    loss_cls = ConditionedDSM if conditioned else UnconditionedDSM
    loss = loss_cls(c["sigma_min"], c["sigma_max"], 1000)
    res = fit(
        model,
        loss,
        train,
        TrainConfig(steps=steps, batch_size=64, lr=1e-3, ema_decay=0.99, seed=ctx.seed + offset, dtype=ctx.precision),
        progress=False,
    )
    return NeuralScore(res.ema, dtype=ctx.precision, device="cpu")
