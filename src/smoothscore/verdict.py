"""The verdict rule: a claim evaluated over several training seeds gets ``"pass"``, ``"fail"`` or ``"inconclusive"``.

A claim is ``value op threshold`` with ``op`` in ``>=, >, <=, <`` (numbers) or ``==, is`` (exact values).

Rule (**adopted**; one rule for every experiment):

* **Deterministic claims** (experiments that train no network, and claims a training experiment marks
  ``deterministic=True``: exact scores, closed forms) keep one value: ``pass`` when ``value op threshold`` holds,
  ``fail`` when it does not, ``inconclusive`` only when the value is missing or NaN.
* **Seeded claims** (claims on trained networks), evaluated in ``n`` seeds with margins
  ``m_i = value_i - threshold`` (``threshold - value_i`` for ``<=``/``<``), mean ``m`` and sample standard
  deviation ``s``, and the one-sided 90% Student-t bounds ``L = m - t(0.9, n-1) s / sqrt(n)``,
  ``U = m + t(0.9, n-1) s / sqrt(n)``:

  - ``pass``  iff the claim holds in **every** seed **and** ``L`` clears the threshold (``L > 0``; ``L >= 0`` for
    the non-strict ``>=``/``<=``): the seed-to-seed spread does not cover the margin;
  - ``fail``  iff the claim fails in every seed and ``U`` is on the failing side (``U < 0``; ``U <= 0`` for strict
    ``>``/``<``);
  - ``inconclusive`` otherwise — in particular **with a single seed** (one trained network is an anecdote: there is
    no spread to compare the margin with), and when any seed's value is missing or NaN.

  Exact-valued seeded claims (``==``/``is``, e.g. booleans) pass when they hold in every one of at least two seeds,
  fail when they fail in every one of at least two seeds, and are inconclusive otherwise.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Sequence
from typing import Any

from .errors import ConfigError

PASS, FAIL, INCONCLUSIVE = "pass", "fail", "inconclusive"
VERDICTS = (PASS, FAIL, INCONCLUSIVE)
#: confidence level of the one-sided Student-t bound over seeds
LEVEL = 0.9
#: fewest seeds that can decide a seeded claim
MIN_SEEDS = 2

ORDER_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
}
EXACT_OPS = ("==", "is")


def holds(value: Any, op: str, threshold: Any) -> bool | None:
    """``value op threshold`` as a bool; ``None`` when the value is missing or NaN."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if op in ORDER_OPS:
        return bool(ORDER_OPS[op](float(value), float(threshold)))
    if op in EXACT_OPS:
        return bool(value == threshold)
    raise ConfigError(f"unknown claim operator {op!r}; known: {', '.join([*ORDER_OPS, *EXACT_OPS])}")


def to_passed(verdict: str) -> bool | None:
    """The ``passed`` field beside ``verdict``: ``True``/``False`` for pass/fail, ``None`` for inconclusive."""
    return True if verdict == PASS else False if verdict == FAIL else None


def t_quantile(level: float, dof: int) -> float:
    """Student-t quantile (scipy)."""
    # lazy: scipy loads only when a verdict needs its t quantile
    from scipy.stats import t

    return float(t.ppf(level, dof))


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def decide(values: Sequence[Any], op: str, threshold: Any, *, seeded: bool, level: float = LEVEL) -> dict[str, Any]:
    """Verdict of one claim from its per-seed ``values`` (see the module docstring for the rule).

    Returns ``{"verdict", "mean", "spread", "bound"}``: ``mean`` and ``spread`` (sample standard deviation, 0 for one
    value) of the numeric values (``None`` otherwise), and ``bound`` the one-sided interval ``[lo, hi]`` of the mean
    value at ``level`` (``None`` when undefined) — the bound the rule compares with the threshold.
    """
    values = list(values)
    if not values:
        raise ConfigError("a claim needs at least one value")
    each = [holds(v, op, threshold) for v in values]
    numeric = op in ORDER_OPS and all(_is_number(v) and math.isfinite(float(v)) for v in values)
    out: dict[str, Any] = {"mean": None, "spread": None, "bound": None}
    if numeric or (op in ORDER_OPS and all(_is_number(v) for v in values)):
        xs = [float(v) for v in values]
        n = len(xs)
        mean = sum(xs) / n
        sd = math.sqrt(sum((x - mean) ** 2 for x in xs) / (n - 1)) if n > 1 else 0.0
        out["mean"], out["spread"] = mean, sd
    if not seeded:
        v = each[0] if len(set(each)) == 1 else None
        out["verdict"] = INCONCLUSIVE if v is None else PASS if v else FAIL
        return out
    if None in each or len(values) < MIN_SEEDS:
        out["verdict"] = INCONCLUSIVE
        return out
    if not numeric:  # exact-valued claims: unanimity over >= MIN_SEEDS seeds
        out["verdict"] = PASS if all(each) else FAIL if not any(each) else INCONCLUSIVE
        return out
    n, mean, sd = len(values), out["mean"], out["spread"]
    half = t_quantile(level, n - 1) * sd / math.sqrt(n)
    lo, hi = mean - half, mean + half
    out["bound"] = [lo, hi]
    sign = 1.0 if op in (">=", ">") else -1.0
    thr = float(threshold)
    m_lo, m_hi = sorted((sign * (lo - thr), sign * (hi - thr)))  # margin interval: positive = holds
    strict = op in (">", "<")
    clears = m_lo > 0 or (not strict and m_lo >= 0)
    fails = m_hi < 0 or (strict and m_hi <= 0)
    out["verdict"] = PASS if all(each) and clears else FAIL if not any(each) and fails else INCONCLUSIVE
    return out


