"""The verdict rule over seeds (smoothscore.verdict): closed cases checked against an independent t-bound."""

import math

import pytest
from scipy import stats

from smoothscore.errors import ConfigError
from smoothscore.verdict import count, decide, merge_claims


def _lower(values, level=0.9):
    n = len(values)
    m = sum(values) / n
    s = stats.tstd(values)
    return m - stats.t.ppf(level, n - 1) * s / math.sqrt(n)


def test_seeded_pass_when_every_seed_holds_and_bound_clears():
    v = [0.60, 0.62, 0.61]
    assert _lower(v) == pytest.approx(0.61 - 1.8856 * 0.01 / math.sqrt(3), abs=1e-4)
    d = decide(v, ">=", 0.5, seeded=True)
    assert d["verdict"] == "pass" and d["mean"] == pytest.approx(0.61) and d["spread"] == pytest.approx(0.01)
    assert d["bound"][0] == pytest.approx(_lower(v), rel=1e-12)


def test_seeded_inconclusive_when_spread_covers_margin_or_one_seed_fails():
    v = [0.51, 0.52, 0.90]  # every seed holds, but the lower bound is below 0.5
    assert _lower(v) < 0.5
    assert decide(v, ">=", 0.5, seeded=True)["verdict"] == "inconclusive"
    assert decide([0.6, 0.4, 0.65], ">=", 0.5, seeded=True)["verdict"] == "inconclusive"
    assert decide([0.9], ">=", 0.5, seeded=True)["verdict"] == "inconclusive"  # one seed: an anecdote
    assert decide([0.9, float("nan"), 0.9], ">=", 0.5, seeded=True)["verdict"] == "inconclusive"


def test_seeded_fail_mirrors_pass_and_lower_is_better_ops():
    assert decide([0.30, 0.31, 0.29], ">=", 0.5, seeded=True)["verdict"] == "fail"
    assert decide([0.30, 0.31, 0.29], "<", 0.5, seeded=True)["verdict"] == "pass"
    assert decide([0.60, 0.61, 0.62], "<=", 0.5, seeded=True)["verdict"] == "fail"
    # identical values on the threshold: non-strict holds (bound == threshold), strict fails
    assert decide([0.5, 0.5], ">=", 0.5, seeded=True)["verdict"] == "pass"
    assert decide([0.5, 0.5], ">", 0.5, seeded=True)["verdict"] == "fail"


def test_exact_and_deterministic_claims():
    assert decide([True, True], "is", True, seeded=True)["verdict"] == "pass"
    assert decide([True, False, True], "is", True, seeded=True)["verdict"] == "inconclusive"
    assert decide([False, False], "is", True, seeded=True)["verdict"] == "fail"
    assert decide([True], "is", True, seeded=True)["verdict"] == "inconclusive"
    assert decide(["chords"], "==", "chords", seeded=False)["verdict"] == "pass"
    assert decide([0.4], ">=", 0.5, seeded=False)["verdict"] == "fail"
    assert decide([None], ">=", 0.5, seeded=False)["verdict"] == "inconclusive"
    with pytest.raises(ConfigError):
        decide([1.0], "~", 1.0, seeded=False)


def _claim(cid, value, op=">=", thr=0.5, **kw):
    return dict(
        {"id": cid, "statement": cid, "value": value, "op": op, "threshold": thr, "details": "", "passed": None}, **kw
    )


def test_merge_claims_by_id_across_seeds():
    runs = [
        {"claims": [_claim("a", 0.6), _claim("exact", 1.0, deterministic=True), _claim("b", 0.2)]},
        {"claims": [_claim("b", 0.3), _claim("a", 0.61), _claim("exact", 1.0, deterministic=True)]},
        {"claims": [_claim("a", 0.62, ci=[0.5, 0.7])]},
    ]
    m = {c["id"]: c for c in merge_claims(runs, [0, 1, 2], trains=True)}
    assert list(m) == ["a", "exact", "b"]
    assert m["a"]["values"] == [0.6, 0.61, 0.62] and m["a"]["seeds"] == [0, 1, 2]
    assert m["a"]["value"] == pytest.approx(0.61) and m["a"]["verdict"] == "pass" and m["a"]["passed"] is True
    assert m["a"]["cis"] == [None, None, [0.5, 0.7]]
    assert m["exact"]["values"] == [1.0] and m["exact"]["verdict"] == "pass" and m["exact"]["deterministic"]
    assert m["b"]["seeds"] == [0, 1] and m["b"]["verdict"] == "fail"
    assert count(list(m.values())) == {"pass": 2, "fail": 1, "inconclusive": 0}
    # an experiment that trains nothing: one value per claim, from the first seed
    one = merge_claims(runs[:1], [5], trains=False)
    assert [c["values"] for c in one] == [[0.6], [1.0], [0.2]] and [c["verdict"] for c in one] == [
        "pass",
        "pass",
        "fail",
    ]
