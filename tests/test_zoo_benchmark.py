"""zoo-benchmark (GoldDiff's protocol): metric definitions against GoldDiff's formulas, a tiny smoke run, and (slow)
the quick preset with every claim decided."""

import json

import pytest
import torch

from smoothscore.experiments.base import load_all
from smoothscore.experiments.zoo.benchmark import DENOISERS, golddiff_mse, golddiff_r2, protocol, to_unit
from smoothscore.runner import run_experiment
from smoothscore.scores import FunctionScore

TINY = {"n_train": 60, "steps": 2, "batch_size": 8, "base": 8, "n_noise": 4, "ddim_steps": 3, "seeds": 1}


def test_golddiff_r2_and_mse_by_hand():
    ref = torch.tensor([[0.0, 1.0, 2.0, 3.0], [1.0, 1.0, 1.0, 1.0]])
    x = torch.tensor([[0.0, 1.0, 2.0, 4.0], [1.0, 2.0, 1.0, 1.0]])
    # image 0: var (unbiased) of ref = 5/3, SS_res = 1, D = 4 -> 1 - 1 / (20/3) = 0.85
    # image 1: var = 0 -> replaced by 1, SS_res = 1 -> 1 - 1/4 = 0.75
    assert golddiff_r2(x, ref) == pytest.approx((0.85 + 0.75) / 2, abs=1e-12)
    assert golddiff_mse(x, ref) == pytest.approx((0.25 + 0.25) / 2, abs=1e-12)
    assert golddiff_r2(ref, ref) == 1.0
    assert torch.equal(to_unit(torch.tensor([-3.0, -1.0, 0.0, 1.0, 2.0])), torch.tensor([0.0, 0.0, 0.5, 1.0, 1.0]))


def test_protocol_of_a_constant_denoiser_is_that_constant():
    """A denoiser that always returns c: DDIM's clipped x0 at the last step is c, whatever the noise."""
    field = FunctionScore(lambda x, s: torch.full_like(x, 0.5), kind="denoiser", device="cpu")
    img, t = protocol(field, torch.randn(3, 1, 4, 4, generator=torch.Generator().manual_seed(0)), 10)
    assert torch.allclose(img, torch.full_like(img, 0.75)) and t >= 0


def test_registered_as_training_experiment():
    spec = load_all().get("zoo-benchmark")
    assert spec.groups == ("zoo",) and spec.trains is True
    assert spec.n_seeds("paper") >= 3 and spec.presets["quick"]["n_noise"] == spec.presets["paper"]["n_noise"] == 128
    assert spec.presets["quick"]["ddim_steps"] == 10


def _check(out):
    r = json.loads((out / "zoo-benchmark" / "results.json").read_text())
    assert r["status"] == "ok", r.get("error")
    table = r["metrics"]["table"]
    assert set(table) == {"UNet", *DENOISERS}
    for name, row in table.items():
        assert row["seconds_per_step"] > 0 and row["mse"] >= 0 and row["r2"] <= 1.0, name
    assert table["optimal-truncated"]["max_abs_vs_optimal"] < 1e-2  # certified tolerance 1e-4 per call
    assert {c["id"] for c in r["claims"]} == {
        "pca-locality-explains-unet-better-than-optimal",
        "golden-subset-faster-than-pca-locality",
        "golden-subset-keeps-r2",
    }
    for fig in ("protocol.png", "samples.png"):
        assert (out / "zoo-benchmark" / fig).stat().st_size > 1000
    return r


def test_zoo_benchmark_smoke(tmp_path):
    run_experiment("zoo-benchmark", "quick", tmp_path, progress=False, overrides=TINY)
    _check(tmp_path)


@pytest.mark.slow
def test_zoo_benchmark_quick_preset(tmp_path):
    run_experiment("zoo-benchmark", "quick", tmp_path, progress=False, overrides={"seeds": 1})
    r = _check(tmp_path)
    assert all(c["passed"] is not None for c in r["claims"])


def test_denoiser_subset_and_random_data(tmp_path):
    over = dict(TINY, data="random", image_size=8, n_train=30, denoisers=["optimal", "Wiener"])
    run_experiment("zoo-benchmark", "quick", tmp_path, progress=False, overrides=over)
    r = json.loads((tmp_path / "zoo-benchmark" / "results.json").read_text())
    assert r["status"] == "ok", r.get("error")
    assert set(r["metrics"]["table"]) == {"UNet", "optimal", "Wiener"} and r["claims"] == []
    assert r["metrics"]["dimension"] == 192
