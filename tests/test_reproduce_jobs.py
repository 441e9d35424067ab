"""reproduce as (experiment, seed) jobs: shards merged by `smoothscore report` equal a single run; result folders are
never silently clobbered (issue 11 item 1): other experiments stay in the report, --resume keeps finished jobs,
--overwrite starts clean; --jobs runs jobs in processes with the same results."""

import json
import os
import re

import pytest

from smoothscore.cli import main
from smoothscore.experiments.base import experiment, experiments
from smoothscore.runner import longest_first, parse_seeds, parse_shard, plan, shard

if "test-seeded" not in experiments:

    @experiment(
        "test-seeded",
        title="seeded dummy",
        groups=("testjobs",),
        trains=True,
        presets={"quick": {"base": 0.6, "seeds": 3}, "paper": {"base": 0.6, "seeds": 5}},
        cost={"quick": 5.0},
    )
    def _seeded(ctx):
        """A dummy 'trained' experiment whose values depend on the seed."""
        ctx.claim(
            "stable",
            "holds in every seed with a margin",
            ctx.config["base"] + 0.01 * ctx.seed,
            ">=",
            0.5,
            ci=[0.5, 0.7],
        )
        ctx.claim("flip", "holds in some seeds only", ctx.seed - 1.0, ">", 0.0)
        ctx.claim("exact", "seed-independent", 2.0, "==", 2.0, deterministic=True)

    @experiment("test-exact", title="exact dummy", groups=("testjobs",), presets={"quick": {}, "paper": {}})
    def _exact(ctx):
        """A dummy deterministic experiment."""
        ctx.claim("one", "one value", 1.0, "<", 2.0)


VOLATILE = {"started", "duration_s", "cpu_s", "command", "runs", "threads"}


def _run(*args):
    assert main(list(args) + ["--quiet"]) == 0


def _results(out, name):
    r = json.loads((out / name / "results.json").read_text())
    return {k: v for k, v in r.items() if k not in VOLATILE}


def _claims_html(out):
    h = (out / "report.html").read_text()
    return h[h.index("<h2>All claims") : h.index("<h2 id=")]


def test_plan_seeds_and_shards():
    jobs = plan(["test-exact", "test-seeded"], "quick", seed=4)
    assert [(j.experiment, j.seed) for j in jobs] == [
        ("test-exact", 4),
        ("test-seeded", 4),
        ("test-seeded", 5),
        ("test-seeded", 6),
    ]
    assert [j.seed for j in plan(["test-seeded"], "paper")] == [0, 1, 2, 3, 4]
    assert [j.seed for j in plan(["test-seeded", "test-exact"], "quick", seeds=[9, 2])] == [2, 9, 2]
    parts = [shard(jobs, i, 3) for i in (1, 2, 3)]
    assert sorted(sum(parts, []), key=jobs.index) == jobs and sum(map(len, parts)) == len(jobs)
    assert parse_seeds("0,1,2") == [0, 1, 2] and parse_shard("2/4") == (2, 4)
    for bad in ("a,b", "1,1", "-1"):
        assert main(["reproduce", "test-seeded", "--seeds", bad, "--quiet"]) == 2
    for bad in ("0/2", "3/2", "x"):
        assert main(["reproduce", "test-seeded", "--shard", bad, "--quiet"]) == 2


def test_longest_jobs_start_first():
    jobs = plan(["test-exact", "test-seeded"], "quick")
    order = [(j.experiment, j.seed) for j in longest_first(jobs, "quick")]
    assert order == [("test-seeded", 0), ("test-seeded", 1), ("test-seeded", 2), ("test-exact", 0)]
    # no measured cost at the paper preset: training experiments first, plan order otherwise
    paper = [(j.experiment, j.seed) for j in longest_first(plan(["test-exact", "test-seeded"], "paper"), "paper")]
    assert paper[0][0] == "test-seeded" and paper[-1] == ("test-exact", 0) and len(paper) == 6


