#!/usr/bin/env bash
# The GPU check of issue 9 (item 5), in one go, for a machine with CUDA. Run from the repository root:
#
#     bash benchmarks/gpu_check.sh [OUT_FILE]          # default OUT_FILE: gpu_check.out.md
#
# It installs nothing: it uses ${PYTHON:-python3} as found (torch with CUDA, numpy, faiss-cpu, scipy, scikit-learn,
# matplotlib, pot, safetensors, rich, pillow, pytest -- the project's dependencies) with PYTHONPATH=src, and says
# which import is missing if one is. Sections, each under its own time limit (seconds, env: T_TESTS, T_BENCH,
# T_CIFAR, T_ZOO):
#   1. the machine (nvidia-smi, torch / CUDA versions);
#   2. `pytest -m gpu` (tests/test_gpu.py: exact scores, samplers, trainer and KNN cache against the CPU);
#   3. the project's benchmarks (benchmarks/run_all.py, i.e. `make bench`), on whatever device they pick;
#   4. CIFAR-10 shape (50,000 x 3,072, synthetic data in [-1, 1]) on the GPU: EmpiricalScore.denoise for 256 queries
#      (float32, float64) beside the bare GEMM pair timed in the same run, peak GPU memory; sampling throughput
#      (Heun on the exact score; PC with a paper-sized UNet); the KNN cache (50,000 x 50,000 search) on the GPU
#      beside FAISS on the CPU;
#   5. GoldDiff's protocol at CIFAR size (issue 20): experiment zoo-benchmark (fixed 128 noises, DDIM 10 steps,
#      MSE / r^2 vs a UNet, time per step, peak GPU memory) on data/cifar10 when that folder exists, else on random
#      3x32x32 images; n_train (env ZOO_N, default 500), UNet steps (ZOO_STEPS) and the denoiser list sized to T_ZOO
#      (default 600 s; untested on a GPU so far: dry-run on CPU with ZOO_N=40 ZOO_STEPS=2 ZOO_NOISE=4).
# Everything goes to OUT_FILE (markdown), ready to paste into docs/benchmarks.md ("GPU" section).
set -u
OUT="${1:-gpu_check.out.md}"
PY="${PYTHON:-python3}"
export PYTHONPATH="src${PYTHONPATH:+:$PYTHONPATH}"
: > "$OUT"
log() { echo "$@" | tee -a "$OUT"; }
section() { log ""; log "## $1"; log ""; }
run() {  # run LIMIT CMD...: output into OUT inside a code block, with the exit status and wall time
  local limit="$1"; shift
  local t0=$(date +%s)
  log '```'
  timeout "$limit" "$@" 2>&1 | tee -a "$OUT"
  local rc=${PIPESTATUS[0]}
  log '```'
  log "exit status $rc$([ "$rc" = 124 ] && echo " (time limit ${limit}s reached)"), $(( $(date +%s) - t0 )) s wall"
}

log "# GPU check, $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
section "Machine"
run 60 nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
run 60 "$PY" - <<'EOF'
import importlib, platform, sys
import torch
print("python", platform.python_version(), "| torch", torch.__version__, "| CUDA", torch.version.cuda,
      "| device", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "NONE")
missing = [m for m in ("numpy", "faiss", "scipy", "sklearn", "matplotlib", "ot", "safetensors", "rich", "PIL",
                       "pytest") if importlib.util.find_spec(m) is None]
print("missing imports:", ", ".join(missing) or "none")
sys.exit(0 if torch.cuda.is_available() and not missing else 1)
EOF
if [ "$(tail -n 1 "$OUT" | cut -d' ' -f3)" != "0," ]; then
  log "**No usable CUDA device or a dependency is missing: stopping here (nothing was measured).**"
  exit 1
fi

section "pytest -m gpu"
run "${T_TESTS:-300}" "$PY" -m pytest -m gpu -q -p no:cacheprovider -rs tests

section "Project benchmarks (benchmarks/run_all.py)"
run "${T_BENCH:-420}" "$PY" benchmarks/run_all.py

section "CIFAR-10 shape on the GPU (50,000 x 3,072)"
run "${T_CIFAR:-420}" "$PY" - <<'EOF'
import time

import torch

import smoothscore as ss
from smoothscore.search import NeighborIndex
from smoothscore.training import KNNCache

dev = torch.device("cuda")
N, D, Q = 50_000, 3_072, 256
torch.manual_seed(0)


def timed(fn, repeats=5):
    fn()
    torch.cuda.synchronize()
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t)
    return best


rows = []
for dtype in (torch.float32, torch.float64):
    train = (torch.rand(N, D, device=dev, dtype=dtype) * 2 - 1)
    x = train[:Q] + 0.3 * torch.randn(Q, D, device=dev, dtype=dtype)
    w = torch.rand(Q, N, device=dev, dtype=dtype)
    gemm = timed(lambda: (x @ train.T, w @ train))
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    field = ss.EmpiricalScore(train, dtype=str(dtype).split(".")[1], device=dev)
    t = timed(lambda: field.denoise(x, 0.3))
    peak = (torch.cuda.max_memory_allocated() - base) / 2**20
    rows.append((f"EmpiricalScore.denoise {str(dtype).split('.')[1]} ({Q}, {N:,}, {D:,})", t, gemm, t / gemm, peak))
    del train, x, w, field
    torch.cuda.empty_cache()
