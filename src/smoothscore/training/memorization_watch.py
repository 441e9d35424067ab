"""Memorization onset during training: audit a few samples every N steps against the training set.

Every ``every`` steps the trainer's EMA network draws ``n_samples`` samples with the fast sampler of its
parameterisation (:func:`quick_samples`: a short EDM-scheduled Heun PF-ODE for a noise-conditioned network, the
adaptive sigma* sampler of Paper B, Sec. 4.1, for an unconditioned one), and each audit records the memorized
fraction (d1/d2 < 1/3, :mod:`smoothscore.metrics.memorization`) with its 90% bootstrap interval over samples
(:mod:`smoothscore.metrics.bootstrap`), the median d1/d2 and its interval, and the nearest training image of every
sample. The curve is written to ``memorization_curve.json`` in the run folder after every audit, so a resumed run
keeps it (entries at or after the resumed step are replaced).

**Onset rule** (adopted): the onset step is the first audited step whose *lower* 90% bootstrap bound of the memorized
fraction reaches ``level`` (:data:`ONSET_LEVEL` = 0.1 unless given): one audit with a high but uncertain fraction is
not an onset. A curve that never clears the level has no onset (``None``: censored at its last step).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from ..errors import ConfigError
from ..io import atomic_write_json
from ..metrics.bootstrap import mean_interval, median_interval
from ..noise import sigma_schedule
from ..sampling import sample
from ..scores.neural import NeuralScore
from ..search import NeighborIndex

#: default level of the onset rule (lower 90% bound of the memorized fraction)
ONSET_LEVEL = 0.1
CURVE_FILE = "memorization_curve.json"


def onset_step(curve, level: float = ONSET_LEVEL) -> int | None:
    """First ``step`` of ``curve`` (dicts with ``step`` and ``ci = [lo, hi]`` of the memorized fraction, in step
    order) whose lower bound ``lo >= level``; ``None`` when none does."""
    if not 0 < level <= 1:
        raise ConfigError(f"onset level must be in (0, 1]; got {level}")
    for p in sorted(curve, key=lambda p: p["step"]):
        lo = p["ci"][0]
        if lo == lo and lo >= level:  # NaN never clears
            return int(p["step"])
    return None


def quick_samples(
    field,
    train: torch.Tensor,
    n: int,
    *,
    sigma_min: float,
    sigma_max: float,
    generator,
    steps: int = 32,
    index=None,
    alpha: float = 0.3,
) -> torch.Tensor:
    """``n`` samples of ``field`` from seeded noise at ``sigma_max``: Heun PF-ODE on ``steps`` EDM levels (plus the
    final step to the denoiser) when the field is noise-conditioned, else ``2 * steps`` sigma* steps (step size
    ``alpha``, the noise level estimated from the nearest training points). Returned on the CPU, not clamped."""
    shape = tuple(train.shape[1:])
    x0 = float(sigma_max) * torch.randn(n, *shape, generator=generator)
    with torch.no_grad():
        if getattr(field, "conditioned", True):
            sig = sigma_schedule("edm", int(steps), float(sigma_min), float(sigma_max), append_zero=True)
            out = sample(field, x0, sig, method="heun", generator=generator)
        else:
            opts = {"train": train, "index": index, "alpha": float(alpha), "n_steps": 2 * int(steps)}
            out = sample(field, x0, [1.0, 0.5], method="sigma_star", generator=generator, **opts)
    return out.detach().cpu()


def audit_point(samples: torch.Tensor, train, *, threshold: float = 1 / 3, n_boot: int = 500) -> dict:
    """One audit: ``fraction``, ``ci`` (its 90% bootstrap interval), ``median_ratio`` and ``median_ratio_ci`` of
    d1/d2, and per sample its nearest training ``nn`` index and ``ratio``. Diverged (non-finite) samples count as
    not memorized (they copy nothing)."""
    flat = samples.reshape(samples.shape[0], -1)
    ok = torch.isfinite(flat).all(1)
    ratio = torch.full((samples.shape[0],), float("inf"), dtype=torch.float64)
    nn = torch.full((samples.shape[0],), -1, dtype=torch.long)
    if bool(ok.any()):
        index = train if isinstance(train, NeighborIndex) else NeighborIndex(train, shard=False)
        d, i = index.search(samples[ok], 2)
        ratio[ok] = (d[:, 0] / d[:, 1].clamp_min(1e-300)).double()
        nn[ok] = i[:, 0]
    mem = (ratio < threshold).double()
    r = ratio.clamp_max(1.0)  # a diverged sample's ratio: 1 (as far from a copy as a ratio gets)
    return {
        "fraction": float(mem.mean()),
        "ci": mean_interval(mem, n_boot=n_boot),
        "median_ratio": float(r.median()),
        "median_ratio_ci": median_interval(r, n_boot=n_boot),
        "n_samples": int(samples.shape[0]),
        "diverged": int((~ok).sum()),
        "nn": nn.tolist(),
        "ratio": r.tolist(),
    }


class MemorizationWatch:
    """A trainer hook (``Trainer(hooks=[watch.hook()])``) that audits memorization every ``every`` steps.

    ``train``: the training set (N, *dims); ``sigma_min`` / ``sigma_max``: the trained noise range (the sampler
    starts at ``sigma_max``). The same seeded initial noises are used at every audit, so the curve's changes come from
    the network, not from the draw. ``out_dir``: where ``memorization_curve.json`` is written (and read back when
    ``resume``). ``echo``: a function called with one line per audit (e.g. ``print``)."""

    def __init__(
        self,
        train: torch.Tensor,
        *,
        every: int,
        sigma_min: float,
        sigma_max: float,
        n_samples: int = 32,
        steps: int = 32,
        level: float = ONSET_LEVEL,
        threshold: float = 1 / 3,
        seed: int = 0,
        out_dir=None,
        resume: bool = False,
        echo=None,
        dtype=torch.float32,
        device="cpu",
    ):
        if every < 1 or n_samples < 1 or steps < 1:
            raise ConfigError(f"every, n_samples and steps must be positive; got {every}, {n_samples}, {steps}")
        if not 0 < level <= 1:
            raise ConfigError(f"onset level must be in (0, 1]; got {level}")

        self.train, self.every, self.n_samples, self.steps = train, int(every), int(n_samples), int(steps)
        self.sigma_min, self.sigma_max = float(sigma_min), float(sigma_max)
        self.level, self.threshold = level, threshold
        self.seed, self.echo, self.dtype, self.device = int(seed), echo, dtype, device
        self.index = NeighborIndex(train, shard=False)
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.curve: list[dict] = []
        if resume and self.out_dir is not None and (self.out_dir / CURVE_FILE).exists():
            self.curve = json.loads((self.out_dir / CURVE_FILE).read_text())["curve"]

    def hook(self):
        return (self.every, self)

    def __call__(self, step: int, model, ema) -> dict:
        t0 = time.perf_counter()
        field = NeuralScore(ema, dtype=self.dtype, device=self.device)
        g = torch.Generator().manual_seed(self.seed)
        xs = quick_samples(
            field,
            self.train,
            self.n_samples,
            sigma_min=self.sigma_min,
            sigma_max=self.sigma_max,
            generator=g,
            steps=self.steps,
            index=self.index,
        )
        p = {"step": int(step), **audit_point(xs, self.index, threshold=self.threshold)}
        p["seconds"] = time.perf_counter() - t0
        self.last_samples = xs
        self.curve = [q for q in self.curve if q["step"] < step] + [p]
        self.save()
        if self.echo is not None:
            self.echo(
                f"step {step}: memorized {p['fraction']:.3f} [{p['ci'][0]:.3f}, {p['ci'][1]:.3f}], "
                f"median d1/d2 {p['median_ratio']:.3f} ({p['seconds']:.1f}s)"
            )
        return p

    @property
    def onset(self) -> int | None:
        return onset_step(self.curve, self.level)

    def save(self) -> None:
        if self.out_dir is None:
            return

        atomic_write_json(
            self.out_dir / CURVE_FILE,
            {"level": self.level, "threshold": self.threshold, "onset_step": self.onset, "curve": self.curve},
        )
