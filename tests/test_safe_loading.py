"""Issue 11 item 5: nothing is ever unpickled. A malicious pickle -- one whose unpickling creates a file -- is
offered as a checkpoint and as data in every form (.pt / .pkl, a torch.save zip renamed to .safetensors, an .npy /
.npz holding an object array) and refused before any of its code runs: the file is never created. A source scan
keeps unsafe loaders out of the library."""

import json
import pickle
import re
from pathlib import Path

import numpy as np
import pytest
import torch

import smoothscore as ss
from smoothscore.cli import main
from smoothscore.data import load_dataset
from smoothscore.errors import CheckpointError, DataError
from smoothscore.nets.checkpoint import FORMAT, load_checkpoint

SRC = Path(__file__).resolve().parents[1] / "src" / "smoothscore"


class Evil:
    """Unpickling this object calls ``open(target, "w")``: the proof that code ran is the file appearing."""

    def __init__(self, target):
        self.target = str(target)

    def __reduce__(self):
        return (open, (self.target, "w"))


@pytest.fixture
def evil(tmp_path):
    target = tmp_path / "PWNED"
    payload = pickle.dumps(Evil(target))
    # the payload is live: unpickling it does create the file (so the checks below can fail)
    probe = tmp_path / "probe"
    pickle.loads(pickle.dumps(Evil(probe))).close()
    assert probe.exists()
    return target, payload


def _sidecar(folder):
    folder.mkdir(exist_ok=True)
    (folder / "checkpoint.json").write_text(json.dumps({"format": FORMAT, "step": 1, "model_config": {}}))


def test_pickle_as_checkpoint_is_refused_before_it_runs(tmp_path, evil, capsys):
    target, payload = evil
    (tmp_path / "evil.pt").write_bytes(payload)
    (tmp_path / "evil.pkl").write_bytes(payload)
    torch.save({"x": Evil(target)}, tmp_path / "zip.pt")  # torch.save's zip format, pickle inside
    for f in ("evil.pt", "evil.pkl", "zip.pt"):
        with pytest.raises(CheckpointError, match="never loaded"):
            ss.NeuralScore.from_checkpoint(tmp_path / f)
        assert main(["sample", "--model", str(tmp_path / f), "--quiet", "--out", str(tmp_path / "o")]) == 2
    for name, blob in (("raw", payload), ("zip", (tmp_path / "zip.pt").read_bytes())):
        ck = tmp_path / name
        _sidecar(ck)
        (ck / "checkpoint.safetensors").write_bytes(blob)
        with pytest.raises(CheckpointError, match="truncated or not safetensors"):
            load_checkpoint(ck)
        assert main(["sample", "--model", str(ck), "--quiet", "--out", str(tmp_path / "o")]) == 2
        assert (
            main(
                ["train", "--data", "digits", "--model", "mlp", "--steps", "1", "--out", str(ck), "--resume", "--quiet"]
            )
            == 2
        )
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 7
    assert not target.exists()


def test_pickle_as_data_is_refused_before_it_runs(tmp_path, evil, capsys):
    target, payload = evil
    obj = np.empty(2, dtype=object)
    obj[0], obj[1] = Evil(target), 1.0
    np.save(tmp_path / "obj.npy", obj, allow_pickle=True)
    np.savez(tmp_path / "obj.npz", x=obj)
    (tmp_path / "raw.npy").write_bytes(payload)  # a bare pickle under an .npy name
    (tmp_path / "evil.pkl").write_bytes(payload)
    (tmp_path / "evil.pt").write_bytes(payload)
    for f in ("obj.npy", "obj.npz", "raw.npy", "evil.pkl", "evil.pt"):
        with pytest.raises(DataError):
            load_dataset(str(tmp_path / f))
        assert main(["train", "--data", str(tmp_path / f), "--out", str(tmp_path / "o"), "--quiet"]) == 2
        assert main(["audit", "--train", "digits", "--samples", str(tmp_path / f), "--out", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 10
    assert not target.exists() and not (tmp_path / "o").exists() and not (tmp_path / "a").exists()


def test_the_weights_only_loader_refuses_the_payload(tmp_path, evil):
    """The one ``torch.load`` in the library (local ResNet-18 weights) uses ``weights_only=True``."""
    target, payload = evil
    torch.save({"x": Evil(target)}, tmp_path / "w.pth")
    with pytest.raises(pickle.UnpicklingError):
        torch.load(tmp_path / "w.pth", map_location="cpu", weights_only=True)
    assert not target.exists()


def test_no_unsafe_loader_in_the_library():
    """Static guard: no pickle/marshal/shelve/joblib, every torch.load is weights_only=True, every np.load
    allow_pickle=False, no yaml.load (safe_load only)."""
    bad = []
    for p in SRC.rglob("*.py"):
        text = p.read_text()
        for m in re.finditer(r"^\s*(import|from)\s+(pickle|cPickle|dill|marshal|shelve|joblib)\b", text, re.M):
            bad.append(f"{p.name}: {m.group(0).strip()}")
        for call in re.findall(r"torch\.load\([^)]*\)", text):
            if "weights_only=True" not in call:
                bad.append(f"{p.name}: {call}")
        for call in re.findall(r"np\.load\([^)]*\)", text):
            if "allow_pickle=False" not in call:
                bad.append(f"{p.name}: {call}")
        bad += [f"{p.name}: yaml.load" for _ in re.findall(r"yaml\.load\(", text)]
        bad += [f"{p.name}: pickle.load" for _ in re.findall(r"\bpickle\.loads?\(", text)]
    assert bad == []
