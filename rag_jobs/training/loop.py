"""The training loop: seeded order, accumulation, clipping, linear schedule, checkpoint/resume, progress.

Strategies supply `step_fn(items) -> loss` (a scalar tensor) and the parameter groups that train; the loop
knows nothing of models. A checkpoint holds the trainable weights, the optimizer, the schedule position, the
RNG states and the data position, all as safetensors + JSON (nothing is pickled), so a resumed run ends
bit-identical to an uninterrupted one.
"""

from __future__ import annotations

import json
import math
import random
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from rag_jobs import interrupts
from rag_jobs.errors import ConfigError, IntegrityError, UserError
from rag_jobs.progress import fmt_duration, log
from rag_jobs.training.distributed import DistInfo, all_reduce_mean_, all_reduce_step_state
from rag_jobs.training.tracking import TB_DIR


class TrainingDiverged(UserError):
    """The loss became NaN or infinite (usually a learning rate that is too large): not worth a retry."""


@dataclass(frozen=True)
class LoopConfig:
    epochs: int = 1  # the paper trains one epoch
    batch_size: int = 8  # questions per micro-batch (summed over ranks)
    grad_accum: int = 1  # micro-batches per optimizer step
    max_grad_norm: float | None = 1.0  # clip each group's gradient norm (per model); None = no clipping
    warmup_ratio: float = 0.0  # share of steps with a linear warm-up
    weight_decay: float = 0.0
    checkpoint_every: int = 0  # optimizer steps between checkpoints; 0 = none
    log_every: int = 10  # optimizer steps between progress lines
    validate_every: int = 0  # optimizer steps between calls of train(evaluate=...); 0 = never
    seed: int = 0  # data order and dropout
    max_steps: int | None = None  # stop early (smoke runs, benchmarks)

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "grad_accum", "log_every"):
            v = getattr(self, name)
            if not isinstance(v, int) or v <= 0:
                raise ConfigError(f"training field {name!r} = {v!r} must be a positive integer")
        if not (0.0 <= self.warmup_ratio < 1.0):
            raise ConfigError(f"training field 'warmup_ratio' = {self.warmup_ratio!r} must be in [0, 1)")
        if self.max_grad_norm is not None and not (self.max_grad_norm > 0):
            raise ConfigError(f"training field 'max_grad_norm' = {self.max_grad_norm!r} must be > 0 or null")
        if self.checkpoint_every < 0:
            raise ConfigError(f"training field 'checkpoint_every' = {self.checkpoint_every!r} must be >= 0")


@dataclass
class ParamGroup:
    name: str  # "embedder" or "generator": shown in progress lines
    params: list[torch.nn.Parameter]
    lr: float

    def __post_init__(self) -> None:
        if not isinstance(self.lr, (int, float)) or not math.isfinite(self.lr) or self.lr <= 0:
            raise ConfigError(f"learning rate of {self.name} = {self.lr!r} must be a finite number > 0")
        if not self.params:
            raise ConfigError(f"parameter group {self.name!r} has no trainable parameters")


class CheckpointIO(Protocol):
    """Where checkpoints go: `save` commits a folder as checkpoint n; `latest` fetches the newest one."""

    def save(self, n: int, folder: Path) -> None: ...

    def latest(self, dest: Path) -> int | None: ...


@dataclass
class TrainResult:
    steps: int
    losses: list[float] = field(default_factory=list)  # mean loss of every optimizer step of this process
    resumed_from: int | None = None
    val_losses: list[tuple[int, float]] = field(default_factory=list)  # (step, loss) of this attempt's evaluate()
    wall_s: float = 0.0
    items_per_s: float = 0.0


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _schedule(total: int, warmup: int) -> Callable[[int], float]:
    def factor(step: int) -> float:
        if warmup and step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total - step) / max(1, total - warmup))

    return factor


def _order(n: int, seed: int, epoch: int) -> list[int]:
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=g).tolist()


def _save_checkpoint(folder: Path, *, step: int, groups: list[ParamGroup], opt: torch.optim.Optimizer,
                     trainable: dict[str, torch.Tensor]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().contiguous().cpu() for k, v in trainable.items()}, str(folder / "trainable.safetensors"))
    opt_tensors: dict[str, torch.Tensor] = {}
    sd = opt.state_dict()
    for pid, st in sd["state"].items():
        for key, value in st.items():
            t = value if torch.is_tensor(value) else torch.tensor(value)
            opt_tensors[f"{pid}.{key}"] = t.detach().contiguous().cpu()
    save_file(opt_tensors, str(folder / "optimizer.safetensors"))
    rng = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():  # dropout masks on GPU draw from this one
        rng["cuda"] = torch.cuda.get_rng_state()
    save_file(rng, str(folder / "rng.safetensors"))
    np_state = np.random.get_state()
    state = {
        "step": step,
        "groups": [g.name for g in groups],
        "python_rng": [random.getstate()[0], list(random.getstate()[1]), random.getstate()[2]],
        "numpy_rng": [np_state[0], np_state[1].tolist(), *np_state[2:]],
    }
    (folder / "state.json").write_text(json.dumps(state))


