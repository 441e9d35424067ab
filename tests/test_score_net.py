"""smoothscore.training.score_net: seeded construction, the one training entry point, losses built from the registry."""

import pytest
import torch

from smoothscore.errors import ConfigError
from smoothscore.nets import build_model
from smoothscore.training import ConditionedDSM, TemperatureKNNLoss, TrainConfig, TWeightedDSM, UnconditionedDSM
from smoothscore.training.score_net import build_seeded, loss_from_registry, net_kwargs, train_score_net

NET = {"model": "mlp", "conditioning": "sigma", "param": "sigma_score", "width": 16, "depth": 2, "base": 99}


def test_weights_come_from_init_seed_and_leave_the_global_rng_alone():
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    model = build_seeded(NET, (2,), 7)
    assert torch.equal(torch.random.get_rng_state(), before)
    torch.manual_seed(7)  # the hand-written equivalent
    ref = build_model("mlp", (2,), conditioning="sigma", param="sigma_score", width=16, depth=2)
    for a, b in zip(model.parameters(), ref.parameters()):
        assert torch.equal(a, b)
    other = build_seeded(NET, (2,), 8)
    assert not all(torch.equal(a, b) for a, b in zip(model.parameters(), other.parameters()))


def test_net_kwargs_pick_the_architectures_keys():
    assert net_kwargs("mlp", NET) == {"width": 16, "depth": 2}
    assert net_kwargs("unet", NET) == {"base": 99}
    assert net_kwargs("two-layer", NET) == {"width": 16}


def test_train_score_net_matches_the_trainer_called_by_hand():
    from smoothscore.training import train

    x = torch.randn(32, 2, generator=torch.Generator().manual_seed(0))
    cfg = TrainConfig(steps=5, batch_size=8, lr=1e-3, seed=3)
    fit = train_score_net(NET, ConditionedDSM(0.01, 1.0), x, cfg, init_seed=11, progress=False)
    torch.manual_seed(11)
    ref = train(
        build_model("mlp", (2,), param="sigma_score", width=16, depth=2),
        ConditionedDSM(0.01, 1.0),
        x,
        cfg,
        progress=False,
    )
    assert fit.step == 5 and fit.history == ref.history
    for a, b in zip(fit.ema.parameters(), ref.ema.parameters()):
        assert torch.equal(a, b)
    assert fit.info()["parameters"] == sum(p.numel() for p in ref.model.parameters())
    assert fit.field().score(x[:3], torch.full((3,), 0.5)).shape == (3, 2)


def test_a_network_to_build_needs_an_init_seed():
    with pytest.raises(ConfigError, match="init_seed"):
        train_score_net(NET, ConditionedDSM(), torch.randn(8, 2), TrainConfig(steps=1, batch_size=4))


def test_losses_from_the_registry_take_the_options_their_constructors_name():
    x = torch.randn(16, 2, generator=torch.Generator().manual_seed(0))
    opts = {"sigma_min": 0.1, "sigma_max": 2.0, "n_levels": 50, "k": 3, "sigma_collapse": 1.0, "space": "pixel"}
    dsm = loss_from_registry("dsm", x, **opts)
    assert isinstance(dsm, ConditionedDSM) and not isinstance(dsm, UnconditionedDSM)
    assert isinstance(loss_from_registry("unconditioned", x, **opts), UnconditionedDSM)
    tw = loss_from_registry("t_weighted", x, **opts)
    assert isinstance(tw, TWeightedDSM)
    assert (tw.t_min, tw.t_max) == pytest.approx((0.1**2, 2.0**2))
    temp = loss_from_registry("temperature", x, variant="sigma_star", **opts)
    assert isinstance(temp, TemperatureKNNLoss) and temp.sigma_collapse == 1.0
    with pytest.raises(ConfigError, match="needs t"):
        loss_from_registry("fixed_t", x, **opts)
