"""Tests that kill the survivors of the stratified mutation sample (``mutation/run.py --per-module``; the table and
each survivor with its killing test are in docs/mutation.md). Each asserts a value computed independently of the
line the mutant changed."""

import math

import pytest
import torch
from test_truncation_tight import two_clusters

import smoothscore as ss
from smoothscore.data.arrays import PointSet
from smoothscore.errors import ConfigError
from smoothscore.io import to_jsonable
from smoothscore.metrics.bootstrap import mean_interval, median_interval, memorized_fraction_interval
from smoothscore.metrics.distances import knn_precision_recall, wasserstein_2d
from smoothscore.metrics.expansiveness import closest_pairs, expansiveness_profile
from smoothscore.metrics.memorization import distance_summary, nn_ratio
from smoothscore.scores._kernel import gaussian_stats, pick_method
from smoothscore.scores.base import ScoreField
from smoothscore.scores.patch_calibration import PatchSizeSchedule, calibrate_patch_size
from smoothscore.scores.smoothed_pl import check_line_points
from smoothscore.scores.temperature import KNNTemperatureScore, sigma_schedule_temperature
from smoothscore.search.lower_bound_index import IVF_MAX_RANK, IVF_MIN_POINTS, principal_basis, resolve_kind


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
        tr = ss.UnconditionalEmpiricalScore(y, tolerance=1e6, truncation_index="flat", truncation_policy="always", **kw)
        s = tr.score(x)
        err = float((s - ex.score(x)).norm(dim=1).max())
        assert tr.last_fraction_truncated == 1.0
        assert 1e-3 < err <= tr.last_certificate  # measured: err 1.86, certificate 1197
        out.append((s, tr.last_certificate))
    assert torch.allclose(out[0][0], out[1][0], rtol=1e-12, atol=0)
    assert abs(out[0][1] - out[1][1]) <= 1e-9 * out[0][1]


def _dense_stats(u, inv, v, logw):
    # the kernel's definition written out densely: lse_i = LSE_j(log pi_j + (u_i . v_j - |v_j|^2 / 2) inv_i)
    logits = logw[None] + (u @ v.T - 0.5 * (v * v).sum(1)[None]) * inv[:, None]
    return torch.logsumexp(logits, 1), torch.softmax(logits, 1) @ v


def test_gaussian_stats_over_several_chunks_against_the_dense_formula():
    # 600 rows in 64-row chunks (the online merge of chunk pairs runs 9 times), uniform weights (-log n added) and
    # explicit local log-weights (nothing added), per-query inverse variances, both backends
    g = torch.Generator().manual_seed(4)
    y = torch.randn(600, 4, generator=g, dtype=torch.float64) + 3.0
    pts = PointSet(y, dtype=torch.float64, device=torch.device("cpu"), chunk_bytes=64 * 4 * 8)
    v = y - pts.center
    u = v[:6] + 0.5 * torch.randn(6, 4, generator=g, dtype=torch.float64)
    inv = torch.linspace(0.5, 3.0, 6, dtype=torch.float64)
    logw = torch.log_softmax(torch.randn(600, generator=g, dtype=torch.float64), 0)
    for lw, ref_lw in ((None, torch.full((600,), -math.log(600), dtype=torch.float64)), (logw, logw)):
        ref_lse, ref_mean = _dense_stats(u, inv, v, ref_lw)
        for method in ("gemm", "flash"):
            lse, mean = gaussian_stats(u, inv, pts, logw=lw, method=method, block_elements=64 * 6)
            assert torch.allclose(lse, ref_lse, rtol=0, atol=1e-10), (method, lw is None)
            assert torch.allclose(mean, ref_mean, rtol=0, atol=1e-10), (method, lw is None)


def test_auto_kernel_picks_flash_on_cpu_only():
    # PyTorch's fused kernel is the CPU one: a tensor on any other device ("meta" sorts after "cpu") gets gemm
    assert pick_method("auto", torch.zeros(3, 4), True) == "flash"
    assert pick_method("auto", torch.zeros(3, 4, device="meta"), True) == "gemm"
    assert pick_method("auto", torch.zeros(3, 4), False) == "gemm"


