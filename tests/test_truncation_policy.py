"""Never slower than exact (issue 20, item 1): the default truncation policy times a pilot of the queries against
the exact kernel and remembers the verdict per noise level. It picks the exact kernel where nothing certifies
(full-rank data, large sigma) and truncation where it pays (low-rank data, small sigma); on every path —
truncated, pilot then exact, remembered exact — the result is within ``last_certificate`` of a float64 brute
force. The dense lower-bound index (small sets) keeps the search contract on real images."""

import math

import pytest
import torch

import smoothscore as ss
from smoothscore.data.arrays import PointSet
from smoothscore.errors import ConfigError
from smoothscore.scores.truncation import PAYS, REPROBE, NeighbourTruncation, check_policy, noise_key
from smoothscore.search.dense_bound_index import DenseLowerBoundIndex, dense_rank_cap

RND = 1e-10


def brute(y, x, sigma):
    return torch.softmax(-(torch.cdist(x, y) ** 2) / (2 * sigma**2), 1) @ y


def low_rank(n, D, r, noise, seed):
    g = torch.Generator().manual_seed(seed)
    basis = torch.linalg.qr(torch.randn(D, r, generator=g, dtype=torch.float64))[0].T
    y = torch.randn(n, r, generator=g, dtype=torch.float64) @ basis + noise * torch.randn(
        n, D, generator=g, dtype=torch.float64
    )
    return y + 1.0, g


def test_auto_picks_exact_on_full_rank_large_sigma_and_remembers():
    g = torch.Generator().manual_seed(0)
    y = torch.randn(3000, 48, generator=g, dtype=torch.float64)
    x = y[:300] + 0.5 * torch.randn(300, 48, generator=g, dtype=torch.float64)
    tr = ss.EmpiricalScore(y, tolerance=1e-6, dtype="float64", device="cpu")
    ref = brute(y, x, 3.0)
    out = tr.denoise(x, 3.0)  # pilot of 128 queries: nothing certifies, the rest exact
    assert tr._truncator.last_decision == "pilot, exact" and tr.last_fraction_truncated == 0.0
    assert tr.last_certificate == 0.0 and (out - ref).norm(dim=1).max() <= RND
    assert tr._truncator._memo[((True, noise_key(torch.tensor([1 / 9.0]))), 9)][0] >= PAYS  # 300 queries: bucket 9
    for _ in range(REPROBE):  # remembered: no pilot, exact kernel only, then measured again
        out = tr.denoise(x, 3.0)
        assert tr._truncator.last_decision == "exact (remembered)" and (out - ref).norm(dim=1).max() <= RND
    tr.denoise(x, 3.0)
    assert tr._truncator.last_decision.startswith("pilot")


def test_auto_picks_truncation_on_low_rank_small_sigma():
    # 10,000 points near a 4-dim subspace of R^256: the dense bound scans 5 coordinates per row where the exact
    # kernel reads 256 twice, and K = 4 candidates certify — truncation is several times faster, so it is chosen
    y, g = low_rank(10_000, 256, 4, 1e-3, seed=1)
    x = y[:400] + 0.01 * torch.randn(400, 256, generator=g, dtype=torch.float64)
    tr = ss.EmpiricalScore(y, tolerance=1e-8, dtype="float64", device="cpu")
    ref = brute(y, x, 0.01)
    for decision in ("pilot, truncated", "truncated (remembered)", "truncated (remembered)"):
        out = tr.denoise(x, 0.01)
        assert tr._truncator.last_decision == decision and tr.last_fraction_truncated == 1.0
        assert 0 < tr.last_certificate <= 1e-8 and (out - ref).norm(dim=1).max() <= tr.last_certificate + RND
    assert tr._truncator.index.kind == "dense" and tr._truncator.index.rank <= dense_rank_cap(256)


