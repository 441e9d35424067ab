"""Agreement metrics (r^2, cosine, Pearson r) against hand values, and the patch-size calibration recovering the
patch size of a machine posing as the network."""

import pytest
import torch

import smoothscore as ss
from smoothscore.errors import ConfigError, ShapeError
from smoothscore.metrics.agreement import cosine_similarity, denoiser_agreement, pearson_r, r_squared
from smoothscore.scores.patch_calibration import PatchSizeSchedule, calibrate_patch_size


def test_r_squared_hand_values():
    b = torch.tensor([[1.0, 2.0, 3.0, 6.0]])  # mean 3, population variance 3.5
    assert float(r_squared(b, b)) == 1.0
    assert float(r_squared(torch.full_like(b, 3.0), b)) == pytest.approx(0.0)
    a = b + torch.tensor([[1.0, -1.0, 0.0, 0.0]])  # mean squared error 0.5
    assert float(r_squared(a, b)) == pytest.approx(1 - 0.5 / 3.5)
    with pytest.raises(ShapeError):
        r_squared(a, b[:, :3])


def test_cosine_and_pearson():
    a = torch.tensor([[1.0, 0.0, 0.0], [1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    b = torch.tensor([[0.0, 1.0, 0.0], [2.0, 4.0, 6.0], [1.0, 1.0, 1.0]])
    assert cosine_similarity(a, b).tolist() == pytest.approx([0.0, 1.0, 0.0])
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 2, 3, generator=g)
    assert pearson_r(x, 3 * x - 7).tolist() == pytest.approx([1.0] * 4)
    assert pearson_r(x, -x).tolist() == pytest.approx([-1.0] * 4)
    xc = x.reshape(4, -1) - x.reshape(4, -1).mean(1, keepdim=True)
    y = torch.randn(4, 2, 3, generator=g)
    yc = y.reshape(4, -1) - y.reshape(4, -1).mean(1, keepdim=True)
    ref = (xc * yc).sum(1) / (xc.norm(dim=1) * yc.norm(dim=1))
    assert torch.allclose(pearson_r(x, y).float(), ref, atol=1e-6)


def test_denoiser_agreement_self_and_scores():
    g = torch.Generator().manual_seed(1)
    train = torch.randn(10, 1, 5, 5, generator=g, dtype=torch.float64)
    x = train[:3] + 0.5 * torch.randn(3, 1, 5, 5, generator=g, dtype=torch.float64)
    esf = ss.EmpiricalScore(train, dtype="float64", device="cpu")
    out = denoiser_agreement(esf, esf, x, 0.5)
    assert out["r2"].tolist() == pytest.approx([1.0] * 3) and out["cosine"].tolist() == pytest.approx([1.0] * 3)
    ls = ss.LocalEmpiricalScore(train, 3, dtype="float64", device="cpu")
    out = denoiser_agreement(ls, esf, x, 0.5)
    da, db = ls.denoise(x, 0.5), esf.denoise(x, 0.5)
    assert torch.allclose(out["r2"], r_squared(da, db))
    assert torch.allclose(out["cosine"], cosine_similarity(ls.score(x, 0.5), esf.score(x, 0.5)))


def test_schedule_lookup():
    sch = PatchSizeSchedule([4.0, 1.0, 0.25], [3, 7, 11])
    assert sch(torch.tensor([10.0, 2.5, 1.0, 0.4, 0.01])).tolist() == [3, 3, 7, 11, 11]
    with pytest.raises(ConfigError):
        PatchSizeSchedule([1.0], [3, 5])


@pytest.mark.parametrize("machine,k", [("els", 5), ("ls", 3)])
def test_calibration_recovers_the_machine(machine, k):
    g = torch.Generator().manual_seed(2)
    train = torch.rand(6, 1, 8, 8, generator=g, dtype=torch.float64)
    cls = ss.EquivariantLocalScore if machine == "els" else ss.LocalEmpiricalScore
    net = cls(train, k, dtype="float64", device="cpu")
    x0s = [2.0 * torch.randn(2, 1, 8, 8, generator=g, dtype=torch.float64) for _ in range(3)]
    sched, table = calibrate_patch_size(
        net,
        train,
        x0s,
        [2.0, 1.0, 0.5, 0.2, 0.0],
        ks=(1, 3, 5, 7),
        machine=machine,
        method="euler",
        dtype="float64",
        device="cpu",
    )
    assert sched.ks == [k] * 4 and sched.sigmas == [2.0, 1.0, 0.5, 0.2]
    cos = torch.tensor(table["cosine"], dtype=torch.float64)
    assert cos.shape == (3, 4, 4) and torch.allclose(cos[:, :, table["ks"].index(k)], torch.ones(3, 4).double())
