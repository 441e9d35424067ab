"""GPU against CPU (issue 9, item 5): exact scores (float32, float64), samplers (Heun; Euler-Maruyama with the same
CPU generator, so both devices draw the same noise), a few trainer steps, and the KNN cache / neighbour search.
Marked ``gpu`` and skipped without CUDA; ``benchmarks/gpu_check.sh`` runs them on a GPU machine.

Stated tolerances (data in [-1, 1]): float64 results agree to 1e-10 (absolute; only the order of the reductions
differs); float32 results are compared with the float64 CPU reference and must be as close as the CPU's own float32
result is, up to 1e-4 absolute; a trainer's loss agrees to 1e-4 relative and its parameters to 2 x lr absolute after
5 AdamW steps (Adam normalises the update, so a gradient that rounds to the other sign on the other device moves its
weight by up to 2 lr per step; the median difference must stay below 1e-5); neighbour indices agree exactly.
"""

import copy

import pytest
import torch

import smoothscore as ss
from smoothscore.search import NeighborIndex
from smoothscore.training import KNNCache, TrainConfig, UnconditionedDSM, train

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (run benchmarks/gpu_check.sh)"),
]


@pytest.fixture
def data():
    g = torch.Generator().manual_seed(0)
    train = torch.rand(1000, 3, 8, 8, generator=g) * 2 - 1
    x = train[:64] + 0.3 * torch.randn(64, 3, 8, 8, generator=g)
    return train, x


def test_auto_device_is_cuda():
    assert ss.device.resolve_device("auto").type == "cuda"


@pytest.mark.parametrize("cls", ["EmpiricalScore", "UnconditionalEmpiricalScore"])
def test_exact_scores_agree_with_cpu(cls, data):
    train, x = data
    # the unconditional field on 8 discrete levels (the continuous quadrature costs one pass per node)
    kw = {"sigmas": ss.sigma_schedule("geometric", 8, 0.01, 5.0)} if cls == "UnconditionalEmpiricalScore" else {}
    make = lambda t, **o: getattr(ss, cls)(t, **kw, **o)  # noqa: E731
    ref = make(train, dtype="float64", device="cpu")
    for sigma in (0.05, 0.3, 2.0):
        r64 = ref.denoise(x.double(), sigma)
        g64 = make(train, dtype="float64", device="cuda").denoise(x.double().cuda(), sigma).cpu()
        assert (g64 - r64).abs().max() < 1e-10, sigma
        c32 = make(train, dtype="float32", device="cpu").denoise(x, sigma)
        g32 = make(train, dtype="float32", device="cuda").denoise(x.cuda(), sigma).cpu()
        cpu_err = float((c32.double() - r64).abs().max())
        assert float((g32.double() - r64).abs().max()) <= max(2 * cpu_err, 1e-4), (sigma, cpu_err)


@pytest.mark.parametrize("method", ["heun", "em"])
def test_samplers_agree_with_cpu(method, data):
    train, _ = data
    sigmas = ss.sigma_schedule("edm", 30, 0.01, 5.0)
    x0 = 5.0 * torch.randn(16, 3, 8, 8, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    out = {}
    for dev in ("cpu", "cuda"):
        field = ss.EmpiricalScore(train, dtype="float64", device=dev)
        g = torch.Generator().manual_seed(2)  # CPU generator: the same noise on both devices
        out[dev] = ss.sample(field, x0.to(dev), sigmas, method=method, generator=g).cpu()
    assert (out["cuda"] - out["cpu"]).abs().max() < 1e-8


def test_trainer_few_steps_agree_with_cpu():
    data = torch.randn(256, 16, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    model = ss.nets.build_model("mlp", (16,), conditioning="none", width=64)
    cfg = TrainConfig(steps=5, batch_size=32, lr=1e-3, seed=3, log_every=1, ema_decay=0.9)
    res = {
        dev: train(copy.deepcopy(model), UnconditionedDSM(0.05, 5.0, 50), data, cfg, device=dev, progress=False)
        for dev in ("cpu", "cuda")
    }
    lc = torch.tensor([h[1] for h in res["cpu"].history])
    lg = torch.tensor([h[1] for h in res["cuda"].history])
    assert torch.allclose(lg, lc, rtol=1e-4)
    diffs = torch.cat(
        [
            (pg.detach().cpu() - pc.detach()).abs().flatten()
            for pg, pc in zip(res["cuda"].model.parameters(), res["cpu"].model.parameters())
        ]
    )
    assert diffs.max() <= 2 * cfg.lr and diffs.median() < 1e-5


def test_knn_cache_and_neighbour_search_agree_with_cpu(data):
    train, x = data
    assert torch.equal(KNNCache(train, k=6, device="cuda").index, KNNCache(train, k=6).index)
    dc, ic = NeighborIndex(train).search(x, 4)
    dg, ig = NeighborIndex(train.cuda(), device="cuda").search(x.cuda(), 4)
    assert torch.equal(ig, ic) and torch.allclose(dg, dc, rtol=1e-12, atol=0)
