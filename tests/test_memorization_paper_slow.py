"""The paper preset of ``memorization-phase`` end to end on a CPU: CIFAR-10 settings (32x32 RGB image folder, UNet,
sigma_max 50, EMM level 0.9, the authors' ``F(x)/sigma`` for the unconditioned network) on a generated image folder,
with budget overrides only (two set sizes, six steps audited every three, four samples, ``base=8``), so the paper
path runs: folder loading, UNet training of the three methods with the watch, the phase diagram, claims, figures."""

import json

import pytest
from test_paper_presets_slow import _image_folder

from smoothscore.cli import main

pytestmark = pytest.mark.slow

BUDGET = [
    "set_sizes=[4,8]",
    "steps=6",
    "audit_every=3",
    "n_samples=4",
    "sampler_steps=4",
    "base=8",
    "batch_size=4",
    "k=2",
]


def test_memorization_phase_paper_preset_on_an_image_folder(tmp_path):
    data = _image_folder(tmp_path / "images", 32)
    out = tmp_path / "out"
    argv = ["reproduce", "memorization-phase", "--preset", "paper", "--data", f"folder:{data / 'train'}"]
    argv += ["--out", str(out), "--device", "cpu", "--quiet", "--seeds", "0"]
    for b in BUDGET:
        argv += ["--set", b]
    assert main(argv) == 0
    res = json.loads((out / "memorization-phase" / "results.json").read_text())
    assert res["status"] == "ok", res.get("error")
    c = res["config"]
    assert c["model"] == "unet" and c["image_size"] == 32 and c["sigma_max"] == 50.0 and c["emm_level"] == 0.9
    assert c["uncond_param"] == "sigma_scaled"
    m = res["metrics"]
    assert m["dimension"] == 3 * 32 * 32 and m["set_sizes"] == [4, 8] and m["audit_steps"] == [3, 6]
    for meth in ("conditioned", "unconditioned", "temperature"):
        frac = m[f"{meth}.fraction"]
        assert len(frac) == 2 and all(len(row) == 2 for row in frac)  # (set size x audited step)
        assert all(0.0 <= v <= 1.0 for row in frac for v in row)
    assert res["claims"] and all(cl["verdict"] in ("pass", "fail", "inconclusive") for cl in res["claims"])
    for fig in ("phase_diagram.png", "onset_conditioned.png", "nn_boundary_unconditioned.png"):
        assert (out / "memorization-phase" / fig).exists() or (out / "memorization-phase" / "seed-0" / fig).exists()
