"""Slow: the memorization-phase experiment at a tiny config over two seeds, and `audit --model` on a tiny trained
model, its page rendered by a real headless browser (chromium; `.ci/run` installs it when missing)."""

import json
import shutil
import subprocess

import numpy as np
import pytest

from smoothscore.cli import main
from smoothscore.runner import run_many
from smoothscore.verdict import VERDICTS

TINY = {
    "set_sizes": [2, 3, 4],
    "steps": 200,
    "audit_every": 100,
    "n_samples": 16,
    "sampler_steps": 16,
    "width": 32,
    "depth": 1,
}


@pytest.mark.slow
def test_memorization_phase_tiny_config_decides_its_claims(tmp_path):
    run_many(["memorization-phase"], "quick", tmp_path, seeds=[0, 1], progress=False, overrides=TINY, device="cpu")
    r = json.loads((tmp_path / "memorization-phase" / "results.json").read_text())
    ids = {c["id"] for c in r["claims"]}
    methods = ("conditioned", "unconditioned", "temperature")
    assert ids == {f"tau-mem-grows-{m}" for m in methods} | {f"tau-mem-linear-{m}" for m in methods} | {
        "unconditioned-shrinks-memorized-region",
        "temperature-shrinks-memorized-region",
    }
    for c in r["claims"]:
        assert c["verdict"] in VERDICTS and len(c["values"]) == 2, c
    seed0 = json.loads((tmp_path / "memorization-phase" / "seed-0" / "results.json").read_text())
    m = seed0["metrics"]
    for meth in methods:
        grid = np.array(m[f"{meth}.fraction"], dtype=float)
        assert grid.shape == (3, 2) and ((grid >= 0) & (grid <= 1)).all()
        assert len(m[f"{meth}.emm"]) == 2 and all(e in (0, 2, 3, 4) for e in m[f"{meth}.emm"])
        lo, hi = zip(*m[f"{meth}.emm_ci"])
        assert all(a <= e <= b for a, e, b in zip(lo, m[f"{meth}.emm"], hi))
    for f in ("phase_diagram.png", "onset_conditioned.png", "nn_boundary_conditioned.png"):
        assert (tmp_path / "memorization-phase" / "seed-0" / f).stat().st_size > 2000


def _browser() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    pytest.fail("no headless browser found: install chromium (Debian: apt-get install -y chromium; .ci/run does it)")


@pytest.mark.slow
def test_audit_model_page_renders_in_a_headless_browser(tmp_path):
    from PIL import Image

    from smoothscore.data import load_digits

    data = tmp_path / "train.npy"
    np.save(data, load_digits(n=3, size=8, seed=0).x.numpy())
    run = tmp_path / "run"
    assert main(["train", "--data", str(data), "--model", "mlp", "--width", "64", "--depth", "2", "--steps", "150",
                 "--batch-size", "16", "--out", str(run), "--quiet"]) == 0  # fmt: skip
    out = tmp_path / "audit"
    assert main(["audit", "--model", str(run), "--train", str(data), "--n", "24", "--out", str(out)]) == 0
    res = json.loads((out / "audit.json").read_text())
    assert 0 <= res["ci"][0] <= res["memorized_fraction"] <= res["ci"][1] <= 1 and res["n_train"] == 3
    shot = tmp_path / "shot.png"
    cmd = [_browser(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1000,1300",
           f"--screenshot={shot}", (out / "audit.html").resolve().as_uri()]  # fmt: skip
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)
    img = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    assert img.shape[:2] == (1300, 1000)
    # the headline in the page's red (#b22) and the histogram's bars (matplotlib C0 #1f77b4) were drawn
    red = (abs(img[..., 0] - 0xBB) < 40) & (img[..., 1] < 80) & (img[..., 2] < 80)
    blue = (abs(img[..., 0] - 0x1F) < 30) & (abs(img[..., 1] - 0x77) < 30) & (abs(img[..., 2] - 0xB4) < 30)
    assert red[:200].sum() > 200, "the memorized fraction headline is not rendered"
    assert blue.sum() > 200, "the d1/d2 histogram is not rendered"
