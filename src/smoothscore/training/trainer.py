"""Trainer: AdamW with linear warm-up, gradient clipping, EMA of weights, seeded and deterministic on CPU,
progress bar, evaluation hooks, atomic safetensors checkpoints, exact resume, and data-parallel training through
``torch.distributed`` (launch with ``torchrun``; gloo on CPU, NCCL on GPU) on the same code path.

Determinism: one ``torch.Generator`` (seeded by ``seed``) draws batch indices and all loss noise for the *global*
batch; each rank takes its slice. Its state is checkpointed, so a resumed run continues bit-for-bit on CPU, and a
W-process run sees exactly the samples and noise of a 1-process run (gradients then agree up to reduction order).
"""

from __future__ import annotations

import copy
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from .._checks import check_finite
from ..device import resolve_dtype
from ..distributed import dist_info
from ..errors import CheckpointError, ConfigError
from ..io import live_display
from ..nets.checkpoint import SIDECAR, load_checkpoint, load_state_strict, save_checkpoint


@dataclass
class TrainConfig:
    steps: int = 1000
    batch_size: int = 128  # global batch (split across processes)
    lr: float = 2e-4
    weight_decay: float = 0.0  # AdamW decoupled weight decay (Paper A's explicit penalty lives in its loss)
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_steps: int = 0
    lr_schedule: str = "constant"  # or "cosine": lr * (1 + cos(pi * step / steps)) / 2 after the warm-up
    grad_clip: float | None = 1.0
    ema_decay: float = 0.999
    seed: int = 0
    checkpoint_every: int = 0  # 0: only at the end (when out_dir is given)
    log_every: int = 50
    #: arithmetic of the model, data and optimizer: "float32", or "float64" (~3x the CPU time), whose rounding is
    #: 1e9 times smaller: float32 results differ between CPUs and thread counts because training amplifies rounding;
    #: float64 removes that unless the training is chaotic (docs/reports.md, "Verdicts on another machine")
    dtype: str = "float32"

    def __post_init__(self):
        if self.steps < 0 or self.batch_size < 1 or self.lr <= 0:
            raise ConfigError("steps >= 0, batch_size >= 1 and lr > 0 are required")
        if not 0 <= self.ema_decay < 1:
            raise ConfigError("ema_decay must be in [0, 1)")
        resolve_dtype(self.dtype)  # ConfigError for anything but float32 / float64
        if self.lr_schedule not in ("constant", "cosine"):
            raise ConfigError(f"unknown lr_schedule {self.lr_schedule!r}; known: constant, cosine")


@dataclass
class TrainResult:
    model: torch.nn.Module
    ema: torch.nn.Module
    step: int
    history: list[tuple[int, float]] = field(default_factory=list)


