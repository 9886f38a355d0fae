"""What every training run shares: device and DDP set-up, EMA, the loop's clock, logging, checkpoints.

A run lives in one output folder: ``checkpoint/`` (resumable, see :mod:`.checkpoint`), ``log.jsonl``
(one JSON line per logging step) and ``samples_*.png``. ``--max-minutes`` ends the loop cleanly with a
checkpoint, so one device call of bounded length always leaves something to resume from.

Distributed: started under ``torchrun``, the run joins the process group (NCCL on GPUs, gloo on the
CPU), wraps the model in DistributedDataParallel (or averages gradients itself,
:func:`average_gradients`), loads its rank's shard of the split and draws its own batches; the ranks
agree on the clock (:func:`make_clock`); rank 0 alone logs and saves.
"""

from __future__ import annotations

import copy
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from ..devices import pick_device
from .checkpoint import load_checkpoint, load_into, load_weights, save_checkpoint, unwrap


@dataclass
class RunContext:
    device: torch.device
    rank: int = 0
    world_size: int = 1
    distributed: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup_run(device_name: str = "auto") -> RunContext:
    """Pick the device; join the process group when started by torchrun (``LOCAL_RANK`` set, ``WORLD_SIZE`` > 1):
    NCCL with one GPU per rank, or gloo when the run is on the CPU (``--device cpu``, or no CUDA)."""
    device = pick_device(device_name)
    if "LOCAL_RANK" in os.environ and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        import torch.distributed as dist

        local_rank = int(os.environ["LOCAL_RANK"])
        if device.type == "cuda":
            torch.cuda.set_device(local_rank)
            device = torch.device("cuda", local_rank)
        if not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        ctx = RunContext(device, dist.get_rank(), dist.get_world_size(), True)
    else:
        ctx = RunContext(device)
    if device.type == "cuda":
        # TF32 for convolutions only: the networks' matmuls run in bf16 autocast, and the float32 ones
        # outside it (SSIM's moments, see metrics.ssim) need full precision
        torch.backends.cudnn.allow_tf32 = True
    return ctx


def broadcast_floats(values: list[float], ctx: RunContext) -> list[float]:
    """Rank 0's ``values`` on every rank (unchanged when the run is not distributed)."""
    if not ctx.distributed:
        return values
    import torch.distributed as dist

    t = torch.tensor(values, dtype=torch.float64, device=ctx.device)
    dist.broadcast(t, 0)
    return t.tolist()


def end_run(ctx: RunContext) -> None:
    """Leave the process group (every rank, after the last collective)."""
    if ctx.distributed:
        import torch.distributed as dist

        dist.barrier()
        dist.destroy_process_group()


def make_optimizer(params, lr: float, device: torch.device) -> torch.optim.Optimizer:
    """AdamW as every loop uses it; on CUDA the fused implementation (one kernel for all weights)."""
    return torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.99), weight_decay=0.0, fused=device.type == "cuda")


def bf16_autocast(device: torch.device):
    """The loops' mixed precision: bf16 autocast on CUDA, none on the CPU."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return torch.autocast("cpu", enabled=False)


def trained_steps(folder: str | os.PathLike) -> int:
    """The optimiser steps a model folder's weights have seen (``trained_steps`` in its config.json)."""
    return int(json.loads((Path(folder) / "config.json").read_text()).get("trained_steps", 0))


def weights_init(model: torch.nn.Module) -> Callable[[str], int]:
    """``--init-from`` for ``model``: a folder's weights, loaded strictly, and the steps they have seen."""
    def init(folder: str) -> int:
        load_into(model, load_weights(folder), folder)
        return trained_steps(folder)

    return init


def wrap_ddp(model: torch.nn.Module, ctx: RunContext) -> torch.nn.Module:
    if not ctx.distributed:
        return model
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(model, device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None)


class EMA:
    """Exponential moving average of a model's weights, kept as a full model copy (so it can be saved)."""

    def __init__(self, model: torch.nn.Module, decay: float = 0.999):
        self.model = copy.deepcopy(unwrap(model)).eval().requires_grad_(False)
        self.decay = decay

    @torch.no_grad()
    def update(self, model: torch.nn.Module, step: int) -> None:
        # Warm-up: average over the steps seen so far until `decay` takes over.
        d = min(self.decay, (1 + step) / (10 + step))
        # one multi-tensor kernel for all weights: a lerp per tensor launches hundreds of tiny kernels
        ema = [e for e in self.model.parameters()]
        live = [p.detach() for p in unwrap(model).parameters()]
        torch._foreach_lerp_(ema, live, 1.0 - d)
        for e, b in zip(self.model.buffers(), unwrap(model).buffers()):
            e.copy_(b)


