"""Experiment ``zoo-explains-network``: which smoothing of the empirical score does a trained network learn?

Networks (trained exactly as ``zhou-small-data`` trains them, same data, loss and UNet, fewer steps in the quick
preset): ``conditioned`` (Eq. 8), ``unconditioned`` (Eq. 9, noise unconditioning) and ``temperature_pixel``
(Eq. 11, temperature-smoothed pixel-KNN target). Analytic denoisers of the same training set:

* ``ESF`` (exact), ``temp-ESF`` (Paper B's conditioned temperature smoothing, ``T = max(sigma_c / sigma, 1)``);
* ``uncond-ESF`` / ``temp-uncond-ESF``: Paper B's noise-unconditional score (optimal level, Eq. 5) without / with
  the same temperature schedule (of the query's own level);
* ``sigma-scaled-ESF``: the exact minimiser of the authors' unconditioned loss used as ``F*(x) / sigma``
  (:class:`~smoothscore.scores.sigma_scaled.SigmaScaledEmpiricalScore`, the networks' training levels): the exact
  counterpart of the unconditioned network as Paper B's code parameterises it;
* ``LS`` / ``ELS`` (Kamb & Ganguli; border-aware zero padding, like the UNet's convolutions), patch size per sigma
  calibrated to *each* network along its own Heun trajectories (:func:`calibrate_patch_size`);
* ``KNN`` (Niedoba et al., K = ``knn_k``), ``closed-form`` (Scarvelis et al., smoothing ``closed_form_s``),
  ``Wiener`` (Gaussian with the data's mean and full covariance; Wang & Vastola / Lukoianov et al.).

Measured at every sigma of ``sigmas``: r^2 of the denoisers and cosine of the scores (``metrics.agreement``) on
(a) held-out test digits noised at sigma and (b) the network's own deterministic Heun trajectory (the state at the
schedule level nearest sigma). Every analytic field is also sampled with the same Heun schedule from the same
initial noise as the networks: memorized fraction, distances to train / test, and the Pearson r / r^2 of its final
samples against each network's (the "trajectory" comparison of Kamb & Ganguli / Lukoianov et al.).
"""

from __future__ import annotations

import time

import matplotlib.pyplot as plt
import torch

from ...metrics.agreement import denoiser_agreement, pearson_r, r_squared
from ...noise import sigma_schedule
from ...sampling import sample
from ...scores import ClosedFormSmoothedScore, EmpiricalScore, EquivariantLocalScore, KNNScore, LocalEmpiricalScore
from ...scores.gaussian import GaussianScore
from ...scores.patch_calibration import calibrate_patch_size
from ...scores.sigma_scaled import SigmaScaledEmpiricalScore
from ...scores.temperature import sigma_schedule_temperature
from ...scores.unconditional import UnconditionalEmpiricalScore
from ...search import NeighborIndex
from ...training.losses import SigmaSampler
from ..base import experiment
from ..zhou.data import load_small_data
from ..zhou.methods import build_loss, train_method
from ..zhou.presets import SMALL_DATA_QUICK, paper_preset
from ..zhou.sampling import init_noise, sample_report

NETWORKS = ("conditioned", "unconditioned", "temperature_pixel")
#: claims' thresholds, fixed before any run
SMALL_SIGMA = 0.5  # "small sigma": grid levels <= this (held-out images)
WIENER_R2_LARGE = 0.8  # at the grid's largest sigma the Wiener filter explains the conditioned network this well

