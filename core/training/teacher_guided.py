"""Train the teacher-guided denoiser (seed 000): ``splatgen train teacher-guided --teacher REGRESSOR``.

Each step: objects with an input view and ``--num-targets`` other views (a :class:`ViewBank` batch);
the frozen teacher regressor's raw Splatter Image of the input view, normalised and noised to a
uniform random timestep t per item (``x_t``); the denoiser predicts the clean Splatter Image from
``x_t``, t and the input image (dropped with probability ``--cond-dropout`` for classifier-free
guidance); its Gaussians are rendered into the input and target views and compared with the images,
:func:`~splatgen.core.training.recon.reconstruction_loss` (MSE + λ_ssim·(1-SSIM) + λ_alpha·L1(alpha)).
No 3D ground truth: the only 3D is the teacher's, and it is only ever the noisy input.

A new run measures the per-channel normalisation on the teacher's outputs of a few batches (drawn
with their own generator, so the run's random stream does not depend on it); ``--resume`` and
``--init-from`` keep the normalisation and size of their weights. ``--export FOLDER`` writes a model
folder: ``denoiser/`` (the EMA weights in fp16) and ``splatgen.json`` naming the teacher by a
relative path, so the shipped set reuses the regressor instead of copying it.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

import torch

from ..errors import SplatgenError
from ..generator.model_folder import MANIFEST
from ..models.splatter_denoiser import SplatterDenoiser
from ..models.splatter_image import CHANNELS_PER_GAUSSIAN, raw_to_gaussians
from ..models.splatter_net import SplatterNet, SplatterOutput
from ..models.weights import load_network
from ..render import choose_backend
from .checkpoint import unwrap
from .config import TrainConfig
from .recon import export_model, reconstruction_loss
from .trainer import (bf16_autocast, weights_init, EMA, make_clock, end_run, RunLog, RunningMetrics, after_step, make_optimizer, optimise, resume_or_init,
                      save_checkpoint, setup_run, scheduled_lr, wrap_ddp)
from .viewbank import ViewBank, ViewBatch, loading_rate

#: Batches of teacher outputs a new run measures the normalisation on.
STATS_BATCHES = 4


def teacher_folder(config: TrainConfig) -> Path:
    """``--teacher``, or the shipped regressor."""
    if config.teacher:
        return Path(config.teacher)
    from ..generator.model_folder import models_dir

    return models_dir() / "regressor"


def load_teacher(folder: Path, device) -> SplatterNet:
    teacher = load_network(SplatterNet, folder, "teacher regressor", error=SplatgenError)
    if teacher.config.variational:
        raise SplatgenError(f"{folder}: the teacher must be the deterministic regressor, not a VAR")
    return teacher.to(device).eval().requires_grad_(False)


@torch.no_grad()
def measure_stats(teacher: SplatterNet, bank: ViewBank, config: TrainConfig, device) -> dict:
    """Per-channel shift and scale (mean, 1/std over pixels, layers and objects) of the teacher's raw outputs."""
    g = torch.Generator(device=device).manual_seed(config.seed * 1000 + 7)
    raws = [teacher(bank.sample(config.batch_size, 1, g).input).raw.float() for _ in range(STATS_BATCHES)]
    x = torch.cat(raws).unflatten(1, (-1, CHANNELS_PER_GAUSSIAN)).transpose(1, 2).flatten(2)  # (B, 15, M·S·S)
    x = x.transpose(0, 1).flatten(1)
    mean, std = x.mean(1), x.std(1)
    return {"param_shift": [float(v) for v in mean], "param_scale": [float(1.0 / max(float(s), 1e-3)) for s in std]}


def build_denoiser(config: TrainConfig, out_dir: Path, teacher: SplatterNet, bank: ViewBank, device,
                   sha256: str) -> SplatterDenoiser:
    """The network the run trains: the checkpoint's (``--resume``) or ``--init-from``'s config, else a new one."""
    folders = ([out_dir / "checkpoint" / "model"] if config.resume else []) + \
        ([Path(config.init_from)] if config.init_from else [])
    for folder in folders:
        path = folder / "config.json"
        if path.exists():
            try:
                cfg = json.loads(path.read_text())
            except (OSError, ValueError) as exc:
                raise SplatgenError(f"{path}: unreadable model config ({exc})") from None
            return SplatterDenoiser.from_config({**cfg, "teacher_sha256": sha256}).to(device)
    channels = list(config.splat_channels)
    return SplatterDenoiser(image_size=teacher.config.image_size,
                            gaussians_per_pixel=teacher.config.gaussians_per_pixel,
                            block_out_channels=tuple(channels), norm_num_groups=min(32, math.gcd(*channels)),
                            attention_head_dim=min(32, channels[-1]),
                            teacher_sha256=sha256, **measure_stats(teacher, bank, config, device)).to(device)