@dataclass
class LoopClock:
    """Stops a loop after ``max_steps`` or ``max_minutes`` (whichever first), times checkpoints, and
    counts the wall time spent in optimiser steps (:meth:`count_step`; ``step_minutes``).

    In a distributed run every rank must stop at the same step (DDP's all-reduce would wait forever
    for a rank that stopped) and use the same learning rate, so the minutes that the stop and the
    schedule read are rank 0's, broadcast every ``agree_every`` steps (``agree``: see :func:`make_clock`)."""

    max_steps: int | None
    max_minutes: float | None
    checkpoint_minutes: float = 10.0
    start: float = field(default_factory=time.monotonic)
    last_checkpoint: float = field(default_factory=time.monotonic)
    step_seconds: float = 0.0
    last_step_end: float | None = None
    agree: Callable[[float], float] | None = None
    agree_every: int = 20
    agreed_minutes: float = 0.0

    def _budget_minutes(self, step: int) -> float:
        """The minutes the stop and the schedule go by: live, or the ranks' agreed value."""
        if self.agree is None:
            return self.minutes
        if step % self.agree_every == 0:
            self.agreed_minutes = self.agree(self.minutes)
        return self.agreed_minutes

    def done(self, step: int, steps_this_run: int) -> bool:
        if self.max_steps is not None and step >= self.max_steps:
            return True
        return self.max_minutes is not None and self._budget_minutes(step) >= self.max_minutes

    def count_step(self) -> None:
        """Called at the end of every optimiser step: adds the time since the previous step ended.
        The first step of a run is not counted (it holds ``torch.compile``'s compilation and the first
        fill of caches), nor is time after :meth:`pause` (checkpoints), so ``step_minutes`` is the
        steady training a device call bought."""
        now = time.monotonic()
        if self.last_step_end is not None:
            self.step_seconds += now - self.last_step_end
        self.last_step_end = now

    def pause(self) -> None:
        """What follows until the next step's end (a checkpoint, a preview) is not step time."""
        self.last_step_end = None

    @property
    def step_minutes(self) -> float:
        return self.step_seconds / 60

    def checkpoint_due(self) -> bool:
        if (time.monotonic() - self.last_checkpoint) / 60 >= self.checkpoint_minutes:
            self.last_checkpoint = time.monotonic()
            return True
        return False

    def progress(self, step: int, first_step: int) -> float:
        """How much of the budget is spent, 0 to 1: steps from ``first_step`` towards ``max_steps`` or
        minutes towards ``max_minutes``, whichever is further along."""
        spent = 0.0
        if self.max_steps is not None and self.max_steps > first_step:
            spent = (step - first_step) / (self.max_steps - first_step)
        if self.max_minutes is not None:
            minutes = self.minutes if self.agree is None else self.agreed_minutes
            spent = max(spent, minutes / self.max_minutes)
        return min(1.0, max(0.0, spent))

    @property
    def minutes(self) -> float:
        return (time.monotonic() - self.start) / 60


def make_clock(config, ctx: RunContext) -> LoopClock:
    """The loop clock of a run with ``config``'s budget; in a distributed run the ranks agree on its minutes."""
    agree = (lambda minutes: broadcast_floats([minutes], ctx)[0]) if ctx.distributed else None
    return LoopClock(config.max_steps, config.max_minutes, config.checkpoint_minutes, agree=agree)


def scheduled_lr(optimizer: torch.optim.Optimizer, base_lr: float, step: int, warmup_start: int, warmup: int,
                 clock: "LoopClock", lr_final: float | None = None) -> float:
    """Set and return the learning rate of global step ``step``: a linear warm-up over the first
    ``warmup`` steps after the weights were initialised at ``warmup_start`` (Adam's moments start from
    zero then, also when a run starts from shipped weights; kept in the checkpoint, so a resumed run
    continues it), then, with ``lr_final``, a cosine decay from ``base_lr`` to ``lr_final`` over the
    run's budget (:meth:`LoopClock.progress`: the steps to ``max_steps`` or the minutes of ``max_minutes``,
    whichever ends first). Device calls are bounded by minutes, so a time-bounded decay spans one call;
    a run resumed by the next call decays again from ``base_lr``."""
    lr = base_lr * min(1.0, (step - warmup_start + 1) / max(1, warmup))
    if lr_final is not None and step - warmup_start >= warmup:
        lr = lr_final + (base_lr - lr_final) * 0.5 * (1.0 + math.cos(math.pi * clock.progress(step, warmup_start)))
    for g in optimizer.param_groups:
        g["lr"] = lr
    return lr


class RunLog:
    """Appends JSON lines to ``log.jsonl`` and prints a compact line (rank 0 only)."""

    def __init__(self, out_dir: Path, enabled: bool):
        self.path = out_dir / "log.jsonl"
        self.enabled = enabled

    def write(self, record: dict) -> None:
        if not self.enabled:
            return
        with self.path.open("a") as f:
            f.write(json.dumps(record) + "\n")
        parts = [f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in record.items()]
        print(" ".join(parts), flush=True)


