"""zoo-explains-network: a tiny smoke run (wiring, metrics, claims, the best-by-sigma table, figures) and (slow)
the quick preset end to end with every claim decided."""

import json

import pytest

from smoothscore.experiments.base import load_all
from smoothscore.runner import run_experiment

TINY = {
    "steps": 2,
    "base": 8,
    "batch_size": 4,
    "sigmas": [0.1, 1.0],
    "n_eval": 3,
    "n_samples": 3,
    "cond_steps": 3,
    "calib_seeds": 1,
    "calib_n": 2,
    "calib_steps": 2,
    "calib_ks": [3, 5],
    "closed_form_draws": 2,
}
FIELDS = {
    "ESF",
    "temp-ESF",
    "uncond-ESF",
    "temp-uncond-ESF",
    "sigma-scaled-ESF",
    "LS",
    "ELS",
    "KNN",
    "closed-form",
    "Wiener",
}
NETS = ("conditioned", "unconditioned", "temperature_pixel")


def _check(out, sigmas):
    r = json.loads((out / "zoo-explains-network" / "results.json").read_text())
    assert r["status"] == "ok", r.get("error")
    m = r["metrics"]
    for kind in ("heldout", "trajectory"):
        assert set(m["r2"][kind]) == {f"{n}/{f}" for n in NETS for f in FIELDS}
        for v in list(m["r2"][kind].values()) + list(m["cosine"][kind].values()):
            assert len(v) == len(sigmas) and all(x == x for x in v)  # measured, finite
        for n in NETS:
            for metric in ("r2", "cosine"):
                best = m["best_by_sigma"][f"{metric}/{kind}/{n}"]
                assert [b["sigma"] for b in best] == sigmas and all(b["best"] in FIELDS for b in best)
                assert all(b[metric] == max(m[metric][kind][f"{n}/{f}"][i] for f in FIELDS) for i, b in enumerate(best))
    for f in FIELDS:
        assert 0.0 <= m[f"samples.{f}.memorized_fraction"] <= 1.0
        assert -1.0 <= m[f"samples.{f}.pearson_vs_conditioned"] <= 1.0
    assert {c["id"] for c in r["claims"]} == {
        "els-explains-conditioned-better-than-esf",
        "wiener-explains-conditioned-at-large-sigma",
        "temperature-raises-temp-esf-r2",
        "els-samples-memorize-less-than-esf",
        "els-patch-grows-with-sigma",
    }
    for fig in ("r2_vs_sigma.png", "cosine_vs_sigma.png", "patch_size.png", "samples.png"):
        assert (out / "zoo-explains-network" / fig).stat().st_size > 1000
    return r


def test_registered_as_training_experiment():
    spec = load_all().get("zoo-explains-network")
    assert spec.groups == ("zoo",) and spec.trains is True and {"quick", "paper"} <= set(spec.presets)


def test_zoo_smoke(tmp_path):
    run_experiment("zoo-explains-network", "quick", tmp_path, progress=False, overrides=TINY)
    _check(tmp_path, TINY["sigmas"])


@pytest.mark.slow
def test_zoo_quick_preset(tmp_path):
    run_experiment("zoo-explains-network", "quick", tmp_path, progress=False)
    r = _check(tmp_path, load_all().get("zoo-explains-network").presets["quick"]["sigmas"])
    assert all(c["passed"] is not None for c in r["claims"])
