"""The checkpoint records the noise levels the net was trained on and its parameterisation; the loaded model and
field expose them, and ``sample`` reads them from there (run.json only for checkpoints that predate the record)."""

import json
from pathlib import Path

import pytest
import torch

from smoothscore.cli_sample import trained_sigma_range
from smoothscore.errors import CheckpointError
from smoothscore.nets import build_model
from smoothscore.nets.checkpoint import SIDECAR, load_checkpoint, load_score_model
from smoothscore.scores.neural import NeuralScore
from smoothscore.training import ConditionedDSM, TrainConfig, TWeightedDSM, train

OLD = Path(__file__).parent / "data" / "checkpoints_v1" / "mlp_sigma_score"


def test_sigma_range_and_param_are_stored_and_exposed(tmp_path):
    m = build_model("mlp", (2,), conditioning="none", width=8)
    res = train(
        m,
        ConditionedDSM(0.05, 7.0, None),
        torch.randn(16, 2),
        TrainConfig(steps=2, batch_size=4),
        out_dir=tmp_path,
        progress=False,
    )
    assert res.model.sigma_range == (0.05, 7.0) and res.ema.sigma_range == (0.05, 7.0)
    _, meta = load_checkpoint(tmp_path)
    assert meta["sigma_range"] == [0.05, 7.0] and meta["model_config"]["param"] == "sigma_scaled"
    sidecar = json.loads((tmp_path / SIDECAR).read_text())  # plain JSON: read without executing anything
    assert sidecar["sigma_range"] == [0.05, 7.0]
    loaded = load_score_model(tmp_path)
    assert loaded.sigma_range == (0.05, 7.0) and loaded.param == "sigma_scaled"
    f = NeuralScore.from_checkpoint(tmp_path, device="cpu")
    assert (f.sigma_min, f.sigma_max, f.param) == (0.05, 7.0, "sigma_scaled")
    assert trained_sigma_range(f, {"sigma_min": 1.0, "sigma_max": 2.0}) == (0.05, 7.0)


def test_t_weighted_range_is_in_sigma_units(tmp_path):
    m = build_model("mlp", (2,), width=8)
    train(
        m,
        TWeightedDSM(t_min=0.01, t_max=4.0),
        torch.randn(8, 2),
        TrainConfig(steps=1, batch_size=4),
        out_dir=tmp_path,
        progress=False,
    )
    assert load_score_model(tmp_path).sigma_range == (0.1, 2.0)


def test_old_checkpoints_fall_back_to_run_json():
    f = NeuralScore.from_checkpoint(OLD, device="cpu")
    assert f.sigma_min is None
    assert trained_sigma_range(f, {"sigma_min": 0.02, "sigma_max": 20.0}) == (0.02, 20.0)


def test_a_bad_sigma_range_is_refused(tmp_path):
    m = build_model("mlp", (2,), width=8)
    train(
        m,
        ConditionedDSM(0.1, 1.0, None),
        torch.randn(8, 2),
        TrainConfig(steps=1, batch_size=4),
        out_dir=tmp_path,
        progress=False,
    )
    for bad in ([2.0, 1.0], ["a", 1.0], 3):
        meta = json.loads((tmp_path / SIDECAR).read_text())
        meta["sigma_range"] = bad
        (tmp_path / SIDECAR).write_text(json.dumps(meta))
        with pytest.raises(CheckpointError, match="sigma_range"):
            load_score_model(tmp_path)
