"""Paper A experiments chen-fig1, chen-fig5, chen-sphere, chen-early-stopping: helper unit tests and smoke runs."""

from __future__ import annotations

import json
import math

import numpy as np
import torch

from smoothscore.data import circle_points
from smoothscore.experiments.chen.early_stopping import along_line_spread
from smoothscore.experiments.chen.fig1 import analytic_far_share
from smoothscore.experiments.chen.fig5 import angular_direction, gap_position
from smoothscore.experiments.chen.sphere import inverse_stereographic, projection_pole, stereographic, subspace_basis


# ------------------------------------------------------------------------------------------------ fig5 helpers
def test_angular_direction_sign_on_rotation_fields():
    g = torch.Generator().manual_seed(0)
    p = torch.randn(500, 2, generator=g, dtype=torch.float64)
    ccw = torch.stack([-p[:, 1], p[:, 0]], 1)  # counter-clockwise rotation field
    assert torch.allclose(angular_direction(p, ccw), torch.ones(500, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(angular_direction(p, -ccw), -torch.ones(500, dtype=torch.float64), atol=1e-12)
    assert angular_direction(p, p).abs().max() < 1e-12  # radial field: no angular direction
    # 45 degrees between radial and counter-clockwise: sin(45 deg)
    mixed = p + ccw
    assert torch.allclose(angular_direction(p, mixed), torch.full((500,), math.sqrt(0.5), dtype=torch.float64))
    assert float(angular_direction(torch.zeros(1, 2), torch.ones(1, 2))) == 0.0


def test_circle_points_and_gap_position():
    y = circle_points(8, dtype=torch.float64)
    pos = gap_position(y, 8)  # training points sit at a gap end (0, or 1 by rounding)
    assert bool(((pos < 1e-9) | (pos > 1 - 1e-9)).all())
    th = torch.tensor([math.pi / 8, 3 * math.pi / 8, math.pi / 16], dtype=torch.float64)
    mid = torch.stack([th.cos(), th.sin()], 1) * 0.9
    assert torch.allclose(gap_position(mid, 8), torch.tensor([0.5, 0.5, 0.25], dtype=torch.float64))


# ------------------------------------------------------------------------------------------------ sphere helpers
def test_stereographic_round_trip_and_special_points():
    g = torch.Generator().manual_seed(1)
    pole = torch.tensor([0.3, -0.5, 0.8], dtype=torch.float64)
    pole = pole / pole.norm()
    u = torch.randn(1000, 3, generator=g, dtype=torch.float64)
    u = u / u.norm(dim=1, keepdim=True)
    u = u[(u @ pole) < 0.99]  # away from the projection pole
    back = inverse_stereographic(stereographic(u, pole), pole)
    assert torch.allclose(back, u, atol=1e-10)
    assert stereographic(-pole[None], pole).abs().max() < 1e-12  # antipode -> origin
    # the equator (orthogonal to the pole) maps onto the unit circle
    a = torch.linalg.cross(pole, torch.tensor([1.0, 0, 0], dtype=torch.float64))
    a = a / a.norm()
    assert abs(float(stereographic(a[None], pole).norm()) - 1) < 1e-12
    # scaling the input does not change the projection (directions only)
    assert torch.allclose(stereographic(3 * u[:5], pole), stereographic(u[:5], pole))


def test_projection_pole_is_far_from_the_points():
    octa = torch.cat([torch.eye(3), -torch.eye(3)]).double()
    p = projection_pole(octa)
    # farthest directions from the octahedron's vertices are its face centres: angle arccos(1/sqrt 3) to each vertex
    assert abs(float((octa @ p).max()) - 1 / math.sqrt(3)) < 0.02


def test_subspace_basis_recovers_the_span():
    g = torch.Generator().manual_seed(2)
    q, _ = torch.linalg.qr(torch.randn(20, 3, generator=g, dtype=torch.float64))
    pts = torch.randn(40, 3, generator=g, dtype=torch.float64) @ q.T
    b = subspace_basis(pts, 3)
    assert torch.allclose(b @ b.T, q @ q.T, atol=1e-10)


# ------------------------------------------------------------------------------------------------ early stopping
def test_along_line_spread_on_isotropic_gaussians():
    g = torch.Generator().manual_seed(3)
    pos = torch.tensor([-1.5, -0.5, 0.5, 1.5], dtype=torch.float64)
    e = torch.tensor([math.cos(0.5), math.sin(0.5)], dtype=torch.float64)
    s = 0.03
    k = torch.randint(4, (40000,), generator=g)
    x = pos[k, None] * e + s * torch.randn(40000, 2, generator=g, dtype=torch.float64)
    tan, nor, mid = along_line_spread(x, pos, e)
    assert abs(tan / s - 1) < 0.03 and abs(nor / s - 1) < 0.03  # 40k samples: relative SE ~0.4%
    assert mid == 0.0  # 8 sigma from the middle half of any gap
    # uniform along the line within the points: half of the mass lies in the middle halves of the gaps
    u = torch.rand(40000, generator=g, dtype=torch.float64) * 3 - 1.5
    tan_u, nor_u, mid_u = along_line_spread(u[:, None] * e, pos, e)
    assert abs(mid_u - 0.5) < 0.02 and nor_u < 1e-12
    assert abs(tan_u - 0.5 / math.sqrt(3)) < 0.01  # uniform deviation on [-1/2, 1/2]


# ------------------------------------------------------------------------------------------------ fig1 closed form
def test_analytic_far_share_matches_monte_carlo_of_the_flow_map():
    """Closed-form share vs Monte Carlo: draws of p_t0 pushed through the closed-form flow map to s."""
    from smoothscore.theory.smoothing_dynamics import flow_map

    rng = np.random.default_rng(4)
    pos, t0, s, kappa = np.array([-1.5, -0.5, 0.5, 1.5]), 0.1, 1e-5, 1.0
    x = pos[rng.integers(0, 4, 400_000)] + math.sqrt(t0) * rng.standard_normal(400_000)
    xs = flow_map(x, t0, s, pos, kappa)
    r = 5 * math.sqrt(s)
    mc = float((np.abs(xs[:, None] - pos[None]).min(1) > r).mean())
    th = analytic_far_share(t0, s, pos, kappa, r)
    assert abs(th - mc) < 0.004  # MC SE ~ 0.0007
    assert 0.05 < th < 0.6


def test_line_shares_by_hand():
    """Memorizing and interpolating shares and the normal RMS of four samples near two points on the x1 axis."""
    from smoothscore.experiments.chen.protocol import line_shares

    positions = torch.tensor([-1.0, 1.0], dtype=torch.float64)
    direction = torch.tensor([1.0, 0.0], dtype=torch.float64)
    train = torch.tensor([[-1.0, 0.0], [1.0, 0.0]])
    end = torch.tensor([[-1.0, 0.0], [0.0, 0.03], [1.02, 0.0], [0.5, -0.04]])
    sh = line_shares(end, positions, direction, train, t_min=1e-4)  # sqrt(t_min) = 0.01
    assert torch.allclose(sh.along, torch.tensor([-1.0, 0.0, 1.02, 0.5], dtype=torch.float64), atol=1e-6)
    assert sh.near_along_line == 0.5  # within 0.03 of a point along the line: the first and third
    assert sh.far == 0.5  # farther than 0.05 from both points: the second and fourth
    assert math.isclose(sh.normal_rms, math.sqrt((0.03**2 + 0.04**2) / 4) / 0.01, rel_tol=1e-5)


# ------------------------------------------------------------------------------------------------ smoke runs
_TINY_NET = {"steps": 30, "batch": 64, "width": 32}


def _smoke(tmp_path, name, overrides):
    from smoothscore.runner import run_experiment

    res = run_experiment(name, "quick", tmp_path, overrides=overrides, progress=False, device="cpu")
    assert res["status"] == "ok", res["error"]
    on_disk = json.loads((tmp_path / name / "results.json").read_text())
    assert on_disk["claims"] and all(c["value"] is not None for c in on_disk["claims"])
    assert all(c["passed"] in (True, False) for c in on_disk["claims"])
    for f in on_disk["figures"]:
        assert (tmp_path / name / f["path"]).stat().st_size > 10_000
    return on_disk


def test_smoke_chen_early_stopping(tmp_path):
    res = _smoke(tmp_path, "chen-early-stopping", {"n_samples": 400, "n_steps": 30, "t_stops": [1e-3, 1e-2]})
    ids = {c["id"] for c in res["claims"]}
    assert ids == {
        "esf_isotropic",
        "esf_noise_scale",
        "esf_no_gap_mass",
        "smoothed_anisotropic",
        "smoothed_anisotropic_at_t_stop",
        "smoothed_gap_mass",
    }
    # exact ESF flow preserves p_t: stopped at t_stop the noise is isotropic of std sqrt(t_stop) even in a tiny run
    assert next(c for c in res["claims"] if c["id"] == "esf_noise_scale")["passed"]


def test_smoke_chen_fig1(tmp_path):
    from smoothscore.experiments.base import load_all

    net = dict(load_all().get("chen-fig1").presets["quick"]["net"], **_TINY_NET)
    res = _smoke(tmp_path, "chen-fig1", {"n_samples": 300, "n_steps": 25, "net": net})
    assert {c["id"] for c in res["claims"]} == {
        "esf_memorizes",
        "smoothed_matches_theory",
        "nn_interpolates",
        "nn_subspace",
    }
    assert next(c for c in res["claims"] if c["id"] == "esf_memorizes")["passed"]
    assert len(res["figures"]) == 2


def test_smoke_chen_fig5(tmp_path):
    from smoothscore.experiments.base import load_all

    net = dict(load_all().get("chen-fig5").presets["quick"]["net"], **_TINY_NET)
    res = _smoke(tmp_path, "chen-fig5", {"n_samples": 400, "n_steps": 40, "net": net, "grid": 9, "n_angles": 90})
    assert {"esf_memorizes", "nn_interpolates", "nn_near_manifold", "nn_smoother_than_esf"} <= {
        c["id"] for c in res["claims"]
    }
    assert any(f["id"] == "gap_shape" for f in res["findings"])


def test_smoke_chen_sphere(tmp_path):
    from smoothscore.experiments.base import load_all

    nets = {k: dict(v, **_TINY_NET) for k, v in load_all().get("chen-sphere").presets["quick"]["nets"].items()}
    res = _smoke(tmp_path, "chen-sphere", {"n_samples": 300, "n_steps": 30, "nets": nets})
    assert len(res["claims"]) == 1 + 3 * len(nets)
