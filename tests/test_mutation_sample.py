"""The stratified mutation sample's statistics (mutation/sample.py): the Wilson interval against its closed forms at
the edges, and the seeded draw."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "mutation"))
import sample  # noqa: E402

Z2 = 1.959963984540054**2


def test_wilson_interval_edges_and_middle():
    # k = 0: (0, z^2 / (n + z^2)); k = n: (n / (n + z^2), 1); k = 5 of 10: symmetric about 1/2
    lo, hi = sample.wilson_interval(0, 3)
    assert abs(lo) < 1e-15 and abs(hi - Z2 / (3 + Z2)) < 1e-15
    lo, hi = sample.wilson_interval(10, 10)
    assert abs(lo - 10 / (10 + Z2)) < 1e-15 and abs(hi - 1.0) < 1e-15
    lo, hi = sample.wilson_interval(5, 10)
    half = (
        Z2**0.5 * (0.25 / 10 + Z2 / 400) ** 0.5 / (1 + Z2 / 10)
    )  # centre 1/2, half-width z sqrt(pq/n + z^2/4n^2)/(1+z^2/n)
    assert abs(lo - (0.5 - half)) < 1e-15 and abs(hi - (0.5 + half)) < 1e-15
    assert sample.wilson_interval(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError):
        sample.wilson_interval(4, 3)


def test_stratified_draw_is_seeded_and_counts_equivalents():
    state = {
        "candidates": [(f"k{i}", f"job{i}") for i in range(20)],
        "equivalents": [{"key": f"e{i}", "line": i} for i in range(20)],
    }
    a_jobs, a_eq = sample.stratified_draw(state, 8, seed=1)
    b_jobs, b_eq = sample.stratified_draw(state, 8, seed=1)
    c_jobs, _ = sample.stratified_draw(state, 8, seed=2)
    assert a_jobs == b_jobs and a_eq == b_eq and len(a_jobs) + len(a_eq) == 8
    assert c_jobs != a_jobs
    assert sample.stratified_draw(state, 8, seed=1)[0] <= sample.stratified_draw(state, 12, seed=1)[0]  # a prefix
    with pytest.raises(ValueError):
        sample.stratified_draw(state, 0, seed=1)
