import numpy as np
import pytest
import torch
from PIL import Image

import smoothscore as ss
from smoothscore.data import load_dataset, load_digits
from smoothscore.errors import ConfigError, DataError, NonFiniteError, UnknownNameError


def test_digits_shape_range_seed_counts_split():
    d = load_digits(n=50, size=16, seed=1)
    assert d.x.shape == (50, 1, 16, 16) and float(d.x.min()) >= -1 and float(d.x.max()) <= 1
    assert torch.equal(d.x, load_digits(n=50, size=16, seed=1).x)
    assert not torch.equal(d.x, load_digits(n=50, size=16, seed=2).x)
    imb = load_digits(class_counts={0: 30, 7: 6}, size=8, seed=0)
    assert sorted(torch.bincount(imb.labels).tolist()[i] for i in (0, 7)) == [6, 30]
    tr, te = load_digits(classes=[1, 2], seed=0).split(0.25, seed=0)
    assert set(tr.labels.tolist()) == {1, 2} and len(tr) + len(te) == len(load_digits(classes=[1, 2]))
    # disjoint: no test image is exactly a training image with the same index set
    assert torch.cdist(te.x.flatten(1), tr.x.flatten(1)).min() >= 0
    with pytest.raises(ConfigError):
        load_digits(class_counts={0: 10_000})
    assert load_dataset("digits32", n=3).x.shape == (3, 1, 32, 32)
    with pytest.raises(UnknownNameError):
        load_dataset("mnist-from-the-internet")


def test_synthetic_sets():
    p = ss.data.line_points(4, dim=2, direction=[1.0, 1.0])
    assert torch.allclose(p[:, 0], p[:, 1]) and torch.allclose(p.norm(dim=1), torch.tensor([1.5, 0.5, 0.5, 1.5]))
    c = ss.data.circle_points(6, dim=3)
    assert torch.allclose(c.norm(dim=1), torch.ones(6)) and torch.all(c[:, 2] == 0)
    s = ss.data.sphere_points(100, 3, ambient_dim=20, generator=torch.Generator().manual_seed(0))
    assert s.shape == (100, 20) and torch.allclose(s.norm(dim=1), torch.ones(100), atol=1e-6)
    x, comp = ss.data.gaussian_mixture(
        5000, [[0.0], [10.0]], [1.0, 0.5], weights=[3, 1], generator=torch.Generator().manual_seed(0)
    )
    assert abs(comp.double().mean().item() - 0.25) < 0.03
    with pytest.raises(ConfigError):
        ss.data.line_points(3, dim=2, direction=[0.0, 0.0])


def test_image_folder(tmp_path):
    for i in range(3):
        Image.fromarray((np.random.default_rng(i).random((10, 12)) * 255).astype(np.uint8)).save(tmp_path / f"a{i}.png")
    d = load_dataset(f"folder:{tmp_path}")
    assert d.x.shape == (3, 1, 10, 12) and float(d.x.min()) >= -1 and float(d.x.max()) <= 1
    assert load_dataset(f"folder:{tmp_path}", size=8, channels=3).x.shape == (3, 3, 8, 8)
    Image.fromarray(np.zeros((5, 5), dtype=np.uint8)).save(tmp_path / "b.png")
    with pytest.raises(DataError, match="mixed sizes"):
        load_dataset(f"folder:{tmp_path}")
    (tmp_path / "c.png").write_bytes(b"not a png at all")
    with pytest.raises(DataError, match="c.png"):
        load_dataset(f"folder:{tmp_path}", size=8)
    with pytest.raises(DataError):
        load_dataset(f"folder:{tmp_path / 'missing'}")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError):
        load_dataset(f"folder:{empty}")


def test_array_files(tmp_path):
    np.savez(tmp_path / "s.npz", samples=np.ones((4, 2), dtype=np.float32), labels=np.arange(4))
    d = load_dataset(str(tmp_path / "s.npz"))
    assert d.x.shape == (4, 2) and d.labels.tolist() == [0, 1, 2, 3]
    np.save(tmp_path / "n.npy", np.array([[0.0, np.nan]]))
    with pytest.raises(NonFiniteError):
        load_dataset(str(tmp_path / "n.npy"))
    (tmp_path / "bad.npz").write_bytes(b"garbage")
    with pytest.raises(DataError):
        load_dataset(str(tmp_path / "bad.npz"))
    with pytest.raises(DataError):
        load_dataset(str(tmp_path / "missing.npz"))


def test_fibonacci_sphere_is_even():
    p = ss.data.sphere_points(200, 3, method="fibonacci").double()
    assert torch.allclose(p.norm(dim=1), torch.ones(200, dtype=torch.float64), atol=1e-6)
    d = torch.cdist(p, p) + 10 * torch.eye(200, dtype=torch.float64)
    nn = d.min(1).values
    assert float(nn.max() / nn.min()) < 1.6  # quasi-uniform spacing (random points: ratio ~ 5-10)
    assert float(p.mean(0).norm()) < 1e-2
    with pytest.raises(ConfigError):
        ss.data.sphere_points(10, 4, method="fibonacci")
