"""The streamed kernel and the training-set store (issue 9, items 1-2): both backends (CPU flash attention and
blocked GEMM) agree with a float64 brute force; a memory-mapped ``.npy`` (path or ``np.memmap``), a numpy array and
a tensor give the same field; chunk sizes and dtype conversion do not change results; bad files raise DataError."""

import numpy as np
import pytest
import torch

import smoothscore as ss
from smoothscore.data.arrays import PointSet
from smoothscore.errors import DataError, NonFiniteError


def brute(y, x, sigma, T=1.0, w=None):
    y64, x64 = y.double(), x.double()
    logit = -((x64[:, None] - y64[None]) ** 2).sum(2) / (2 * sigma**2 * T)
    if w is not None:
        logit = logit + torch.log(w.double() / w.double().sum())
    return torch.softmax(logit, 1) @ y64


@pytest.mark.parametrize("method", ["flash", "gemm"])
@pytest.mark.parametrize("weighted", [False, True])
def test_backends_match_float64_brute_force(method, weighted):
    g = torch.Generator().manual_seed(0)
    y = torch.rand(700, 24, generator=g) * 2 - 1 + 10.0  # far from the origin: centring matters
    x = y[:50] + 0.2 * torch.randn(50, 24, generator=g)
    w = torch.rand(700, generator=g) if weighted else None
    for dtype, tol in (("float32", 1e-4), ("float64", 1e-10)):
        f = ss.EmpiricalScore(y, temperature=1.3, weights=w, dtype=dtype, device="cpu", method=method)
        for sigma in (0.03, 0.3, 3.0):
            assert (f.denoise(x, sigma).double() - brute(y, x, sigma, 1.3, w)).abs().max() < tol


def test_backends_agree_with_per_query_sigma_and_small_chunks():
    g = torch.Generator().manual_seed(1)
    y = torch.randn(1000, 40, generator=g, dtype=torch.float64)
    x = torch.randn(33, 40, generator=g, dtype=torch.float64)
    s = torch.rand(33, generator=g, dtype=torch.float64) + 0.1
    a = ss.EmpiricalScore(y, dtype="float64", device="cpu", method="flash").score(x, s)
    b = ss.EmpiricalScore(y, dtype="float64", device="cpu", method="gemm", block_elements=64).score(x, s)
    f = ss.EmpiricalScore(y, dtype="float64", device="cpu")
    f.points.chunk_rows = 37  # many streamed chunks
    c = f.score(x, s)
    assert torch.allclose(a, b, atol=1e-10, rtol=1e-10) and torch.allclose(a, c, atol=1e-10, rtol=1e-10)


def test_memmap_path_array_and_tensor_give_the_same_field(tmp_path):
    g = torch.Generator().manual_seed(2)
    y = torch.randn(500, 3, 4, generator=g)
    path = tmp_path / "train.npy"
    np.save(path, y.numpy())
    x = torch.randn(9, 3, 4, generator=g)
    ref = ss.EmpiricalScore(y, device="cpu").score(x, 0.4)
    for src in (str(path), path, np.load(path, mmap_mode="r"), y.numpy()):
        f = ss.EmpiricalScore(src, device="cpu")
        assert f.data_shape == (3, 4) and f.n_train == 500
        assert torch.allclose(f.score(x, 0.4), ref, atol=1e-5, rtol=1e-5)
    mm = ss.EmpiricalScore(str(path), device="cpu")
    assert mm.points.on_disk and mm.points.nbytes() == 0
    u_ref = ss.UnconditionalEmpiricalScore(y, sigma_min=0.1, sigma_max=5.0, dtype="float64", device="cpu")
    u_mm = ss.UnconditionalEmpiricalScore(str(path), sigma_min=0.1, sigma_max=5.0, dtype="float64", device="cpu")
    assert torch.allclose(u_mm.score(x), u_ref.score(x), atol=1e-10)


def test_store_norms_are_float64_and_no_copy_of_in_memory_set():
    y = torch.randn(300, 8, generator=torch.Generator().manual_seed(3)) + 3.0  # far from the origin: centred
    p = PointSet(y, dtype=torch.float32, device=torch.device("cpu"))
    assert p._data.data_ptr() == y.data_ptr() and p.centred  # kept as given
    v = (y - y.double().mean(0).float()).double()
    assert torch.allclose(p.half_sq, 0.5 * (v**2).sum(1), rtol=1e-15)
    assert abs(p.radius - float(v.norm(dim=1).max())) < 1e-12
    z = y - y.mean(0)  # mean within 1/8 of the spread: rows used as stored
    q = PointSet(z, dtype=torch.float32, device=torch.device("cpu"))
    assert not q.centred and float(q.center.abs().max()) == 0.0
    assert next(q.chunks())[1].data_ptr() == z.data_ptr()  # a view, no per-call copy
    assert torch.allclose(q.half_sq, 0.5 * (z.double() ** 2).sum(1), rtol=1e-15)


def test_bad_files_raise_specific_errors(tmp_path):
    with pytest.raises(DataError):
        ss.EmpiricalScore(tmp_path / "missing.npy")
    with pytest.raises(DataError):
        ss.EmpiricalScore(str(tmp_path / "train.csv"))
    bad = np.ones((10, 2), dtype=np.float32)
    bad[3, 1] = np.nan
    np.save(tmp_path / "bad.npy", bad)
    with pytest.raises(NonFiniteError):
        ss.EmpiricalScore(tmp_path / "bad.npy")