def resume_or_init(out_dir: Path, resume: bool, init_from: str | None, model, ema: EMA, optimizer,
                   generator: torch.Generator, load_weights_fn) -> tuple[int, int]:
    """Resume from ``out_dir/checkpoint`` (exact), else initialise weights from ``init_from`` (a model
    folder, e.g. the shipped one: weights only). Returns ``(global step to continue from, step at
    which the optimiser started)``; the second goes into every checkpoint as ``warmup_start``."""
    ckpt = out_dir / "checkpoint"
    if resume and ckpt.exists():
        meta = load_checkpoint(ckpt, model, ema.model, optimizer, generator)
        return int(meta["step"]), int(meta.get("warmup_start", 0))
    if init_from:
        step = load_weights_fn(init_from)
        ema.model.load_state_dict(unwrap(model).state_dict())
        return step, step
    return 0, 0


def average_gradients(params, ctx: RunContext) -> None:
    """All-reduce the gradients of ``params`` to their mean over the ranks, in one flat message.

    For loops whose networks are called inside other code (the multi-view stages) and so are not
    wrapped in DistributedDataParallel; it gives the same mean gradient as DDP, without DDP's overlap of
    communication with the backward pass (these networks are small)."""
    if not ctx.distributed:
        return
    import torch.distributed as dist

    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.flatten() for g in grads])
    dist.all_reduce(flat)
    flat /= ctx.world_size
    offset = 0
    for g in grads:
        g.copy_(flat[offset:offset + g.numel()].view_as(g))
        offset += g.numel()


def optimise(loss: torch.Tensor, model: torch.nn.Module, optimizer: torch.optim.Optimizer, ema: "EMA", step: int,
             grad_clip: float, sync: RunContext | None = None) -> torch.Tensor:
    """One optimiser step shared by every training loop: backpropagate, clip, step, update the EMA.
    With ``sync`` (a distributed run whose model is not wrapped in DDP) the gradients are averaged over
    the ranks first (:func:`average_gradients`).
    Returns the gradient norm before clipping (a GPU tensor: reading it every step would stall the GPU
    once per step, so the loops read losses and norms only when they log, see :class:`RunningMetrics`)."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if sync is not None:
        average_gradients([p for g in optimizer.param_groups for p in g["params"]], sync)
    grad_norm = torch.nn.utils.clip_grad_norm_(unwrap(model).parameters(), grad_clip)
    optimizer.step()
    ema.update(model, step)
    return grad_norm


def finite_or_raise(loss: torch.Tensor | float, step: int) -> None:
    if not math.isfinite(float(loss)):
        raise FloatingPointError(f"loss became {float(loss)} at step {step}; lower the learning rate or resume "
                                 "from the last checkpoint")


class RunningMetrics:
    """Sums per-step metrics as device tensors and reads them back only when asked.

    A non-finite loss or gradient poisons its sum (NaN/inf stay NaN/inf), so checking the sums at every
    log and before every checkpoint catches a diverged run before bad weights are saved."""

    def __init__(self):
        self.sums: dict[str, torch.Tensor] = {}
        self.count = 0
        self.since = time.monotonic()  # start of the current window (steps per second)

    def add(self, metrics: dict[str, torch.Tensor]) -> None:
        for k, v in metrics.items():
            v = v.detach().float()
            self.sums[k] = self.sums[k] + v if k in self.sums else v.clone()
        self.count += 1

    def check_finite(self, step: int) -> None:
        # the gradient norm is the same on every DDP rank after the all-reduce, so all ranks stop
        # together, also when another rank's loss went bad; it also catches inf gradients
        for key in ("loss", "grad_norm"):
            if key in self.sums:
                finite_or_raise(self.sums[key], step)

    def means(self) -> dict[str, float]:
        """Means since the last call (one device sync), then reset."""
        if not self.count:
            return {}
        keys = list(self.sums)
        values = (torch.stack([self.sums[k] for k in keys]) / self.count).tolist()
        self.sums, self.count, self.since = {}, 0, time.monotonic()
        return dict(zip(keys, values))


def after_step(step: int, metrics: dict[str, torch.Tensor], running: RunningMetrics, log: RunLog,
               clock: LoopClock, optimizer: torch.optim.Optimizer, log_every: int, is_main: bool,
               save: Callable[[], None]) -> None:
    """The bookkeeping every training loop does after an optimiser step: accumulate the metrics,
    log their means every ``log_every`` steps, and call ``save()`` (rank 0) when a checkpoint is due,
    each after the finite check."""
    clock.count_step()
    running.add(metrics)
    if step % log_every == 0:
        running.check_finite(step)
        rate = running.count / max(time.monotonic() - running.since, 1e-9)
        log.write({"step": step, **running.means(), "lr": optimizer.param_groups[0]["lr"], "steps_per_s": rate,
                   "minutes": clock.minutes, "step_minutes": clock.step_minutes})
    if is_main and clock.checkpoint_due():
        running.check_finite(step)
        save()
        clock.pause()


__all__ = ["RunContext", "setup_run", "broadcast_floats", "end_run", "make_clock", "average_gradients", "make_optimizer", "bf16_autocast", "trained_steps", "weights_init", "wrap_ddp", "EMA", "LoopClock", "scheduled_lr", "RunLog", "resume_or_init",
           "save_checkpoint", "finite_or_raise", "optimise", "RunningMetrics", "after_step"]