print("| measurement | seconds | GEMM pair (s) | ratio | peak extra GPU memory (MB) |")
print("|---|---|---|---|---|")
for name, t, g, r, p in rows:
    print(f"| {name} | {t:.4f} | {g:.4f} | {r:.2f}x | {p:.0f} |")

# sampling throughput: Heun (EDM schedule, 18 levels = 35 evaluations) on the exact score, 256 samples
train = torch.rand(N, D, device=dev) * 2 - 1
field = ss.EmpiricalScore(train, device=dev)
sig = ss.sigma_schedule("edm", 18, 0.01, 50.0)
x0 = 50.0 * torch.randn(Q, D, device=dev)
t = timed(lambda: ss.sample(field, x0, sig, method="heun"), repeats=2)
print(f"\nHeun, exact score, {Q} samples x 18 levels at ({N:,}, {D:,}): {t:.2f} s, {Q / t:.1f} samples/s")

# PC with the paper's UNet width (base 64, 32x32x3, unconditioned), 100 of the 1,000 levels, batch 128
net = ss.nets.build_model("unet", (3, 32, 32), conditioning="none", base=64).to(dev).eval()
nf = ss.NeuralScore(net, device=dev)
sig = ss.sigma_schedule("geometric", 100, 0.01, 50.0)
x0 = 50.0 * torch.randn(128, 3, 32, 32, device=dev)
with torch.no_grad():
    t = timed(lambda: ss.sample(nf, x0, sig, method="pc", snr=0.16, generator=torch.Generator(dev).manual_seed(0)),
              repeats=2)
print(f"PC (snr 0.16), UNet base 64, batch 128, 100 levels: {t:.2f} s -> {128 / (t * 10):.2f} samples/s at the "
      f"paper's 1,000 levels ({2 * 100 * 128 / t:.0f} image evaluations of the network per second)")

# the KNN cache of the temperature loss: every training point against the whole set, K = 10
cpu_train = train.cpu()
for name, kw, data in (("KNN cache, GPU (torch exact search + float64 refinement)", {"device": dev}, train),
                       ("KNN cache, CPU (FAISS exact search + float64 refinement)", {}, cpu_train)):
    t0 = time.perf_counter()
    KNNCache(data, k=10, **kw)
    print(f"{name}: {time.perf_counter() - t0:.1f} s for {N:,} x {N:,} at d = {D:,}")
d, i = NeighborIndex(train, device=dev).search(train[:1000], 10)
dc, ic = NeighborIndex(cpu_train).search(cpu_train[:1000], 10)
print(f"neighbour indices GPU == CPU: {bool(torch.equal(i, ic))}; max |distance difference| "
      f"{float((d - dc).abs().max()):.2e}")
EOF
section "GoldDiff's protocol at CIFAR size (zoo-benchmark, issue 20)"
run "${T_ZOO:-600}" "$PY" - <<'EOF'
import json
import os
import tempfile
from pathlib import Path

import torch

from smoothscore.runner import run_experiment

data = "folder:data/cifar10" if Path("data/cifar10").is_dir() else "random"
n = int(os.environ.get("ZOO_N", "500"))  # PCA-locality costs 128 n D^2 per step (D = 3,072): 2.4e15 at 500
over = {
    "data": data, "image_size": 32, "n_train": n, "base": 32, "steps": int(os.environ.get("ZOO_STEPS", "1500")), "batch_size": 128, "lr": 1e-3,
    "ema_decay": 0.999, "seeds": 1, "n_noise": int(os.environ.get("ZOO_NOISE", "128")), "low_res": 16, "mask_threshold": 0.03,
    # ELS at 32x32x3 costs ~HW times the ESF per call: left out here (see benchmarks/bench_zoo.py for its cost)
    "denoisers": ["optimal", "optimal-truncated", "optimal-golden", "Wiener", "PCA-locality", "PCA-locality-golden"],
}
out = Path(tempfile.mkdtemp())
run_experiment("zoo-benchmark", "paper", out, progress=False, overrides=over)
r = json.loads((out / "zoo-benchmark" / "results.json").read_text())
dev = torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU (dry run)"
print(f"status {r['status']} {r.get('error') or ''}; data {data}, n_train {n}, {over['n_noise']} noises, DDIM 10, "
      f"{dev}")
print("| denoiser | r^2 vs UNet | MSE vs UNet | ms / step | peak memory, 16 queries (MiB) | speed-up vs exact kind |")
print("|---|---|---|---|---|---|")
for name, row in r["metrics"].get("table", {}).items():
    sp = next((f"{v:.2f}x" for k, v in row.items() if k.startswith("speedup_vs_")), "")
    print(f"| {name} | {row['r2']:.3f} | {row['mse']:.4f} | {row['seconds_per_step'] * 1e3:.1f} | "
          f"{row.get('peak_bytes_16_queries', 0) / 2**20:.0f} | {sp} |")
for c in r["claims"]:
    print(f"claim {c['id']}: value {c['value']:.3g} {c['op']} {c['threshold']} -> passed {c['passed']}")
EOF
log ""
log "Done. Paste the tables above into docs/benchmarks.md (section GPU) with this machine's name."