def _summary_value(values: list[Any], mean: float | None) -> Any:
    if mean is not None and len(values) > 1:
        return mean
    if len({repr(v) for v in values}) == 1:
        return values[0]
    return max(values, key=lambda v: sum(repr(w) == repr(v) for w in values))  # the most common value


def merge_claims(per_seed: Sequence[dict[str, Any]], seeds: Sequence[int], *, trains: bool) -> list[dict[str, Any]]:
    """Merge the claims of one experiment's seed runs **by claim id** (first-seen order).

    ``per_seed[i]`` is the ``results.json`` dict of seed ``seeds[i]``. A claim is seeded when the experiment
    ``trains`` and the claim is not marked ``deterministic``; a deterministic claim keeps the first seed's value
    (a note in ``details`` records it when other seeds disagree). Each merged claim has ``values`` (one per seed that
    recorded it), ``seeds``, ``value`` (the mean for several seeded values), ``mean``, ``spread``, ``bound``,
    ``verdict``, ``passed`` (True/False/None) and ``cis`` (per-seed bootstrap intervals over samples, when
    the experiment recorded them).
    """
    order: list[str] = []
    by_id: dict[str, list[tuple]] = {}
    for seed, res in zip(seeds, per_seed):
        for c in res.get("claims", []):
            if c["id"] not in by_id:
                order.append(c["id"])
                by_id[c["id"]] = []
            by_id[c["id"]].append((seed, c))
    merged = []
    for cid in order:
        rows = by_id[cid]
        first = rows[0][1]
        deterministic = bool(first.get("deterministic")) or not trains
        if deterministic:
            rows_used = rows[:1]
            disagree = [s for s, c in rows[1:] if repr(c["value"]) != repr(first["value"])]
        else:
            rows_used, disagree = rows, []
        values = [c["value"] for _, c in rows_used]
        d = decide(values, first["op"], first["threshold"], seeded=not deterministic)
        details = first.get("details") or ""
        if disagree:
            details = (details + "; " if details else "") + f"deterministic claim differs in seeds {disagree}"
        merged.append(
            {
                "id": cid,
                "statement": first["statement"],
                "op": first["op"],
                "threshold": first["threshold"],
                "details": details,
                "deterministic": deterministic,
                "seeds": [s for s, _ in rows_used],
                "values": values,
                "value": _summary_value(values, d["mean"]),
                "mean": d["mean"],
                "spread": d["spread"],
                "bound": d["bound"],
                "cis": [c.get("ci") for _, c in rows_used],
                "verdict": d["verdict"],
                "passed": to_passed(d["verdict"]),
            }
        )
    return merged


def verdict_of(c: dict[str, Any]) -> str:
    """The three-valued verdict of a merged claim (also of an old single-seed claim that has only ``passed``)."""
    if c.get("verdict"):
        return c["verdict"]
    return PASS if c.get("passed") is True else FAIL if c.get("passed") is False else INCONCLUSIVE


def count(claims: Sequence[dict[str, Any]]) -> dict[str, int]:
    """``{"pass": n, "fail": n, "inconclusive": n}`` of merged claims."""
    out = dict.fromkeys(VERDICTS, 0)
    for c in claims:
        out[verdict_of(c)] += 1
    return out