def training_loss(forward, denoiser: SplatterDenoiser, teacher: SplatterNet, batch: ViewBatch, config: TrainConfig,
                  generator: torch.Generator, backend: str, amp=None, timesteps: torch.Tensor | None = None
                  ) -> tuple[torch.Tensor, dict]:
    """One step's loss: the noised teacher → the denoiser's clean Splatter Image → renders vs the views.
    ``forward``: the (compiled / DDP) denoiser to call; ``timesteps`` ``(B,)`` fixes t (tests), else uniform.
    Returns (loss, metrics as 0-d device tensors)."""
    b, dev = batch.input.shape[0], batch.input.device
    amp = amp if amp is not None else torch.autocast(dev.type, enabled=False)
    with torch.no_grad():
        x0 = denoiser.normalise(teacher(batch.input).raw.float())
    t = torch.randint(0, denoiser.config.num_train_timesteps, (b,), generator=generator, device=dev)
    t = t if timesteps is None else timesteps.to(t)
    noise = torch.randn(x0.shape, generator=generator, device=dev)
    keep = torch.rand(b, generator=generator, device=dev) >= config.cond_dropout
    x_t = denoiser.add_noise(x0, noise, t)
    with amp:
        pred = forward(x_t, t, denoiser.condition(batch.input, keep))
    raw = denoiser.denormalise(pred.float())
    out = SplatterOutput(raw=raw, gaussians=raw_to_gaussians(raw, denoiser.config.gaussians_per_pixel))
    loss, metrics = reconstruction_loss(out, batch, config, backend)
    return loss, metrics


def write_model_folder(ema_model: SplatterDenoiser, folder: Path, teacher: Path) -> None:
    """A model folder: ``denoiser/`` (fp16) and a manifest naming ``teacher`` relative to ``folder``."""
    export_model(ema_model, folder / "denoiser")
    manifest = {"format": 1, "kind": "teacher-guided", "name": folder.name,
                "components": {"denoiser": "denoiser",
                               "teacher": os.path.relpath(teacher.resolve(), folder.resolve())}}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")


def train_teacher_guided(config: TrainConfig, bank_loader) -> dict:
    """The loop behind ``splatgen train teacher-guided``. ``bank_loader(device, rank, world_size) -> ViewBank`` (rank's shard of the split)."""
    from ..generator.teacher import weights_sha256

    ctx = setup_run(config.device)
    torch.manual_seed(config.seed + ctx.rank)
    out_dir = Path(config.out)
    t_load = time.perf_counter()
    bank: ViewBank = bank_loader(ctx.device, ctx.rank, ctx.world_size)  # a wrong --data fails before the run folder exists
    load_s = time.perf_counter() - t_load
    tfolder = teacher_folder(config)
    teacher = load_teacher(tfolder, ctx.device)
    model = build_denoiser(config, out_dir, teacher, bank, ctx.device, weights_sha256(tfolder))
    if model.config.gaussians_per_pixel != teacher.config.gaussians_per_pixel:
        raise SplatgenError(f"the denoiser has {model.config.gaussians_per_pixel} Gaussians per pixel, the teacher "
                            f"{teacher.config.gaussians_per_pixel}: use the teacher it was trained with")
    out_dir.mkdir(parents=True, exist_ok=True)
    model.train()
    optimizer = make_optimizer(list(model.parameters()), config.lr, ctx.device)
    ema = EMA(model, config.ema_decay)
    generator = torch.Generator(device=ctx.device).manual_seed(config.seed * 1000 + ctx.rank)

    step, warmup_start = resume_or_init(out_dir, config.resume, config.init_from, model, ema, optimizer, generator,
                                        weights_init(model))
    ddp_model = wrap_ddp(model, ctx)
    # the network alone: the renderer and the loss stay eager (gsplat's custom ops break graphs)
    forward = torch.compile(ddp_model, dynamic=False) if config.compile else ddp_model
    backend = choose_backend(ctx.device, differentiable=True)
    log = RunLog(out_dir, ctx.is_main)
    clock = make_clock(config, ctx)
    if ctx.is_main:
        n = sum(p.numel() for p in model.parameters())
        print(f"training teacher-guided: {n / 1e6:.2f}M parameters, {bank.num_objects} objects x "
              f"{bank.views_per_object} views ({loading_rate(bank, load_s)}), teacher {tfolder}, device {ctx.device} "
              f"x{ctx.world_size}, from step {step}", flush=True)
    amp = bf16_autocast(ctx.device)
    steps_this_run, running = 0, RunningMetrics()

    def checkpoint() -> None:  # the step counter is read when called
        save_checkpoint(out_dir / "checkpoint", model, ema.model, optimizer, step, generator,
                        {"args": config.to_json(), "warmup_start": warmup_start})

    while not clock.done(step, steps_this_run):
        scheduled_lr(optimizer, config.lr, step, warmup_start, config.warmup, clock, config.lr_final)
        batch = bank.sample(config.batch_size, config.num_targets, generator, config.mirror)
        loss, metrics = training_loss(forward, model, teacher, batch, config, generator, backend, amp)
        grad_norm = optimise(loss, model, optimizer, ema, step, config.grad_clip)
        step += 1
        steps_this_run += 1
        after_step(step, {**metrics, "grad_norm": grad_norm}, running, log, clock, optimizer, config.log_every,
                   ctx.is_main, checkpoint)
    running.check_finite(step)
    if ctx.is_main:
        ema.model.register_to_config(trained_steps=step)
        unwrap(model).register_to_config(trained_steps=step)
        checkpoint()
        if config.export:
            write_model_folder(ema.model, Path(config.export), tfolder)
    end_run(ctx)
    return {"step": step, "steps_this_run": steps_this_run, "minutes": clock.minutes, "step_minutes": clock.step_minutes}


__all__ = ["train_teacher_guided", "training_loss", "write_model_folder", "measure_stats", "load_teacher"]
