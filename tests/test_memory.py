"""Peak memory of the exact scores (issue 9, item 1), measured in a fresh subprocess as the rise of peak RSS
(``VmHWM``, reset before each step) over the RSS just before it, at 20,000 x 3,072 float32 (245 MB; seconds to run):

* building from an in-memory float32 set adds <= 1.25x the set's size (no float64 or centred copy);
* building from a memory-mapped ``.npy`` (path) and denoising adds <= 256 MB + one streamed chunk;
* a denoise call of 256 queries adds < 512 MB;
the same for the unconditional field and the temperature-smoothed forms. Full-size numbers: docs/benchmarks.md."""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

pytestmark = pytest.mark.slow   # ~85 s wall on 2 loaded cores (5 subprocesses over a 245 MB set)

N, D = 20_000, 3_072
SET_MB = N * D * 4 / 2 ** 20
CHUNK_MB = 32

SCRIPT = textwrap.dedent("""
    import json, resource, sys, torch
    import numpy as np
    import smoothscore as ss
    from smoothscore.scores.temperature import temperature_smoothed
    torch.set_num_threads(1)
    def rss():
        with open("/proc/self/status") as f:
            return next(int(l.split()[1]) for l in f if l.startswith("VmRSS")) / 1024
    def status(key):
        with open("/proc/self/status") as f:
            return next(int(l.split()[1]) for l in f if l.startswith(key)) / 1024
    def reset_peak():   # Linux: writing 5 to clear_refs resets VmHWM, so earlier transients do not count
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
        except OSError:
            pass
    def peak():
        return max(status("VmHWM"), status("VmRSS"))
    kind, field, path = sys.argv[1], sys.argv[2], sys.argv[3]
    train = np.load(path) if kind == "memory" else path
    if kind == "memory":
        train = torch.from_numpy(train)
    x = torch.from_numpy(np.load(path, mmap_mode="r")[:256].copy()) + 0.1
    make = {"esf": lambda: ss.EmpiricalScore(train, device="cpu"),
            "tempered": lambda: temperature_smoothed(train, 2.0, device="cpu"),
            "uncond": lambda: ss.UnconditionalEmpiricalScore(train, sigma_min=0.5, sigma_max=5.0, mode="optimal",
                                                             device="cpu")}[field]
    tiny = torch.randn(64, 4)                 # import every module and warm the kernels first: not the set's cost
    ss.EmpiricalScore(tiny, device="cpu").denoise(tiny, 0.5)
    ss.UnconditionalEmpiricalScore(tiny, sigma_min=0.5, sigma_max=5.0, mode="optimal", device="cpu").score(tiny)
    reset_peak()
    r0 = rss()
    f = make()
    build = peak() - r0
    reset_peak()
    r1 = rss()
    if field == "uncond":
        f.score(x[:64])
    else:
        f.denoise(x, 0.5)
    call = peak() - r1
    print(json.dumps({"build_mb": build, "call_mb": call}))
""")


@pytest.fixture(scope="module")
def npy(tmp_path_factory):
    path = tmp_path_factory.mktemp("mem") / "train.npy"
    mm = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(N, D))
    rng = np.random.default_rng(0)
    for a in range(0, N, 5000):
        mm[a:a + 5000] = rng.standard_normal((5000, D), dtype=np.float32)
    mm.flush()
    del mm
    return str(path)


def measure(kind, field, path):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", SCRIPT, kind, field, path], check=True, env=env, timeout=300,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.parametrize("field", ["esf", "tempered", "uncond"])
def test_in_memory_build_adds_at_most_1_25x_and_call_under_512mb(npy, field):
    m = measure("memory", field, npy)
    assert m["build_mb"] <= 1.25 * SET_MB, m
    assert m["call_mb"] < 512, m


@pytest.mark.parametrize("field", ["esf", "uncond"])
def test_memmapped_path_adds_at_most_256mb_plus_a_chunk(npy, field):
    m = measure("memmap", field, npy)
    assert m["build_mb"] <= 256 + CHUNK_MB, m
    assert m["build_mb"] + m["call_mb"] <= 256 + CHUNK_MB + 512, m