ZOO_QUICK = dict(
    SMALL_DATA_QUICK,
    base=16,  # as sized for this experiment (zhou-small-data's quick preset uses base 8, 6 + 2 images)
    n_majority=8,
    steps=500,
    batch_size=16,
    methods=list(NETWORKS),
    sigmas=[0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0],
    n_eval=16,
    n_samples=16,
    cond_steps=18,
    calib_seeds=2,
    calib_n=4,
    calib_steps=10,
    calib_ks=[1, 3, 5, 7, 9, 11, 13, 15],
    knn_k=5,
    closed_form_s=0.1,
    closed_form_draws=8,
)
ZOO_PAPER = dict(
    paper_preset("cifar10"),
    methods=list(NETWORKS),
    sigmas=[0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10],
    n_eval=256,
    n_samples=256,
    cond_steps=40,
    calib_seeds=5,
    calib_n=16,
    calib_steps=20,
    calib_ks=[3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31],
    knn_k=2048,
    closed_form_s=0.05,
    closed_form_draws=16,
    max_train=50_000,
)


def _levels(c) -> torch.Tensor:
    """The networks' training levels (the loss's :class:`~smoothscore.training.losses.SigmaSampler`: ``n_levels``
    log-uniform on ``[sigma_min, sigma_max]``, Paper B's N = 1000)."""
    return SigmaSampler(float(c["sigma_min"]), float(c["sigma_max"]), int(c.get("n_levels") or 1000)).levels


def _analytic(c, train, device, ls_k, els_k) -> dict[str, object]:

    sched = sigma_schedule_temperature(float(c["sigma_collapse"]))
    flat = train.reshape(len(train), -1).double()
    return {
        "ESF": EmpiricalScore(train, device=device),
        "temp-ESF": EmpiricalScore(train, sched, device=device),
        "uncond-ESF": UnconditionalEmpiricalScore(train, mode="optimal", device=device),
        "temp-uncond-ESF": UnconditionalEmpiricalScore(train, mode="optimal", temperature=sched, device=device),
        "sigma-scaled-ESF": SigmaScaledEmpiricalScore(train, _levels(c), device=device),
        "LS": LocalEmpiricalScore(train, ls_k, device=device),
        "ELS": EquivariantLocalScore(train, els_k, padding="zeros", device=device),
        "KNN": KNNScore(train, int(c["knn_k"]), device=device),
        "closed-form": ClosedFormSmoothedScore(
            train, float(c["closed_form_s"]), n_draws=int(c["closed_form_draws"]), device=device
        ),
        "Wiener": GaussianScore(flat.mean(0).reshape(train.shape[1:]), torch.cov(flat.T), device=device),
    }


def _heun(c, field, x0, snapshot_sigmas=None, steps=None):
    sig = sigma_schedule(
        "edm", int(steps or c["cond_steps"]), float(c["sigma_min"]), float(c["sigma_init"]), append_zero=True
    )
    with torch.no_grad():
        return sample(field, x0, sig, method="heun", snapshot_sigmas=snapshot_sigmas)


def _agreement(field, net, x, s):
    out = denoiser_agreement(field, net, x, s)
    return float(out["r2"].mean()), float(out["cosine"].mean())


def _phase(ctx, name, t0):
    """Record the CPU seconds of a phase (process time, robust to other jobs' load) and return the new origin."""
    t = time.process_time()
    ctx.metric(f"cpu_seconds.{name}", round(t - t0, 2))
    return t


TITLE = (
    "Which smoothing explains a trained network? LS, ELS, KNN, closed-form, "
    "temperature and Wiener denoisers vs conditioned / unconditioned / temperature-trained UNets"
)


