"""Experiment ``zoo-benchmark``: analytic denoisers against a trained UNet under GoldDiff's protocol (Shang et al.,
ICML 2026; read from shangxinyi/GoldDiff: main.py, methods/base.py, services/evaluation.py).

Protocol (fixed before any run): the same ``n_noise`` (their 128) initial VP noises ``x_T ~ N(0, I)`` for every
denoiser; deterministic DDIM with ``ddim_steps`` (their 10) steps on the linear beta schedule 1e-4..0.02, T = 1000
(:mod:`smoothscore.sampling.ddim`: diffusers' leading timesteps 900..0, x0 clipped to [-1, 1], the VE sigma grid
60.8 .. 0.01); the final image is the last x0 prediction, mapped to [0, 1] by ``(x + 1) / 2`` and clamped. Against
the trained UNet's final images: MSE (mean over images of the per-image mean squared error) and GoldDiff's r^2,
``1 - sum (x - y)^2 / (D var(y))`` per image with the *unbiased* variance of the UNet image ``y`` (0 replaced by 1),
averaged over images (:func:`golddiff_r2`). Time per step: CPU seconds of this process per denoiser call (one
intra-op thread, robust to other load) or wall seconds on CUDA; memory: one call's peak
(:func:`~smoothscore.metrics.call_memory.call_memory`).

Denoisers: ``optimal`` (the ESF), ``optimal-truncated`` (certified neighbour truncation, ``tolerance``),
``optimal-golden`` (GoldDiff's golden subset on the ESF; **uncertified**), ``Wiener`` (Gaussian with the data's
mean and covariance), ``ELS`` (Kamb & Ganguli, fixed patch size ``els_k``), ``PCA-locality`` (Lukoianov et al.)
and ``PCA-locality-golden`` (GoldDiff's method: golden subset on the PCA-locality field; **uncertified**), with
GoldDiff's ``k_min = n / 20``, ``k_max = n / 10`` and coarse side ``low_res``. The UNet is the project's
conditioned UNet (EDM preconditioning) trained with Paper B's conditioned DSM over ``[sigma_min, sigma_max]``
covering the DDIM grid.
"""

from __future__ import annotations

import time

import matplotlib.pyplot as plt
import torch

from ...data import load_dataset
from ...data.digits import load_digits
from ...data.folder import resize_images
from ...errors import ConfigError, MissingDependencyError
from ...metrics.call_memory import call_memory
from ...noise import vp_to_ve
from ...sampling import sample
from ...sampling.ddim import ddim_sigmas
from ...scores import EmpiricalScore, EquivariantLocalScore
from ...scores.gaussian import GaussianScore
from ...scores.golden_subset import GoldenSubset
from ...scores.pca_locality import PCALocalityScore
from ..base import experiment
from ..zhou.methods import build_loss, train_method

#: claims' thresholds, fixed before any run
GOLDEN_R2_SLACK = 0.05  # the golden subset may lose at most this much r^2 against the UNet (vs PCA-locality)

BENCH_QUICK = dict(
    data="digits",
    image_size=8,
    n_train=None,  # all 1,797 digits
    model="unet",
    base=16,
    cond_param="edm",
    steps=400,
    batch_size=64,
    lr=2e-3,
    ema_decay=0.99,
    sigma_min=0.005,
    sigma_max=80.0,
    n_levels=None,
    n_noise=128,
    ddim_steps=10,
    mask_threshold=0.02,
    k_min_frac=1 / 20,
    k_max_frac=1 / 10,
    low_res=None,
    els_k=5,
    tolerance=1e-4,
    denoisers=None,  # None: all of DENOISERS
    seeds=2,
)
BENCH_PAPER = dict(
    BENCH_QUICK,
    data="folder:data/cifar10",  # or folder:data/celeba_hq, folder:data/afhq (GoldDiff's other sets)
    image_size=32,
    n_train=None,
    base=64,
    steps=100_000,
    batch_size=128,
    lr=2e-4,
    ema_decay=0.9999,
    mask_threshold=0.03,  # GoldDiff's configs/ours/cifar10.yaml
    low_res=16,
    els_k=7,
    seeds=3,
)
DENOISERS = (
    "optimal",
    "optimal-truncated",
    "optimal-golden",
    "Wiener",
    "ELS",
    "PCA-locality",
    "PCA-locality-golden",
)