def test_tweedie_conversions_of_the_base_class_and_function_score():
    # data N(0, I): score(x, s) = -x / (1 + s^2), denoiser D(x, s) = x / (1 + s^2) (Tweedie: D = x + s^2 score);
    # s = 0.5 so that s, s^2 and 1 give different numbers
    class OnlyScore(ScoreField):
        def __init__(self):
            self._init_placement("float64", "cpu")

        def score(self, x, sigma):
            x, s = self.prepare(x, sigma)
            return -x / (1 + s[:, None] ** 2)

    x = torch.tensor([[1.0, -2.0], [0.5, 3.0]], dtype=torch.float64)
    sig = torch.tensor([0.5, 2.0], dtype=torch.float64)
    want_d = x / (1 + sig[:, None] ** 2)
    want_s = -x / (1 + sig[:, None] ** 2)
    assert torch.allclose(OnlyScore().denoise(x, sig), want_d, rtol=1e-14, atol=0)
    den = ss.FunctionScore(lambda x, s: x / (1 + s[:, None] ** 2), kind="denoiser", dtype="float64", device="cpu")
    assert torch.allclose(den.score(x, sig), want_s, rtol=1e-14, atol=0)
    assert torch.allclose(den.denoise(x, sig), want_d, rtol=1e-14, atol=0)
    sc = ss.FunctionScore(lambda x, s: -x / (1 + s[:, None] ** 2), dtype="float64", device="cpu")
    assert torch.allclose(sc.denoise(x, sig), want_d, rtol=1e-14, atol=0)


def test_principal_basis_rank_is_scale_free():
    # variances 1, 0.1, 1e-3, 1e-6 along four axes: all but 1e-4 of the energy needs 3 directions, at any scale
    # (here the data scaled by 1e-3, total energy far below 1)
    g = torch.Generator().manual_seed(5)
    z = torch.randn(500, 4, generator=g, dtype=torch.float64)
    z = (z - z.mean(0)) / z.std(0)
    for scale in (1.0, 1e-3):
        y = scale * z * torch.tensor([1.0, 0.1**0.5, 1e-3**0.5, 1e-6**0.5], dtype=torch.float64)
        P = principal_basis(PointSet(y, dtype=torch.float64, device=torch.device("cpu")))
        assert P.shape == (3, 4), scale


def test_patch_size_schedule_values_and_positive_levels():
    # nearest calibration level in log sigma: 0.1 -> k 3, 1.0 -> k 9; log-midpoint sqrt(0.1) ~ 0.316; sigma 0 and
    # tiny sigmas go to the smallest level; a level of 0 has no log and is refused

    sched = PatchSizeSchedule([0.1, 1.0], [3, 9])
    got = sched(torch.tensor([0.0, 1e-8, 0.05, 0.1, 0.3, 0.33, 1.0, 7.0]))
    assert got.tolist() == [3, 3, 3, 3, 3, 9, 9, 9]
    with pytest.raises(ConfigError):
        PatchSizeSchedule([0.0, 1.0], [3, 9])


def test_line_points_of_shape_n_by_1_are_the_positions():
    y = check_line_points(torch.tensor([[0.5], [-1.0], [2.0]], dtype=torch.float64))
    assert y.tolist() == [-1.0, 0.5, 2.0]


def test_temperature_schedule_and_knn_temperature_defaults_and_refusals():

    # T(sigma) = max(c / sigma, 1): c = 2 gives 4 at sigma 0.5 and 1 at sigma 4
    assert sigma_schedule_temperature(2.0)(torch.tensor([0.5, 4.0], dtype=torch.float64)).tolist() == [4.0, 1.0]
    for bad in (0.0, -1.0):
        with pytest.raises(ConfigError):
            sigma_schedule_temperature(bad)
    g = torch.Generator().manual_seed(6)
    train = torch.randn(20, 3, generator=g, dtype=torch.float64)
    x = torch.randn(4, 3, generator=g, dtype=torch.float64)
    kw = dict(k=5, dtype="float64", device="cpu")
    default = KNNTemperatureScore(train, **kw).score(x, 0.7)
    assert torch.equal(default, KNNTemperatureScore(train, 1.0, **kw).score(x, 0.7))  # the default is T = 1
    assert not torch.allclose(default, KNNTemperatureScore(train, 2.0, **kw).score(x, 0.7))
    for bad in (0.0, -0.5):
        with pytest.raises(ConfigError):
            KNNTemperatureScore(train, bad, **kw)


