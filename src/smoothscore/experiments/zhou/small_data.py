"""Experiment ``zhou-small-data``: Paper B's Cat-Caracal study on data we ship (Sec. 5, Fig. "cat-caracal").

A small imbalanced real set in d >= 256 (quick preset: 150 digits of one class + 30 of a rare class, upsampled to
16x16; any image folder with ``data: folder:PATH``). Four score networks of the same architecture are trained:

* ``conditioned``: Eq. 8 (network sees sigma);
* ``unconditioned``: Eq. 9 (no noise input at all — Noise Unconditioning);
* ``temperature_pixel`` / ``temperature_feature``: Eq. 11 with the Eq. 10 target over the K nearest training samples
  (pixel L2 / cosine in the feature space of the project's classifier), ``T_i = max(sigma_collapse / sigma_i, 1)``.

Samplers (adopted, see docs/paper-b-training.md): the conditioned model with the EDM-scheduled Heun PF-ODE (or PC);
unconditioned models with the adaptive sigma* sampler (the paper's fix for the scheduled-ODE overshoot) or PC.
Reported per model: memorized fraction (d1/d2 < 1/3), Frechet distance in the classifier's feature space vs train and
vs held-out test and their ratio (the paper's FID_test / FID_train), k-NN precision / recall, classifier confidence,
median distances to train/test, and samples beside their top-3 training neighbours.
"""

from __future__ import annotations

import time

import matplotlib.pyplot as plt
import torch

from ...errors import ConfigError, NonFiniteError
from ...metrics.expansiveness import expansiveness_profile
from ...metrics.quality import QualityScorer
from ...noise import sigma_schedule
from ...plotting import nearest_neighbor_figure
from ...sampling import sample
from ...scores.empirical import EmpiricalScore
from ...search import NeighborIndex
from ..base import experiment
from .data import load_small_data
from .methods import ALL_METHODS, METHODS, build_loss, train_method
from .presets import PAPER_DATASETS, SMALL_DATA_QUICK, TABLE1, paper_preset
from .sampling import init_noise, sample_report, sigma_star_run, yerr
from .small_data_claims import claims, sample_intervals_and_pieces


# ----------------------------------------------------------------------------------------------- sampling
def draw_samples(ctx, field, kind: str, train: torch.Tensor, index: NeighborIndex, *, n=None, snr=None) -> torch.Tensor:
    """Raw (unclamped) samples of ``field`` with sampler ``kind`` from the first ``n`` (default all ``n_samples``)
    of the run's seeded initial noises at ``sigma_init`` -- the same noises for every model and sampler; all NaN
    when sampling diverged."""
    c = ctx.config
    x0 = init_noise(ctx, int(c["n_samples"]), train.shape[1:], c["sigma_init"])[:n].to(ctx.device)
    try:
        return _run_sampler(ctx, field, kind, train, x0, index, snr=snr).detach().cpu().to(ctx.dtype)
    except NonFiniteError:  # a diverging sample trips the sampler's neighbour search
        return torch.full((x0.shape[0], *train.shape[1:]), float("nan"), dtype=ctx.dtype)


def _run_sampler(ctx, field, kind, train, x0, index, snr=None):
    c = ctx.config
    with torch.no_grad():
        if kind == "sigma_star":
            out = sigma_star_run(
                field,
                train,
                x0,
                alpha=float(c["sigma_star_alpha"]),
                n_steps=int(c["sigma_star_steps"]),
                index=index,
                generator=ctx.generator("sampler-noise"),
            )
        elif kind in ("heun", "pc", "em"):
            n = int(c["cond_steps"] if kind == "heun" else c["pc_steps"])
            sig = sigma_schedule(
                "edm" if kind == "heun" else "geometric",
                n,
                float(c["sigma_min"]),
                float(c["sigma_init"]),
                append_zero=kind == "heun",
            )
            # PC as score_sde / Paper B's code run it: noise_removal (denoised last step)
            opts = {"snr": float(c["snr"] if snr is None else snr), "denoise_last": True} if kind == "pc" else {}
            out = sample(
                field, x0, sig, method=kind, generator=ctx.generator("sampler-noise", device=ctx.device), **opts
            )
        else:
            raise ConfigError(f"unknown sampler {kind!r} for zhou-small-data; known: heun, pc, em, sigma_star")
    return out