def golddiff_r2(x: torch.Tensor, ref: torch.Tensor) -> float:
    """GoldDiff's r^2 (services/evaluation.py ``calculate_r2_score``): per image ``1 - SS_res / (D var(ref))``
    with the unbiased variance of the reference image (0 -> 1), averaged over images."""
    a, b = x.reshape(len(x), -1).double(), ref.reshape(len(ref), -1).double()
    var = b.var(dim=1)
    var = torch.where(var == 0, torch.ones_like(var), var)
    return float((1 - ((a - b) ** 2).sum(1) / (var * a.shape[1])).mean())


def golddiff_mse(x: torch.Tensor, ref: torch.Tensor) -> float:
    """Mean over images of the per-image mean squared error (GoldDiff's ``calculate_mse``)."""
    return float(((x.reshape(len(x), -1).double() - ref.reshape(len(ref), -1).double()) ** 2).mean(1).mean())


def to_unit(x: torch.Tensor) -> torch.Tensor:
    """GoldDiff's postprocess: ``((x + 1) / 2).clamp(0, 1)``."""
    return ((x + 1) / 2).clamp(0, 1)


def load_bench_data(c, seed: int) -> torch.Tensor:
    """Training images in [-1, 1]: ``digits`` (sklearn), ``lfw`` (scikit-image's bundled ``lfw_subset``, 200 faces
    25 x 25), ``folder:PATH`` or ``random`` (uniform, 3 channels: for timing checks)."""
    spec, size = str(c["data"]), int(c["image_size"])
    if spec == "random":  # uniform noise images (3, size, size): timing / memory checks only
        g = torch.Generator().manual_seed(seed)
        return torch.rand(int(c.get("n_train") or 1000), 3, size, size, generator=g) * 2 - 1
    if spec == "digits":
        x = load_digits(c.get("n_train"), size=size, seed=seed).x
    elif spec == "lfw":
        try:
            from skimage.data import lfw_subset
        except ImportError as e:
            raise MissingDependencyError("data=lfw needs scikit-image (pip install scikit-image)") from e

        x = torch.as_tensor(lfw_subset(), dtype=torch.float32)[:, None] * 2 - 1  # 25 x 25: the UNet needs 4 | size
        x = resize_images(x, (1, size, size)) if x.shape[-1] != size else x
    elif spec.startswith("folder:"):
        x = load_dataset(spec, size=size).x
    else:
        raise ConfigError(f"zoo-benchmark needs data 'digits', 'lfw' or 'folder:PATH'; got {spec!r}")
    if c.get("n_train") and len(x) > int(c["n_train"]):
        x = x[torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[: int(c["n_train"])]]
    return x.float()


def _fields(c, train, device, dtype) -> dict[str, object]:

    n = len(train)
    k_min, k_max = max(1, round(n * float(c["k_min_frac"]))), max(1, round(n * float(c["k_max_frac"])))
    low = c.get("low_res")
    flat = train.reshape(n, -1).double()
    thr = float(c["mask_threshold"])
    return {
        "optimal": EmpiricalScore(train, device=device, dtype=dtype),
        "optimal-truncated": EmpiricalScore(train, tolerance=float(c["tolerance"]), device=device, dtype=dtype),
        "optimal-golden": PCALocalityScore(
            train, mask="ones", golden=GoldenSubset(k_min, k_max, low_res=low), device=device, dtype=dtype
        ),
        "Wiener": GaussianScore(flat.mean(0).reshape(train.shape[1:]), torch.cov(flat.T), device=device, dtype=dtype),
        "ELS": EquivariantLocalScore(train, int(c["els_k"]), padding="zeros", device=device, dtype=dtype),
        "PCA-locality": PCALocalityScore(train, mask_threshold=thr, device=device, dtype=dtype),
        "PCA-locality-golden": PCALocalityScore(
            train, mask_threshold=thr, golden=GoldenSubset(k_min, k_max, low_res=low), device=device, dtype=dtype
        ),
    }


