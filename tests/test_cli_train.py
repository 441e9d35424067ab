"""`smoothscore train` / `sample`: a real (tiny) run end to end, resume, and user errors with exit code 2."""

import json

import numpy as np

from smoothscore.cli import main


def test_train_sample_audit_roundtrip(tmp_path, capsys):
    out = tmp_path / "m"
    args = [
        "train",
        "--data",
        "digits",
        "--n-train",
        "40",
        "--model",
        "mlp",
        "--width",
        "64",
        "--depth",
        "2",
        "--conditioning",
        "none",
        "--loss",
        "temperature",
        "--k",
        "5",
        "--steps",
        "20",
        "--batch-size",
        "16",
        "--checkpoint-every",
        "10",
        "--out",
        str(out),
        "--quiet",
    ]
    assert main(args) == 0
    meta = json.loads((out / "checkpoint.json").read_text())
    assert meta["step"] == 20 and meta["model_config"]["conditioning"] == "none"
    # existing checkpoint without --resume: refused, nothing overwritten
    before = (out / "checkpoint.safetensors").read_bytes()
    assert main(args) == 2
    assert (out / "checkpoint.safetensors").read_bytes() == before
    assert "--resume" in capsys.readouterr().err
    # resume to more steps
    resume = [a if a != "20" else "30" for a in args] + ["--resume"]
    assert main(resume) == 0
    assert json.loads((out / "checkpoint.json").read_text())["step"] == 30
    assert main(["sample", "--model", str(out), "--n", "6", "--steps", "15", "--sampler", "pc", "--quiet"]) == 0
    res = json.loads((out / "samples" / "audit.json").read_text())
    assert res["sampler"] == "pc" and 0 <= res["memorized_fraction"] <= 1
    assert np.load(out / "samples" / "samples.npz")["samples"].shape == (6, 1, 8, 8)
    assert (
        main(
            [
                "audit",
                "--train",
                "digits",
                "--samples",
                str(out / "samples" / "samples.npz"),
                "--out",
                str(tmp_path / "aud"),
            ]
        )
        == 0
    )


def test_train_user_errors(tmp_path, capsys):
    base = ["train", "--data", "digits", "--steps", "2", "--out", str(tmp_path / "x"), "--quiet"]
    assert main([*base, "--loss", "nope"]) == 2
    assert main([*base, "--conditioning", "none", "--loss", "dsm"]) == 2
    np.save(tmp_path / "nan.npy", np.array([[0.0, np.nan]], dtype=np.float32))
    assert (
        main(
            [
                "train",
                "--data",
                str(tmp_path / "nan.npy"),
                "--model",
                "mlp",
                "--out",
                str(tmp_path / "y"),
                "--steps",
                "2",
                "--quiet",
            ]
        )
        == 2
    )
    assert main(["sample", "--model", str(tmp_path / "missing")]) == 2
    (tmp_path / "ck").mkdir()
    (tmp_path / "ck" / "checkpoint.json").write_text("{not json")
    (tmp_path / "ck" / "checkpoint.safetensors").write_bytes(b"junk")
    assert main(["sample", "--model", str(tmp_path / "ck")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and all(line.startswith("smoothscore: error:") for line in err.strip().splitlines())
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()
