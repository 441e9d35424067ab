"""The fail side of the verdict rule uses the upper end U of the t-interval (issue 18): three seeds that each fail
``>= 0.5`` but whose interval reaches past 0.5 are inconclusive, not fail; the bound is checked against a hand
computed t-interval (t_{0.9, 2} = 1.885618...)."""

import math

import pytest

from smoothscore.verdict import decide


def _interval(xs, t=1.8856180831641272):
    n = len(xs)
    m = sum(xs) / n
    sd = math.sqrt(sum((x - m) ** 2 for x in xs) / (n - 1))
    return m - t * sd / math.sqrt(n), m + t * sd / math.sqrt(n)


@pytest.mark.parametrize(
    "values, op, want",
    [
        ([0.49, 0.48, 0.10], ">=", "inconclusive"),  # every seed fails, U = 0.5987 > 0.5
        ([0.49, 0.48, 0.47], ">=", "fail"),  # U = 0.4909 < 0.5
        ([0.51, 0.52, 0.90], "<=", "inconclusive"),  # mirrored: L = 0.4013 < 0.5
        ([0.51, 0.52, 0.53], "<=", "fail"),
        ([0.49, 0.48, 0.10], ">", "inconclusive"),
    ],
)
def test_fail_needs_the_whole_interval_on_the_failing_side(values, op, want):
    out = decide(values, op, 0.5, seeded=True)
    lo, hi = _interval(values)
    assert out["bound"] == pytest.approx([lo, hi], abs=1e-12)
    assert out["verdict"] == want
