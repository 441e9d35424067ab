"""`smoothscore sample` on barely trained unconditioned nets returns finite samples with the default sampler
(issue 17: a 30-step MLP gave 8 of 8 non-finite samples with sigma*, the step alpha sigma*^2 s growing like |x|^3)."""

import json

import numpy as np
import pytest

from smoothscore.cli import main


@pytest.mark.parametrize("steps,param", [(1, "sigma_scaled"), (30, "sigma_scaled"), (30, "score")])
def test_barely_trained_unconditioned_mlp_samples_finite(tmp_path, capsys, steps, param):
    out = tmp_path / "m"
    train = ["train", "--model", "mlp", "--conditioning", "none", "--param", param, "--steps", str(steps)]
    assert main([*train, "--data", "digits", "--n-train", "300", "--out", str(out), "--quiet"]) == 0
    assert json.loads((out / "run.json").read_text())["param"] == param  # sample needs no flag
    assert main(["sample", "--model", str(out), "--n", "8", "--quiet"]) == 0
    xs = np.load(out / "samples" / "samples.npz")["samples"]
    assert xs.shape == (8, 1, 8, 8) and np.isfinite(xs).all()
    assert json.loads((out / "samples" / "audit.json").read_text())["diverged"] == 0
