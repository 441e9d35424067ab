"""``smoothscore report DIR...`` merges what one run would have (issue 18): a killed ``--set`` rerun's stale jobs of
the old config are left out, a seed outside the latest plan is left out, and a job present in two folders is taken
from the later folder."""

import json

from smoothscore.cli import main
from smoothscore.experiments.base import experiment, experiments

NAME = "test-merge-folders"
if NAME not in experiments:

    @experiment(
        NAME,
        title="merge dummy",
        groups=("testmergefolders",),
        trains=True,
        presets={"quick": {"base": 0.6, "seeds": 3}, "paper": {"base": 0.6, "seeds": 3}},
        cost={"quick": 1.0},
    )
    def _merge_dummy(ctx):
        """A dummy 'trained' experiment whose value is base + seed / 100."""
        ctx.claim("value", "base plus seed", ctx.config["base"] + 0.01 * ctx.seed, ">=", 0.0)


def _run(*args):
    assert main(["reproduce", NAME, "--preset", "quick", *args, "--quiet"]) == 0


def _merged(tmp_path, *dirs):
    out = tmp_path / "merged"
    assert main(["report", *map(str, dirs), "--out", str(out)]) == 0
    return json.loads((out / NAME / "results.json").read_text())


def test_stale_config_of_a_killed_rerun_is_not_merged(tmp_path):
    old, new = tmp_path / "old", tmp_path / "new"
    _run("--out", str(old))  # base 0.6, seeds 0, 1, 2
    _run("--set", "base=0.4", "--shard", "1/3", "--out", str(new))  # the rerun got as far as seed 0
    r = _merged(tmp_path, old, new)
    assert r["config"]["base"] == 0.4
    assert r["seeds"] == [0] and r["missing_seeds"] == [1, 2]
    assert r["claims"][0]["values"] == [0.4]


def test_seed_outside_the_latest_plan_is_not_merged(tmp_path):
    early, late = tmp_path / "early", tmp_path / "late"
    _run("--seeds", "5", "--out", str(early))  # same config, an earlier plan
    _run("--seeds", "0,1,2", "--out", str(late))
    r = _merged(tmp_path, early, late)
    assert r["planned_seeds"] == [0, 1, 2] and r["seeds"] == [0, 1, 2]
    assert r["claims"][0]["values"] == [0.6, 0.61, 0.62]


def test_the_later_folder_copy_of_a_job_wins(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    _run("--out", str(a))
    _run("--shard", "1/3", "--out", str(b))  # seed 0 again, same config
    job = b / NAME / "seed-0" / "results.json"
    r = json.loads(job.read_text())
    r["command"] = "the copy in b"
    job.write_text(json.dumps(r))
    merged = _merged(tmp_path, a, b)
    assert merged["seeds"] == [0, 1, 2]
    assert {run["seed"]: run["command"] for run in merged["runs"]}[0] == "the copy in b"
    merged = _merged(tmp_path, b, a)  # and the other way round: a's copy
    assert {run["seed"]: run["command"] for run in merged["runs"]}[0] != "the copy in b"
