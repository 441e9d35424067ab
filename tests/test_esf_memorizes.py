import json

from smoothscore.cli import main


def test_esf_memorizes_via_cli(tmp_path):
    out = tmp_path / "r"
    assert (
        main(["reproduce", "esf-memorizes", "--out", str(out), "--quiet", "--set", "n_samples=16", "--set", "steps=40"])
        == 0
    )
    r = json.loads((out / "esf-memorizes" / "results.json").read_text())
    assert r["status"] == "ok" and r["config"]["n_samples"] == 16
    claims = {c["id"]: c for c in r["claims"]}
    assert claims["memorizes"]["value"] >= 0.95 and claims["memorizes"]["passed"] is True
    assert claims["control"]["value"] <= 0.1
    lo, hi = claims["memorizes"]["cis"][0]  # bootstrap interval over samples, shown in the report
    assert lo <= claims["memorizes"]["value"] <= hi and "[" in (out / "report.html").read_text()
    assert (out / "esf-memorizes" / "seed-0" / "nearest_neighbors.png").exists() and (out / "report.html").exists()


def test_audit_cli_on_npz(tmp_path, capsys):
    import numpy as np

    from smoothscore.data import load_digits

    train = load_digits(n=40, size=8, seed=0).x
    np.savez(tmp_path / "train.npz", x=train.numpy())
    np.savez(tmp_path / "samples.npz", samples=(train[:10] + 0.001).numpy())
    assert (
        main(
            [
                "audit",
                "--train",
                str(tmp_path / "train.npz"),
                "--samples",
                str(tmp_path / "samples.npz"),
                "--out",
                str(tmp_path / "audit"),
            ]
        )
        == 0
    )
    assert "memorized fraction 1.000" in capsys.readouterr().out
    res = json.loads((tmp_path / "audit" / "audit.json").read_text())
    assert res["memorized_fraction"] == 1.0 and (tmp_path / "audit" / "nearest_neighbors.png").exists()
    np.savez(tmp_path / "wrong.npz", samples=np.zeros((3, 5), dtype=np.float32))
    assert (
        main(
            [
                "audit",
                "--train",
                str(tmp_path / "train.npz"),
                "--samples",
                str(tmp_path / "wrong.npz"),
                "--out",
                str(tmp_path / "audit2"),
            ]
        )
        == 2
    )
    assert not (tmp_path / "audit2").exists()