@experiment(
    "zoo-explains-network",
    TITLE,
    (ZOO_QUICK, ZOO_PAPER),
    trains=True,
    cost=110,
    streams=("init:*", "batches:*", "noise", "calibration-noise:*", "heldout-noise"),
)
def run(ctx):
    """Train three networks; r^2 / cosine of every analytic denoiser against each at every sigma, on held-out
    noised images and along the network's own trajectories; sample every analytic score."""
    t0 = time.process_time()
    c = ctx.config
    dev = ctx.device
    train_ds, test_ds = load_small_data(c, ctx.seed)
    train, test = train_ds.x.to(dev), test_ds.x
    shape = tuple(train.shape[1:])
    ctx.metric("n_train", len(train))
    ctx.metric("dimension", int(train[0].numel()))
    sigmas = [float(s) for s in c["sigmas"]]
    nets = {}
    for m in c["methods"]:
        nets[m], secs = train_method(ctx, m, train, build_loss(m, train, c, cache_dir=ctx.path("cache")))
        ctx.metric(f"{m}.train_seconds", secs)
    t0 = _phase(ctx, "train", t0)
    # patch size per sigma calibrated to each network along its own trajectories
    x_cal = [
        init_noise(ctx, int(c["calib_n"]), shape, c["sigma_init"], f"calibration-noise:{j}").to(dev)
        for j in range(int(c["calib_seeds"]))
    ]
    cal_sig = sigma_schedule(
        "edm", int(c["calib_steps"]), float(c["sigma_min"]), float(c["sigma_init"]), append_zero=True
    )
    cal = {}
    for m, net in nets.items():
        for machine in ("ls", "els"):
            sched, table = calibrate_patch_size(
                net, train, x_cal, cal_sig, ks=c["calib_ks"], machine=machine, device=dev
            )
            cal[(m, machine)] = sched
            ctx.metric(f"{m}.calibrated_k.{machine}", sched.as_dict())
    t0 = _phase(ctx, "calibrate", t0)
    # held-out noised images and the networks' own trajectories
    n_eval = min(int(c["n_eval"]), len(test))
    g = ctx.generator("heldout-noise")
    eps = torch.randn(len(sigmas), n_eval, *shape, generator=g)
    x0 = init_noise(ctx, int(c["n_samples"]), shape, c["sigma_init"]).to(dev)
    r2 = {"heldout": {}, "trajectory": {}}
    cosine = {"heldout": {}, "trajectory": {}}
    net_samples = {}
    for m, net in nets.items():
        fields = _analytic(c, train, dev, cal[(m, "ls")], cal[(m, "els")])
        traj = _heun(c, net, x0, snapshot_sigmas=sigmas)
        net_samples[m] = traj.x.detach().cpu().float()
        for kind in ("heldout", "trajectory"):
            for name, f in fields.items():
                vals = []
                for si, s in enumerate(sigmas):
                    if kind == "heldout":
                        x, level = (test[:n_eval] + s * eps[si]).to(dev), s
                    else:
                        x, level = traj.snapshots[s], traj.snapshot_grid_sigmas[s]
                    vals.append(_agreement(f, net, x, level))
                r2[kind][f"{m}/{name}"] = [v[0] for v in vals]
                cosine[kind][f"{m}/{name}"] = [v[1] for v in vals]
    ctx.metric("sigmas", sigmas)
    ctx.metric("r2", r2)
    ctx.metric("cosine", cosine)
    t0 = _phase(ctx, "agreement", t0)
    # sample every analytic score (LS / ELS with the conditioned network's calibration) from the same noise
    ref_net = "conditioned" if "conditioned" in nets else next(iter(nets))
    fields = _analytic(c, train, dev, cal[(ref_net, "ls")], cal[(ref_net, "els")])
    samples, reports = dict(net_samples), {}
    for name, f in fields.items():
        samples[name] = _heun(c, f, x0).detach().cpu().float()
    train_cpu = train.cpu()
    for name, x in samples.items():
        reports[name] = sample_report(x.clamp(-1, 1), train_cpu, test)
        for k, v in reports[name].items():
            ctx.metric(f"samples.{name}.{k}", v)
        if name in fields:
            for m in nets:
                ctx.metric(f"samples.{name}.pearson_vs_{m}", float(pearson_r(x, net_samples[m]).median()))
                ctx.metric(f"samples.{name}.r2_vs_{m}", float(r_squared(x, net_samples[m]).mean()))
    t0 = _phase(ctx, "sample", t0)
    _figures(ctx, sigmas, r2, cosine, cal, samples, train_cpu)
    _phase(ctx, "figures", t0)
    _claims(ctx, sigmas, r2, reports, cal, ref_net)
    _best_table(ctx, sigmas, {"r2": r2, "cosine": cosine}, nets)


