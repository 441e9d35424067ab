"""LS and ELS (Kamb & Ganguli) against float64 brute force written from the spec's definitions (explicit loops over
pixels, candidates and window offsets), limits (full patch = ESF, k >= H = LS, k = 1 = 1-D ESF over pixel values),
streaming invariance and translation equivariance."""

import math

import pytest
import torch

import smoothscore as ss
from smoothscore.errors import ConfigError
from smoothscore.scores.local import StreamedSoftmax


def _softmax_mean(logits, values):
    m = max(logits)
    w = [math.exp(v - m) for v in logits]
    z = sum(w)
    return [sum(wi * val[c] for wi, val in zip(w, values)) / z for c in range(len(values[0]))]


def _px(img, c, i, j):
    """Pixel with zero padding outside the image."""
    h, w = img.shape[1:]
    return float(img[c, i, j]) if 0 <= i < h and 0 <= j < w else 0.0


def _dist(x, xi, xj, y, yi, yj, k, wrap_query=False):
    h, w = x.shape[1:]
    r, tot = k // 2, 0.0
    for a in range(-r, r + 1):
        for b in range(-r, r + 1):
            for c in range(x.shape[0]):
                qx = float(x[c, (xi + a) % h, (xj + b) % w]) if wrap_query else _px(x, c, xi + a, xj + b)
                tot += (qx - _px(y, c, yi + a, yj + b)) ** 2
    return tot


def brute_ls(train, x, sigma, k):
    out = torch.zeros_like(x)
    for n in range(x.shape[0]):
        for i in range(x.shape[2]):
            for j in range(x.shape[3]):
                logits = [-_dist(x[n], i, j, y, i, j, k) / (2 * sigma**2) for y in train]
                vals = [[float(y[c, i, j]) for c in range(x.shape[1])] for y in train]
                out[n, :, i, j] = torch.tensor(_softmax_mean(logits, vals), dtype=x.dtype)
    return out


def brute_els(train, x, sigma, k, padding):
    h, w = x.shape[2:]
    d = k // 2
    inside = [(a, b) for a in range(d, h - d) for b in range(d, w - d)]
    out = torch.zeros_like(x)
    for n in range(x.shape[0]):
        for i in range(h):
            for j in range(w):
                if padding == "circular":
                    cands = inside
                else:  # interior / one edge (same distance, anywhere along it) / corner (same position)
                    rows = range(d, h - d) if d <= i <= h - 1 - d else [i]
                    cols = range(d, w - d) if d <= j <= w - 1 - d else [j]
                    cands = [(a, b) for a in rows for b in cols]
                logits, vals = [], []
                for y in train:
                    for a, b in cands:
                        logits.append(-_dist(x[n], i, j, y, a, b, k, wrap_query=padding == "circular") / (2 * sigma**2))
                        vals.append([float(y[c, a, b]) for c in range(x.shape[1])])
                out[n, :, i, j] = torch.tensor(_softmax_mean(logits, vals), dtype=x.dtype)
    return out


@pytest.fixture
def tiny():
    g = torch.Generator().manual_seed(0)
    train = torch.rand(3, 2, 5, 6, generator=g, dtype=torch.float64)
    x = train[:2] + 0.4 * torch.randn(2, 2, 5, 6, generator=g, dtype=torch.float64)
    return train, x


@pytest.mark.parametrize("k", [1, 3])
def test_ls_brute_force(tiny, k):
    train, x = tiny
    got = ss.LocalEmpiricalScore(train, k, dtype="float64", device="cpu").denoise(x, 0.3)
    assert torch.allclose(got, brute_ls(train, x, 0.3, k), atol=1e-12)


@pytest.mark.parametrize("k,padding", [(3, "zeros"), (3, "circular"), (5, "zeros")])
def test_els_brute_force(tiny, k, padding):
    train, x = tiny
    field = ss.EquivariantLocalScore(train, k, padding=padding, dtype="float64", device="cpu", block_elements=50)
    got = field.denoise(x, 0.3)
    assert torch.allclose(got, brute_els(train, x, 0.3, k, padding), atol=1e-12)


def test_ls_full_patch_is_esf(tiny):
    train, x = tiny
    k = 2 * max(train.shape[2:]) - 1
    for s in (0.05, 0.5, 5.0):
        ls = ss.LocalEmpiricalScore(train, k, dtype="float64", device="cpu").denoise(x, s)
        esf = ss.EmpiricalScore(train, dtype="float64", device="cpu").denoise(x, s)
        assert torch.allclose(ls, esf, atol=1e-12)
    # one size smaller than full coverage is no longer the ESF at small sigma
    ls = ss.LocalEmpiricalScore(train, 3, dtype="float64", device="cpu").denoise(x, 0.05)
    assert (ls - ss.EmpiricalScore(train, dtype="float64", device="cpu").denoise(x, 0.05)).abs().max() > 1e-3


