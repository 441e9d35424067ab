"""Nearest neighbours on memory-mapped training sets (issue 9, item 1): streamed in chunks through FAISS, refined in
float64, merged -- equal to float64 brute force, independent of the chunking, and never loading the set whole."""

import json
import threading
import time

import numpy as np
import pytest
import torch

from smoothscore.cli import main
from smoothscore.errors import NonFiniteError
from smoothscore.metrics import memorization_audit, memorization_fraction
from smoothscore.search import NeighborIndex, nearest_neighbors
from smoothscore.training import KNNCache


def _brute(q, train, k):
    d = torch.cdist(q.double(), train.double(), compute_mode="donot_use_mm_for_euclid_dist")
    return d.topk(k, largest=False)


def _set(tmp_path, n=1500, d=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    train = torch.rand(n, d, generator=g) * 2 - 1 + 3.0  # off-centre: the centring matters for float32
    path = tmp_path / "train.npy"
    np.save(path, train.numpy())
    q = torch.cat([train[:7] + 1e-5 * torch.randn(7, d, generator=g), torch.rand(30, d, generator=g) * 2 + 2])
    return train, path, q


def test_memmap_search_matches_float64_brute_force_for_any_chunking(tmp_path):
    train, path, q = _set(tmp_path)
    rd, ri = _brute(q, train, 4)
    mm = np.load(path, mmap_mode="r")
    results = [NeighborIndex(mm, chunk_bytes=cb).search(q, 4) for cb in (4096, 20_000, 1 << 30)]
    results.append(NeighborIndex(str(path), chunk_bytes=7000).search(q, 4))  # a path is memory-mapped
    results.append(nearest_neighbors(q, train, k=4))  # in memory, one chunk
    kept = NeighborIndex(train, chunk_bytes=4096)  # in memory: 38 chunks, kept
    results += [kept.search(q, 4), kept.search(q, 4)]
    for d, i in results:
        assert torch.equal(i, ri)
        assert torch.allclose(d, rd, rtol=1e-9, atol=0)
    # near-duplicates keep their float64 precision through the streamed path
    exact = (q[:7].double() - train[:7].double()).norm(dim=1)
    assert torch.allclose(results[0][0][:7, 0], exact, rtol=1e-9)
    # queries streamed from a memory map too (the KNN cache searches the set against itself)
    d2, i2 = NeighborIndex(mm, chunk_bytes=40_000).search(mm, 3)
    bd, bi = _brute(train, train, 3)
    assert torch.equal(i2, bi) and torch.allclose(d2, bd, rtol=1e-9, atol=1e-12)


def test_ties_go_to_the_smaller_index_whatever_the_chunking(tmp_path):
    base = torch.rand(50, 6, generator=torch.Generator().manual_seed(3))
    train = torch.cat([base, base])  # row j and j + 50 are exact duplicates
    np.save(tmp_path / "dup.npy", train.numpy())
    for cb in (100, 1 << 20):
        d, i = NeighborIndex(np.load(tmp_path / "dup.npy", mmap_mode="r"), chunk_bytes=cb).search(base[:5] + 1e-3, 2)
        assert torch.equal(i, torch.tensor([[j, j + 50] for j in range(5)]))
        assert torch.equal(d[:, 0], d[:, 1])


def test_knn_cache_on_memmap_equals_in_memory_and_brute_force(tmp_path):
    train, path, _ = _set(tmp_path, n=600, d=24, seed=1)
    mm = KNNCache(np.load(path, mmap_mode="r"), k=5, chunk_bytes=5000)
    mem = KNNCache(train, k=5)
    assert torch.equal(mm.index, mem.index)
    assert torch.equal(mm.index, _brute(train, train, 5)[1])
    assert torch.equal(mm.neighbors_of(torch.tensor([4, 2])), train[mm.index[[4, 2]]])
    feat = KNNCache(str(path), k=3, space="feature", encoder=lambda x: x[:, :8], chunk_bytes=5000)
    f = train[:, :8] / train[:, :8].norm(dim=1, keepdim=True)
    cos = f.double() @ f.double().T
    assert torch.equal(feat.index, cos.topk(3, dim=1).indices)


def test_non_finite_rows_in_a_memmap_are_refused(tmp_path):
    a = np.zeros((100, 4), dtype=np.float32)
    a[77, 2] = np.nan
    np.save(tmp_path / "bad.npy", a)
    with pytest.raises(NonFiniteError):
        NeighborIndex(str(tmp_path / "bad.npy"), chunk_bytes=256)


def _rss_anon_kb() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("RssAnon:"))


