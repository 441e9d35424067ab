"""Execute the three tutorials (as `make tutorials` does), check the figures their pages show are produced, and
check the claims their text makes against the numbers they print.

Budget: CPU time measured on this project's shared, heavily loaded 2-core machine: 20 s, 37 s and ~190 s (the
third trains two small UNets for 1,500 steps each; the zhou-small-data preset measured such a UNet at ~26 ms per step
on an idle 2-core machine, so ~80-120 s there). xdist spreads the three over the 2 workers: about 2-3 minutes of wall
time on an idle 2-core machine. The per-script timeout (30 min) only guards against a hang."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("tutorials_run_all", ROOT / "tutorials" / "run_all.py")
runner = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(runner)


def _num(pattern: str, text: str) -> float:
    m = re.search(pattern, text)
    assert m, f"{pattern!r} not in the tutorial's output:\n{text}"
    return float(m.group(1))


def _check_claims(name: str, out: str) -> None:
    if name == "exact_score_memorizes":  # every ESF sample is a copy; no held-out digit is
        assert _num(r"memorized samples \(d\(NN1\)/d\(NN2\) < 1/3\): ([0-9.]+)", out) >= 0.95
        assert _num(r"held-out real digits: ([0-9.]+)", out) <= 0.05
    elif name == "interpolation_by_smoothing":  # sampler == closed form; share between points as predicted
        assert _num(r"max \|error\|: ([0-9.e+-]+)", out) < 1e-6
        smoothed, closed = _num(r"smoothed ([0-9.]+)", out), _num(r"closed form ([0-9.]+)", out)
        assert abs(smoothed - closed) < 0.02 and closed > 0.1
        assert _num(r"exact ESF ([0-9.]+)", out) == 0.0
        assert _num(r"normal std at t_min \(smoothed\): ([0-9.e+-]+)", out) == pytest.approx(1e-5**0.5, rel=0.1)
    else:  # the conditioned model copies more; the smoothed one's samples stay near the data
        cond = _num(r"conditioned\s+memorized ([0-9.]+)", out)
        temp = _num(r"temperature-smoothed\s+memorized ([0-9.]+)", out)
        assert cond - temp >= 0.2
        scale = _num(r"median distance between two training images ([0-9.]+)", out)
        assert (
            _num(r"temperature-smoothed\s+memorized [0-9.]+\s+median distance to the training set ([0-9.]+)", out)
            < 0.6 * scale
        )


@pytest.mark.slow
@pytest.mark.parametrize("name", runner.TUTORIALS)
def test_tutorial_executes_writes_its_figures_and_holds_its_claims(name, tmp_path):
    stdout, _ = runner.run_tutorial(name, tmp_path)
    shown = set(re.findall(r"\]\(figures/([\w.-]+\.png)\)", (ROOT / "tutorials" / f"{name}.py").read_text()))
    written = {p.name for p in tmp_path.glob("*.png")}
    assert shown and shown == written  # every figure shown is produced, and nothing produced goes unshown
    for fig in shown:
        assert (tmp_path / fig).stat().st_size > 1000
        assert (ROOT / "docs" / "tutorials" / "figures" / fig).exists()  # committed for the site
    _check_claims(name, stdout)
