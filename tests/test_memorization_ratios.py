"""Memorization ratios against hand values (issue 18): 1-D data whose ratios d(NN1)/d(NN2) lie strictly between 0
and 1 and away from the threshold, so ``<`` vs ``>`` and the 2nd vs the 3rd neighbour give different numbers
(the older reference values sat at exactly 0.5)."""

import pytest
import torch

from smoothscore.errors import ConfigError
from smoothscore.metrics import memorization_fraction, nn_ratio
from smoothscore.metrics.memorization import memorization_audit

TRAIN = torch.tensor([[0.0], [1.0], [3.0], [10.0]], dtype=torch.float64)
SAMPLES = torch.tensor([[0.2], [0.4], [2.7], [6.0], [9.0]], dtype=torch.float64)
# (d1, d2): (0.2, 0.8), (0.4, 0.6), (0.3, 1.7), (3, 4), (1, 6)
RATIOS = [0.2 / 0.8, 0.4 / 0.6, 0.3 / 1.7, 3 / 4, 1 / 6]


def test_nn_ratio_and_fraction_hand_values():
    r = nn_ratio(SAMPLES, TRAIN)
    assert r.tolist() == pytest.approx(RATIOS, abs=1e-6)
    assert memorization_fraction(SAMPLES, TRAIN) == pytest.approx(3 / 5)  # 0.25, 0.176, 0.167 < 1/3
    assert memorization_fraction(SAMPLES, TRAIN, threshold=0.7) == pytest.approx(4 / 5)


def test_audit_divides_by_the_second_neighbour():
    a = memorization_audit(SAMPLES, TRAIN, k=3)
    assert a["ratios"].tolist() == pytest.approx(RATIOS, abs=1e-6)
    assert a["memorized_fraction"] == pytest.approx(3 / 5)
    assert a["dist"][:, 2].tolist() == pytest.approx([2.8, 2.6, 2.7, 5.0, 8.0], abs=1e-5)


def test_threshold_one_is_allowed_and_counts_every_non_tie():
    assert memorization_fraction(SAMPLES, TRAIN, threshold=1.0) == 1.0  # every ratio < 1 here
    assert memorization_audit(SAMPLES, TRAIN, threshold=1.0)["memorized_fraction"] == 1.0
    with pytest.raises(ConfigError):
        memorization_fraction(SAMPLES, TRAIN, threshold=1.0 + 1e-9)
