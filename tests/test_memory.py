"""Peak memory of the exact scores (issue 9, item 1), measured in a fresh subprocess as the rise of peak RSS
(``VmHWM``, reset before each step) over the RSS just before it, at 20,000 x 3,072 float32 (245 MB; seconds to run):

* building from an in-memory float32 set adds <= 1.25x the set's size (no float64 or centred copy);
* building from a memory-mapped ``.npy`` (path) and denoising adds <= 256 MB + one streamed chunk;
* a denoise call of 256 queries adds < 512 MB (probe: benchmarks/mem_probe.py);
the same for the unconditional field, the temperature-smoothed forms, the KNN temperature field, the temperature
loss's KNN cache (an all-pairs search of the set) and the nearest-neighbour metrics (``memorization_audit``).
Full-size numbers: docs/benchmarks.md."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

pytestmark = pytest.mark.slow  # ~140 s wall on 2 loaded cores (11 subprocesses over a 245 MB set; ~50 s per KNN cache)

N, D = 20_000, 3_072
SET_MB = N * D * 4 / 2**20
CHUNK_MB = 32

PROBE = os.path.join(os.path.dirname(__file__), os.pardir, "benchmarks", "mem_probe.py")


@pytest.fixture(scope="module")
def npy(tmp_path_factory):
    path = tmp_path_factory.mktemp("mem") / "train.npy"
    mm = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(N, D))
    rng = np.random.default_rng(0)
    for a in range(0, N, 5000):
        mm[a : a + 5000] = rng.standard_normal((5000, D), dtype=np.float32)
    mm.flush()
    del mm
    return str(path)


def measure(kind, field, path):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    out = subprocess.run(
        [sys.executable, PROBE, kind, field, path], check=True, env=env, timeout=900, capture_output=True, text=True
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.parametrize("field", ["esf", "tempered", "uncond", "knn_temp", "audit", "knn_cache"])
def test_in_memory_build_adds_at_most_1_25x_and_call_under_512mb(npy, field):
    m = measure("memory", field, npy)
    assert m["build_mb"] <= 1.25 * SET_MB, m
    assert m["call_mb"] < 512, m


@pytest.mark.parametrize("field", ["esf", "uncond", "knn_temp", "audit", "knn_cache"])
def test_memmapped_path_adds_at_most_256mb_plus_a_chunk(npy, field):
    m = measure("memmap", field, npy)
    assert m["build_mb"] <= 256 + CHUNK_MB, m
    assert m["build_mb"] + m["call_mb"] <= 256 + CHUNK_MB + 512, m
