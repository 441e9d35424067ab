"""Parameterisations as rows of EDM's preconditioning table: each row's score equals the hand-written formula it
replaces (bit for bit in float64, fixed weights), rows reject the wrong kind of network, and checkpoints written
before the table load and give the same scores."""

import json
from pathlib import Path

import pytest
import torch

from smoothscore.errors import ConfigError
from smoothscore.nets import build_model, preconds
from smoothscore.scores.neural import NeuralScore

DATA = Path(__file__).parent / "data" / "checkpoints_v1"


def _model(param, conditioning="sigma", name="mlp", **kw):
    torch.manual_seed(3)
    return build_model(name, (3,), conditioning=conditioning, param=param, sigma_data=0.7, **kw).double()


X = torch.randn(6, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
S = torch.tensor([0.01, 0.2, 0.7, 1.0, 5.0, 80.0], dtype=torch.float64)


def _hand(param, m, x, s):
    """The parameterisations written out (Karras et al. 2022, Table 1), independent of the table's code."""
    sb, sd, net = s[:, None], m.sigma_data, m.net
    if not m.conditioned:
        return net(x) / sb if param == "sigma_scaled" else net(x)
    c_noise = torch.log(s) / 4
    if param == "score":
        return net(x, c_noise)
    if param == "sigma_score":
        return net(x, c_noise) / sb
    d = sd**2 / (sb**2 + sd**2) * x + sb * sd / torch.sqrt(sb**2 + sd**2) * net(x / torch.sqrt(sb**2 + sd**2), c_noise)
    return (d - x) / sb**2


@pytest.mark.parametrize(
    "param,conditioning,name",
    [
        ("score", "sigma", "mlp"),
        ("sigma_score", "sigma", "mlp"),
        ("edm", "sigma", "mlp"),
        ("sigma_score", "sigma", "two-layer"),
        ("sigma_scaled", "none", "mlp"),
        ("score", "none", "mlp"),
    ],
)
def test_each_row_is_its_hand_written_formula(param, conditioning, name):
    m = _model(param, conditioning, name)
    with torch.no_grad():
        got, want = m(X, S), _hand(param, m, X, S)
    tol = 4e-16 if param == "edm" else 0.0  # EDM: c_in as 1/sqrt vs division rounds differently
    assert torch.allclose(got, want, rtol=tol, atol=0.0)


def test_scalings_of_each_row():
    s = torch.tensor([0.5, 2.0], dtype=torch.float64)
    sd = 0.5
    edm = preconds.get("edm").scalings(s, sd)
    assert torch.allclose(edm["c_skip"], sd**2 / (s**2 + sd**2))
    assert torch.allclose(edm["c_out"], s * sd / (s**2 + sd**2).sqrt())
    assert torch.allclose(edm["c_in"], 1 / (s**2 + sd**2).sqrt())
    assert torch.allclose(edm["c_noise"], s.log() / 4)
    scaled = preconds.get("sigma_scaled").scalings(s, sd)
    assert scaled["c_noise"] is None and torch.equal(scaled["c_out"], 1 / s) and torch.equal(scaled["c_skip"], 0 * s)
    assert torch.equal(preconds.get("sigma_score").scalings(s, sd)["c_out"], 1 / s)
    plain = preconds.get("score").scalings(s, sd)
    assert torch.equal(plain["c_out"], torch.ones_like(s)) and torch.equal(plain["c_in"], torch.ones_like(s))


def test_rows_refuse_the_wrong_network_and_missing_sigma():
    with pytest.raises(ConfigError, match="unconditioned networks"):
        build_model("mlp", (3,), param="sigma_scaled")
    for p in ("sigma_score", "edm"):
        with pytest.raises(ConfigError, match="unconditioned network takes"):
            build_model("mlp", (3,), conditioning="none", param=p)
    with pytest.raises(ConfigError, match="unknown parameterisation"):
        build_model("mlp", (3,), param="v")
    with pytest.raises(ConfigError, match="needs sigma"):
        build_model("mlp", (3,), conditioning="none")(X.float())
    assert not build_model("mlp", (3,), conditioning="none", param="score").needs_sigma


def test_checkpoints_written_before_the_table_give_the_same_scores():
    ref = json.loads((DATA / "expected.json").read_text())
    x = torch.tensor(ref["x"], dtype=torch.float64)
    s = torch.tensor(ref["sigma"], dtype=torch.float64)
    for name, want in ref["score"].items():
        f = NeuralScore.from_checkpoint(DATA / name, dtype="float64", device="cpu")
        assert torch.allclose(f.score(x, s), torch.tensor(want, dtype=torch.float64), rtol=1e-15, atol=0), name
        assert f.sigma_min is None and f.sigma_max is None  # made before the range was stored