def _load_checkpoint(folder: Path, *, opt: torch.optim.Optimizer, load_trainable: Callable[[dict], None]) -> int:
    """Restore a checkpoint folder; a file that cannot be read as what it should be is an IntegrityError."""
    try:
        return _read_checkpoint(folder, opt=opt, load_trainable=load_trainable)
    except torch.OutOfMemoryError:
        raise
    except (OSError, ValueError, KeyError, IndexError, TypeError, RuntimeError, SafetensorError) as exc:
        detail = " ".join(str(exc).split())[:300]
        raise IntegrityError(f"checkpoint in {folder} is unreadable: {type(exc).__name__}: {detail}") from exc


def _read_checkpoint(folder: Path, *, opt: torch.optim.Optimizer, load_trainable: Callable[[dict], None]) -> int:
    load_trainable(load_file(str(folder / "trainable.safetensors")))
    tensors = load_file(str(folder / "optimizer.safetensors"))
    sd = opt.state_dict()
    state: dict[int, dict[str, Any]] = {}
    for name, t in tensors.items():
        pid, key = name.split(".", 1)
        state.setdefault(int(pid), {})[key] = t
    sd["state"] = state
    opt.load_state_dict(sd)
    rng = load_file(str(folder / "rng.safetensors"))
    torch.set_rng_state(rng["torch"])
    if "cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state(rng["cuda"])
    meta = json.loads((folder / "state.json").read_text())
    py = meta["python_rng"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    npr = meta["numpy_rng"]
    np.random.set_state((npr[0], np.array(npr[1], dtype=np.uint32), *npr[2:]))
    return int(meta["step"])


def train(
    *,
    label: str,
    items: Sequence[Any],
    step_fn: Callable[[list[Any]], torch.Tensor],
    groups: list[ParamGroup],
    cfg: LoopConfig,
    trainable_state: Callable[[], dict[str, torch.Tensor]],
    load_trainable: Callable[[dict[str, torch.Tensor]], None],
    checkpoints: CheckpointIO | None = None,
    work_dir: Path | None = None,
    dist_info: DistInfo | None = None,
    on_step: Callable[[int, float], None] | None = None,
    full_batch: bool = False,
    tracker=None,
    evaluate: Callable[[], float] | None = None,
) -> TrainResult:
    """Run `cfg.epochs` over `items`; returns the per-step losses. Resumes from the latest checkpoint.

    Under torchrun each rank takes every world_size-th item of a micro-batch. A rank's loss is weighted by its
    share of the micro-batch, so the averaged gradient is the one of the whole micro-batch whatever the split.
    `full_batch`: call `step_fn(mine, whole_micro_batch)` (frozen in-batch negatives need every rank's items).
    `tracker` (training.tracking.Tracker, main rank only): loss and learning rates per step, kept in checkpoints.
    `evaluate` (main rank only): the validation loss, every `cfg.validate_every` steps and at the last one.
    """
    info = dist_info or DistInfo()
    if not items:
        raise ConfigError("no training examples")
    n_micro = math.ceil(len(items) / cfg.batch_size)
    steps_per_epoch = math.ceil(n_micro / cfg.grad_accum)
    total = steps_per_epoch * cfg.epochs
    if cfg.max_steps is not None:
        total = min(total, cfg.max_steps)
    params = [p for g in groups for p in g.params]
    # The fused kernel (one pass over all of a group's tensors, on CPU and CUDA alike) where every trainable
    # tensor is a floating-point one on one device type; benchmarks/peers.py measured the per-tensor loop at
    # 0.68x of SentenceTransformerTrainer's fused AdamW on MiniLM.
    fused = len({p.device.type for p in params}) == 1 and all(p.is_floating_point() for p in params) \
        and params[0].device.type in ("cpu", "cuda")
    opt = torch.optim.AdamW(
        [{"params": g.params, "lr": g.lr, "name": g.name} for g in groups], weight_decay=cfg.weight_decay,
        fused=fused or None,
    )
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _schedule(total, int(cfg.warmup_ratio * total)))
    seed_everything(cfg.seed)
    step = 0
    resumed = None
    if checkpoints is not None and work_dir is not None:
        folder = work_dir / "resume"
        n = checkpoints.latest(folder)
        if n is not None:
            step = _load_checkpoint(folder, opt=opt, load_trainable=load_trainable)
            if tracker is not None:
                tracker.restore(folder / TB_DIR)
            with warnings.catch_warnings():  # fast-forwarding the schedule without optimizer steps
                warnings.simplefilter("ignore", UserWarning)
                for _ in range(step):
                    sched.step()
            resumed = step
            log(label, f"resumed from checkpoint at step {step}/{total}")
    result = TrainResult(steps=total, resumed_from=resumed)
    t0 = time.perf_counter()
    start_step = step
    window: list[float] = []
    with interrupts.deferred():
        while step < total:
            epoch, in_epoch = divmod(step, steps_per_epoch)
            order = _order(len(items), cfg.seed, epoch)
            micro0 = in_epoch * cfg.grad_accum
            micros = range(micro0, min(micro0 + cfg.grad_accum, n_micro))
            opt.zero_grad(set_to_none=True)
            step_loss = 0.0
            for m in micros:
                idx = order[m * cfg.batch_size : (m + 1) * cfg.batch_size]
                mine = [items[i] for i in idx[info.rank :: info.world_size]]
                if not mine:
                    loss = None
                elif full_batch:
                    loss = step_fn(mine, [items[i] for i in idx])
                else:
                    loss = step_fn(mine)
                if loss is not None:
                    if not torch.isfinite(loss):
                        step_loss = loss.item()  # diverged: no backward; every rank learns it below
                        break
                    share = len(mine) * info.world_size / len(idx) if info.enabled else 1.0
                    (loss * share / len(micros)).backward()
                    step_loss += loss.item() * share / len(micros)
            if info.enabled:  # every rank joins every all-reduce, even one that had no items this step
                for p in params:
                    if p.grad is None:
                        p.grad = torch.zeros_like(p)
            # the loss (non-finite on every rank if on one) and a stop request (on every rank if on one): every
            # rank then checkpoints-and-stops at the same step, instead of one leaving the others in an all-reduce
            step_loss, stop = all_reduce_step_state(step_loss, interrupts.stop_requested(), info)
            if not math.isfinite(step_loss):
                raise TrainingDiverged(f"{label}: loss is {step_loss} at step {step + 1}; "
                                       "the learning rate is probably too large")
            all_reduce_mean_([p.grad for p in params if p.grad is not None], info)
            if cfg.max_grad_norm is not None:  # per model: joint training's two learning rates stay independent
                for g in groups:
                    torch.nn.utils.clip_grad_norm_(g.params, cfg.max_grad_norm)
            opt.step()
            sched.step()
            step += 1
            result.losses.append(step_loss)
            window.append(step_loss)
            if on_step is not None:
                on_step(step, step_loss)
            if tracker is not None and info.is_main:
                tracker.step(step, step_loss, opt.param_groups)
            if evaluate is not None and cfg.validate_every and info.is_main and (
                    step % cfg.validate_every == 0 or step == total):
                val_loss = float(evaluate())
                result.val_losses.append((step, val_loss))
                log(label, f"step {step}/{total} validation loss {val_loss:.4f}")
                if tracker is not None:
                    tracker.scalars("validation", {"loss": val_loss}, step)
            if info.is_main and (step % cfg.log_every == 0 or step == total):
                _progress(label, step, total, start_step, t0, window, opt)
                window = []
            if not info.enabled:  # one process: a SIGTERM that came during the optimizer step counts now
                stop = stop or interrupts.stop_requested()
            if checkpoints is not None and cfg.checkpoint_every and step % cfg.checkpoint_every == 0 and step < total:
                _checkpoint(checkpoints, work_dir, step, groups, opt, trainable_state, info, tracker)
            elif stop and step < total:
                # SIGTERM: keep this whole optimizer step, then exit 1 so the Job retries and resumes here.
                if checkpoints is not None:
                    log(label, f"SIGTERM: checkpointing step {step} before exit")
                    _checkpoint(checkpoints, work_dir, step, groups, opt, trainable_state, info, tracker)
                raise interrupts.Preempted(f"{label}: stopped by SIGTERM at step {step}/{total}")
            if stop and step < total:
                raise interrupts.Preempted(f"{label}: stopped by SIGTERM at step {step}/{total}")
    result.wall_s = time.perf_counter() - t0
    done_items = (step - start_step) * cfg.grad_accum * cfg.batch_size
    result.items_per_s = done_items / result.wall_s if result.wall_s > 0 else 0.0
    return result


def _checkpoint(checkpoints: CheckpointIO, work_dir: Path | None, step: int, groups, opt, trainable_state,
                info: DistInfo, tracker=None) -> None:
    if not info.is_main or work_dir is None:
        return
    folder = work_dir / f"ckpt-{step:08d}"
    _save_checkpoint(folder, step=step, groups=groups, opt=opt, trainable=trainable_state())
    if tracker is not None:  # the curve so far travels with the weights: a resumed step keeps it
        tracker.snapshot(folder / TB_DIR)
    checkpoints.save(step, folder)


def _progress(label: str, step: int, total: int, start: int, t0: float, window: list[float], opt) -> None:
    elapsed = time.perf_counter() - t0
    rate = (step - start) / elapsed if elapsed > 0 else 0.0
    eta = (total - step) / rate if rate > 0 else float("nan")
    lrs = " ".join(f"{g.get('name', i)}={g['lr']:.2e}" for i, g in enumerate(opt.param_groups))
    loss = sum(window) / len(window) if window else float("nan")
    log(label, f"step {step}/{total} ({100 * step / total:.1f}%) loss {loss:.4f} lr {lrs} "
               f"{rate:.2f} it/s elapsed {fmt_duration(elapsed)} ETA {fmt_duration(eta)}")
