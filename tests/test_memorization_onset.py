"""Memorization onset during training (training.memorization_watch), train --watch-memorization and its resume,
the memorization-phase summaries (EMM boundary, tau_mem fit) and `audit --model`'s pieces."""

import json

import numpy as np
import pytest
import torch

from smoothscore.cli import main
from smoothscore.errors import ConfigError
from smoothscore.experiments.zoo.memorization_phase import emm, fit_line
from smoothscore.metrics.bootstrap import mean_interval
from smoothscore.training.memorization_watch import audit_point, onset_step


def _curve(fractions, n=64, seed=0):
    """Audit points whose per-sample indicators have exactly the given memorized fractions."""
    rng = np.random.default_rng(seed)
    out = []
    for step, f in fractions:
        ind = np.zeros(n)
        ind[: round(f * n)] = 1
        rng.shuffle(ind)
        out.append({"step": step, "fraction": float(ind.mean()), "ci": mean_interval(ind)})
    return out


def test_onset_of_a_synthetic_curve_with_a_known_onset():
    # 0 memorized until step 400, then 40% (64 samples: the 90% lower bound is ~0.3, well above 0.1)
    curve = _curve([(s, 0.0 if s < 500 else 0.4) for s in range(100, 1100, 100)])
    assert onset_step(curve, 0.1) == 500
    # one sample of 64 memorized (fraction 1/64 ~ 0.016) never clears 0.1; 3/64 = 0.047 neither
    assert onset_step(_curve([(100, 1 / 64), (200, 3 / 64)]), 0.1) is None
    # a point whose fraction is above the level but whose lower bound is not is not the onset (rule: lower bound):
    # 8 samples with 2 memorized: fraction 0.25, lower bound 0 ...
    noisy = _curve([(100, 0.25)], n=8) + _curve([(200, 0.5)], n=64)
    assert noisy[0]["fraction"] > 0.1 and noisy[0]["ci"][0] < 0.1
    assert onset_step(noisy, 0.1) == 200
    # order of the points does not matter; a higher level moves the onset later
    assert onset_step(list(reversed(curve)), 0.1) == 500
    assert onset_step(_curve([(1, 0.2), (2, 0.9)]), 0.5) == 2
    with pytest.raises(ConfigError):
        onset_step(curve, 0.0)


def test_audit_point_counts_copies_and_finds_their_sources():
    g = torch.Generator().manual_seed(0)
    train = torch.randn(10, 1, 4, 4, generator=g)
    copies = train[[3, 3, 7]] + 1e-3 * torch.randn(3, 1, 4, 4, generator=g)
    mids = 0.5 * (train[[0, 1]] + train[[5, 6]])  # midpoints of two training images: d1/d2 ~ 1
    bad = torch.full((1, 1, 4, 4), float("nan"))
    p = audit_point(torch.cat([copies, mids, bad]), train)
    assert p["fraction"] == pytest.approx(3 / 6)
    assert p["nn"][:3] == [3, 3, 7] and p["nn"][5] == -1 and p["diverged"] == 1
    assert all(r < 0.01 for r in p["ratio"][:3]) and all(r > 0.9 for r in p["ratio"][3:5])
    assert p["ci"][0] <= 0.5 <= p["ci"][1]


def test_emm_boundary_and_tau_fit():
    assert emm([2, 4, 8], [0.95, 0.6, 0.2], 0.5) == 4
    assert emm([2, 4, 8], [0.1, 0.0, float("nan")], 0.5) == 0
    f = fit_line([2, 4, 8, 16], [200, 400, 800, 1600])  # tau = 100 n exactly
    assert f["slope"] == pytest.approx(100) and f["ci"] == pytest.approx([100, 100], abs=1e-6)
    rng = np.random.default_rng(1)
    x = np.arange(2, 30, 2.0)
    noisy = fit_line(x, 50 * x + 10 + rng.normal(0, 20, x.size))
    assert noisy["ci"][0] < 50 < noisy["ci"][1] and noisy["ci"][1] - noisy["ci"][0] < 10
    assert np.isnan(fit_line([3], [1])["slope"])


def test_most_copied_groups_memorized_samples_by_source():
    from smoothscore.audit_model import most_copied

    nn = [4, 4, 1, 4, 2, 1, -1]
    ratio = [0.1, 0.2, 0.05, 0.9, 0.1, 0.3, 1.0]
    assert most_copied(nn, ratio, 1 / 3) == [(4, [0, 1]), (1, [2, 5]), (2, [4])]
    assert most_copied(nn, ratio, 1 / 3, top=1) == [(4, [0, 1])]


