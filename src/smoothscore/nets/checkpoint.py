"""Checkpoints: ``checkpoint.safetensors`` (model, EMA and optimizer tensors, RNG states) plus a JSON sidecar
``checkpoint.json`` (model config with its parameterisation ``param``, the trained ``sigma_range``, training config,
step, optimizer hyper-parameters). Both are written atomically and
carry the same step, so a crash between the two writes is detected. Loading never executes code: tensors come from
safetensors (a JSON header plus raw bytes) and metadata from JSON; nothing is unpickled, and a pickled ``.pt`` /
``.pkl`` file offered as a checkpoint is refused without being opened."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from ..errors import CheckpointError
from ..io import atomic_write, atomic_write_json, to_jsonable
from . import build_model
from .score_model import ScoreModel

FORMAT = "smoothscore-checkpoint-v1"
WEIGHTS, SIDECAR = "checkpoint.safetensors", "checkpoint.json"


def save_checkpoint(out_dir: str | Path, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> Path:
    # lazy: safetensors loads only when a file is read or written
    from safetensors.torch import save_file

    out = Path(out_dir)
    step = str(meta["step"])
    full = to_jsonable({"format": FORMAT, **meta})
    flat = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    # the weights file carries the metadata too, so it alone is a complete checkpoint: a kill between the two
    # atomic writes leaves new weights beside an old sidecar, and loading then trusts the weights file
    header = {"format": FORMAT, "step": step, "meta": json.dumps(full)}
    atomic_write(out / WEIGHTS, lambda tmp: save_file(flat, tmp, metadata=header))
    atomic_write_json(out / SIDECAR, full)
    return out


def load_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a checkpoint folder (or its .safetensors / .json file). Raises :class:`CheckpointError` when files are
    missing, truncated, not safetensors, or inconsistent."""
    # lazy: safetensors loads only when a file is read or written
    from safetensors import SafetensorError, safe_open

    p = Path(path)
    if not p.exists():
        raise CheckpointError(f"no checkpoint in {p}: path not found")
    if p.is_file() and p.name not in (WEIGHTS, SIDECAR):
        raise CheckpointError(
            f"{p} is not a smoothscore checkpoint (a folder with {WEIGHTS} and {SIDECAR}); "
            "pickled checkpoints (.pt, .pth, .pkl) are never loaded"
        )
    folder = p if p.is_dir() else p.parent
    wpath, jpath = folder / WEIGHTS, folder / SIDECAR
    if not wpath.exists() or not jpath.exists():
        raise CheckpointError(f"no checkpoint in {folder} (need {WEIGHTS} and {SIDECAR})")
    try:
        meta = json.loads(jpath.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"corrupt checkpoint sidecar {jpath}: {e}") from None
    except OSError as e:
        raise CheckpointError(f"cannot read {jpath}: {e.strerror or e}") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"corrupt checkpoint sidecar {jpath}: not a JSON object")
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{jpath} is not a smoothscore checkpoint (format {meta.get('format')!r})")
    try:
        tensors = {}
        with safe_open(str(wpath), framework="pt") as f:
            header = f.metadata() or {}
            for k in f.keys():
                tensors[k] = f.get_tensor(k)
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"cannot read {wpath} (truncated or not safetensors): {e}") from None
    if header.get("step") != str(meta.get("step")) and "meta" in header:
        try:  # an interrupted save: the (atomic) weights file is complete and authoritative
            meta = json.loads(header["meta"])
        except json.JSONDecodeError as e:
            raise CheckpointError(f"corrupt metadata in {wpath}: {e}") from None
    if header.get("step") != str(meta.get("step")):
        raise CheckpointError(
            f"checkpoint files in {folder} disagree (weights step {header.get('step')}, "
            f"sidecar step {meta.get('step')}): an interrupted save"
        )
    return tensors, meta


def load_state_strict(module: torch.nn.Module, state: dict[str, torch.Tensor], what: str) -> None:
    """``load_state_dict`` that reports architecture mismatches as :class:`CheckpointError`."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    extra = sorted(set(state) - set(own))
    bad = [k for k in own if k in state and tuple(own[k].shape) != tuple(state[k].shape)]
    if missing or extra or bad:
        raise CheckpointError(
            f"{what}: checkpoint is from another architecture (missing {missing[:3]}, "
            f"unexpected {extra[:3]}, shape mismatch {bad[:3]})"
        )
    module.load_state_dict(state)


def load_score_model(path: str | Path, *, ema: bool = True) -> ScoreModel:
    """Rebuild the :class:`ScoreModel` of a training checkpoint (the EMA weights unless ``ema=False``), with its
    parameterisation and, when the checkpoint records it, ``sigma_range = (sigma_min, sigma_max)`` it was trained
    on (None for checkpoints that predate the record)."""
    tensors, meta = load_checkpoint(path)
    cfg = meta.get("model_config") or {}
    try:
        model = build_model(
            cfg["name"],
            cfg["data_shape"],
            conditioning=cfg["conditioning"],
            param=cfg["param"],
            sigma_data=cfg.get("sigma_data", 0.5),
            **cfg.get("kwargs", {}),
        )
    except (KeyError, TypeError) as e:
        raise CheckpointError(f"checkpoint {path} has no usable model config: {e}") from None
    pre = "ema." if ema else "model."
    load_state_strict(model, {k[len(pre) :]: v for k, v in tensors.items() if k.startswith(pre)}, str(path))
    rng = meta.get("sigma_range")
    if rng is not None:
        try:
            lo, hi = (float(v) for v in rng)
        except (TypeError, ValueError):
            raise CheckpointError(f"checkpoint {path}: sigma_range must be two numbers; got {rng!r}") from None
        if not 0 < lo <= hi:
            raise CheckpointError(f"checkpoint {path}: sigma_range needs 0 < sigma_min <= sigma_max; got {rng!r}")
        model.sigma_range = (lo, hi)
    return model
