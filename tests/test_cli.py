"""CLI: user errors are one line on stderr, exit code 2, no traceback and no partial output."""

import subprocess
import sys

from smoothscore.cli import main


def run_cli(*args):
    p = subprocess.run([sys.executable, "-m", "smoothscore.cli", *args], capture_output=True, text=True, timeout=300)
    return p.returncode, p.stdout, p.stderr


def test_unknown_experiment_exits_2_one_line_no_output(tmp_path):
    out = tmp_path / "out"
    code, so, se = run_cli("reproduce", "no-such-experiment", "--out", str(out))
    assert code == 2 and "Traceback" not in se and len(se.strip().splitlines()) == 1
    assert "no-such-experiment" in se
    assert not out.exists()


def test_bad_arguments_exit_2_one_line():
    code, so, se = run_cli("reproduce", "esf-memorizes", "--preset", "huge")
    assert code == 2 and len(se.strip().splitlines()) == 1 and "Traceback" not in se and "huge" in se
    code, so, se = run_cli("no-such-command")
    assert code == 2 and len(se.strip().splitlines()) == 1


def test_help_shows_defaults():
    code, so, se = run_cli("reproduce", "--help")
    assert code == 0 and "default: quick" in so


def test_audit_missing_paths_exit_2(tmp_path, capsys):
    assert (
        main(
            [
                "audit",
                "--train",
                str(tmp_path / "missing.npz"),
                "--samples",
                str(tmp_path),
                "--out",
                str(tmp_path / "a"),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert err.startswith("smoothscore: error:") and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "a").exists()


def test_bad_override_and_device(tmp_path, capsys):
    assert main(["reproduce", "test-nothing-here", "--out", str(tmp_path / "o")]) == 2
    assert main(["reproduce", "--set", "novalue", "--out", str(tmp_path / "o")]) == 2
    assert not (tmp_path / "o").exists()


def test_reproduce_missing_data_folder_exit_2_no_partial_output(tmp_path):
    out = tmp_path / "out"
    code, so, se = run_cli(
        "reproduce", "zhou-small-data", "--data", f"folder:{tmp_path / 'absent'}", "--quiet", "--out", str(out)
    )
    assert code == 2 and "Traceback" not in se and len(se.strip().splitlines()) == 1
    assert "image folder not found" in se
    assert not out.exists()
