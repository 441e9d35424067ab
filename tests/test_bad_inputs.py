"""Issue 11 item 4, the library half of the bad-input matrix: every case raises a specific
:mod:`smoothscore.errors` class with a message naming the problem (the CLI half is ``test_bad_inputs_cli.py``;
``docs/reliability.md`` lists both with the exact messages)."""

import errno
import math
import os

import numpy as np
import pytest
import torch

import smoothscore as ss
from smoothscore import errors as E
from smoothscore._checks import check_overrides, check_preset
from smoothscore.data import load_dataset, load_image_folder
from smoothscore.data.loading import load_samples
from smoothscore.io import atomic_write, atomic_write_json, ensure_output_dir
from smoothscore.metrics import memorization_fraction, nn_ratio
from smoothscore.nets import build_model, models
from smoothscore.nets.checkpoint import load_checkpoint, load_state_strict
from smoothscore.noise import schedules, sigma_schedule
from smoothscore.sampling import sample, samplers
from smoothscore.scores.temperature import KNNTemperatureScore, sigma_schedule_temperature
from smoothscore.search import NeighborIndex
from smoothscore.training import KNNCache, losses

TRAIN = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])


def _png(path, size, mode="L"):
    from PIL import Image

    Image.new(mode, size, 128).save(path)


# ----------------------------------------------------------------------------------- data and files
def test_missing_and_unreadable_paths(tmp_path):
    with pytest.raises(E.DataError, match="not found"):
        load_dataset(str(tmp_path / "missing.npy"))
    with pytest.raises(E.DataError, match="image folder not found"):
        load_dataset(f"folder:{tmp_path / 'absent'}")
    (tmp_path / "dir.npy").mkdir()  # a path that exists but cannot be read as a file
    with pytest.raises(E.DataError, match="cannot read"):
        load_dataset(str(tmp_path / "dir.npy"))
    with pytest.raises(E.DataError, match="samples path not found"):
        load_samples(tmp_path / "none.npz", (2,))


def test_unreadable_file_permission(tmp_path, monkeypatch):
    p = tmp_path / "x.npy"
    np.save(p, np.zeros((3, 2), np.float32))
    os.chmod(p, 0)
    if os.geteuid() == 0:  # root reads anything: make the read itself fail as it would for a user

        def denied(*a, **k):
            raise PermissionError(errno.EACCES, "Permission denied", str(p))

        monkeypatch.setattr(np, "load", denied)
    with pytest.raises(E.DataError, match="cannot read .*Permission denied"):
        load_dataset(str(p))


@pytest.mark.parametrize(
    "make, exc, msg",
    [
        (lambda: ss.EmpiricalScore(torch.zeros(0, 2)), E.EmptyDataError, "empty"),
        (lambda: ss.UnconditionalEmpiricalScore(torch.zeros(0, 2)), E.EmptyDataError, "empty"),
        (lambda: nn_ratio(torch.zeros(3, 2), torch.zeros(1, 2)), E.EmptyDataError, "at least 2"),
        (lambda: memorization_fraction(torch.zeros(3, 2), torch.zeros(1, 2)), E.EmptyDataError, "at least 2"),
        (lambda: ss.data.Dataset(torch.zeros(0, 2)), E.EmptyDataError, "empty"),
    ],
    ids=["esf-empty", "unconditional-empty", "nn-ratio-single-point", "memorization-single-point", "dataset-empty"],
)
def test_empty_and_single_point_sets(make, exc, msg):
    with pytest.raises(exc, match=msg):
        make()


def test_single_point_set_is_valid_for_scores():
    """One training point is a legitimate ESF: the score is the single Gaussian's, -(x - y) / sigma^2."""
    y = torch.tensor([[0.5, -1.0]], dtype=torch.float64)
    x = torch.tensor([[1.0, 2.0], [-3.0, 0.0]], dtype=torch.float64)
    s = ss.EmpiricalScore(y, dtype="float64", device="cpu").score(x, 0.7)
    assert torch.allclose(s, -(x - y) / 0.49, rtol=1e-12, atol=0)


