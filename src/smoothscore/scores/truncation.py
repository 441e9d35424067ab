"""Certified neighbour truncation of the exact scores.

Every exact score here is a softmax over training points whose per-point weight is a **non-increasing function of
the squared distance** ``r_j^2 = |x - y_j|^2``:

* the ESF (Paper A Eq. 2; Paper B Eq. 2, temperature Sec. 4.2): ``a_j = pi_j exp(-r_j^2 / (2 sigma^2 T))``;
* the unconditional p_MN score (Paper B Eq. 5 and its exact sum over levels): ``a_j = exp(g(r_j^2) / T)`` with
  ``g(r^2) = LSE_i(c_i - r^2 / (2 sigma_i^2))`` (a log-sum of decreasing terms) or, for the optimal level,
  ``g(r^2) = max_{s^2} (-(d - 2)/2 log s^2 - r^2 / (2 s^2))`` over the allowed s^2 (a maximum of decreasing
  functions, ~ ``-(d - 2) log r``: a heavy, polynomial tail — the bound below does not assume a Gaussian tail).

Truncation keeps a set ``K`` of candidates per query and certifies the rest: if every dropped point has
``r_j^2 >= tau`` then its weight is at most ``a(tau)`` (monotonicity), so the dropped mass is
``D <= A_drop a(tau)`` (``A_drop`` = number of dropped points, or their total ``pi``) and, with ``S`` the exact kept
mass, the dropped weight fraction is ``eps = D / (S + D) <= delta = D_b / (S + D_b)``. Consequences (stated on
each field, tested against float64 brute force):

* posterior mean: ``|m - m_K| = eps |m_drop - m_K| <= delta (R + |m_K - c|)``, ``R = max_j |y_j - c|`` (every
  mean of training points lies in the ball of radius R about the centre ``c``); the score error is that / sigma^2;
* log-density / potential: ``0 <= log(S + D) - log S <= log(1 + D_b / S)`` (times T for the tempered potential);
* unconditional score ``s = sum_j w_j b_j (y_j - x)`` with ``b_j <= b_max``: ``|s - s_K| <= delta
  (b_max (|x - c| + R) + |s_K|)``.

Finding the candidates (:mod:`~smoothscore.search.lower_bound_index`): the K nearest by a **lower bound** on the
distance, the squared distance between the (p + 1)-dim embeddings ``e(u) = [P u, |P_perp u|]`` and
``e(v) = [P v, |P_perp v|]`` (P: top-p principal directions, ``u = x - c``, ``v = y - c``). An index search returns
the candidates and ``tau`` with **every row not returned at squared distance >= tau**; the candidates' distances
are then computed exactly.

* Flat index (FAISS ``IndexFlatL2``; below 20,000 points or above PCA rank 16): ``tau`` = the K-th lower bound less
  a float32 margin. Linear in n per query.
* IVF index (FAISS ``IndexIVFFlat`` over n/32 k-means cells of the embeddings; from 20,000 points of rank <= 16): every
  cell carries a certified lower bound ``L_j(u)`` on the lower bound of each of its rows (its radius in the P-part,
  its interval of ``|P_perp v|``); ``tau = min(K-th visited lower bound, min over unvisited cells of L_j) - margin``.
  Round 1 visits the ``n_probe`` cells of nearest centroid and bounds no cell (``tau = 0``), but gives the K-th
  visited bound ``tau_k``. A query the certificate would accept at ``tau_k`` gets, by bisection over the
  (monotone) field bound, the smallest certifying ``reach``; the next round visits every cell with
  ``L_j <= reach + margin`` — so the unvisited cells are all beyond reach — and keeps K. Sublinear for data near a
  low-dimensional subspace (docs/benchmarks.md: 1-2.5% of the rows at small sigma, n = 200,000, rank 10).

Growth and give-up: a query not certified at ``tau_k`` either doubles K (up to ``k_max`` = min(1,024, M/4)) when its
dropped-fraction bound at ``tau_k`` is already below ``give_up`` (1e-3; judged from K = 32 on) or goes to the exact
streamed kernel at once (certificate 0), as do queries left after ``max_rounds`` rounds. For full-rank data the
bound is loose and the exact kernel runs after one or two short searches. A round is not started once the work
spent (rows bounded times p + 1, plus 3 K D per candidate round) exceeds half of the exact kernel's 2 n D
multiply-adds per query (``work_budget``), which bounds the work of the growth rounds (docs/benchmarks.md).

Never slower than exact (``policy="auto"``, the default of ``EmpiricalScore`` and ``UnconditionalEmpiricalScore``).
Whether the bound pays depends on the data (rank, residual norms) and on sigma, and the fields cannot know it in
advance; so the decision is timed. A call's verdict is remembered per key — the noise level ``1 / (sigma^2 T)`` in
buckets of 2^(1/4) (:func:`noise_key`; the unconditional field, whose levels are fixed, keys by quantity) and the call
size in powers of 2: a call with no verdict truncates a **pilot** (all queries up to 2 x ``pilot`` = 256, else
``max(pilot, N / 16)`` of them), times it against the exact kernel's time per query at that size (timed once per size
bucket, on the pilot, then the smallest time seen), and runs the rest truncated if the pilot took less than ``PAYS`` =
0.9 of the exact time, else exactly. A remembered "exact" verdict skips the pilot (and is timed again after ``REPROBE``
= 64 calls); a remembered "truncated" verdict truncates the whole call, times it, and holds until a call is timed slower
than exact (hysteresis: 0.9 to enter, 1 to leave). Times are CPU seconds of the process on the CPU
(``time.process_time``: other jobs' load counts less), wall seconds after a CUDA synchronisation on a GPU. Every path
keeps the certificate: queries served by truncation carry their bound, those served by the exact kernel 0, and
``last_certificate`` is the largest. Costs: the first call of a size bucket runs the exact kernel on the pilot once more
(calibration); a first call at a noise level where truncation loses pays at most the pilot's excess. Verdicts are
timing-based, so which path a call takes may differ between runs; the result never differs by more than the certificate.
``policy="always"`` (the class default) truncates every call.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import torch

from ..errors import ConfigError
from ..search.lower_bound_index import make_index


class NeighbourTruncation:
    """Run a certified truncated evaluation (module doc) with field-specific callbacks:

    * ``kept(active, idx, r2, rows, tau) -> (log_s (q,), log_t (q,), value (q, D), valid (q,) or None)``: the exact
      log kept mass, the log of the bound ``D_b`` on the dropped mass (every dropped row has squared distance
      ``>= tau``) and the kept-normalised value for the queries ``active`` with candidate rows ``rows`` (q, k, D)
      at squared distances ``r2`` (q, k); ``valid`` marks queries whose evaluation the truncation can certify;
      ``log_t`` and the bound must be non-increasing in ``tau`` (every field's are);
    * ``bound(delta, log_ratio, value, active) -> (q,)``: error bound of the returned quantity;
    * ``exact(active) -> (log_s, value)``: the exact kernel for uncertified queries.

    ``index``: ``"auto"``, ``"flat"`` or ``"ivf"`` (:func:`~smoothscore.search.lower_bound_index.make_index`; its
    keywords, e.g. ``nlist``, ``n_probe``, ``rank``, pass through).
    """

    def __init__(
        self,
        points,
        *,
        index: str = "auto",
        k0: int | None = None,
        k_max: int = 1024,
        give_up: float = 1e-3,
        max_rounds: int = 12,
        block_elements: int = 1 << 22,
        policy: str = "always",
        pilot: int = 128,
        work_budget: float = 1.0,
        **index_kw,
    ):
        self.points, self.k0, self.k_max, self.block_elements = points, k0, int(k_max), int(block_elements)
        self.policy, self.pilot, self.work_budget = check_policy(policy), max(1, int(pilot)), float(work_budget)
        self._memo: dict = {}  # key -> [truncated / exact time ratio, calls since timed]
        self._rates: dict = {}  # size bucket -> seconds per query of the exact kernel (fixed costs included)
        self.last_decision = ""
        self.give_up, self.max_rounds = float(give_up), int(max_rounds)
        self.index_kind, self.index_kw = index, index_kw
        self._index = None
        self.last_fraction_truncated = 0.0
        #: statistics of the last call: search rounds, rows and cells scanned per query (summed over rounds)
        self.last_stats = {"rounds": 0, "points": 0.0, "cells": 0.0}

    @property
    def index(self):
        if self._index is None:
            self._index = make_index(self.points, self.index_kind, **self.index_kw)
        return self._index

    def run(self, u: torch.Tensor, tol: float, kept: Callable, bound: Callable, exact: Callable, key=None):
        """``(lse (N,), value (N, D), certificate)``; the certificate is 0 for queries the exact kernel served.

        ``exact(act)`` receives query indices in increasing order (all N of them: ``arange(N)``, no gather needed).
        ``policy="always"`` (default) truncates every call. ``"auto"`` (the exact fields' default) is never much slower
        than the exact kernel (module doc, "Never slower than exact"): calls with the same ``key`` (the ESF passes the
        noise level, bucketed; the unconditional field the quantity) reuse the last verdict; otherwise a pilot of the
        first queries is truncated and timed against the exact kernel's time per query at that size, and the rest go to
        whichever was faster."""
        N, D = u.shape
        every = torch.arange(N, device=u.device)
        key = None if key is None else (key, _bucket(N))  # a verdict holds for calls of similar size
        memo = self._memo.get(key) if key is not None and self.policy == "auto" else None
        if memo is not None and memo[0] >= PAYS and memo[1] < REPROBE:  # exact paid here: no pilot
            memo[1] += 1
            lse, val = self._timed_exact(exact, every)
            return self._done(lse, val, 0.0, N, N, "exact (remembered)")
        lse = torch.empty(N, dtype=u.dtype, device=u.device)
        val = torch.empty(N, D, dtype=u.dtype, device=u.device)
        if self.policy == "always" or N == 0:
            cert, left = self._rounds(u, every, lse, val, tol, kept, bound, exact)
            return self._done(lse, val, cert, left, N, "truncated")
        if memo is not None and memo[0] < PAYS:  # truncation paid here: all of it, timed to keep the verdict
            t0 = self._clock()
            cert, left = self._rounds(u, every, lse, val, tol, kept, bound, exact)
            ratio = self._ratio(self._clock() - t0, N)
            # hysteresis: a verdict for truncation is dropped only once it is timed slower than exact (PAYS to
            # enter, 1 to leave: timing noise does not flip it); no exact timing at this size: keep the verdict
            memo[0] = (ratio if ratio < 1 else math.inf) if math.isfinite(ratio) else memo[0]
            return self._done(lse, val, cert, left, N, "truncated (remembered)")
        P = N if N <= 2 * self.pilot else max(self.pilot, N // 16)
        pilot = every[:P]
        _ = self.index  # built (once) outside the timing
        t0 = self._clock()
        cert, left = self._rounds(u, pilot, lse, val, tol, kept, bound, exact)
        t_pilot = self._clock() - t0
        if _bucket(P) not in self._rates:  # calibrate once per size: the exact kernel on the pilot
            self._timed_exact(exact, pilot)
        ratio = self._ratio(t_pilot, P)
        if key is not None:
            self._memo[key] = [ratio, 0]
        rest = every[P:]
        if not rest.numel():
            return self._done(lse, val, cert, left, N, "pilot")
        if ratio < PAYS:
            c2, left2 = self._rounds(u, rest, lse, val, tol, kept, bound, exact)
            return self._done(lse, val, max(cert, c2), left + left2, N, "pilot, truncated")
        lse[rest], val[rest] = self._timed_exact(exact, rest)
        return self._done(lse, val, cert, left + rest.numel(), N, "pilot, exact")

    def _clock(self) -> float:
        """CPU seconds of this process on the CPU (other jobs' load counts less), wall seconds after a CUDA
        synchronisation on a GPU."""
        if self.points.device.type == "cuda":
            torch.cuda.synchronize(self.points.device)
            return time.perf_counter()
        return time.process_time()

    def _timed_exact(self, exact: Callable, act: torch.Tensor):
        """``exact(act)``, timed: the exact kernel's seconds per query, smallest seen per size bucket."""
        t0 = self._clock()
        out = exact(act)
        if act.numel():
            b, rate = _bucket(act.numel()), (self._clock() - t0) / act.numel()
            self._rates[b] = min(self._rates.get(b, math.inf), rate)
        return out

    def _ratio(self, seconds: float, queries: int) -> float:
        """Truncated / exact seconds per query at this call size (``inf`` before the exact kernel was timed at a
        size of the same bucket: exact is chosen)."""
        rate = self._rates.get(_bucket(queries)) if queries else None
        return math.inf if rate is None else seconds / queries / rate

    def _done(self, lse, val, cert, left, N, decision):
        self.last_fraction_truncated = 1.0 - left / max(N, 1)
        self.last_decision = decision
        if left == N:
            cert = 0.0
        return lse, val, cert

    def _rounds(self, u, sel, lse, val, tol, kept, bound, exact):
        """The search rounds (module doc) for the queries ``sel``; results written into ``lse``, ``val``; returns
        ``(largest certificate, queries sent to the exact kernel)``."""
        N, D = u.shape
        n = self.points.n
        cert = torch.zeros(N, dtype=torch.float64, device=u.device)
        reach = torch.full((N,), -math.inf, dtype=torch.float64, device=u.device)
        active, n_sel = sel, max(sel.numel(), 1)
        work, budget = 0.0, self.work_budget * 2 * n * D  # per query, in multiply-adds; exact: 2 n D
        p1 = self.index.rank + 1
        k = min(self.k0 or {"ivf": 16, "dense": 4}.get(self.index.kind, 32), n)  # docs/benchmarks.md
        rest = []
        k_max = min(self.k_max, n // 4)
        stats = {"rounds": 0, "points": 0.0, "cells": 0.0}
        while active.numel() and k <= k_max and stats["rounds"] < self.max_rounds:
            idx, tau, tau_k = self.index.search(u[active], k, reach[active])
            stats["rounds"] += 1
            stats["points"] += self.index.last_points * active.numel() / n_sel
            stats["cells"] += self.index.last_cells * active.numel() / n_sel
            work += self.index.last_points * p1 + 3 * k * D  # bounds scanned; gather, distances, weighted sum
            qb = max(1, self.block_elements // (k * D))
            still, gave_up, grow = [], [], False
            for a in range(0, active.numel(), qb):
                act, ix, t, t_k = active[a : a + qb], idx[a : a + qb], tau[a : a + qb], tau_k[a : a + qb]
                rows = self.points.rows(ix, u.dtype)  # (q, k, D)
                r2 = (rows - u[act, None]).square_().sum(2)

                def certify(t, act=act, ix=ix, r2=r2, rows=rows):
                    log_s, log_t, value, valid = kept(act, ix, r2, rows, t)
                    ls, log_t = log_s.to(torch.float64), log_t.to(torch.float64)
                    log_ratio = torch.nn.functional.softplus(log_t - ls)  # log(1 + D_b / S)
                    delta = torch.exp(log_t - torch.logaddexp(ls, log_t))
                    b = bound(delta, log_ratio, value, act).to(torch.float64)
                    ok = b <= tol if valid is None else (b <= tol) & valid
                    return ok, delta, log_s, value, b

                ok, delta, log_s, value, b = certify(t)
                lse[act[ok]], val[act[ok]], cert[act[ok]] = log_s[ok], value[ok], b[ok]
                # unvisited cells limit tau (IVF): if the k-th bound alone would certify, visit the cells below the
                # smallest certifying tau (bisection; the bound is monotone in tau) and keep k
                cells = ~ok & (t < t_k)
                more = torch.zeros_like(ok)
                if bool(cells.any()):
                    ok_k, delta_k = certify(torch.where(cells, t_k, t))[:2]
                    more = cells & ok_k
                    delta = torch.where(cells, delta_k, delta)
                    if bool(more.any()):
                        reach[act[more]] = self._needed(certify, t, t_k, r2.min(1).values, more)[more]
                # grow K only where the dropped fraction is already small (judged from K = 32 on); the rest go to
                # the exact kernel at once (doubling up to k_max at large sigma costs more than the exact kernel)
                hopeless = ~ok & ~more & (delta > self.give_up) & (k >= min(32, k_max))
                grow |= bool((~ok & ~more & ~hopeless).any())
                gave_up.append(act[hopeless])
                still.append(act[~ok & ~hopeless])
            active = torch.cat(still)
            rest.append(torch.cat(gave_up))
            if grow:
                k *= 2
            # work budget: a further round would cost (at least) what this one did; past the budget the queries
            # left go to the exact kernel
            if 2 * work > budget:
                break
        active = torch.cat(rest + [active]).sort().values  # in order: all N of them is the identity (no gather)
        self.last_stats = stats
        if active.numel():
            lse[active], val[active] = self._timed_exact(exact, active)
        return float(cert.max()) if N else 0.0, active.numel()

    @staticmethod
    def _needed(certify: Callable, lo: torch.Tensor, hi: torch.Tensor, r2min: torch.Tensor, sel: torch.Tensor):
        """Smallest certifying tau, to 1/256 of the bracket, where ``sel`` (certified at ``hi``, not at ``lo``); the
        bracket starts at the nearest candidate's squared distance (no smaller tau certifies a small tolerance)."""
        hi = torch.where(sel, hi, lo)
        mid = torch.minimum(torch.maximum(lo, r2min.to(lo.dtype)), hi)
        for _ in range(9):
            ok = certify(mid)[0]
            hi, lo = torch.where(ok, mid, hi), torch.where(ok, lo, mid)
            mid = 0.5 * (lo + hi)
        return hi


#: truncation is kept where it took less than this fraction of the exact kernel's time (a margin for timing noise)
PAYS = 0.9
#: a remembered "exact" verdict is timed again (by a pilot) after this many calls
REPROBE = 64


def _bucket(queries: int) -> int:
    """Call-size bucket for timings (powers of 2: a call's fixed costs weigh alike within one)."""
    return int(queries).bit_length()


def check_policy(policy: str) -> str:
    """``policy`` if ``"auto"`` or ``"always"``, else :class:`ConfigError`."""
    if policy not in ("auto", "always"):
        raise ConfigError(f"truncation policy must be 'auto' or 'always'; got {policy!r}")
    return policy


def noise_key(inv: torch.Tensor):
    """Memo key of a call: ``1 / (sigma^2 T)`` of its first query, in buckets of 2^(1/4) (sigma within ~9%)."""
    v = float(inv[0]) if inv.numel() else 1.0
    return round(4 * math.log2(v)) if v > 0 and math.isfinite(v) else None