class _Timed:
    """Wrap a field: time every ``score`` call (CPU seconds of this process, or synchronised wall time on CUDA)."""

    def __init__(self, field):
        self.field, self.seconds, self.calls = field, 0.0, 0
        self.dtype, self.device = field.dtype, field.device

    def score(self, x, sigma):
        cuda = self.device.type == "cuda"
        clock = time.perf_counter if cuda else time.process_time
        t0 = clock()
        out = self.field.score(x, sigma)
        if cuda:
            torch.cuda.synchronize()
        self.seconds += clock() - t0
        self.calls += 1
        return out


def protocol(field, noise_vp: torch.Tensor, n_steps: int):
    """GoldDiff's DDIM protocol (module docstring) from VP noises: ``(final images in [0, 1], seconds per step)``."""
    sig = ddim_sigmas(n_steps)
    timed = _Timed(field)
    with torch.no_grad():
        out = sample(timed, vp_to_ve(noise_vp, float(sig[0])), sig, method="ddim", clip=1.0)
    return to_unit(out.detach().cpu().float()), timed.seconds / max(timed.calls, 1)


TITLE = (
    "GoldDiff's protocol: analytic denoisers (optimal, truncated, golden subset, Wiener, ELS, PCA-locality) "
    "vs a trained UNet, DDIM-10 from fixed noises: MSE, r^2, time per step, memory"
)


