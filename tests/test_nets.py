"""Networks: Paper A's two-layer ReLU formula, UNet shapes 8x8..64x64 with and without a noise input, the
parameterisations kept apart from the architectures, and bad options."""

import pytest
import torch

from smoothscore.errors import ConfigError, UnknownNameError
from smoothscore.nets import MLP, TwoLayerReLU, UNet, build_model, models


def test_two_layer_relu_is_the_papers_formula():
    torch.manual_seed(0)
    net = TwoLayerReLU(3, width=7)
    x = torch.randn(5, 3)
    w, b = net.hidden.weight, net.hidden.bias  # (7, 3), (7,)
    a, c = net.out.weight, net.out.bias  # (3, 7), (3,)
    ref = torch.stack([sum(a[:, i] * torch.relu(w[i] @ xi + b[i]) for i in range(7)) + c for xi in x])
    assert torch.allclose(net(x), ref, atol=1e-6)
    # weight decay acts on weights only (Paper A: biases unpenalised)
    assert {id(p) for p in net.penalized_parameters()} == {id(net.hidden.weight), id(net.out.weight)}


@pytest.mark.parametrize("size,channels", [(8, 1), (16, 3), (32, 1), (64, 3)])
def test_unet_shapes_with_and_without_noise_input(size, channels):
    x = torch.randn(2, channels, size, size)
    cond = UNet(channels, size, base=8, conditioned=True)
    s = torch.tensor([0.05, 5.0])
    out = cond(x, s)
    assert out.shape == x.shape
    assert not torch.allclose(cond(x, s), cond(x, s.flip(0)))  # the noise input is used
    unc = UNet(channels, size, base=8, conditioned=False)
    assert unc.emb is None and all(blk.emb is None for blk in [*unc.down, unc.mid, *unc.up])
    assert unc(x).shape == x.shape
    # fewer parameters: the embedding is removed entirely, not ignored
    assert sum(p.numel() for p in unc.parameters()) < sum(p.numel() for p in cond.parameters())


def test_parameterisations_are_separate_from_architectures():
    torch.manual_seed(0)
    x, s = torch.randn(4, 3), torch.tensor([0.1, 0.5, 1.0, 4.0])
    m = build_model("mlp", (3,), param="sigma_score")
    assert torch.allclose(m(x, s), m.net(x, s.log() / 4) / s[:, None], atol=1e-6)
    raw = build_model("mlp", (3,), param="score")
    assert torch.allclose(raw(x, s), raw.net(x, s.log() / 4))
    unc = build_model("mlp", (3,), conditioning="none")  # Paper B's code: F(x) / sigma, the net sees x only
    assert unc.param == "sigma_scaled" and not unc.conditioned and unc.needs_sigma
    assert torch.allclose(unc(x, s), unc.net(x) / s[:, None])
    free = build_model("mlp", (3,), conditioning="none", param="score")
    assert free.param == "score" and not free.conditioned
    assert torch.allclose(free(x), free.net(x))  # sigma-free: no division by sigma anywhere
    with pytest.raises(ConfigError):
        m(x)  # conditioned model needs sigma


def test_mlp_embeddings_and_registry():
    x, s = torch.randn(3, 2), torch.tensor([0.1, 1.0, 10.0])
    for emb in ("fourier", "log_sigma"):
        assert MLP(2, 16, 2, embedding=emb)(x, s).shape == (3, 2)
    with pytest.raises(UnknownNameError):
        MLP(2, 16, 2, embedding="sinusoidal-ish")
    assert set(models.names()) >= {"mlp", "unet", "two-layer"}
    assert build_model("two-layer", (1,), conditioning="none", width=5).net.hidden.out_features == 5
    m = build_model("unet", (1, 8, 8), conditioning="sigma", base=8)
    assert m.config == {
        "name": "unet",
        "data_shape": [1, 8, 8],
        "conditioning": "sigma",
        "param": "sigma_score",
        "sigma_data": 0.5,
        "kwargs": {"base": 8},
    }


def test_bad_network_options():
    with pytest.raises(ConfigError):
        UNet(1, 6)
    with pytest.raises(ConfigError):
        UNet(1, 128)
    with pytest.raises(ConfigError):
        build_model("unet", (64,))  # not an image
    with pytest.raises(ConfigError):
        build_model("unet", (1, 8, 16))  # not square
    with pytest.raises(UnknownNameError):
        build_model("resnet", (1, 8, 8))
    with pytest.raises(ConfigError):
        build_model("mlp", (2,), param="v_prediction")
