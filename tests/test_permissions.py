"""Issue 11 item 2: every output is written atomically with the mode a plain ``open()`` gives under the user's umask
(not mkstemp's private 0600). Each umask runs in its own subprocess, so this process's umask is never changed."""

import os
import stat
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent("""
    import os, sys
    os.umask(int(sys.argv[2], 8))
    from pathlib import Path
    import numpy as np
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from smoothscore.cli import main
    from smoothscore.experiments.base import RunContext
    from smoothscore.report import write_html, write_summary
    from smoothscore.io import atomic_write_json
    root = Path(sys.argv[1])
    data = root / "data.npy"
    np.save(data, np.random.default_rng(0).normal(size=(40, 2)).astype(np.float32))
    assert main(["train", "--data", str(data), "--model", "mlp", "--width", "16", "--depth", "1", "--steps", "4",
                 "--batch-size", "8", "--checkpoint-every", "2", "--out", str(root / "model"), "--quiet"]) == 0
    assert main(["sample", "--model", str(root / "model"), "--n", "4", "--steps", "4", "--quiet"]) == 0
    assert main(["audit", "--train", str(data), "--samples", str(root / "model" / "samples" / "samples.npz"),
                 "--out", str(root / "audit")]) == 0
    ctx = RunContext(name="exp", preset="quick", out_dir=root / "rep" / "exp", config={})
    fig, ax = plt.subplots()
    ax.plot([0, 1])
    ctx.save_figure(fig, "fig", "a figure")
    res = {"experiment": "exp", "title": "t", "status": "ok", "duration_s": 0.0, "claims": [], "findings": [],
           "figures": [{"path": "fig.png", "caption": "c"}], "metrics": {}, "config": {}, "notes": [],
           "description": "", "preset": "quick", "seed": 0, "device": "cpu", "groups": [], "versions": {},
           "command": "", "started": "", "error": None}
    atomic_write_json(root / "rep" / "exp" / "results.json", res)
    write_summary([res], root / "rep")
    write_html([res], root / "rep")
""")

EXPECTED = {
    "checkpoint.safetensors",
    "checkpoint.json",
    "run.json",
    "samples.npz",
    "nearest_neighbors.png",
    "audit.json",
    "fig.png",
    "results.json",
    "summary.json",
    "report.html",
}


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_outputs_get_the_umask_mode_of_a_plain_open(tmp_path, umask):
    root = tmp_path / "run"
    root.mkdir()
    env = dict(os.environ, OMP_NUM_THREADS="1", MPLBACKEND="Agg")
    r = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(root), oct(umask)[2:]], env=env, timeout=300, capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr[-2000:]
    modes = {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            p = os.path.join(dirpath, f)
            if f != "data.npy":
                modes[os.path.relpath(p, root)] = stat.S_IMODE(os.stat(p).st_mode)
    assert EXPECTED <= {os.path.basename(p) for p in modes}, sorted(modes)
    want = 0o666 & ~umask
    assert {p: oct(m) for p, m in modes.items() if m != want} == {}, f"expected {oct(want)}"
    assert not [p for p in modes if ".tmp" in p]  # no temporary file left behind


def test_default_file_mode_matches_open_in_this_process(tmp_path):
    from smoothscore.io import atomic_write_text, default_file_mode

    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    ours = atomic_write_text(tmp_path / "ours.txt", "x")
    assert stat.S_IMODE(os.stat(ours).st_mode) == stat.S_IMODE(os.stat(plain).st_mode) == default_file_mode()


def test_every_writer_goes_through_smoothscore_io():
    """Static guard: outside ``smoothscore/io.py`` no module writes a file directly -- matplotlib, numpy, torch,
    PIL and plain writes only ever target the temporary path ``atomic_write`` hands them (named ``tmp``)."""
    import re
    from pathlib import Path

    src = Path(__file__).resolve().parents[1] / "src" / "smoothscore"
    direct = re.compile(r"\.write_(text|bytes)\(|torch\.save\(|np\.save(z|z_compressed)?\(|\.to_csv\(")
    # fig.savefig(x), im.save(x), anim.save(x); an in-memory io.BytesIO named buf is no file
    saver = re.compile(r"\.(savefig|save)\((?!tmp\b|buf\b|\)|str\(tmp)")
    opener = re.compile(r"open\((?!tmp\b|os\.devnull)[^)]*[\"'][wax]b?\+?[\"']")
    bad = []
    for p in src.rglob("*.py"):
        if p.name == "io.py" and p.parent == src:
            continue
        for n, line in enumerate(p.read_text().splitlines(), 1):
            code = line.split("#")[0]
            if direct.search(code) or opener.search(code) or (saver.search(code) and "def save(" not in code):
                bad.append(f"{p.relative_to(src)}:{n}: {line.strip()}")
    assert bad == []
