"""Issue 11 item 6: training killed with SIGKILL and resumed ends bit-for-bit identical to an uninterrupted run.

Kills land at seeded random steps (between checkpoints, so work since the last checkpoint is redone) and inside a
checkpoint save: after the weights file is renamed but before the sidecar is (the two files then disagree and the
self-contained weights file wins), and before a temporary file is renamed. The repeated-kill version, killed from
outside at random moments, is in ``test_faults_slow.py``; ``reproduce --resume`` after a kill is tested there too."""

import os
import random
import signal
import subprocess
import sys
import textwrap

import pytest
import torch

from smoothscore.nets.checkpoint import load_checkpoint

STEPS = 120


def train_run(out, *, resume=False, hook=None):
    """The run every fault test repeats (in this process, or killed in a subprocess)."""
    from smoothscore.nets import build_model
    from smoothscore.training import ConditionedDSM, TrainConfig, train

    torch.manual_seed(0)
    data = torch.randn(256, 3, generator=torch.Generator().manual_seed(0))
    m = build_model("mlp", (3,), width=32)
    return train(
        m,
        ConditionedDSM(0.05, 5.0, 50),
        data,
        TrainConfig(steps=STEPS, batch_size=32, lr=1e-3, warmup_steps=10, checkpoint_every=10, seed=3),
        out_dir=out,
        resume=resume,
        progress=False,
        hooks=[(1, hook)] if hook else [],
    )


KILLED = textwrap.dedent("""
    import os, signal, sys, time
    sys.path.insert(0, sys.argv[1])
    out, kill_step, kill_write, slow = sys.argv[2], int(sys.argv[3]), sys.argv[4], float(sys.argv[5])
    resume = os.path.exists(os.path.join(out, "checkpoint.json"))
    import smoothscore.io as sio
    import smoothscore.nets.checkpoint as ck
    from test_faults import train_run

    def die():
        os.kill(os.getpid(), signal.SIGKILL)

    if kill_write:                     # "sidecar:N" or "rename:N": die inside the N-th checkpoint save
        where, nth = kill_write.split(":")
        calls = {"n": 0}
        if where == "sidecar":         # weights renamed, sidecar not yet written
            orig_json = ck.atomic_write_json
            def json_then_die(*a, **k):
                calls["n"] += 1
                if calls["n"] == int(nth):
                    die()
                return orig_json(*a, **k)
            ck.atomic_write_json = json_then_die
        else:                          # temporary weights file complete, rename never happens
            orig_replace = sio.os.replace
            def replace_then_die(src, dst):
                if str(dst).endswith(".safetensors"):
                    calls["n"] += 1
                    if calls["n"] == int(nth):
                        die()
                return orig_replace(src, dst)
            sio.os.replace = replace_then_die

    def hook(step, *a):
        if step == kill_step:
            die()
        if slow:
            time.sleep(slow)

    train_run(out, resume=resume, hook=hook)
""")


def run_killed(out, *, kill_step=-1, kill_write="", slow=0.0, wait=True):
    """Train in a subprocess (resuming when ``out`` holds a checkpoint) that kills itself as asked."""
    cmd = [sys.executable, "-c", KILLED, os.path.dirname(__file__), str(out), str(kill_step), kill_write, str(slow)]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    if not wait:
        return subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True)
    return subprocess.run(cmd, env=env, timeout=300, capture_output=True, text=True)


def assert_same_final_state(a_dir, b_dir):
    a, ma = load_checkpoint(a_dir)
    b, mb = load_checkpoint(b_dir)
    assert ma["step"] == mb["step"] == STEPS
    assert set(a) == set(b)
    for k in a:
        if k.startswith(("model.", "ema.", "optim.", "rng.")):
            assert torch.equal(a[k], b[k]), k
    # (the logged loss history is a running average restarted on resume: a display value, not training state)
    assert [h[0] for h in ma["history"]] == [h[0] for h in mb["history"]]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("full")
    train_run(out)
    return out


KILLS = [("step", random.Random(seed).randrange(11, STEPS - 1), "") for seed in (0, 1)] + [
    ("sidecar", -1, "sidecar:4"),
    ("rename", -1, "rename:6"),
]


@pytest.mark.parametrize("kind, kill_step, kill_write", KILLS, ids=[f"{k[0]}{k[1]}{k[2]}" for k in KILLS])
def test_sigkill_then_resume_is_bitwise_identical(uninterrupted, tmp_path, kind, kill_step, kill_write):
    out = tmp_path / "killed"
    r = run_killed(out, kill_step=kill_step, kill_write=kill_write)
    assert r.returncode == -signal.SIGKILL, r.stderr
    step_at_kill = load_checkpoint(out)[1]["step"]
    if kind == "step":
        assert step_at_kill == (kill_step - 1) // 10 * 10  # the steps since that checkpoint are redone
    elif kind == "sidecar":  # the 4th save's weights landed, its sidecar did not: the weights file wins
        assert step_at_kill == 40 and '"step": 30' in (out / "checkpoint.json").read_text()
    else:  # the 6th save never renamed: the 5th is intact, a temporary file is left over
        assert step_at_kill == 50 and any(p.name.endswith(".tmp.safetensors") for p in out.iterdir())
    train_run(out, resume=True)
    assert_same_final_state(uninterrupted, out)


def test_progress_output_is_clean_when_not_a_terminal(tmp_path):
    """CI logs: with stdout/stderr piped, train and sample (progress bars on) print plain lines only -- no carriage
    returns, no ANSI control codes, no bar redraws."""
    import numpy as np

    np.save(tmp_path / "d.npy", np.random.default_rng(0).normal(size=(30, 2)).astype(np.float32))
    script = textwrap.dedent(f"""
        from smoothscore.cli import main
        assert main(["train", "--data", r"{tmp_path / "d.npy"}", "--model", "mlp", "--width", "16", "--depth", "1",
                     "--steps", "300", "--batch-size", "8", "--out", r"{tmp_path / "m"}"]) == 0
        assert main(["sample", "--model", r"{tmp_path / "m"}", "--n", "4", "--steps", "300"]) == 0
    """)
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "TERM", "COLUMNS")}
    env.update(OMP_NUM_THREADS="1", TERM="xterm-256color")  # a colour terminal type, but pipes: no codes
    r = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    both = r.stdout + r.stderr
    assert "\r" not in both and "\x1b" not in both, repr(both[:500])
    lines = both.strip().splitlines()
    assert len(lines) <= 6, lines  # the result lines, not one line per redraw
    assert (
        lines[0].startswith("trained 300 steps")
        and lines[1] == "sampler: heun (default for a noise-conditioned model)"
        and lines[2].startswith("4 samples (heun, 300 levels)")
    )
