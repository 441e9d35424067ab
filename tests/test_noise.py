import math

import pytest
import torch

import smoothscore as ss
from smoothscore.errors import SigmaError, UnknownNameError
from smoothscore.noise import VEProcess, VPProcess, log_uniform_sigmas, schedules


@pytest.mark.parametrize("kind", ["edm", "geometric", "log_t_uniform", "sqrt_t_uniform", "t_uniform"])
def test_schedule_endpoints_and_monotone(kind):
    s = ss.sigma_schedule(kind, 17, 0.002, 80.0)
    assert s.shape == (17,) and s.dtype == torch.float64
    assert s[0].item() == pytest.approx(80.0, rel=1e-12) and s[-1].item() == pytest.approx(0.002, rel=1e-12)
    assert bool((s[1:] < s[:-1]).all())


def test_edm_formula_and_shapes():
    s = ss.sigma_schedule("edm", 5, 0.002, 80.0)
    i = torch.arange(5, dtype=torch.float64)
    ref = (80 ** (1 / 7) + i / 4 * (0.002 ** (1 / 7) - 80 ** (1 / 7))) ** 7
    assert torch.allclose(s, ref, rtol=1e-12)
    g = ss.sigma_schedule("geometric", 5, 0.01, 100.0)
    assert torch.allclose(g, torch.tensor([100, 10, 1, 0.1, 0.01], dtype=torch.float64), rtol=1e-12)
    # uniform in sqrt(t) = linear in sigma; uniform in t
    assert torch.allclose(
        ss.sigma_schedule("sqrt_t_uniform", 3, 1.0, 3.0), torch.tensor([3.0, 2.0, 1.0], dtype=torch.float64)
    )
    assert torch.allclose(
        ss.sigma_schedule("t_uniform", 3, 1.0, 3.0) ** 2, torch.tensor([9.0, 5.0, 1.0], dtype=torch.float64)
    )
    z = ss.sigma_schedule("edm", 4, 0.1, 1.0, append_zero=True)
    assert z.shape == (5,) and z[-1] == 0


def test_bad_schedules():
    with pytest.raises(UnknownNameError):
        ss.sigma_schedule("nope", 5, 0.1, 1.0)
    for args in [(0, 0.1, 1.0), (5, 0.0, 1.0), (5, -1, 1.0), (5, 2.0, 1.0), (5, 0.1, float("inf"))]:
        with pytest.raises(SigmaError):
            ss.sigma_schedule("edm", *args)
    assert "edm" in schedules.names()


def test_t_sigma_conversions_and_processes():
    assert ss.t_to_sigma(1e-4) == pytest.approx(1e-2)
    assert ss.sigma_to_t(0.5) == pytest.approx(0.25)
    t = torch.tensor([0.1, 0.5, 1.0], dtype=torch.float64)
    vp = VPProcess()
    assert torch.allclose(vp.sigma_inv(vp.sigma(t)), t, rtol=1e-10)
    assert torch.allclose(vp.scale(t) ** 2 * (1 + vp.sigma(t) ** 2), torch.ones(3, dtype=torch.float64))
    ve = VEProcess()
    assert ve.sigma(0.25) == pytest.approx(0.5) and ve.scale(0.3) == 1.0


def test_log_uniform_sigmas_range_and_seed():
    g = torch.Generator().manual_seed(0)
    s = log_uniform_sigmas(20000, 0.01, 50.0, generator=g)
    assert float(s.min()) >= 0.01 and float(s.max()) <= 50.0
    # log-uniform: mean of log sigma is the midpoint of the log range
    assert float(s.log().mean()) == pytest.approx((math.log(0.01) + math.log(50)) / 2, abs=0.05)
    g2 = torch.Generator().manual_seed(0)
    assert torch.equal(s, log_uniform_sigmas(20000, 0.01, 50.0, generator=g2))