class Trainer:
    def __init__(
        self,
        model: torch.nn.Module,
        loss,
        data,
        config: TrainConfig,
        *,
        out_dir=None,
        device: torch.device | str = "cpu",
        progress: bool = True,
        hooks: Sequence[tuple[int, Callable[[int, torch.nn.Module, torch.nn.Module], Any]]] = (),
    ):
        x = data.x if hasattr(data, "x") else data
        if not isinstance(x, torch.Tensor) or x.dim() < 2 or x.shape[0] == 0:
            raise ConfigError("training data must be a non-empty (N, *dims) tensor or Dataset")
        check_finite(x, "training data")
        self.dtype = resolve_dtype(config.dtype)
        self.data = x.to(self.dtype)
        self.cfg, self.loss, self.hooks = config, loss, list(hooks)
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.device = torch.device(device)
        self.rank, self.world = dist_info()
        if self.world > 1 and self.device.type == "cuda" and self.device.index is None:
            # one GPU per process under torchrun (NCCL)
            self.device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
            torch.cuda.set_device(self.device)
        if config.batch_size % self.world:
            raise ConfigError(f"batch_size {config.batch_size} must be divisible by the {self.world} processes")
        self.model = model.to(self.device, self.dtype)
        if hasattr(self.model, "sigma_range") and getattr(loss, "sigma_range", None) is not None:
            self.model.sigma_range = tuple(float(v) for v in loss.sigma_range)  # the levels it is trained on
        self.ema = copy.deepcopy(self.model).eval().requires_grad_(False)
        self.net = self.model
        if self.world > 1:
            self.net = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None
            )
        self.opt = torch.optim.AdamW(
            self.model.parameters(), lr=config.lr, betas=config.betas, weight_decay=config.weight_decay
        )
        self.gen = torch.Generator().manual_seed(config.seed)
        self.step, self.history = 0, []
        self.progress = progress and self.rank == 0

    # ----------------------------------------------------------------- checkpoints
    def _tensors(self) -> dict[str, torch.Tensor]:
        t = {f"model.{k}": v for k, v in self.model.state_dict().items()}
        t.update({f"ema.{k}": v for k, v in self.ema.state_dict().items()})
        st = self.opt.state_dict()
        for pid, s in st["state"].items():
            for k, v in s.items():
                t[f"optim.{pid}.{k}"] = v if isinstance(v, torch.Tensor) else torch.tensor(v)
        t["rng.generator"] = self.gen.get_state()
        t["rng.torch"] = torch.get_rng_state()
        return t

    def save(self) -> Path | None:
        if self.out_dir is None or self.rank != 0:
            return None
        groups = [
            {k: v for k, v in g.items() if k != "params"} | {"params": g["params"]}
            for g in self.opt.state_dict()["param_groups"]
        ]
        meta = {
            "step": self.step,
            "model_config": getattr(self.model, "config", {}),
            "train_config": asdict(self.cfg),
            "loss": type(self.loss).__name__,
            "sigma_range": getattr(self.loss, "sigma_range", None),
            "optim_param_groups": groups,
            "history": self.history[-200:],
            "world_size": self.world,
        }
        return save_checkpoint(self.out_dir, self._tensors(), meta)

    def resume(self) -> bool:
        """Load ``out_dir``'s checkpoint when there is one; returns whether training resumed."""
        if self.out_dir is None or not (self.out_dir / SIDECAR).exists():
            return False
        tensors, meta = load_checkpoint(self.out_dir)
        if meta.get("model_config") != getattr(self.model, "config", {}):
            raise CheckpointError(f"checkpoint in {self.out_dir} was made for another model configuration")
        pick = lambda pre: {k[len(pre) :]: v for k, v in tensors.items() if k.startswith(pre)}  # noqa: E731
        load_state_strict(self.model, pick("model."), "model")
        load_state_strict(self.ema, pick("ema."), "EMA")
        state: dict[int, dict[str, torch.Tensor]] = {}
        for k, v in pick("optim.").items():
            pid, name = k.split(".", 1)
            state.setdefault(int(pid), {})[name] = v
        self.opt.load_state_dict({"state": state, "param_groups": meta["optim_param_groups"]})
        self.gen.set_state(tensors["rng.generator"])
        torch.set_rng_state(tensors["rng.torch"])
        self.step, self.history = int(meta["step"]), [tuple(h) for h in meta.get("history", [])]
        return True

    # ----------------------------------------------------------------- training
    def _lr(self) -> float:
        w = self.cfg.warmup_steps
        lr = self.cfg.lr * (min(1.0, (self.step + 1) / w) if w > 0 else 1.0)
        if self.cfg.lr_schedule == "cosine" and self.cfg.steps > 0:
            lr *= 0.5 * (1 + math.cos(math.pi * min(self.step, self.cfg.steps) / self.cfg.steps))
        return lr

    def train_step(self) -> float:
        b = self.cfg.batch_size
        idx = torch.randint(0, self.data.shape[0], (b,), generator=self.gen)
        noise = self.loss.draw(b, tuple(self.data.shape[1:]), self.gen)
        lo, hi = self.rank * b // self.world, (self.rank + 1) * b // self.world
        idx_l = idx[lo:hi]
        x0 = self.data[idx_l].to(self.device)
        noise_l = {k: v[lo:hi] for k, v in noise.items()}
        for g in self.opt.param_groups:
            g["lr"] = self._lr()
        loss = self.loss.compute(self.net, x0, idx_l, noise_l)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss is {float(loss)} at step {self.step}")
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if self.cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
        self.opt.step()
        with torch.no_grad():
            d = self.cfg.ema_decay
            for pe, p in zip(self.ema.parameters(), self.model.parameters()):
                pe.mul_(d).add_(p.detach(), alpha=1 - d)
            for be, bm in zip(self.ema.buffers(), self.model.buffers()):
                be.copy_(bm)
        self.step += 1
        val = float(loss.detach())
        if self.world > 1:
            t = torch.tensor([val], device=self.device)
            dist.all_reduce(t)
            val = float(t) / self.world
        return val

    def fit(self) -> TrainResult:
        bar = None
        if self.progress:
            # lazy: rich loads only when a progress bar is shown
            from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

            bar = Progress(
                TextColumn("[bold]training"),
                BarColumn(),
                TextColumn("{task.completed}/{task.total}"),
                TextColumn("loss {task.fields[loss]}"),
                TimeRemainingColumn(),
                transient=True,
                disable=not live_display(),
            )
            task = bar.add_task("train", total=self.cfg.steps, completed=self.step, loss="-")
            bar.start()
        running = None
        try:
            self.model.train()
            while self.step < self.cfg.steps:
                val = self.train_step()
                running = val if running is None else 0.98 * running + 0.02 * val
                if self.step % max(1, self.cfg.log_every) == 0 or self.step == self.cfg.steps:
                    self.history.append((self.step, running))
                if bar is not None:
                    bar.update(task, advance=1, loss=f"{running:.4g}")
                for every, fn in self.hooks:
                    if every and self.step % every == 0:
                        fn(self.step, self.model, self.ema)
                if self.cfg.checkpoint_every and self.step % self.cfg.checkpoint_every == 0:
                    self.save()
        finally:
            if bar is not None:
                bar.stop()
        self.model.eval()
        self.save()
        if self.world > 1:
            dist.barrier()
        return TrainResult(self.model, self.ema, self.step, self.history)


def train(
    model: torch.nn.Module,
    loss,
    data,
    config: TrainConfig | None = None,
    *,
    out_dir=None,
    resume: bool = False,
    overwrite: bool = False,
    device="cpu",
    progress: bool = True,
    hooks=(),
) -> TrainResult:
    """Train ``model`` on ``data`` with ``loss``; with ``resume=True`` continue from ``out_dir``'s checkpoint.
    A checkpoint already in ``out_dir`` is never replaced by a fresh run unless ``overwrite=True``."""
    if out_dir is not None and not resume and not overwrite and (Path(out_dir) / SIDECAR).exists():
        raise ConfigError(f"{out_dir} already holds a checkpoint; resume=True continues it, overwrite=True replaces it")
    t = Trainer(
        model, loss, data, config or TrainConfig(), out_dir=out_dir, device=device, progress=progress, hooks=hooks
    )
    if resume:
        t.resume()
    return t.fit()