# ----------------------------------------------------------------------------------------------- report
_SHORT = {
    "conditioned": "cond.",
    "unconditioned": "uncond.",
    "temperature_pixel": "temp.\npixel",
    "temperature_feature": "temp.\nfeature",
    "unconditioned_sigma_free": "uncond.\nsigma-free",
    "temperature_pixel_scheduled": "temp. pix.\nauthors'",
    "temperature_pixel_sigma_star": "temp. pix.\nEq. 10",
    "temperature_feature_scheduled": "temp. feat.\nauthors'",
    "temperature_feature_sigma_star": "temp. feat.\nEq. 10",
}


def _summary_figure(rows: dict[str, dict[str, float]], ivs: dict[str, dict[str, list]]):
    keys = [
        ("memorized_fraction", "memorized fraction (d1/d2 < 1/3)"),
        ("fd_train", "Frechet dist. vs train"),
        ("fd_test", "Frechet dist. vs test"),
        ("precision", "precision"),
        ("recall", "recall"),
    ]
    fig, axes = plt.subplots(1, len(keys), figsize=(3.0 * len(keys), 3.2))
    names = list(rows)
    for ax, (k, label) in zip(axes, keys):
        v = [rows[n].get(k, float("nan")) for n in names]
        ax.bar(
            range(len(names)),
            v,
            color=[f"C{i % 10}" for i in range(len(names))],
            capsize=3,
            yerr=yerr(v, [ivs.get(n, {}).get(k) for n in names]),
        )
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels([_SHORT.get(n, n) for n in names], fontsize=7)
        ax.set_title(label, fontsize=9)
        if k in ("memorized_fraction", "precision", "recall"):
            ax.set_ylim(0, 1.05)
    fig.suptitle("Small imbalanced set: memorization and feature-space quality per training method", fontsize=10)
    fig.tight_layout()
    return fig


def _paper_findings(ctx, rows):
    """Table 1 of the paper beside the measured Frechet distances (feature space of our classifier, not Inception:
    the numbers are not on one scale; the comparison is of the ordering)."""
    ds = ctx.config.get("paper_dataset")
    if ds not in TABLE1:
        return
    ref = TABLE1[ds]
    temp_rows = [k for k in ref if k.startswith("temperature")]
    pairs = {
        "conditioned": ref["conditioned"],
        "unconditioned": ref["unconditioned"],
        "temperature_pixel": ref[temp_rows[-1]]["pixel"],
        "temperature_feature": ref[temp_rows[-1]]["feature"],
    }
    for m, (ftr, fte) in pairs.items():
        got = rows[m]
        ctx.metric(f"paper_fid_train_{m}", ftr)
        ctx.metric(f"paper_fid_test_{m}", fte)
        ctx.finding(
            f"table1-{m}",
            f"{ds} {m}: paper FID train/test {ftr} / {fte}; measured FD train/test "
            f"{got['fd_train']:.3g} / {got.get('fd_test', float('nan')):.3g} (classifier features)",
            {"paper": [ftr, fte], "measured": [got["fd_train"], got.get("fd_test")]},
        )


TITLE = "Small imbalanced real set: conditioned vs unconditioned vs temperature-smoothed networks (Cat-Caracal study)"