def test_els_large_patch_is_ls(tiny):
    train, x = tiny
    sq_train, sq_x = train[..., :5], x[..., :5]  # square 5 x 5: k = H already gives the LS
    for tr, q, k in ((sq_train, sq_x, 5), (train, x, 7), (train, x, 9)):
        els = ss.EquivariantLocalScore(tr, k, dtype="float64", device="cpu").denoise(q, 0.4)
        ls = ss.LocalEmpiricalScore(tr, k, dtype="float64", device="cpu").denoise(q, 0.4)
        assert torch.allclose(els, ls, atol=1e-12)
    # 5 x 6 with k = 5: the middle row still slides along its two free columns, so it is not the LS
    els = ss.EquivariantLocalScore(train, 5, dtype="float64", device="cpu").denoise(x, 0.4)
    assert (els - ss.LocalEmpiricalScore(train, 5, dtype="float64", device="cpu").denoise(x, 0.4)).abs().max() > 1e-6


def test_els_k1_is_pixel_esf(tiny):
    train, x = tiny
    els = ss.EquivariantLocalScore(train, 1, dtype="float64", device="cpu").denoise(x, 0.2)
    pix = train.permute(0, 2, 3, 1).reshape(-1, train.shape[1])  # every pixel's C-vector
    esf = ss.EmpiricalScore(pix, dtype="float64", device="cpu")
    q = x.permute(0, 2, 3, 1).reshape(-1, x.shape[1])
    ref = esf.denoise(q, 0.2).reshape(x.shape[0], x.shape[2], x.shape[3], -1).permute(0, 3, 1, 2)
    assert torch.allclose(els, ref, atol=1e-12)


def test_streaming_and_dtype_invariance(tiny):
    train, x = tiny
    for cls, kw in ((ss.LocalEmpiricalScore, {}), (ss.EquivariantLocalScore, {"padding": "zeros"})):
        a = cls(train, 3, dtype="float64", device="cpu", block_elements=1, **kw).denoise(x, 0.2)
        b = cls(train, 3, dtype="float64", device="cpu", block_elements=1 << 24, **kw).denoise(x, 0.2)
        c = cls(train, 3, dtype="float32", device="cpu", **kw).denoise(x.float(), 0.2)
        assert torch.allclose(a, b, atol=1e-13)
        assert torch.allclose(a, c.double(), atol=1e-5)
        # training-set permutation does not change anything
        p = cls(train.flip(0), 3, dtype="float64", device="cpu", **kw).denoise(x, 0.2)
        assert torch.allclose(a, p, atol=1e-13)


def test_circular_els_is_translation_equivariant(tiny):
    train, x = tiny
    field = ss.EquivariantLocalScore(train, 3, padding="circular", dtype="float64", device="cpu")
    shifted = field.denoise(torch.roll(x, (1, 2), dims=(2, 3)), 0.3)
    assert torch.allclose(shifted, torch.roll(field.denoise(x, 0.3), (1, 2), dims=(2, 3)), atol=1e-12)


def test_patch_size_callable_and_score(tiny):
    train, x = tiny
    sig = torch.tensor([0.1, 2.0], dtype=torch.float64)
    field = ss.EquivariantLocalScore(train, lambda s: torch.where(s < 1, 3, 5), dtype="float64", device="cpu")
    got = field.denoise(x, sig)
    for i, k in enumerate((3, 5)):
        ref = ss.EquivariantLocalScore(train, k, dtype="float64", device="cpu").denoise(x[i : i + 1], sig[i : i + 1])
        assert torch.allclose(got[i : i + 1], ref, atol=1e-13)
    assert torch.allclose(field.score(x, sig), (got - x) / sig[:, None, None, None] ** 2, atol=1e-10)


def test_gray_images_and_bad_input(tiny):
    train, x = tiny
    g = ss.LocalEmpiricalScore(train[:, 0], 3, dtype="float64", device="cpu").denoise(x[:, 0], 0.3)
    assert g.shape == x[:, 0].shape
    assert torch.allclose(g, brute_ls(train[:, :1], x[:, :1], 0.3, 3)[:, 0], atol=1e-12)
    with pytest.raises(ConfigError):
        ss.LocalEmpiricalScore(train, 4)
    with pytest.raises(ConfigError):
        ss.EquivariantLocalScore(train, 3, padding="reflect")
    with pytest.raises(ConfigError):
        ss.EquivariantLocalScore(train, 7, padding="circular")


def test_streamed_softmax_equals_one_softmax():
    g = torch.Generator().manual_seed(3)
    logits = 30 * torch.randn(4, 11, generator=g, dtype=torch.float64)
    vals = torch.randn(11, 2, generator=g, dtype=torch.float64)
    acc = StreamedSoftmax((4,), 2, torch.float64, "cpu")
    for a, b in ((0, 1), (1, 7), (7, 11)):  # unequal chunks
        acc.update(logits[:, a:b], lambda p, v=vals[a:b]: p @ v)
    assert torch.allclose(acc.mean(), torch.softmax(logits, 1) @ vals, atol=1e-13)
