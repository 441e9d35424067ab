"""Smoke tests of the Paper B practitioner experiments (zhou-small-data, zhou-cost) with tiny overrides, their error
paths, and (slow) the full quick preset of zhou-small-data with every claim decided."""

import json

import pytest
import torch

from smoothscore.errors import ConfigError, DataError
from smoothscore.experiments.zhou.data import load_small_data
from smoothscore.experiments.zhou.presets import paper_preset
from smoothscore.runner import run_experiment

TINY = {
    "n_majority": 16,
    "n_rare": 6,
    "n_test_per_class": 6,
    "image_size": 16,
    "model": "mlp",
    "width": 32,
    "depth": 1,
    "steps": 3,
    "batch_size": 8,
    "k": 3,
    "classifier_steps": 2,
    "n_samples": 8,
    "cond_steps": 3,
    "sigma_star_steps": 3,
    "pc_steps": 3,
    "n_test": 12,
    "compare_n": 4,
    "expansiveness_sigmas": [0.3],
    "expansiveness_queries": 2,
}


def _results(tmp_path, name):
    return json.loads((tmp_path / name / "results.json").read_text())


def test_small_data_split_is_imbalanced_and_disjoint():
    train, test = load_small_data(
        dict(
            paper_preset("cifar10"),
            data="digits",
            majority=3,
            rare=8,
            n_majority=20,
            n_rare=5,
            n_test_per_class=4,
            image_size=16,
        )
    )
    assert train.x.shape == (25, 1, 16, 16) and test.x.shape == (8, 1, 16, 16)
    assert int((train.labels == 3).sum()) == 20 and int((train.labels == 8).sum()) == 5
    # no test image is a training image
    assert torch.cdist(test.x.flatten(1), train.x.flatten(1)).min() > 0


def test_zhou_small_data_smoke(tmp_path):
    run_experiment("zhou-small-data", "quick", tmp_path, progress=False, overrides=TINY)
    r = _results(tmp_path, "zhou-small-data")
    m = r["metrics"]
    assert m["dimension"] == 256 and m["n_train"] == 22
    assert m["n_test"] == 12  # test set in the training set's class proportions (16:6 -> 9 + 3)
    for meth in ("conditioned", "unconditioned", "temperature_pixel", "temperature_feature"):
        assert (
            0.0 <= m[f"{meth}.memorized_fraction"] <= 1.0
            or m[f"{meth}.memorized_fraction"] != m[f"{meth}.memorized_fraction"]
        )
        assert f"{meth}.fd_train" in m and f"{meth}.precision" in m
    ids = {c["id"] for c in r["claims"]}
    assert {
        "unconditioned-memorizes-less",
        "temperature-pixel-memorizes-less",
        "temperature-feature-memorizes-less",
        "temperature-feature-quality",
        "trained-uncond-ode-overshoots",
        "trained-uncond-pc-near-data",
        "nets-less-expansive-than-esf",
        "temperature-nets-less-expansive",
    } <= ids
    assert set(m["expansiveness"]) == {
        "ESF",
        "conditioned",
        "unconditioned",
        "temperature_pixel",
        "temperature_feature",
    }
    for kind in ("sigma_star", "heun", "em", "pc_snr0.16"):
        assert f"unconditioned.sampler.{kind}.nn_train_median" in m
    assert all("value" in c for c in r["claims"])
    assert (tmp_path / "zhou-small-data" / "summary.png").exists()


def test_zhou_small_data_folder_override(tmp_path):
    from PIL import Image

    g = torch.Generator().manual_seed(0)
    for cls in ("a", "b"):
        (tmp_path / "imgs" / cls).mkdir(parents=True)
        for i in range(12):
            arr = (torch.rand(16, 16, generator=g) * 255).to(torch.uint8).numpy()
            Image.fromarray(arr, mode="L").save(tmp_path / "imgs" / cls / f"{i}.png")
    over = dict(TINY, data=f"folder:{tmp_path / 'imgs'}", methods=["conditioned", "unconditioned"])
    run_experiment("zhou-small-data", "quick", tmp_path / "out", progress=False, overrides=over)
    r = _results(tmp_path / "out", "zhou-small-data")
    assert r["metrics"]["n_train"] + r["metrics"]["n_test"] == 24
    assert any(c["id"] == "unconditioned-memorizes-less" for c in r["claims"])


@pytest.mark.parametrize("preset", ["paper", "paper-celeba64"])
def test_paper_presets_need_the_folder(tmp_path, preset):
    with pytest.raises(DataError, match="not found"):
        run_experiment(
            "zhou-small-data", preset, tmp_path, progress=False, overrides={"data": f"folder:{tmp_path / 'absent'}"}
        )


def test_bad_config_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError):
        run_experiment("zhou-small-data", "quick", tmp_path, progress=False, overrides=dict(TINY, methods=["bogus"]))
    with pytest.raises(ConfigError):
        run_experiment("zhou-small-data", "quick", tmp_path, progress=False, overrides=dict(TINY, rare=3))


def test_zhou_cost_smoke(tmp_path):
    over = {
        "n_train": 40,
        "model": "mlp",
        "width": 32,
        "depth": 1,
        "batch_size": 8,
        "k": 4,
        "steps": 1,
        "warmup": 0,
        "repeats": 1,
    }
    run_experiment("zhou-cost", "quick", tmp_path, progress=False, overrides=over)
    r = _results(tmp_path, "zhou-cost")
    m = r["metrics"]
    for meth in ("conditioned", "unconditioned", "temperature_pixel", "temperature_feature"):
        assert m[f"{meth}.seconds_per_step"] > 0 and m[f"{meth}.peak_bytes"] > 0
    assert m["conditioned.time_ratio"] == pytest.approx(1.0)
    claims = {c["id"]: c for c in r["claims"]}
    assert set(claims) == {"temperature-pixel-cost", "temperature-feature-cost"}
    assert all(c["value"] is not None for c in claims.values())


@pytest.mark.slow
def test_zhou_small_data_quick_preset_decides_every_claim(tmp_path):
    run_experiment("zhou-small-data", "quick", tmp_path, progress=False)
    r = _results(tmp_path, "zhou-small-data")
    assert len(r["claims"]) == 12
    assert all(c["passed"] is not None for c in r["claims"]), r["claims"]
    # the preset is sized so that the conditioned network does memorize (else "memorizes less" means nothing)
    assert r["metrics"]["conditioned.memorized_fraction"] >= 0.2