def test_pc_sampler_denoised_and_final_tweedie_step():
    # one training point mu: the posterior mean is mu at every level, so each step's "denoised" is exactly mu;
    # denoise_last adds s^2 score(x, s) at the last level (> 0) only when asked, and nothing when that level is 0
    mu = torch.tensor([[1.5, -0.5]], dtype=torch.float64)
    field = ss.EmpiricalScore(mu, dtype="float64", device="cpu")
    x0 = 3.0 * torch.randn(4, 2, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    seen = []
    run = dict(method="pc", n_corrector=1)
    grid = [3.0, 1.0, 0.5]
    plain = ss.sample(field, x0, grid, generator=torch.Generator().manual_seed(1), callback=seen.append, **run)
    assert len(seen) == 2 and (plain - mu).norm(dim=1).min() > 0.05  # still noisy at sigma 0.5: not denoised
    for info in seen:
        assert torch.allclose(info["denoised"], mu.expand(4, 2), rtol=0, atol=1e-12)
    last = ss.sample(field, x0, grid, generator=torch.Generator().manual_seed(1), denoise_last=True, **run)
    assert torch.allclose(last, plain + 0.25 * field.score(plain, 0.5), rtol=0, atol=1e-12)
    assert torch.allclose(last, mu.expand(4, 2), rtol=0, atol=1e-12)  # Tweedie of a one-point set: mu
    to0 = [3.0, 1.0, 0.0]
    a = ss.sample(field, x0, to0, generator=torch.Generator().manual_seed(1), **run)
    b = ss.sample(field, x0, to0, generator=torch.Generator().manual_seed(1), denoise_last=True, **run)
    assert torch.isfinite(b).all() and torch.equal(a, b)


def test_bootstrap_defaults_refusals_and_memorized_fraction_interval():
    v = torch.randn(30, generator=torch.Generator().manual_seed(8), dtype=torch.float64)
    assert median_interval(v) == median_interval(v, seed=0) != median_interval(v, seed=1)  # default seed 0
    with pytest.raises(ConfigError):
        mean_interval(v, n_boot=0)
    # 5 samples at 1e-3 from a training point (ratio d1/d2 ~ 1e-3) and 3 far from all (ratio ~ 1): the interval is
    # that of the mean of the independently computed 0/1 indicators d1/d2 < 1/3
    g = torch.Generator().manual_seed(9)
    train = 10.0 * torch.randn(12, 4, generator=g, dtype=torch.float64)
    samples = torch.cat([train[:5] + 1e-3, 100.0 + torch.randn(3, 4, generator=g, dtype=torch.float64)])
    d = torch.cdist(samples, train).sort(1).values
    memorized = (d[:, 0] / d[:, 1] < 1 / 3).double()
    assert memorized.tolist() == [1.0] * 5 + [0.0] * 3
    assert memorized_fraction_interval(samples, train) == mean_interval(memorized)


def test_knn_precision_counts_the_ball_boundary_and_w2_subsamples_rows():
    # real 0, 1, 2, 3 with k = 1: every ball has radius 1; fakes 4 and -1 lie on a boundary (covered), 1.5 inside,
    # 10 outside: precision 3/4; every real point is within 2.5 (the fakes' radii) of a fake: recall 1
    real = torch.tensor([[0.0], [1.0], [2.0], [3.0]], dtype=torch.float64)
    fake = torch.tensor([[4.0], [10.0], [-1.0], [1.5]], dtype=torch.float64)
    assert knn_precision_recall(real, fake, k=1) == {"precision": 0.75, "recall": 1.0}
    # two sets of repeated points p, q (200 and 300 rows, 3-D), subsampled to 50 rows each: W2 = |p - q| = 5
    p, q = torch.tensor([1.0, 2.0, 3.0]), torch.tensor([4.0, 6.0, 3.0])
    w = wasserstein_2d(p.expand(200, 3).clone(), q.expand(300, 3).clone(), max_points=50)
    assert abs(w - 5.0) <= 1e-9
    # max_points=None: no subsampling; two points each, shifted by 1: W2 = 1
    a = torch.tensor([[0.0, 0.0], [2.0, 0.0]], dtype=torch.float64)
    assert abs(wasserstein_2d(a, a + torch.tensor([0.0, 1.0], dtype=torch.float64), max_points=None) - 1.0) <= 1e-12


def test_expansiveness_profile_uses_at_most_half_the_training_set_as_pairs():
    # 4 points on a line at 0, 1, 3, 7 have 3 distinct nearest-neighbour pairs; the profile measures gamma_ex on the
    # closest min(n_queries, n // 2) = 2 of them, so n_queries = 16 gives exactly the numbers of n_queries = 2
    tr = torch.tensor([[0.0, 0.0], [1.0, 0.0], [3.0, 0.0], [7.0, 0.0]], dtype=torch.float64)
    assert closest_pairs(tr, 4)[0].shape[0] == 3
    f = ss.EmpiricalScore(tr, dtype="float64", device="cpu")
    kw = dict(typical=False)
    runs = [
        expansiveness_profile(f, tr, [0.5, 1.0], n_queries=nq, generator=torch.Generator().manual_seed(5), **kw)
        for nq in (2, 16)
    ]
    assert runs[0]["gamma_ex"] == runs[1]["gamma_ex"]
    assert runs[0]["spectral_norm_switching"] == runs[1]["spectral_norm_switching"]


def test_nn_ratio_skips_duplicate_training_images_and_distance_summary_values():
    # training image 0 stored twice: a sample 0.1 from it has d1 = d2 = 0.1 to the two copies; its ratio is taken
    # against the nearest *distinct* image (row 2 at distance 2.9): 0.1 / 2.9
    train = torch.tensor([[0.0, 0.0], [0.0, 0.0], [3.0, 0.0], [0.0, 9.0]], dtype=torch.float64)
    samples = torch.tensor([[0.1, 0.0], [1.5, 0.0]], dtype=torch.float64)
    r = nn_ratio(samples, train)
    assert abs(float(r[0]) - 0.1 / 2.9) <= 1e-12 and abs(float(r[1]) - 1.0) <= 1e-12
    # nearest distances 1, 2, ..., 5 (samples on a ray from the lone point): median 3, q10 1.4, q90 4.6 (linear)
    one = torch.zeros(1, 2, dtype=torch.float64)
    ray = torch.tensor([[1.0, 0.0], [2.0, 0.0], [3.0, 0.0], [4.0, 0.0], [5.0, 0.0]], dtype=torch.float64)
    s = distance_summary(ray, one)
    assert abs(s["median"] - 3.0) <= 1e-12 and abs(s["q10"] - 1.4) <= 1e-12 and abs(s["q90"] - 4.6) <= 1e-12
    assert abs(s["median_per_sqrt_dim"] - 3.0 / 2**0.5) <= 1e-12


def test_json_conversion_of_dtypes_devices_and_refusal_of_unknown_objects():
    assert to_jsonable({"dtype": torch.float64, "device": torch.device("cpu")}) == {
        "dtype": "torch.float64",
        "device": "cpu",
    }
    with pytest.raises(TypeError):
        to_jsonable({"x": object()})


def test_auto_index_kind_by_size_and_rank():
    # dense below IVF_MIN_POINTS rows; from there IVF up to rank IVF_MAX_RANK (or unknown rank), flat above it
    assert resolve_kind("auto", IVF_MIN_POINTS - 1) == "dense"
    assert resolve_kind("auto", IVF_MIN_POINTS) == "ivf"
    assert resolve_kind("auto", 5 * IVF_MIN_POINTS) == "ivf"
    assert resolve_kind("auto", 5 * IVF_MIN_POINTS, rank=IVF_MAX_RANK + 1) == "flat"
    assert resolve_kind("flat", 10) == "flat"


def test_empirical_score_refuses_a_non_positive_temperature_function():
    y = torch.randn(10, 2, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    for t in (0.0, -0.5):
        f = ss.EmpiricalScore(y, temperature=lambda s, t=t: torch.full_like(s, t), dtype="float64", device="cpu")
        with pytest.raises(ConfigError):
            f.score(y[:3] + 0.1, 0.5)


def test_seed_note_only_when_several_seeds_merge(tmp_path):
    # a trained experiment's page says its figures are one seed's only when claims merge several seeds
    from test_report_merge_folders import _merged, _run

    one, two = tmp_path / "one", tmp_path / "two"
    _run("--seeds", "0", "--out", str(one))
    _run("--seeds", "0,1", "--out", str(two))
    note = "claims merge seeds"
    assert not any(note in n for n in _merged(tmp_path / "m1", one)["notes"])
    assert [n for n in _merged(tmp_path / "m2", two)["notes"] if note in n] == [
        "figures, metrics and findings shown are seed 0's; claims merge seeds [0, 1]"
    ]


def test_point_set_scratch_grows_for_larger_chunks():
    # reused scratch chunks with an extra column: a later call with larger chunks must get a larger scratch
    g = torch.Generator().manual_seed(11)
    y = torch.randn(10, 3, generator=g, dtype=torch.float64) + 2.0
    pts = PointSet(y, dtype=torch.float64, device=torch.device("cpu"))
    for rows in (2, 4):
        for a, v in pts.chunks(rows=rows, extra=1, reuse=True):
            assert torch.allclose(v[:, :3], y[a : a + v.shape[0]] - pts.center, rtol=0, atol=1e-15)
            assert v.shape[0] == min(rows, 10 - a)
