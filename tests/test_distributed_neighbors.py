"""Neighbour search sharded across 2 gloo processes (issue 9, item 4): each rank searches its slice of a
memory-mapped training set and the top-k lists are merged with global indices -- equal to one process (indices
exactly, distances to 1e-6); and ``smoothscore audit`` under torchrun (process group set up and torn down by the
CLI, only rank 0 writing) gives the single-process output."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import torch

from smoothscore.cli import main
from smoothscore.search import NeighborIndex
from smoothscore.training import KNNCache

JOB = textwrap.dedent("""
    import sys
    import numpy as np, torch, torch.distributed as dist
    from smoothscore.distributed import dist_info
    from smoothscore.search import NeighborIndex
    from smoothscore.training import KNNCache

    tmp = sys.argv[1]
    rank, world = dist_info()               # the library under a group of 2 (gloo): initialised from torchrun's env
    assert world == 2
    train = np.load(f"{tmp}/train.npy", mmap_mode="r")
    q = torch.from_numpy(np.load(f"{tmp}/samples.npz")["samples"])
    index = NeighborIndex(train, chunk_bytes=20_000)
    assert (index.lo, index.hi) == ((0, 450) if rank == 0 else (450, 901))
    d, i = index.search(q, 5)
    knn = KNNCache(train, k=4, chunk_bytes=20_000)
    if rank == 0:
        np.savez(f"{tmp}/ddp.npz", d=d.numpy(), i=i.numpy(), knn=knn.index.numpy())
    dist.barrier()
    dist.destroy_process_group()
""")


# ~15 s on an idle 2-core machine (two processes importing torch and FAISS dominate)
def test_sharded_search_and_torchrun_audit_match_one_process(tmp_path):
    g = torch.Generator().manual_seed(0)
    train = torch.rand(901, 48, generator=g) * 2 - 1
    q = torch.cat([train[::100] + 1e-4 * torch.randn(10, 48, generator=g), torch.rand(20, 48, generator=g) * 2 - 1])
    np.save(tmp_path / "train.npy", train.numpy())
    np.savez(tmp_path / "samples.npz", samples=q.numpy())
    (tmp_path / "job.py").write_text(JOB)
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK")}
    env.update(OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join(sys.path))
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    run = subprocess.run(
        torchrun + [str(tmp_path / "job.py"), str(tmp_path)], env=env, timeout=600, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr[-3000:]
    # the CLI entry point: sets the group up, shards the audit's search, rank 0 writes, tears the group down
    run = subprocess.run(
        torchrun
        + [
            "-m",
            "smoothscore",
            "audit",
            "--train",
            str(tmp_path / "train.npy"),
            "--samples",
            str(tmp_path / "samples.npz"),
            "--out",
            str(tmp_path / "ddp-audit"),
        ],
        env=env,
        timeout=600,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.count("memorized fraction") == 1  # only rank 0 prints
    got = np.load(tmp_path / "ddp.npz")
    d, i = NeighborIndex(train, shard=False).search(q, 5)
    assert torch.equal(torch.from_numpy(got["i"]), i)
    assert np.abs(got["d"] - d.numpy()).max() < 1e-6
    assert torch.equal(torch.from_numpy(got["knn"]), KNNCache(train, k=4).index)
    assert (
        main(
            [
                "audit",
                "--train",
                str(tmp_path / "train.npy"),
                "--samples",
                str(tmp_path / "samples.npz"),
                "--out",
                str(tmp_path / "one-audit"),
            ]
        )
        == 0
    )
    one = json.loads((tmp_path / "one-audit" / "audit.json").read_text())
    ddp = json.loads((tmp_path / "ddp-audit" / "audit.json").read_text())
    assert one == ddp
    assert sorted(p.name for p in (tmp_path / "ddp-audit").iterdir()) == ["audit.json", "nearest_neighbors.png"]