@pytest.fixture
def tiny_set(tmp_path):
    from smoothscore.data import load_digits

    path = tmp_path / "tiny.npy"
    np.save(path, load_digits(n=4, size=8, seed=0).x.numpy())
    return path


def _train(tiny_set, out, steps, *extra):
    return main(
        ["train", "--data", str(tiny_set), "--model", "mlp", "--width", "32", "--depth", "1", "--steps", str(steps),
         "--batch-size", "8", "--warmup", "0", "--out", str(out), "--quiet", "--watch-memorization", "2",
         "--watch-samples", "8", *extra]
    )  # fmt: skip


def test_train_watch_memorization_prints_plots_and_resume_keeps_the_curve(tiny_set, tmp_path, capsys):
    out = tmp_path / "run"
    assert _train(tiny_set, out, 4) == 0
    text = capsys.readouterr().out
    assert "step 2: memorized" in text and "step 4: memorized" in text and "memorization onset" in text
    first = json.loads((out / "memorization_curve.json").read_text())
    assert [p["step"] for p in first["curve"]] == [2, 4] and (out / "memorization_curve.png").stat().st_size > 1000
    assert _train(tiny_set, out, 8, "--resume") == 0
    curve = json.loads((out / "memorization_curve.json").read_text())["curve"]
    assert [p["step"] for p in curve] == [2, 4, 6, 8]
    assert curve[:2] == first["curve"]  # the points before the resume are kept as they were
    assert all(0 <= p["ci"][0] <= p["fraction"] <= p["ci"][1] <= 1 for p in curve)


def test_train_watch_bad_values_exit_2(tiny_set, tmp_path):
    assert _train(tiny_set, tmp_path / "a", 4, "--watch-samples", "0") == 2
    assert main(["audit", "--train", str(tiny_set), "--out", str(tmp_path / "b")]) == 2  # neither --samples nor --model
    nope = str(tmp_path / "nope")
    assert main(["audit", "--train", str(tiny_set), "--model", nope, "--out", str(tmp_path / "c")]) == 2


#: the micro config of memorization-phase for fast smoke tests (also used by test_precision's float64 sweep)
TINY = {"set_sizes": [2, 3], "steps": 4, "audit_every": 2, "n_samples": 4, "sampler_steps": 2, "width": 8, "depth": 1}


def test_memorization_phase_micro_config_runs_and_records_every_piece(tmp_path):
    from smoothscore.runner import run_experiment

    r = run_experiment("memorization-phase", "quick", tmp_path, progress=False, device="cpu", overrides=TINY)
    assert r["status"] == "ok", r["error"]
    m = r["metrics"]
    assert m["audit_steps"] == [2, 4] and m["set_sizes"] == [2, 3]
    for meth in ("conditioned", "unconditioned", "temperature"):
        assert np.array(m[f"{meth}.fraction"], dtype=float).shape == (2, 2)
    names = {f["path"] for f in r["figures"]}  # a neighbour figure is left out when every sample diverged
    assert (
        len(r["claims"]) == 8 and {"phase_diagram.png", "onset_conditioned.png", "nn_boundary_conditioned.png"} <= names
    )


def test_audit_model_of_a_diffusers_pipeline_writes_the_page(tmp_path):
    diffusers = pytest.importorskip("diffusers")  # the `test` extra installs it
    from test_diffusers import tiny_unet

    sched = diffusers.DDPMScheduler(num_train_timesteps=200, prediction_type="epsilon")
    diffusers.DDPMPipeline(unet=tiny_unet(8), scheduler=sched).save_pretrained(tmp_path / "pipe")
    np.save(tmp_path / "train.npy", np.random.default_rng(0).uniform(-1, 1, (10, 1, 8, 8)).astype(np.float32))
    out = tmp_path / "audit"
    argv = ["audit", "--model", f"diffusers:{tmp_path / 'pipe'}", "--train", str(tmp_path / "train.npy"), "--n", "6"]
    assert main([*argv, "--steps", "4", "--device", "cpu", "--out", str(out)]) == 0
    res = json.loads((out / "audit.json").read_text())
    assert res["n_samples"] == 6 and res["n_train"] == 10 and res["sampler"] == "heun"
    page = (out / "audit.html").read_text()
    assert "memorized" in page and page.count("data:image/png;base64,") == 2