@experiment(
    "zhou-small-data",
    TITLE,
    {"quick": SMALL_DATA_QUICK, "paper": paper_preset("cifar10"), "paper-celeba64": paper_preset("celeba64")},
    trains=True,
    cost=190,
    streams=("noise", "sampler-noise", "expansiveness-queries", "init:*", "batches:*"),
)
def run(ctx):
    """Train the four models on the same small imbalanced set; memorization and feature-space quality of samples."""
    c = ctx.config
    if c.get("paper_dataset") and c["paper_dataset"] not in PAPER_DATASETS:
        raise ConfigError(f"paper_dataset must be one of {', '.join(PAPER_DATASETS)}; got {c['paper_dataset']!r}")
    unknown = [m for m in c.get("methods", METHODS) if m not in ALL_METHODS]
    if unknown:
        raise ConfigError(f"unknown methods {unknown}; known: {', '.join(ALL_METHODS)}")
    train_ds, test_ds = load_small_data(c, ctx.seed)
    train, test = train_ds.x, test_ds.x
    d = int(train[0].numel())
    ctx.metric("dimension", d)
    ctx.metric("n_train", len(train_ds))
    ctx.metric("n_test", len(test_ds))
    if train_ds.labels is not None:
        ctx.metric("train_class_counts", {int(k): int((train_ds.labels == k).sum()) for k in train_ds.labels.unique()})
    cache = ctx.path("cache")
    t0 = time.perf_counter()
    scorer = QualityScorer.fit(
        train_ds, test, steps=int(c["classifier_steps"]), seed=ctx.seed, cache_dir=cache, dtype=ctx.precision
    )
    ctx.metric("classifier_seconds", time.perf_counter() - t0)
    if train_ds.labels is not None and not scorer.model.autoencoder:
        classes = torch.unique(train_ds.labels)
        ctx.metric("classifier_test_accuracy", scorer.accuracy(test, test_ds.labels, classes))
    ctx.metric("k", int(c["k"]))
    ctx.metric("sigma_collapse", float(c["sigma_collapse"]))
    index = NeighborIndex(train)
    rows: dict[str, dict[str, float]] = {}
    fields, raw, ivs, per = {}, {}, {}, {}
    for m in c.get("methods", METHODS):
        loss = build_loss(m, train, c, encoder=scorer.model.features, cache_dir=cache)
        field, secs = train_method(ctx, m, train, loss)
        fields[m] = field
        raw[m] = draw_samples(
            ctx, field, c["cond_sampler"] if m == "conditioned" else c["uncond_sampler"], train, index
        )
        finite = bool(torch.isfinite(raw[m]).all())
        samples = raw[m].clamp(-1, 1) if finite else raw[m]
        quality = (
            scorer(samples)
            if finite
            else dict.fromkeys(("fd_train", "fd_test", "fd_ratio", "precision", "recall"), float("nan"))
        )
        r = dict(sample_report(samples, train, test), **quality, train_seconds=secs)
        rows[m] = r
        if finite:
            ivs[m], per[m] = sample_intervals_and_pieces(scorer, samples, train, test)
        for k, v in r.items():
            ctx.metric(f"{m}.{k}", v, ci=ivs.get(m, {}).get(k))
        if not finite:
            ctx.note(f"{m}: sampling diverged (non-finite samples); its metrics are NaN and its claims undecided")
            continue
        ctx.save_figure(
            nearest_neighbor_figure(
                samples, train, k=3, n_show=6, title=f"{m}: samples and their top-3 training neighbours"
            ),
            f"nn_{m}",
            f"{m}: six samples (left) beside their three nearest training images; MEM marks d1/d2 < 1/3.",
        )
    ctx.save_figure(
        _summary_figure(rows, ivs),
        "summary",
        "Memorized fraction, feature-space Frechet distance vs "
        "train and vs held-out test, and k-NN precision/recall for each training method; error bars: 90% "
        "bootstrap intervals over samples (this seed).",
    )
    per["_test_feats"] = scorer.test_feats
    claims(ctx, rows, per)
    if c.get("expansiveness_sigmas"):
        _expansiveness(ctx, fields, train)
    if "unconditioned" in fields and c.get("compare_snrs"):
        _sampler_comparison(ctx, fields["unconditioned"], train, index, rows["unconditioned"], raw["unconditioned"])
    _paper_findings(ctx, rows)


