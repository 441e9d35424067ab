"""Peak memory added by building an exact score and by one call, measured in this fresh process (Linux).

``python benchmarks/mem_probe.py KIND FIELD PATH [N_QUERIES]``: KIND is ``memory`` (the ``.npy`` at PATH loaded
into RAM first) or ``memmap`` (PATH given to the field); FIELD is ``esf``, ``tempered`` or ``uncond``. Prints one
JSON line ``{"build_mb", "call_mb", "set_mb"}``: the rise of peak RSS (VmHWM, reset before each step by writing 5
to /proc/self/clear_refs) over the RSS just before the step. Used by tests/test_memory.py and bench_memory.py.
"""

import json
import sys

import numpy as np
import torch

import smoothscore as ss
from smoothscore.scores.temperature import temperature_smoothed


def status(key):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(key)) / 1024


def reset_peak():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def measure(fn):
    reset_peak()
    r0 = status("VmRSS")
    out = fn()
    return out, max(status("VmHWM"), status("VmRSS")) - r0


def main():
    torch.set_num_threads(1)
    kind, field, path = sys.argv[1:4]
    n_q = int(sys.argv[4]) if len(sys.argv) > 4 else 256
    train = torch.from_numpy(np.load(path)) if kind == "memory" else path
    x = torch.from_numpy(np.load(path, mmap_mode="r")[:n_q].copy()) + 0.1
    tiny = torch.randn(64, 4)  # import every module and warm the kernels first: not the set's cost
    ss.EmpiricalScore(tiny, device="cpu").denoise(tiny, 0.5)
    ss.UnconditionalEmpiricalScore(tiny, sigma_min=0.5, sigma_max=5.0, mode="optimal", device="cpu").score(tiny)
    make = {
        "esf": lambda: ss.EmpiricalScore(train, device="cpu"),
        "tempered": lambda: temperature_smoothed(train, 2.0, device="cpu"),
        "uncond": lambda: ss.UnconditionalEmpiricalScore(
            train, sigma_min=0.5, sigma_max=5.0, mode="optimal", device="cpu"
        ),
    }[field]
    f, build = measure(make)
    if field == "uncond":
        _, call = measure(lambda: f.score(x[:64]))
    else:
        _, call = measure(lambda: f.denoise(x, 0.5))
    set_mb = np.load(path, mmap_mode="r").nbytes / 2**20
    print(json.dumps({"build_mb": round(build, 1), "call_mb": round(call, 1), "set_mb": round(set_mb, 1)}))


if __name__ == "__main__":
    main()
