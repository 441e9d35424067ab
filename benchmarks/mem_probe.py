"""Peak memory added by building an exact score (or a neighbour structure) and by one call, measured in this fresh
process (Linux).

``python benchmarks/mem_probe.py KIND FIELD PATH [N_QUERIES]``: KIND is ``memory`` (the ``.npy`` at PATH loaded
into RAM first) or ``memmap`` (PATH given to the field); FIELD is one of

* ``esf`` (:class:`EmpiricalScore`; call: ``denoise`` of the queries), ``tempered`` (``temperature_smoothed``, T = 2),
  ``uncond`` (:class:`UnconditionalEmpiricalScore`, optimal level; call: ``score`` of 64 queries);
* ``knn_temp`` (:class:`KNNTemperatureScore`, K = 10; build includes its lazily built neighbour index, i.e. one
  call on one query; call: ``score`` of the queries over their K nearest training points);
* ``knn_cache`` (the temperature loss's :class:`KNNCache`, K = 10: an all-pairs search of the set; call: the
  neighbour images of 256 training samples);
* ``audit`` (the nearest-neighbour metrics: build a :class:`NeighborIndex`; call: ``memorization_audit`` of the
  queries against it).

Prints one JSON line ``{"build_mb", "call_mb", "build_anon_mb", "call_anon_mb", "set_mb"}``. ``*_mb``: the rise of
peak RSS (VmHWM, reset before each step by writing 5 to /proc/self/clear_refs) over the RSS just before the step;
it counts file-backed pages mapped into the process (a memory map read through its mapping) as well as anonymous
memory. ``*_anon_mb``: the rise of anonymous resident memory only (RssAnon of /proc/self/status, sampled every
millisecond by a thread while the step runs, so spikes shorter than that can be missed), i.e. without the page
cache of a memory-mapped file. Used by tests/test_memory.py and bench_memory.py.
"""

import json
import sys
import threading
import time

import numpy as np
import torch

import smoothscore as ss
from smoothscore.metrics import memorization_audit
from smoothscore.scores.temperature import KNNTemperatureScore, temperature_smoothed
from smoothscore.search.neighbors import NeighborIndex
from smoothscore.training.knn import KNNCache


def status(*keys):
    with open("/proc/self/status") as f:
        vals = {line.split(":")[0]: int(line.split()[1]) / 1024 for line in f if line.split(":")[0] in keys}
    return [vals[k] for k in keys]


def reset_peak():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def measure(fn):
    """``(fn(), VmHWM rise, sampled peak RssAnon rise)`` in MB."""
    reset_peak()
    rss0, anon0 = status("VmRSS", "RssAnon")
    peak, done = [anon0], threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], status("RssAnon")[0])
            time.sleep(0.001)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    try:
        out = fn()
    finally:
        done.set()
        t.join()
    hwm, rss, anon = status("VmHWM", "VmRSS", "RssAnon")
    return out, max(hwm, rss) - rss0, max(peak[0], anon) - anon0


def main():
    torch.set_num_threads(1)
    kind, field, path = sys.argv[1:4]
    n_q = int(sys.argv[4]) if len(sys.argv) > 4 else 256
    train = torch.from_numpy(np.load(path)) if kind == "memory" else path
    x = torch.from_numpy(np.load(path, mmap_mode="r")[:n_q].copy()) + 0.1
    tiny = torch.randn(64, 4)  # import every module and warm the kernels first: not the set's cost
    ss.EmpiricalScore(tiny, device="cpu").denoise(tiny, 0.5)
    ss.UnconditionalEmpiricalScore(tiny, sigma_min=0.5, sigma_max=5.0, mode="optimal", device="cpu").score(tiny)
    KNNTemperatureScore(tiny, 2.0, device="cpu").score(tiny, 0.5)
    memorization_audit(tiny, NeighborIndex(tiny))

    def knn_temp():
        f = KNNTemperatureScore(train, 2.0, k=10, device="cpu")
        f.neighbors(x[:1])  # the lazily built neighbour index belongs to the build
        return f

    make = {
        "esf": lambda: ss.EmpiricalScore(train, device="cpu"),
        "tempered": lambda: temperature_smoothed(train, 2.0, device="cpu"),
        "uncond": lambda: ss.UnconditionalEmpiricalScore(
            train, sigma_min=0.5, sigma_max=5.0, mode="optimal", device="cpu"
        ),
        "knn_temp": knn_temp,
        "knn_cache": lambda: KNNCache(train, k=10),
        "audit": lambda: NeighborIndex(train),
    }[field]
    call = {
        "uncond": lambda f: f.score(x[:64]),
        "knn_temp": lambda f: f.score(x, 0.5),
        "knn_cache": lambda f: f.neighbors_of(torch.arange(n_q)),
        "audit": lambda f: memorization_audit(x, f),
    }.get(field, lambda f: f.denoise(x, 0.5))
    f, build, build_anon = measure(make)
    _, call_mb, call_anon = measure(lambda: call(f))
    set_mb = np.load(path, mmap_mode="r").nbytes / 2**20
    out = {"build_mb": build, "call_mb": call_mb, "build_anon_mb": build_anon, "call_anon_mb": call_anon}
    print(json.dumps({**{k: round(v, 1) for k, v in out.items()}, "set_mb": round(set_mb, 1)}))


if __name__ == "__main__":
    main()