@experiment(
    "zoo-benchmark", TITLE, (BENCH_QUICK, BENCH_PAPER), trains=True, cost=25, streams=("init:*", "batches:*", "noise")
)
def run(ctx):
    """Train a conditioned UNet; run every analytic denoiser and the UNet through GoldDiff's fixed-noise DDIM
    protocol; compare final images (MSE, r^2), time per step and memory."""
    c = ctx.config
    dev = ctx.device
    train = load_bench_data(c, ctx.seed).to(dev)
    shape = tuple(train.shape[1:])
    ctx.metric("n_train", len(train))
    ctx.metric("dimension", int(train[0].numel()))
    net, secs = train_method(ctx, "conditioned", train, build_loss("conditioned", train, c))
    ctx.metric("unet.train_seconds", round(secs, 2))
    n_steps = int(c["ddim_steps"])
    # the same initial noises for every denoiser (GoldDiff: one seeded generator, 128 samples)
    noise = torch.randn(int(c["n_noise"]), *shape, generator=ctx.generator("noise")).to(dev)
    ref, ref_t = protocol(net, noise, n_steps)
    rows = {"UNet": {"seconds_per_step": ref_t, "mse": 0.0, "r2": 1.0}}
    finals = {"UNet": ref}
    mid = float(ddim_sigmas(n_steps)[n_steps // 2])
    probe = vp_to_ve(noise[:16], mid)
    chosen = list(c.get("denoisers") or DENOISERS)
    unknown = set(chosen) - set(DENOISERS)
    if unknown:
        raise ConfigError(f"unknown denoisers {sorted(unknown)}; known: {', '.join(DENOISERS)}")
    for name, f in _fields(c, train, dev, ctx.precision).items():
        if name not in chosen:
            continue
        img, t = protocol(f, noise, n_steps)
        finals[name] = img
        mem = call_memory(lambda f=f: f.denoise(probe, mid), dev)
        rows[name] = {
            "seconds_per_step": t,
            "mse": golddiff_mse(img, ref),
            "r2": golddiff_r2(img, ref),
            "peak_bytes_16_queries": mem["peak_bytes"],
        }
    ctx.metric("memory_how", call_memory(lambda: None, dev)["how"])
    pairs = (("optimal-golden", "optimal"), ("PCA-locality-golden", "PCA-locality"), ("optimal-truncated", "optimal"))
    for a, b in (p for p in pairs if p[0] in rows and p[1] in rows):
        rows[a]["speedup_vs_" + b] = rows[b]["seconds_per_step"] / max(rows[a]["seconds_per_step"], 1e-12)
        rows[a]["r2_vs_" + b] = golddiff_r2(finals[a], finals[b])
        rows[a]["max_abs_vs_" + b] = float((finals[a] - finals[b]).abs().max())
    ctx.metric("table", rows)
    ctx.finding(
        "protocol-table",
        "DDIM-10 from the same noises, vs the UNet's final images: "
        + "; ".join(
            f"{k}: r^2 {v['r2']:.3f}, MSE {v['mse']:.4f}, {v['seconds_per_step'] * 1e3:.1f} ms/step"
            for k, v in rows.items()
        ),
        rows,
    )
    _figure(ctx, rows, finals)
    _claims(ctx, rows)


def _claims(ctx, rows):
    if not {"optimal", "PCA-locality", "PCA-locality-golden"} <= set(rows):
        ctx.note("claims need the optimal, PCA-locality and PCA-locality-golden denoisers: not decided")
        return
    p, e = rows["PCA-locality"]["r2"], rows["optimal"]["r2"]
    ctx.claim(
        "pca-locality-explains-unet-better-than-optimal",
        "Final images of the PCA-locality denoiser are closer to the UNet's than those of the optimal (ESF) "
        "denoiser (GoldDiff r^2 vs UNet, PCA-locality minus optimal)",
        p - e,
        ">",
        0.0,
        details=f"PCA-locality {p:.3f}, optimal {e:.3f}",
    )
    g = rows["PCA-locality-golden"]
    ctx.claim(
        "golden-subset-faster-than-pca-locality",
        "GoldDiff's golden subset speeds the PCA-locality denoiser up (time per step, PCA-locality / golden)",
        g["speedup_vs_PCA-locality"],
        ">",
        1.0,
    )
    ctx.claim(
        "golden-subset-keeps-r2",
        f"The golden subset loses at most {GOLDEN_R2_SLACK} of r^2 against the UNet (golden minus PCA-locality)",
        g["r2"] - p,
        ">=",
        -GOLDEN_R2_SLACK,
        details=f"golden {g['r2']:.3f}, PCA-locality {p:.3f} (golden vs PCA-locality images: r^2 "
        f"{g['r2_vs_PCA-locality']:.3f})",
    )


def _figure(ctx, rows, finals):
    names = [n for n in rows if n != "UNet"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    axes[0].barh(names, [rows[n]["r2"] for n in names], color="C0")
    axes[0].set(xlabel="r^2 vs UNet (GoldDiff)", xlim=(min(0.0, min(rows[n]["r2"] for n in names)), 1))
    axes[1].barh(names, [rows[n]["seconds_per_step"] * 1e3 for n in names], color="C1")
    axes[1].set(xlabel="ms per DDIM step", xscale="log")
    axes[1].set_yticks([])
    fig.tight_layout()
    ctx.save_figure(
        fig,
        "protocol",
        "GoldDiff's protocol: r^2 of each analytic denoiser's final images against the "
        "UNet's (left) and time per DDIM step (right), same 128 initial noises.",
    )
    n_show = min(8, len(finals["UNet"]))
    fig, axes = plt.subplots(len(finals), n_show, figsize=(n_show * 0.9, len(finals) * 0.95), squeeze=False)
    for r, (name, img) in enumerate(finals.items()):
        for i in range(n_show):
            ax = axes[r, i]
            im = img[i].permute(1, 2, 0).numpy()
            ax.imshow(im[..., 0] if im.shape[-1] == 1 else im, cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[r, 0].set_ylabel(name, fontsize=6, rotation=0, ha="right")
    fig.tight_layout()
    ctx.save_figure(
        fig, "samples", "Final DDIM-10 images of the UNet and every analytic denoiser from the same noises."
    )