NAN_Q = torch.tensor([[0.0, float("nan")]])
INF_Q = torch.tensor([[float("inf"), 0.0]])


@pytest.mark.parametrize(
    "make",
    [
        lambda: ss.EmpiricalScore(torch.tensor([[0.0, float("nan")], [1.0, 1.0]])),
        lambda: ss.UnconditionalEmpiricalScore(torch.tensor([[0.0, float("inf")], [1.0, 1.0]])),
        lambda: ss.EmpiricalScore(TRAIN).score(NAN_Q, 1.0),
        lambda: ss.EmpiricalScore(TRAIN).score(INF_Q, 1.0),
        lambda: ss.UnconditionalEmpiricalScore(TRAIN).score(NAN_Q),
        lambda: nn_ratio(INF_Q, TRAIN),
        lambda: sample(ss.EmpiricalScore(TRAIN), NAN_Q, [1.0, 0.5]),
        lambda: ss.data.Dataset(torch.tensor([[float("nan")]])),
    ],
    ids=[
        "esf-train-nan",
        "unconditional-train-inf",
        "esf-query-nan",
        "esf-query-inf",
        "unconditional-query-nan",
        "metric-query-inf",
        "sampler-init-nan",
        "dataset-nan",
    ],
)
def test_nan_and_inf(make):
    with pytest.raises(E.NonFiniteError, match="NaN/Inf"):
        make()


@pytest.mark.parametrize(
    "make",
    [
        lambda: ss.EmpiricalScore(TRAIN).score(torch.zeros(2, 3), 1.0),
        lambda: ss.UnconditionalEmpiricalScore(TRAIN).score(torch.zeros(2, 3)),
        lambda: nn_ratio(torch.zeros(2, 3), TRAIN),
        lambda: ss.NeuralScore(build_model("mlp", (2,), width=8), device="cpu").score(torch.zeros(2, 3), 1.0),
        lambda: sample(ss.EmpiricalScore(TRAIN), torch.zeros(2, 3), [1.0, 0.5]),
    ],
    ids=["esf-query", "unconditional-query", "metric-samples", "model-input", "sampler-init"],
)
def test_mismatched_dimensions(make):
    with pytest.raises(E.ShapeError, match="shape"):
        make()


def test_mismatched_sample_shape_needs_resize(tmp_path):
    np.save(tmp_path / "s.npy", np.zeros((2, 3, 8, 8), np.float32))
    with pytest.raises(E.ShapeError, match=r"3x8x8 \(RGB\) but the training set 1x4x4 \(grey\); pass --resize"):
        load_samples(tmp_path / "s.npy", (1, 4, 4))
    x, note = load_samples(tmp_path / "s.npy", (1, 4, 4), resize=True)
    assert x.shape == (2, 1, 4, 4) and "RGB converted to grey" in note
    np.save(tmp_path / "p.npy", np.zeros((2, 5), np.float32))
    with pytest.raises(E.ShapeError, match=r"samples have shape \(5,\) but the training set 1x4x4 \(grey\)$"):
        load_samples(tmp_path / "p.npy", (1, 4, 4), resize=True)


# ------------------------------------------------------------------------------------ values
@pytest.mark.parametrize("sigma", [0.0, -1.0, float("nan"), float("inf")])
def test_bad_sigma(sigma):
    with pytest.raises(E.SigmaError):
        ss.EmpiricalScore(TRAIN).score(torch.zeros(1, 2), sigma)
    with pytest.raises(E.SigmaError):
        ss.EmpiricalScore(TRAIN).score(torch.zeros(2, 2), torch.tensor([1.0, sigma]))
    with pytest.raises(E.SigmaError):
        sigma_schedule("edm", 10, sigma if sigma != float("inf") else 0.0, 1.0)
    with pytest.raises(E.SigmaError):
        sample(ss.EmpiricalScore(TRAIN), torch.zeros(1, 2), [1.0, sigma if math.isnan(sigma) else 2.0])


