"""Launch a script under ``torchrun --standalone --nproc_per_node=N`` (gloo on CPU) for the multi-process tests."""

import os
import subprocess
import sys


def torchrun_env() -> dict:
    """This environment without a parent launcher's rank variables, one intra-op thread per process."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
    }
    env["OMP_NUM_THREADS"] = "1"
    return env


def torchrun(args, nproc: int = 2, timeout: int = 600) -> None:
    """Run ``args`` (a script path and its arguments) in ``nproc`` processes; raise if any of them fails."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}"]
    subprocess.run(cmd + [str(a) for a in args], check=True, env=torchrun_env(), timeout=timeout)
