import math

import pytest
import torch
from PIL import Image

import smoothscore as ss
from smoothscore.errors import ConfigError, EmptyDataError, ShapeError
from smoothscore.metrics import (
    distance_summary,
    frechet_distance,
    knn_precision_recall,
    memorization_fraction,
    nn_ratio,
    wasserstein_1d,
    wasserstein_2d,
)
from smoothscore.search import NeighborIndex, nearest_neighbors


def test_memorization_reference_R3():
    train = torch.tensor([[0.0], [1.0]], dtype=torch.float64)
    r = nn_ratio(torch.tensor([[0.2], [0.3]], dtype=torch.float64), train)
    assert r[0].item() == pytest.approx(0.25, abs=1e-12) and r[1].item() == pytest.approx(3 / 7, abs=1e-12)
    assert memorization_fraction(torch.tensor([[0.2], [0.3]]), train) == 0.5
    with pytest.raises(EmptyDataError):
        nn_ratio(torch.tensor([[0.2]]), torch.tensor([[0.0]]))
    with pytest.raises(ConfigError):
        memorization_fraction(torch.tensor([[0.2]]), train, threshold=0)


def test_neighbors_exact_vs_brute_force_and_near_duplicates():
    g = torch.Generator().manual_seed(0)
    train = torch.rand(300, 3072, generator=g) * 2 - 1
    q = torch.cat([train[:5] + 1e-4 * torch.randn(5, 3072, generator=g), torch.rand(20, 3072, generator=g) * 2 - 1])
    d, i = nearest_neighbors(q, train, k=3)
    ref = torch.cdist(q.double(), train.double(), compute_mode="donot_use_mm_for_euclid_dist")
    rd, ri = ref.topk(3, largest=False)
    assert torch.equal(i, ri)
    assert torch.allclose(d, rd, rtol=1e-9, atol=0)
    # the refinement matters: FAISS float32 distances alone are far off for near-duplicates
    # (a copy 1e-6 away per coordinate: FAISS works in float32, the refinement in float64)
    tiny = train[:5].double() + 1e-6 * torch.randn(5, 3072, generator=g, dtype=torch.float64)
    exact = (tiny - train[:5].double()).norm(dim=1)
    d_raw, _ = NeighborIndex(train).search(tiny, 1, exact_refine=False)
    d_ref, _ = NeighborIndex(train).search(tiny, 1)
    assert ((d_raw[:, 0] - exact).abs() / exact).max() > 1e-4  # float32 inputs alone cost ~4e-4 here
    assert torch.allclose(d_ref[:, 0], exact, rtol=1e-9)
    # permutation invariance of the distances
    perm = torch.randperm(300, generator=g)
    d2, i2 = nearest_neighbors(q, train[perm], k=3)
    assert torch.allclose(d2, d) and torch.equal(perm[i2], i)
    with pytest.raises(ShapeError):
        nearest_neighbors(torch.rand(2, 5), train)
    with pytest.raises(ConfigError):
        nearest_neighbors(q, train[:2], k=3)


def test_distance_summary():
    s = distance_summary(torch.tensor([[0.1, 0.0], [0.0, 0.3]]), torch.tensor([[0.0, 0.0], [5.0, 5.0]]))
    assert s["min"] == pytest.approx(0.1) and s["max"] == pytest.approx(0.3) and s["dim"] == 2
    assert s["median_per_sqrt_dim"] == pytest.approx(0.2 / math.sqrt(2))


def test_wasserstein_closed_forms():
    g = torch.Generator().manual_seed(1)
    a = torch.randn(500, 1, generator=g, dtype=torch.float64)
    assert wasserstein_1d(a, a + 0.7) == pytest.approx(0.7, abs=1e-9)
    b = torch.randn(300, 2, generator=g, dtype=torch.float64)
    assert wasserstein_2d(b, b + torch.tensor([0.3, 0.4], dtype=torch.float64)) == pytest.approx(0.5, abs=1e-9)
    with pytest.raises(ConfigError):
        wasserstein_1d(b, b)


def test_frechet_gaussians_and_precision_recall():
    g = torch.Generator().manual_seed(2)
    a = torch.randn(20000, 3, generator=g, dtype=torch.float64)
    b = torch.randn(20000, 3, generator=g, dtype=torch.float64) * 2 + torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64)
    # closed form: |dmu|^2 + tr(I + 4I - 2*2I) = 1 + 3
    assert frechet_distance(a, b) == pytest.approx(4.0, abs=0.15)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    x = torch.randn(300, 2, generator=g)
    pr = knn_precision_recall(x, x, k=3)
    assert pr == {"precision": 1.0, "recall": 1.0}
    assert knn_precision_recall(x, x + 100.0, k=3) == {"precision": 0.0, "recall": 0.0}


def test_figures_write_pngs(tmp_path):
    from smoothscore.plotting import image_grid_figure, nearest_neighbor_figure, save_image_grid

    train = ss.data.load_digits(n=20, size=8).x
    fig = nearest_neighbor_figure(train[:3] + 0.01, train, k=3, n_show=3)
    fig.savefig(tmp_path / "nn.png")
    assert Image.open(tmp_path / "nn.png").size[0] > 200
    image_grid_figure(train, nrow=5).savefig(tmp_path / "grid.png")
    p = save_image_grid(tmp_path / "g.png", train[:10], nrow=5, scale=2)
    assert Image.open(p).size == ((5 * 9 + 1) * 2, (2 * 9 + 1) * 2)
    nearest_neighbor_figure(torch.randn(5, 2), torch.randn(6, 2)).savefig(tmp_path / "pts.png")