@pytest.mark.parametrize("t", [0.0, -1.0, float("nan"), float("inf")])
def test_bad_temperature(t):
    with pytest.raises(E.ConfigError, match="temperature"):
        ss.EmpiricalScore(TRAIN, temperature=t)
    if not math.isinf(t):
        with pytest.raises(E.ConfigError, match="temperature"):
            KNNTemperatureScore(TRAIN, temperature=t)
    if not math.isnan(t) and not math.isinf(t):
        with pytest.raises(E.ConfigError, match="sigma_collapse"):
            sigma_schedule_temperature(t)


def test_k_larger_than_data():
    with pytest.raises(E.ConfigError, match=r"k must be in \[1, 4\]"):
        KNNCache(TRAIN, k=5)
    with pytest.raises(E.ConfigError, match=r"k must be in \[1, 4\]"):
        NeighborIndex(TRAIN).search(torch.zeros(1, 2), k=5)
    with pytest.raises(E.ConfigError, match=r"k must be an integer in \[1, 4\] \(the training set has 4 points\)"):
        KNNTemperatureScore(TRAIN, 2.0, k=5)
    with pytest.raises(E.ConfigError, match=r"k_neighbors must be an integer in \[1, 4\]"):
        ss.UnconditionalEmpiricalScore(torch.rand(4, 3), mode="optimal", k_neighbors=5, device="cpu")


# ------------------------------------------------------------------------------------ names
@pytest.mark.parametrize(
    "lookup, bad, hint",
    [
        (samplers.get, "hen", "heun"),
        (models.get, "unett", "unet"),
        (losses.get, "dsn", "dsm"),
        (schedules.get, "edn", "edm"),
        (load_dataset, "digitz", "digits"),
    ],
)
def test_unknown_names_say_did_you_mean(lookup, bad, hint):
    with pytest.raises(E.UnknownNameError, match=f"unknown .*'{bad}' \\(did you mean '{hint}'"):
        lookup(bad)


def test_unknown_experiment_and_preset_say_did_you_mean():
    from smoothscore.experiments.base import resolve_names

    with pytest.raises(E.UnknownNameError, match="did you mean 'esf-memorizes'"):
        resolve_names(["esf-memorize"])
    with pytest.raises(E.ConfigError, match="no preset 'quik' \\(did you mean 'quick'"):
        check_preset({"quick": {}, "paper": {}}, "quik", "x")


def test_set_overrides_are_validated_against_the_preset():
    cfg = {"exp": {"steps": 60, "sigma_min": 0.01, "method": "heun", "dims": [1, 2], "flag": True, "opt": None}}
    assert check_overrides(cfg, {"steps": 10.0, "sigma_min": 1, "opt": "x"}) == {
        "steps": 10,
        "sigma_min": 1,
        "opt": "x",
    }
    with pytest.raises(E.UnknownNameError, match="--set stepz: unknown key for exp \\(did you mean 'steps'"):
        check_overrides(cfg, {"stepz": 3})
    for key, val, want in [
        ("steps", "abc", "an integer"),
        ("steps", 2.5, "an integer"),
        ("sigma_min", "x", "a number"),
        ("flag", 1, "true or false"),
        ("dims", 3, "a list"),
        ("method", 3, "a str"),
        ("sigma_min", float("inf"), "finite"),
    ]:
        with pytest.raises(E.ConfigError, match=want):
            check_overrides(cfg, {key: val})


