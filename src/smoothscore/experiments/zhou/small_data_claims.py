"""Claims of ``zhou-small-data`` (Paper B, Table 1 and the Cat-Caracal study, Sec. 5): the memorization ordering
conditioned > unconditioned > temperature-smoothed and the feature-space quality bound, each with a paired
bootstrap interval over samples (every model starts from the same initial noises)."""

from __future__ import annotations

from ...metrics import frechet_distance, nn_ratio
from ...metrics.bootstrap import bootstrap_interval, frechet_interval, mean_interval
from .sampling import sample_intervals

#: claims' fixed threshold: a model's FD vs the held-out test set may be at most this multiple of the conditioned
#: model's (FD vs *train* rewards copying: a memorizing model scores ~0 there, so it is reported, not claimed)
QUALITY_BOUND = 2.0


def sample_intervals_and_pieces(scorer, samples, train, test):
    """Bootstrap intervals over samples (``metrics.bootstrap``) of one model's memorized fraction, median distances
    and Frechet distances; also the per-sample pieces the paired intervals of the claims need."""
    iv = sample_intervals(samples, train, test)
    feats = scorer.model.features(samples)
    iv["fd_train"] = frechet_interval(feats, scorer.train_feats)
    if scorer.test_feats is not None:
        iv["fd_test"] = frechet_interval(feats, scorer.test_feats)
    return iv, {"memorized": (nn_ratio(samples, train) < 1 / 3).double(), "feats": feats}


def _paired_ci(per, a, b, key):
    """90% paired bootstrap interval (the same resampled sample indices: every model starts from the same initial
    noises) of ``mean(a) - mean(b)`` (``key="memorized"``) or of ``FD_test(a) / FD_test(b)`` (``key="fd_test"``)."""
    if a not in per or b not in per or (key == "fd_test" and per.get("_test_feats") is None):
        return None
    if key == "memorized":
        return mean_interval(per[a]["memorized"] - per[b]["memorized"])
    fa, fb, ref = per[a]["feats"], per[b]["feats"], per["_test_feats"]
    return bootstrap_interval(
        lambda i: frechet_distance(fa[i], ref) / max(frechet_distance(fb[i], ref), 1e-12), fa.shape[0], n_boot=200
    )


def claims(ctx, rows, per):
    """The memorization ordering (Paper B, Table 1 / Cat-Caracal: conditioned > unconditioned > temperature) and
    the quality bound; each claim carries a paired bootstrap interval over samples."""
    mem = {m: r["memorized_fraction"] for m, r in rows.items()}
    if "conditioned" in rows and "unconditioned" in rows:
        ctx.claim(
            "unconditioned-memorizes-less",
            "Noise unconditioning memorizes less than the conditioned model "
            "(memorized fraction, conditioned minus unconditioned)",
            mem["conditioned"] - mem["unconditioned"],
            ">",
            0.0,
            details=f"conditioned {mem['conditioned']:.3f}, unconditioned {mem['unconditioned']:.3f}",
            ci=_paired_ci(per, "conditioned", "unconditioned", "memorized"),
        )
    for m in ("temperature_pixel", "temperature_feature"):
        for base in ("conditioned", "unconditioned"):
            if m in rows and base in rows:
                tag = "" if base == "unconditioned" else "-than-conditioned"
                ctx.claim(
                    f"{m.replace('_', '-')}-memorizes-less{tag}",
                    f"Temperature smoothing ({m.split('_')[1]} KNN) memorizes less than the {base} model "
                    f"(memorized fraction, {base} minus temperature)",
                    mem[base] - mem[m],
                    ">",
                    0.0,
                    details=f"{base} {mem[base]:.3f}, {m} {mem[m]:.3f}",
                    ci=_paired_ci(per, base, m, "memorized"),
                )
    if "conditioned" not in rows:
        return
    ref = max(rows["conditioned"]["fd_test"], 1e-12)
    for m in ("unconditioned", "temperature_feature", "temperature_pixel"):
        if m in rows:
            ctx.claim(
                f"{m.replace('_', '-')}-quality",
                f"{m}: Frechet distance to the held-out test set (classifier "
                f"features) within {QUALITY_BOUND}x of the conditioned model's",
                rows[m]["fd_test"] / ref,
                "<=",
                QUALITY_BOUND,
                ci=_paired_ci(per, m, "conditioned", "fd_test"),
                details=f"FD_test {rows[m]['fd_test']:.3g} vs conditioned {ref:.3g}; FD_train "
                f"{rows[m]['fd_train']:.3g} vs {rows['conditioned']['fd_train']:.3g}",
            )