def _sampler_comparison(ctx, field, train, index, row, main_raw):
    """The trained unconditioned network under other samplers (Sec. 4 of the paper: the scheduled PF-ODE overshoots,
    PC and sigma* do not): sigma*, scheduled Heun PF-ODE, reverse SDE (Euler-Maruyama) and PC at each snr of
    ``compare_snrs``, ``pc_steps`` geometric levels, on the first ``compare_n`` of the seeded initial noises (the row
    that repeats the model's own sampler reuses its samples). Distances are of the raw (unclamped) samples, so an
    overshoot shows."""
    c = ctx.config
    n = int(c.get("compare_n") or c["n_samples"])
    ref = row["test_to_train_median"]

    def name(kind, snr):
        return f"pc_snr{float(snr):g}" if kind == "pc" else kind

    runs = [("sigma_star", None), ("heun", None), ("em", None)] + [("pc", snr) for snr in c["compare_snrs"]]
    med = {}
    for kind, snr in runs:
        out = (
            main_raw[:n]
            if name(kind, snr) == name(c["uncond_sampler"], c["snr"])
            else draw_samples(ctx, field, kind, train, index, n=n, snr=snr)
        )
        med[name(kind, snr)] = (
            float(index.search(out, 1)[0][:, 0].median()) if bool(torch.isfinite(out).all()) else float("inf")
        )
        ctx.metric(f"unconditioned.sampler.{name(kind, snr)}.nn_train_median", med[name(kind, snr)])
    ctx.claim(
        "trained-uncond-ode-overshoots",
        "Trained unconditioned network: the scheduled Heun PF-ODE ends "
        "farther from the data than the sigma* sampler (ratio of median nearest-training distances, "
        "unclamped samples)",
        med["heun"] / max(med["sigma_star"], 1e-12),
        ">=",
        2.0,
        details=f"heun {med['heun']:.3g}, sigma* {med['sigma_star']:.3g}",
    )
    paper = f"pc_snr{float(c['snr']):g}"
    ctx.claim(
        "trained-uncond-pc-near-data",
        f"Trained unconditioned network: PC at the paper's snr {c['snr']} "
        f"({c['pc_steps']} levels) ends near the data (median nearest-training distance <= 0.5 x the test "
        f"images' own median distance {ref:.3g})",
        med.get(paper, float("nan")),
        "<=",
        0.5 * ref,
        details=", ".join(f"{k} {v:.3g}" for k, v in med.items()),
    )
    ctx.finding(
        "trained-uncond-samplers",
        "Trained unconditioned network, median distance of the final (unclamped) "
        "samples to the nearest training image per sampler: "
        + ", ".join(f"{k} {v:.3g}" for k, v in med.items())
        + f" (test images: {ref:.3g}). A PC run that ends far from the data has had its Langevin corrector "
        "(step 2 (snr |z| / |s|)^2) inject more noise than the predictor removes: it needs an accurate |s|.",
        med,
    )


def _expansiveness(ctx, fields, train):
    """gamma_ex and the switching-surface norm of ``I + eta J`` (``metrics.expansiveness``) of the trained networks
    beside the exact ESF of the same training set (the paper's Sec. 3.2 finding, measured on these networks)."""
    c = ctx.config
    sig = [float(v) for v in c["expansiveness_sigmas"]]
    tr = train.to(ctx.device)
    all_fields = {"ESF": EmpiricalScore(tr, device=ctx.device), **fields}
    prof = {
        k: expansiveness_profile(
            f,
            tr,
            sig,
            n_queries=int(c["expansiveness_queries"]),
            iters=8,
            generator=ctx.generator("expansiveness-queries"),
            typical=False,
        )
        for k, f in all_fields.items()
    }
    ctx.metric("expansiveness", prof)
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for ax, key, label in (
        (axes[0], "gamma_ex", "mirror-pair ratio gamma_ex"),
        (axes[1], "spectral_norm_switching", "||I + eta J|| on the switching surface"),
    ):
        for k, pr in prof.items():
            ax.plot(pr["sigma"], pr[key], "o-" if k == "ESF" else "o--", ms=3, label=k)
        ax.set(xscale="log", yscale="log", xlabel="sigma", title=label)
        ax.axhline(1.0, color="k", lw=0.6, ls=":")
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    ctx.save_figure(
        fig,
        "expansiveness",
        "Expansiveness of one step x + 0.5 sigma^2 s(x) for the exact ESF of the "
        "training set and the four trained networks (median over the closest training pairs).",
    )
    g = {k: pr["gamma_ex"][0] for k, pr in prof.items()}
    nets = list(fields)
    worst = max(nets, key=lambda k: g[k])
    ctx.claim(
        "nets-less-expansive-than-esf",
        f"At sigma = {sig[0]}: gamma_ex of the exact ESF divided by the largest "
        "of the trained networks' (> 1: every network less expansive)",
        g["ESF"] / max(g[worst], 1e-12),
        ">",
        1.0,
        details=", ".join(f"{k} {v:.3g}" for k, v in g.items()),
    )
    temps = [k for k in nets if k.startswith("temperature")]
    if "conditioned" in g and temps:
        top = max(temps, key=lambda k: g[k])
        ctx.claim(
            "temperature-nets-less-expansive",
            f"At sigma = {sig[0]}: gamma_ex of the conditioned network "
            "divided by the larger of the temperature-smoothed networks' (> 1: smoothing lowers "
            "expansiveness)",
            g["conditioned"] / max(g[top], 1e-12),
            ">",
            1.0,
            details=", ".join(f"{k} {g[k]:.3g}" for k in ["conditioned", *temps]),
        )