# ------------------------------------------------------------------------------------ images
def test_mixed_sizes_and_corrupt_images(tmp_path):
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    _png(mixed / "a.png", (8, 8))
    _png(mixed / "b.png", (9, 8))
    with pytest.raises(E.DataError, match="mixed sizes"):
        load_image_folder(mixed)
    assert load_image_folder(mixed, size=4).x.shape == (2, 1, 4, 4)
    bad = tmp_path / "bad"
    bad.mkdir()
    _png(bad / "a.png", (8, 8))
    (bad / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not an image")
    with pytest.raises(E.DataError, match="unreadable image .*b.png"):
        load_image_folder(bad)


def test_rgb_is_never_silently_made_grey(tmp_path):
    d = tmp_path / "rgb"
    d.mkdir()
    for i in range(2):
        _png(d / f"{i}.png", (20, 10), "RGB")
    with pytest.raises(E.ShapeError, match="3x10x20 \\(RGB\\) but the training set 1x4x4"):
        load_samples(d, (1, 4, 4))
    x, note = load_samples(d, (1, 4, 4), resize=True)
    assert x.shape == (2, 1, 4, 4)
    assert note == "resized 2 sample images from 10x20 (RGB) to 1x4x4 (grey) (RGB converted to grey)"


# ------------------------------------------------------------------------------------ checkpoints
@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    from smoothscore.training import ConditionedDSM, TrainConfig, train

    out = tmp_path_factory.mktemp("ck")
    train(
        build_model("mlp", (2,), width=8, depth=1),
        ConditionedDSM(0.1, 1.0, 10),
        torch.randn(16, 2),
        TrainConfig(steps=2, batch_size=4),
        out_dir=out,
        progress=False,
    )
    return out


def test_checkpoint_of_another_architecture(ckpt):
    tensors, _ = load_checkpoint(ckpt)
    other = build_model("mlp", (2,), width=16, depth=1)
    with pytest.raises(E.CheckpointError, match="another architecture"):
        load_state_strict(other, {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}, "model")


def test_truncated_and_pickled_checkpoints(ckpt, tmp_path):
    import pickle

    bad = tmp_path / "trunc"
    bad.mkdir()
    (bad / "checkpoint.json").write_text((ckpt / "checkpoint.json").read_text())
    w = (ckpt / "checkpoint.safetensors").read_bytes()
    (bad / "checkpoint.safetensors").write_bytes(w[: len(w) // 2])
    with pytest.raises(E.CheckpointError, match="truncated or not safetensors"):
        load_checkpoint(bad)
    (bad / "checkpoint.safetensors").write_bytes(pickle.dumps({"w": [1.0, 2.0]}))
    with pytest.raises(E.CheckpointError, match="truncated or not safetensors"):
        load_checkpoint(bad)
    pt = tmp_path / "model.pt"
    pt.write_bytes(pickle.dumps({"w": [1.0]}))
    with pytest.raises(E.CheckpointError, match="never loaded"):
        ss.NeuralScore.from_checkpoint(pt)
    with pytest.raises(E.CheckpointError, match="no checkpoint in"):
        load_checkpoint(tmp_path / "nowhere")


# ------------------------------------------------------------------------------------ outputs
def test_output_path_that_is_a_file(tmp_path):
    f = tmp_path / "file"
    f.write_text("keep")
    with pytest.raises(E.OutputError, match="exists and is not a folder"):
        atomic_write_json(f / "results.json", {})
    with pytest.raises(E.OutputError, match="exists and is not a folder"):
        ensure_output_dir(f / "sub")
    (tmp_path / "d").mkdir()
    with pytest.raises(E.OutputError, match="it is a folder"):
        atomic_write_json(tmp_path / "d", {})
    assert f.read_text() == "keep"


def test_full_disk_keeps_the_old_file_and_says_so_in_one_line(tmp_path, monkeypatch):
    p = tmp_path / "results.json"
    atomic_write_json(p, {"old": 1})

    def full(tmp):
        with open(tmp, "wb") as fh:
            fh.write(b'{"new": ')
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with pytest.raises(E.OutputError) as ei:
        atomic_write(p, full)
    assert str(ei.value) == f"cannot write {p}: No space left on device"
    assert p.read_text() == '{\n  "old": 1\n}\n' and os.listdir(tmp_path) == ["results.json"]
    # the same when the disk fills at fsync or at the rename
    for fn in ("fsync", "replace"):
        monkeypatch.setattr(f"smoothscore.io.os.{fn}", lambda *a: (_ for _ in ()).throw(OSError(errno.ENOSPC, "x")))
        with pytest.raises(E.OutputError, match="No space left on device"):
            atomic_write_json(p, {"new": 2})
        monkeypatch.undo()
        assert p.read_text() == '{\n  "old": 1\n}\n' and os.listdir(tmp_path) == ["results.json"]
