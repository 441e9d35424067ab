"""Tests that kill the survivors of the stratified mutation sample (``mutation/run.py --per-module``; the table and
each survivor with its killing test are in docs/mutation.md). Each asserts a value computed independently of the
line the mutant changed."""

import torch
from test_truncation_tight import two_clusters

import smoothscore as ss
from smoothscore.scores.patch_calibration import calibrate_patch_size


def test_patch_calibration_default_grid_is_the_odd_sizes_3_to_15():
    # the default sweep is the odd patch sizes 3..15 of Kamb & Ganguli's calibration; an ELS machine of k = 9 is the
    # network, so the calibrated k is 9 at every level and the table lists exactly the default grid
    g = torch.Generator().manual_seed(2)
    train = torch.rand(4, 1, 8, 8, generator=g, dtype=torch.float64)
    net = ss.EquivariantLocalScore(train, 9, dtype="float64", device="cpu")
    x0s = [2.0 * torch.randn(1, 1, 8, 8, generator=g, dtype=torch.float64)]
    sched, table = calibrate_patch_size(net, train, x0s, [1.0, 0.3, 0.0], method="euler", dtype="float64", device="cpu")
    assert table["ks"] == [3, 5, 7, 9, 11, 13, 15]
    assert sched.ks == [9, 9]
    cos = torch.tensor(table["cosine"], dtype=torch.float64)
    assert torch.allclose(cos[:, :, 3], torch.ones(1, 2, dtype=torch.float64))


def test_optimal_mode_certificate_without_clipping_does_not_depend_on_the_level_range():
    # optimal mode without clip_sigma_star: sigma*^2 = r^2 / (d - 2) floored at sigma_floor^2 only, so neither the
    # score nor the truncation certificate (whose per-centre coefficient bound is 1 / sigma_floor^2) may depend on
    # sigma_min / sigma_max; the exact mode's bound max 1/sigma_i^2 would make the certificate scale as 1/sigma_min^2
    y, x = two_clusters()
    out = []
    for smin in (0.2, 0.4):
        kw = dict(mode="optimal", sigma_min=smin, sigma_max=1.0, sigma_floor=0.05, dtype="float64", device="cpu")
        ex = ss.UnconditionalEmpiricalScore(y, **kw)
        tr = ss.UnconditionalEmpiricalScore(y, tolerance=1e6, truncation_index="flat", **kw)
        s = tr.score(x)
        err = float((s - ex.score(x)).norm(dim=1).max())
        assert tr.last_fraction_truncated == 1.0
        assert 1e-3 < err <= tr.last_certificate  # measured: err 1.86, certificate 1197
        out.append((s, tr.last_certificate))
    assert torch.allclose(out[0][0], out[1][0], rtol=1e-12, atol=0)
    assert abs(out[0][1] - out[1][1]) <= 1e-9 * out[0][1]
