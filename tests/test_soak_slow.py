"""Issue 11 item 8: a 10,000-step sampling run and a long training run keep memory flat.

Resident memory (VmRSS) is read during the run; after a warm-up its growth must stay under a bound far below what
a per-step leak would give (10,000 steps x even 1 KiB = 10 MB; a leaked (N, d) tensor per step is 10,000 x N x d x 8
bytes). Runs in a subprocess so other tests' allocations do not blur the numbers."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads VmRSS from /proc (Linux)"),
]

SCRIPT = textwrap.dedent("""
    import json, sys, torch
    torch.set_num_threads(1)
    import smoothscore as ss
    from smoothscore.training import ConditionedDSM, TrainConfig, Trainer
    from smoothscore.nets import build_model

    def rss_mb():
        for line in open("/proc/self/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024

    out = {}
    g = torch.Generator().manual_seed(0)
    train = torch.randn(200, 8, generator=g, dtype=torch.float64)
    field = ss.EmpiricalScore(train, dtype="float64", device="cpu")
    sig = ss.sigma_schedule("geometric", 10001, 1e-2, 10.0)
    marks = {}
    def cb(d):
        if d["i"] in (1000, 5000, 9999):
            marks[d["i"]] = rss_mb()
    x = ss.sample(field, 10 * torch.randn(64, 8, generator=g, dtype=torch.float64), sig, method="em", generator=g,
                  callback=cb, progress=True)
    assert bool(torch.isfinite(x).all())
    out["sampling"] = marks

    tmarks = {}
    def hook(step, *a):
        tmarks[step] = rss_mb()
    data = torch.randn(512, 8, generator=g)
    t = Trainer(build_model("mlp", (8,), width=64, depth=2), ConditionedDSM(0.01, 5.0, 100), data,
                TrainConfig(steps=6000, batch_size=64, lr=1e-3, checkpoint_every=1000, log_every=10),
                out_dir=sys.argv[1], progress=True, hooks=[(1000, hook)])
    t.fit()
    out["training"] = tmarks
    print(json.dumps(out))
""")


def test_memory_stays_flat_over_long_sampling_and_training(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    r = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "ck")], env=env, capture_output=True, text=True, timeout=600
    )
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads(r.stdout.strip().splitlines()[-1])
    s = {int(k): v for k, v in res["sampling"].items()}
    t = {int(k): v for k, v in res["training"].items()}
    print("RSS MB", s, t)
    # sampling: from step 1000 to step 9999 (9,000 steps of a (64, 8) float64 batch)
    assert s[9999] - s[1000] < 8.0, s
    # training: from step 1000 to 6000 (5 checkpoints, 5,000 optimizer steps, history every 10 steps)
    assert t[6000] - t[1000] < 8.0, t