def _best_table(ctx, sigmas, scores, nets):
    """Per network and sigma, the analytic denoiser with the highest r^2 and the highest score cosine (held-out and
    trajectory). Both are reported: at small sigma r^2 of denoiser outputs is dominated by their common ``x`` part,
    the score cosine is not (Kamb & Ganguli's choice for calibration)."""
    table = {}
    for metric, vals in scores.items():
        for kind in ("heldout", "trajectory"):
            for m in nets:
                rows = {k.split("/", 1)[1]: v for k, v in vals[kind].items() if k.startswith(m + "/")}
                best = []
                for si, s in enumerate(sigmas):
                    name = max(rows, key=lambda n: rows[n][si])
                    best.append((s, name, rows[name][si]))
                table[f"{metric}/{kind}/{m}"] = [{"sigma": s, "best": n, metric: v} for s, n, v in best]
                where = "held-out noised test images" if kind == "heldout" else "own Heun trajectory"
                ctx.finding(
                    f"best-{metric}-{kind}-{m}",
                    f"{m} ({where}): best analytic denoiser by {metric} per "
                    "sigma: " + "; ".join(f"sigma {s:g}: {n} ({v:.3f})" for s, n, v in best),
                    best,
                )
    ctx.metric("best_by_sigma", table)


def _curves(ctx, sigmas, vals, label, name, ylim):
    nets = sorted({k.split("/")[0] for k in vals["heldout"]}, key=list(NETWORKS).index)
    fig, axes = plt.subplots(2, len(nets), figsize=(4.2 * len(nets), 7), squeeze=False, sharey=True)
    for row, kind in enumerate(("heldout", "trajectory")):
        for col, m in enumerate(nets):
            ax = axes[row, col]
            for i, (k, v) in enumerate((k, v) for k, v in vals[kind].items() if k.startswith(m + "/")):
                ax.plot(sigmas, v, "o-", ms=3, color=f"C{i % 10}", label=k.split("/", 1)[1])
            ax.set(xscale="log", ylim=ylim, xlabel="sigma", title=f"{m}: {kind}")
            ax.axhline(1.0, color="k", lw=0.5, ls=":")
        axes[row, 0].set_ylabel(label)
    axes[0, -1].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    ctx.save_figure(
        fig,
        name,
        f"{label} per sigma, for each network (columns) and analytic denoiser (lines); top: "
        "held-out test digits noised at sigma, bottom: the network's own Heun trajectory.",
    )


def _figures(ctx, sigmas, r2, cosine, cal, samples, train):
    _curves(ctx, sigmas, r2, "r^2 (analytic vs network denoiser)", "r2_vs_sigma", (-0.5, 1.02))
    _curves(ctx, sigmas, cosine, "cosine of the scores (analytic vs network)", "cosine_vs_sigma", (0.0, 1.02))
    fig, ax = plt.subplots(figsize=(5, 3.4))
    for i, ((m, machine), sch) in enumerate(cal.items()):
        ax.plot(
            sch.sigmas,
            sch.ks,
            "o-" if machine == "els" else "x--",
            ms=3,
            color=f"C{i // 2}",
            label=f"{machine.upper()} / {m}",
        )
    ax.set(xscale="log", xlabel="sigma", ylabel="patch size k", title="calibrated patch size (median over seeds)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    ctx.save_figure(
        fig,
        "patch_size",
        "Patch size maximising the cosine similarity of LS / ELS and network scores "
        "along each network's Heun trajectory.",
    )
    ctx.save_figure(
        _sample_grid(samples, train),
        "samples",
        "Three samples of every network and analytic score "
        "(same initial noise), each beside its nearest training image (d = distance).",
    )


