"""Smoke tests of chen-fig2, chen-fig3, chen-fig4, chen-prop1 with tiny configs: results.json, figures, claims."""

import json
import math

import pytest

from smoothscore.runner import run_experiment


def _run(name, tmp_path, overrides):
    res = run_experiment(name, "quick", tmp_path, progress=False, overrides=overrides)
    assert res["status"] == "ok", res["error"]
    on_disk = json.loads((tmp_path / name / "results.json").read_text())
    assert on_disk["claims"] and all(c["value"] is not None for c in on_disk["claims"])
    for f in on_disk["figures"]:
        assert (tmp_path / name / f["path"]).stat().st_size > 5000
    return {c["id"]: c for c in on_disk["claims"]}, on_disk


def test_chen_prop1_smoke(tmp_path):
    claims, res = _run("chen-prop1", tmp_path, {"eps_grid": [0.01], "n_per_point": 151, "t_curves": [1e-3]})
    assert set(claims) == {"lt_matches_R4", "spl_loss_below_eps", "prop1_ratio"}
    assert all(c["passed"] for c in claims.values())
    assert res["metrics"]["L_t[kappa=0.5]"] == pytest.approx(0.212, rel=0.02)


def test_chen_fig3_smoke(tmp_path):
    claims, res = _run(
        "chen-fig3", tmp_path, {"n_samples": 20000, "n_steps": 40, "stride": 10, "n_lines": 7, "n_top": 3}
    )
    assert claims["trajectory_error"]["value"] <= 1e-10  # Heun is exact for this flow (linear in sigma)
    assert claims["interpolating_mass"]["passed"] and claims["continuous_part_ks"]["passed"]
    assert res["metrics"]["interpolating_share_simulated"] == pytest.approx(
        res["metrics"]["interpolating_mass_closed_form"], abs=0.02
    )


def test_chen_fig2_smoke(tmp_path):
    claims, res = _run("chen-fig2", tmp_path, {"lambdas": [1e-6, 3e-5], "steps": 300, "batch": 256, "width": 64})
    assert set(claims) == {"delta_decreases", "misfit"}
    row = res["metrics"]["lambda=1e-06"]
    assert 0 < row["delta"] <= 1 and row["misfit"] >= 0 and math.isfinite(row["L_t"])


def test_chen_fig2_rejects_unsorted_lambdas(tmp_path):
    from smoothscore.errors import ConfigError

    with pytest.raises(ConfigError):
        run_experiment("chen-fig2", "quick", tmp_path, progress=False, overrides={"lambdas": [1e-5, 1e-6]})


def test_chen_fig4_smoke(tmp_path):
    net = {
        "depth": 2,
        "width": 32,
        "batch": 128,
        "lr": 1e-3,
        "param": "sigma_score",
        "sigma_min": math.sqrt(1e-5),
        "sigma_max": 1.0,
        "weight_decay": 0.0,
        "steps": 30,
    }
    claims, res = _run(
        "chen-fig4", tmp_path, {"n_samples": 400, "n_steps": 40, "n_frames": 4, "n_gif": 100, "net": net}
    )
    assert set(claims) == {"esf_memorizes", "nn_interpolates", "nn_subspace", "spl_matches_theory"}
    assert claims["esf_memorizes"]["passed"]
    assert claims["spl_matches_theory"]["value"] < 0.08  # 400 samples: ~3.5 standard errors
    assert (tmp_path / "chen-fig4" / "denoising.gif").read_bytes()[:3] == b"GIF"
    assert any(f["path"] == "denoising.gif" for f in res["figures"])


def test_intra_op_threads_restores_setting():
    import torch

    from smoothscore.device import intra_op_threads

    before = torch.get_num_threads()
    with pytest.raises(RuntimeError):
        with intra_op_threads(1):
            assert torch.get_num_threads() == 1
            raise RuntimeError("inside")
    assert torch.get_num_threads() == before


def test_registered_paper_a_experiments_run_on_one_thread():
    from smoothscore.experiments.base import load_all

    reg = load_all()
    assert all(spec.threads == 1 for name, spec in reg.items() if name.startswith("chen-"))