def test_streamed_search_does_not_load_the_set(tmp_path):
    """A 123 MB memory-mapped set searched with 4 MB chunks: anonymous memory (the page cache of the memory map
    is file-backed and reclaimable) grows by far less than the set (measured 4-17 MB: one reused chunk buffer and
    its centred copy; loading the set would add >= 123 MB)."""
    n, d = 40_000, 768
    path = tmp_path / "big.npy"
    mm = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, d))
    g = np.random.default_rng(0)
    for s in range(0, n, 5000):
        mm[s : s + 5000] = g.standard_normal((5000, d), dtype=np.float32)
    mm.flush()
    del mm
    q = torch.from_numpy(np.load(path, mmap_mode="r")[[5, 17_000, 39_999]].copy()) + 1e-3
    base, peak, stop = _rss_anon_kb(), [0], threading.Event()

    def poll():
        while not stop.is_set():
            peak[0] = max(peak[0], _rss_anon_kb())
            time.sleep(0.002)

    th = threading.Thread(target=poll)
    th.start()
    try:
        audit = memorization_audit(q, NeighborIndex(str(path), chunk_bytes=4 << 20), k=2)
    finally:
        stop.set()
        th.join()
    assert audit["idx"][:, 0].tolist() == [5, 17_000, 39_999]
    grown_mb = (peak[0] - base) / 1024
    print(f"anonymous memory grew by {grown_mb:.1f} MB")
    assert grown_mb < 40, grown_mb  # the set is 123 MB (246 MB as float64)


def test_audit_cli_on_memmapped_npy_matches_in_memory(tmp_path, capsys):
    train, path, q = _set(tmp_path, n=400, d=16, seed=2)
    np.savez(tmp_path / "train.npz", x=train.numpy())
    np.savez(tmp_path / "samples.npz", samples=q.numpy())
    assert (
        main(["audit", "--train", str(path), "--samples", str(tmp_path / "samples.npz"), "--out", str(tmp_path / "a")])
        == 0
    )
    assert (
        main(
            [
                "audit",
                "--train",
                str(tmp_path / "train.npz"),
                "--samples",
                str(tmp_path / "samples.npz"),
                "--out",
                str(tmp_path / "b"),
            ]
        )
        == 0
    )
    a = json.loads((tmp_path / "a" / "audit.json").read_text())
    b = json.loads((tmp_path / "b" / "audit.json").read_text())
    a.pop("train"), b.pop("train")
    assert a == b and a["memorized_fraction"] == pytest.approx(memorization_fraction(q, train))
    assert (tmp_path / "a" / "nearest_neighbors.png").stat().st_size > 1000
    np.save(tmp_path / "str.npy", np.array(["a", "b"]))
    assert (
        main(
            [
                "audit",
                "--train",
                str(tmp_path / "str.npy"),
                "--samples",
                str(tmp_path / "samples.npz"),
                "--out",
                str(tmp_path / "c"),
            ]
        )
        == 2
    )
    assert "not numeric" in capsys.readouterr().err


def test_torch_flat_search_used_on_gpus_matches_faiss():
    """The GEMM-form search that replaces FAISS on a CUDA device, run here on CPU tensors against FAISS."""
    import faiss

    from smoothscore.search.neighbors import _torch_knn

    g = torch.Generator().manual_seed(4)
    xc, qc = torch.randn(3000, 20, generator=g), torch.randn(70, 20, generator=g)
    d, i = _torch_knn(qc, xc, 6)
    fd, fi = faiss.knn(qc.numpy(), xc.numpy(), 6)
    assert torch.equal(i, torch.from_numpy(fi).long())
    assert torch.allclose(d, torch.from_numpy(fd), rtol=1e-4, atol=1e-4)