def test_shards_merged_equal_a_single_run(tmp_path):
    one, s1, s2, merged = (tmp_path / n for n in ("one", "s1", "s2", "merged"))
    _run("reproduce", "testjobs", "--out", str(one))
    _run("reproduce", "testjobs", "--shard", "1/2", "--out", str(s1))
    _run("reproduce", "testjobs", "--shard", "2/2", "--out", str(s2))
    assert len(list(s1.glob("*/seed-*"))) == 2 and len(list(s2.glob("*/seed-*"))) == 2
    assert main(["report", str(s1), str(s2), "--out", str(merged)]) == 0
    for name in ("test-seeded", "test-exact"):
        assert _results(merged, name) == _results(one, name)
    assert _claims_html(merged) == _claims_html(one)
    r = _results(one, "test-seeded")
    verdicts = {c["id"]: (c["values"], c["verdict"]) for c in r["claims"]}
    assert verdicts == {
        "stable": ([0.6, 0.61, 0.62], "pass"),
        "flip": ([-1.0, 0.0, 1.0], "inconclusive"),
        "exact": ([2.0], "pass"),
    }
    assert r["seeds"] == [0, 1, 2] and r["missing_seeds"] == []
    # summary.md (README's results table): one row per experiment, the claims not passing with per-seed values
    md = {p: (p / "summary.md").read_text() for p in (one, merged)}

    def _no_cpu(text):  # CPU seconds are the only volatile numbers
        return re.sub(r"(?m)^(\| `[^`]+` \| \d+ \| )[^|]+|; [\d.]+ CPU s", r"\1", text)

    assert _no_cpu(md[one]) == _no_cpu(md[merged])
    rows = [line for line in md[one].splitlines() if line.startswith("| `")]
    assert [r.split("|")[1].strip() for r in rows] == ["`test-exact`", "`test-seeded`"]
    seeds, cpu, *counts = (x.strip() for x in rows[1].split("|")[2:7])
    assert seeds == "3" and float(cpu) >= 0 and counts == ["2", "0", "1"]
    assert "inconclusive: `flip` (-1, 0, 1) > 0" in rows[1]
    assert "All: 3 of 4 claims pass, 0 fail, 1 inconclusive" in md[one]
    html = (one / "report.html").read_text()
    assert "Inconclusive claims (1)" in html and "s0: 0.6 <span class='small'>[0.5, 0.7]</span>" in html
    assert main(["report", str(tmp_path / "absent"), "--out", str(merged)]) == 2
    # a shard alone: its report says which seeds are missing and decides nothing it cannot
    part = _results(s1, "test-seeded")
    assert part["seeds"] == [1] and part["missing_seeds"] == [0, 2]
    assert {c["verdict"] for c in part["claims"] if not c["deterministic"]} == {"inconclusive"}


def test_existing_results_kept_resume_and_overwrite(tmp_path):
    out = tmp_path / "out"
    _run("reproduce", "test-seeded", "--out", str(out))
    _run("reproduce", "test-exact", "--out", str(out))  # another experiment into the same folder
    assert {r["experiment"] for r in json.loads((out / "summary.json").read_text())["experiments"]} == {
        "test-seeded",
        "test-exact",
    }
    assert "seeded dummy" in (out / "report.html").read_text()
    stamp = {p: p.stat().st_mtime_ns for p in out.glob("test-seeded/seed-*/results.json")}
    (out / "test-seeded" / "seed-1" / "results.json").unlink()  # a job killed before it finished
    (out / "test-seeded" / "results.json").unlink()  # ... and before the merge
    _run("reproduce", "testjobs", "--resume", "--out", str(out))
    again = {p: p.stat().st_mtime_ns for p in out.glob("test-seeded/seed-*/results.json")}
    assert set(again) == set(stamp)
    changed = [p.parent.name for p in again if again[p] != stamp.get(p)]
    assert changed == ["seed-1"]
    assert [c["verdict"] for c in _results(out, "test-seeded")["claims"]] == ["pass", "inconclusive", "pass"]
    # a different config is not "finished": --resume re-runs those jobs and the report shows only the new config
    _run("reproduce", "test-seeded", "--resume", "--set", "base=0.2", "--out", str(out))
    r = _results(out, "test-seeded")
    assert r["config"] == {"base": 0.2, "precision": "float32"} and r["claims"][0]["verdict"] == "fail"
    assert main(["reproduce", "test-exact", "--resume", "--overwrite", "--out", str(out), "--quiet"]) == 2
    _run("reproduce", "test-exact", "--overwrite", "--out", str(out))
    assert sorted(p.name for p in out.iterdir()) == ["report.html", "summary.json", "summary.md", "test-exact"]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="spawned workers need a POSIX test environment")
def test_jobs_in_processes_equal_serial(tmp_path):
    _run("reproduce", "test-seeded", "--seeds", "0,1", "--out", str(tmp_path / "serial"))
    _run("reproduce", "test-seeded", "--seeds", "0,1", "--jobs", "2", "--out", str(tmp_path / "par"))
    assert _results(tmp_path / "par", "test-seeded") == _results(tmp_path / "serial", "test-seeded")
    runs = json.loads((tmp_path / "par" / "test-seeded" / "results.json").read_text())["runs"]
    assert [r["threads"] for r in runs] == [max(1, (os.cpu_count() or 1) // 2)] * 2