@pytest.mark.parametrize("policy", ["auto", "always"])
def test_every_path_within_certificate(policy):
    # small, mixed and large sigma; the pilot's certified queries keep their certificate whatever the rest does
    y, g = low_rank(4000, 32, 3, 1e-2, seed=2)
    x = y[:300] + 0.05 * torch.randn(300, 32, generator=g, dtype=torch.float64)
    tr = ss.EmpiricalScore(y, tolerance=1e-7, dtype="float64", device="cpu", truncation_policy=policy)
    ex = ss.EmpiricalScore(y, dtype="float64", device="cpu")
    seen = set()
    for sigma in (0.01, 0.1, 0.3, 3.0, 0.01, 0.1, 0.3, 3.0):
        ref = brute(y, x, sigma)
        out = tr.denoise(x, sigma)
        assert tr.last_certificate <= 1e-7 and (out - ref).norm(dim=1).max() <= tr.last_certificate + RND
        s_ref = (ref - x) / sigma**2
        assert (tr.score(x, sigma) - s_ref).norm(dim=1).max() <= tr.last_certificate + RND / sigma**2
        lp = tr.log_prob(x, sigma)
        assert (lp - ex.log_prob(x, sigma)).abs().max() <= tr.last_certificate + RND / sigma**2
        seen.add(tr.last_fraction_truncated > 0)
    if policy == "always":
        assert seen == {True, False}


def test_policy_keyword_and_key():
    with pytest.raises(ConfigError, match="policy"):
        check_policy("sometimes")
    with pytest.raises(ConfigError, match="policy"):
        NeighbourTruncation(None, policy="never")
    # sigma within a factor 2^(1/8) share a key; distinct decades do not
    k = [noise_key(torch.tensor([1.0 / s**2])) for s in (0.1, 0.1005, 0.2, 1.0)]
    assert k[0] == k[1] != k[2] != k[3]
    assert noise_key(torch.tensor([math.inf])) is None


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_dense_index_certificate_covers_every_row_on_images(dtype):
    # the search contract on real images (digits 8x8, full rank): every row not returned has |u - v|^2 >= tau
    y = ss.data.load_digits(size=8).x.reshape(1797, -1).to(torch.float64)
    pts = PointSet(y, dtype=dtype, device=torch.device("cpu"))
    index = DenseLowerBoundIndex(pts, block_elements=50_000)  # several query blocks
    assert index.rank == dense_rank_cap(64) == 8
    g = torch.Generator().manual_seed(4)
    u = pts.rows(torch.arange(0, 1797, 9), torch.float64) + 0.05 * torch.randn(200, 64, generator=g)
    d2 = torch.cdist(u, pts.rows(torch.arange(1797), torch.float64)) ** 2
    for k in (1, 4, 64):
        idx, tau, tau_k = index.search(u, k)
        dropped = torch.ones_like(d2, dtype=torch.bool).scatter_(1, idx, False)
        assert bool((torch.where(dropped, d2, math.inf).min(1).values >= tau).all()) and bool((tau <= tau_k).all())
        assert idx.shape == (200, k) and bool((tau > 0).all())  # never vacuous here
        # the returned rows are the k smallest lower bounds (the nearest row among them for k >= 4)
        if k >= 4:
            assert bool((idx == d2.argmin(1, keepdim=True)).any(1).float().mean() > 0.95)


def test_unconditional_auto_policy_within_certificate_on_every_path():
    # the unconditional field takes the same timed policy (truncation_policy="auto"): whichever path a call takes,
    # the score is within last_certificate of the exact float64 stream; near the data (truncation certifies) and far
    # from it (the heavy tail forces the exact kernel)
    y, g = low_rank(1500, 32, 3, 1e-3, seed=4)
    x = y[:40] + 0.01 * torch.randn(40, 32, generator=g, dtype=torch.float64)
    kw = dict(sigma_min=0.005, sigma_max=5.0, mode="optimal", dtype="float64", device="cpu")
    ex = ss.UnconditionalEmpiricalScore(y, **kw)
    tr = ss.UnconditionalEmpiricalScore(y, tolerance=1e-6, truncation_policy="auto", **kw)
    decisions = []
    for q in (x, x, x + 3.0, x + 3.0):
        ref = ex.score(q)
        err = float((tr.score(q) - ref).norm(dim=1).max())
        assert tr.last_certificate <= 1e-6
        assert err <= tr.last_certificate + 1e-9 * float(ref.norm(dim=1).max())
        decisions.append(tr._truncator.last_decision)
    # 40 queries: the first call is all pilot; later calls of the same quantity and size reuse its verdict
    assert decisions[0] == "pilot" and all(d.endswith("(remembered)") for d in decisions[1:]), decisions
    with pytest.raises(ConfigError, match="policy"):
        ss.UnconditionalEmpiricalScore(y, tolerance=1e-6, truncation_policy="never")