def _sample_grid(samples, train, n_show: int = 3):
    index = NeighborIndex(train)
    names = list(samples)
    fig, axes = plt.subplots(len(names), 2 * n_show, figsize=(1.1 * 2 * n_show, 1.2 * len(names)), squeeze=False)
    for r, name in enumerate(names):
        x = samples[name][:n_show].clamp(-1, 1)
        dist, idx = index.search(x, 1)
        for i in range(x.shape[0]):
            for j, (img, label) in enumerate(
                ((x[i], name if i == 0 else ""), (train[int(idx[i, 0])], f"d={float(dist[i, 0]):.2f}"))
            ):
                ax = axes[r, 2 * i + j]
                ax.imshow(((img[0] + 1) / 2).numpy(), cmap="gray", vmin=0, vmax=1)
                ax.set_title(label, fontsize=6)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig


def _claims(ctx, sigmas, r2, reports, cal, ref_net):
    small = [i for i, s in enumerate(sigmas) if s <= SMALL_SIGMA]

    def mean_at(key, idx, kind="heldout"):
        return sum(r2[kind][key][i] for i in idx) / max(len(idx), 1)

    if "conditioned" in {k.split("/")[0] for k in r2["heldout"]}:
        els, esf = mean_at("conditioned/ELS", small), mean_at("conditioned/ESF", small)
        ctx.claim(
            "els-explains-conditioned-better-than-esf",
            f"At small sigma (<= {SMALL_SIGMA}), held-out noised "
            "images: mean r^2 of the ELS minus that of the exact ESF against the conditioned network",
            els - esf,
            ">",
            0.0,
            details=f"ELS {els:.3f}, ESF {esf:.3f}",
        )
        w = r2["heldout"]["conditioned/Wiener"][-1]
        ctx.claim(
            "wiener-explains-conditioned-at-large-sigma",
            f"At the largest sigma ({sigmas[-1]:g}) the Wiener "
            f"filter explains the conditioned network (held-out r^2 >= {WIENER_R2_LARGE})",
            w,
            ">=",
            WIENER_R2_LARGE,
        )
    if "temperature_pixel" in {k.split("/")[0] for k in r2["heldout"]}:
        c = float(ctx.config["sigma_collapse"])
        band = [i for i, s in enumerate(sigmas) if s < c]
        t, e = mean_at("temperature_pixel/temp-ESF", band), mean_at("temperature_pixel/ESF", band)
        ctx.claim(
            "temperature-raises-temp-esf-r2",
            f"For the temperature-trained network, where T > 1 (sigma < "
            f"{c:g}), held-out r^2 of the temperature ESF minus that of the exact ESF",
            t - e,
            ">",
            0.0,
            details=f"temp-ESF {t:.3f}, ESF {e:.3f}",
        )
    mem = {k: v["memorized_fraction"] for k, v in reports.items()}
    ctx.claim(
        "els-samples-memorize-less-than-esf",
        "Samples of the ELS (calibrated to the conditioned network) "
        "memorize less than samples of the exact ESF (memorized fraction, ESF minus ELS)",
        mem["ESF"] - mem["ELS"],
        ">",
        0.0,
        details=f"ESF {mem['ESF']:.3f}, ELS {mem['ELS']:.3f}",
    )
    sch = cal[(ref_net, "els")]
    third = max(1, len(sch.ks) // 3)
    hi = sorted(sch.ks[:third])[(third - 1) // 2]  # schedule is in decreasing sigma
    lo = sorted(sch.ks[-third:])[(third - 1) // 2]
    ctx.claim(
        "els-patch-grows-with-sigma",
        f"The ELS patch size calibrated to the {ref_net} network is larger at "
        "large sigma than at small sigma (median k over the top third of levels minus the bottom third)",
        hi - lo,
        ">",
        0,
        details=f"k(sigma) = {dict(zip([round(s, 3) for s in sch.sigmas], sch.ks))}",
    )
