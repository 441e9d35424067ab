"""NeuralScore: a trained model (or checkpoint) as a score field that samplers and metrics take; unconditioned models
ignore sigma; checkpoints of another architecture, truncated or non-safetensors files raise CheckpointError."""

import json

import pytest
import torch

import smoothscore as ss
from smoothscore.errors import CheckpointError, ShapeError, SigmaError
from smoothscore.nets import build_model
from smoothscore.scores.neural import NeuralScore
from smoothscore.training import ConditionedDSM, TrainConfig, UnconditionedDSM, train


def _trained(tmp_path, conditioning="sigma", name="ck"):
    torch.manual_seed(0)
    data = torch.randn(32, 3, generator=torch.Generator().manual_seed(1))
    m = build_model("mlp", (3,), conditioning=conditioning, width=16)
    loss = ConditionedDSM(0.1, 2.0, 10) if conditioning == "sigma" else UnconditionedDSM(0.1, 2.0, 10)
    r = train(
        m,
        loss,
        data,
        TrainConfig(steps=5, batch_size=8, lr=1e-2, ema_decay=0.5),
        out_dir=tmp_path / name,
        progress=False,
    )
    return r, tmp_path / name


def test_checkpoint_roundtrip_model_and_ema(tmp_path):
    r, ck = _trained(tmp_path)
    x, s = torch.randn(6, 3), torch.linspace(0.1, 2.0, 6)
    with torch.no_grad():
        want_ema, want_raw = r.ema(x, s), r.model(x, s)
    assert not torch.allclose(want_ema, want_raw)  # the two weight sets differ after 5 steps
    assert torch.equal(NeuralScore.from_checkpoint(ck, device="cpu").score(x, s), want_ema)
    assert torch.equal(NeuralScore.from_checkpoint(ck, ema=False, device="cpu").score(x, s), want_raw)
    f64 = NeuralScore.from_checkpoint(ck, dtype="float64", device="cpu")
    out = f64.score(x, s)
    assert out.dtype == torch.float64 and torch.allclose(out.float(), want_ema, atol=1e-5)
    f = NeuralScore(r.ema, device="cpu")
    # Tweedie: denoise = x + sigma^2 score
    assert torch.allclose(f.denoise(x, s), x + s[:, None] ** 2 * f.score(x, s), atol=1e-6)
    with pytest.raises(SigmaError):
        f.score(x)  # conditioned: sigma required
    with pytest.raises(ShapeError):
        f.score(torch.randn(6, 4), 0.5)


def test_unconditioned_field_ignores_sigma_and_samples(tmp_path):
    r, ck = _trained(tmp_path, conditioning="none")
    f = NeuralScore.from_checkpoint(ck, device="cpu")
    assert not f.conditioned and f.param == "sigma_scaled" and f.needs_sigma  # the authors' F(x) / sigma
    x = torch.randn(5, 3)
    torch.testing.assert_close(0.3 * f.score(x, 0.3), 7.0 * f.score(x, 7.0))  # the net never sees sigma
    free = NeuralScore(build_model("mlp", (3,), conditioning="none", param="score", width=16), device="cpu")
    assert torch.equal(free.score(x), free.score(x, 0.3)) and torch.equal(free.score(x, 0.3), free.score(x, 7.0))
    sig = ss.sigma_schedule("edm", 8, 0.1, 2.0)
    out = ss.sample(f, 2.0 * torch.randn(4, 3), sig, method="pc", generator=torch.Generator().manual_seed(0))
    assert out.shape == (4, 3) and torch.isfinite(out).all()


def test_checkpoint_of_another_architecture_or_corrupt(tmp_path):
    _, ck = _trained(tmp_path)
    meta = json.loads((ck / "checkpoint.json").read_text())
    meta["model_config"]["kwargs"]["width"] = 32  # sidecar says width 32, weights are width 16
    (ck / "checkpoint.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="another architecture"):
        NeuralScore.from_checkpoint(ck)
    meta["model_config"] = {"name": "unet"}  # unusable config
    (ck / "checkpoint.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError):
        NeuralScore.from_checkpoint(ck)
    (ck / "checkpoint.json").write_text('{"format": "something-else", "step": 5}')
    with pytest.raises(CheckpointError):
        NeuralScore.from_checkpoint(ck)
