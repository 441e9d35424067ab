"""The memorization ratio with duplicated training images (issue 17): NN2 is the nearest *distinct* image."""

import torch

from smoothscore.metrics import memorization_fraction, nn_ratio
from smoothscore.metrics.memorization import memorization_audit


def _train():
    g = torch.Generator().manual_seed(0)
    base = torch.randn(6, 1, 4, 4, generator=g, dtype=torch.float64)
    return torch.cat([base, base[2:3], base[2:3]])  # image 2 stored three times


def test_exact_copy_of_a_duplicated_image_is_memorized():
    train = _train()
    # DiffMemorize's rule (topk k=2, d1/d2 < 1/3) gives 0/0 = NaN here and counts it as not memorized
    d = torch.cdist(train[2:3].flatten(1), train.flatten(1)).topk(2, largest=False).values[0]
    assert float(d[0]) == 0.0 == float(d[1]) and bool(torch.isnan(d[0] / d[1]))
    r = nn_ratio(train[2:3], train)
    assert float(r[0]) == 0.0
    assert memorization_fraction(train[2:3], train) == 1.0


def test_near_a_duplicated_image_the_second_neighbour_is_the_next_distinct_image():
    train = _train()
    x = train[2:3] + 0.01 * torch.ones_like(train[2:3])
    flat = train.flatten(1)
    dist = torch.cdist(x.flatten(1), flat)[0]
    distinct = dist[[i for i in range(len(train)) if not torch.equal(flat[i], flat[2])]]
    want = float(dist[2] / distinct.min())  # independent: d to the copy over d to the nearest other image
    assert want < 0.05
    torch.testing.assert_close(nn_ratio(x, train), torch.tensor([want], dtype=nn_ratio(x, train).dtype))
    audit = memorization_audit(x, train, k=3)
    assert audit["memorized_fraction"] == 1.0 and abs(float(audit["ratios"][0]) - want) < 1e-6


def test_no_duplicates_unchanged_and_genuine_ties_stay_at_one():
    g = torch.Generator().manual_seed(1)
    train = torch.randn(8, 3, generator=g, dtype=torch.float64)
    q = torch.randn(5, 3, generator=g, dtype=torch.float64)
    d = torch.cdist(q, train).topk(2, largest=False).values
    torch.testing.assert_close(nn_ratio(q, train).double(), d[:, 0] / d[:, 1], rtol=1e-6, atol=1e-9)
    # the midpoint of two distinct images is equidistant from both: ratio 1, not memorized
    two = torch.tensor([[0.0, 0.0], [2.0, 0.0], [9.0, 9.0]], dtype=torch.float64)
    assert abs(float(nn_ratio(torch.tensor([[1.0, 0.0]], dtype=torch.float64), two)[0]) - 1.0) < 1e-9
    # a set holding one image twice: an exact copy has ratio 0
    same = torch.tensor([[1.0, 2.0], [1.0, 2.0]], dtype=torch.float64)
    assert float(nn_ratio(same[:1], same)[0]) == 0.0
