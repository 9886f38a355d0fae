"""Train the latent denoiser over a frozen VAR's latent space (seed 001, stage 2).

Each step: for random objects and input views, the frozen VAR gives the condition (its image
encoder's 16×16 features of the input view; with ``--teacher REGRESSOR`` the frozen regressor's
16×16 features of the same view are appended) and the target latent (a posterior sample from the
input view plus ``num_context`` other posed views, normalised). By default these come from a pool of
VAR encodings renewed a chunk per step (:mod:`.latent_pool`): the VAR costs far more than the
denoiser, and each encoding is used ``--pool-reuse`` times on average. The denoiser learns to predict
``v`` (or ε) from a noised latent at a random timestep, with the condition dropped for a fraction
of items so that classifier-free guidance works at inference.

With ``--render-items R`` (seed 000's 2D supervision of a 3D diffusion model) the first R items of a
step also pass their predicted clean latent ``x̂0`` through the frozen VAR decoder, are rendered into
their input view and ``--num-targets`` other views, and compared with the images like the VAR's own
training (MSE + SSIM + alpha), weighted by ``--render-weight``: the latent loss treats every latent
element alike, while the decoder may be far more sensitive to some than to others. These items
always keep their condition. Off by default: it did not beat the latent loss alone (benchmarks/TRAINING.md).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch

from ..errors import SplatgenError
from ..images import to_uint8
from ..metrics import psnr
from ..models.denoiser import LatentDenoiser
from ..generator.sampling import sample_latents
from ..models.splatter_net import SplatterNet
from ..models.weights import load_network
from ..generator.teacher import denoiser_condition, weights_sha256
from ..render import choose_backend, render
from .config import TrainConfig
from .checkpoint import load_into, load_weights, unwrap
from .latent_pool import LatentPool, var_posterior
from .recon import export_model, reconstruction_loss
from .trainer import (bf16_autocast, trained_steps, EMA, make_optimizer, make_clock, end_run, broadcast_floats, RunLog, RunningMetrics, after_step, optimise, resume_or_init,
                      save_checkpoint, setup_run, scheduled_lr, wrap_ddp)
from .viewbank import ViewBank, ViewBatch, loading_rate


def load_frozen_var(folder: str, device) -> SplatterNet:
    if not folder:
        raise SplatgenError("diffusion training needs the trained VAR: pass --var MODEL_FOLDER")
    var = load_network(SplatterNet, folder, "VAR", error=SplatgenError)
    if not var.config.variational:
        raise SplatgenError(f"{folder}: this is a regressor, not a VAR (variational=false in its config)")
    return var.float().to(device).eval().requires_grad_(False)


def load_frozen_teacher(folder: str, device) -> tuple[SplatterNet, str]:
    """The regressor whose features join the condition, and the sha256 of its weights."""
    teacher = load_network(SplatterNet, folder, "teacher regressor", error=SplatgenError)
    digest = weights_sha256(folder)
    if teacher.config.variational:
        raise SplatgenError(f"{folder}: the teacher must be a regressor, this is a VAR (variational=true)")
    return teacher.float().to(device).eval().requires_grad_(False), digest


@torch.no_grad()
def var_targets(var: SplatterNet, batch: ViewBatch, num_context: int, generator,
                teacher: SplatterNet | None = None, teacher_latent: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """(condition features ``(B, C, s, s)``, VAR posterior sample ``(B, C_lat, s, s)``) for a batch."""
    features, mean, logvar = var_posterior(var, batch, num_context, teacher, teacher_latent)
    eps = torch.randn(mean.shape, generator=generator, device=mean.device)
    return features, mean + torch.exp(0.5 * logvar) * eps


#: LatentDenoiser config keys that belong to its weights: their shape and the latent normalisation
WEIGHT_KEYS = ("block_out_channels", "layers_per_block", "condition_projection", "attention_head_dim",
               "latent_scale", "latent_shift", "teacher_channels", "teacher_sha256", "teacher_latent")


def teacher_config(start: dict, teacher_channels: int, digest: str, resuming: bool,
                   teacher_latent: bool = False) -> dict:
    """The teacher keys of the denoiser to build, checked against the weights it starts from: a resumed
    run keeps its teacher (and its latent); a run from weights (``--init-from``) may take another
    regressor of the same width; weights trained without one may gain one (its projection starts at
    zero) unless the run resumes (the optimiser state has no such parameters)."""
    if teacher_latent and not teacher_channels:
        raise SplatgenError("--teacher-latent needs --teacher: the latent is that regressor's object")
    had_latent = bool(start.get("teacher_latent", False))
    if had_latent and not teacher_latent:
        raise SplatgenError("these denoiser weights were trained with the teacher's latent: pass --teacher-latent")
    if teacher_latent and not had_latent and resuming:
        raise SplatgenError("the checkpoint to resume was trained without the teacher's latent; start a new run "
                            "with --init-from to add it")
    had = int(start.get("teacher_channels", 0) or 0)
    if had and not teacher_channels:
        raise SplatgenError("these denoiser weights were trained with a teacher regressor's features: pass "
                            "--teacher with the same regressor")
    if had and had != teacher_channels:
        raise SplatgenError(f"--teacher has {teacher_channels} feature channels; these denoiser weights were trained "
                            f"with a regressor of {had}")
    if had and resuming and start.get("teacher_sha256", digest) != digest:
        raise SplatgenError("--teacher is not the regressor the checkpoint to resume was trained with; start a new "
                            "run with --init-from to move the denoiser onto another regressor")
    # Starting from weights (--init-from) with another regressor of the same width is allowed: a
    # denoiser moves onto a fine-tuned teacher far faster than it trains anew; the new digest pins it.
    if teacher_channels and not had and resuming:
        raise SplatgenError("the checkpoint to resume was trained without a teacher; start a new run with "
                            "--init-from to add one")
    return {"teacher_channels": teacher_channels, "teacher_sha256": digest, "teacher_latent": teacher_latent}


def starting_config(config: TrainConfig, out_dir: Path) -> dict:
    """The denoiser's size and latent normalisation: those of the weights the run starts from (its
    checkpoint with ``--resume``, else ``--init-from``), or ``--denoiser-channels`` /
    ``--denoiser-layers`` for a new denoiser (its normalisation is measured later)."""
    folders = [out_dir / "checkpoint" / "model"] if config.resume else []
    folders += [Path(config.init_from)] if config.init_from else []
    for folder in folders:
        path = folder / "config.json"
        if path.exists():
            try:
                cfg = json.loads(path.read_text())
            except (OSError, ValueError) as exc:
                raise SplatgenError(f"{path}: unreadable model config ({exc})") from None
            return {k: cfg[k] for k in WEIGHT_KEYS if k in cfg}
    return {"block_out_channels": tuple(config.denoiser_channels), "layers_per_block": config.denoiser_layers}


def train_diffusion(config: TrainConfig, bank_loader) -> dict:
    ctx = setup_run(config.device)
    torch.manual_seed(config.seed + ctx.rank)
    out_dir = Path(config.out)
    if config.render_items and config.latent_pool <= 0:
        raise SplatgenError("--render-items needs the latent pool (--latent-pool > 0): it knows each item's views")
    if not 0 <= config.render_items <= config.batch_size:
        raise SplatgenError(f"--render-items must be between 0 and the batch size ({config.batch_size})")
    var = load_frozen_var(config.var, ctx.device)  # a wrong --var fails before the dataset is decoded
    teacher, digest = load_frozen_teacher(config.teacher, ctx.device) if config.teacher else (None, "")
    start = starting_config(config, out_dir)
    resuming = config.resume and (out_dir / "checkpoint" / "model" / "config.json").exists()
    start.update(teacher_config(start, teacher.config.channels[-1] if teacher else 0, digest, resuming,
                                config.teacher_latent))
    t_load = time.perf_counter()
    bank: ViewBank = bank_loader(ctx.device, ctx.rank, ctx.world_size)  # a wrong --data fails before the run folder exists
    if ctx.is_main:
        print(f"views: {bank.num_objects} objects x {bank.views_per_object} "
              f"({loading_rate(bank, time.perf_counter() - t_load)})", flush=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    generator = torch.Generator(device=ctx.device).manual_seed(config.seed * 1000 + ctx.rank)
    denoiser = LatentDenoiser(condition_channels=var.config.channels[-1],
                              latent_channels=var.config.latent_channels,
                              latent_size=var.latent_shape[-1], **start).to(ctx.device)
    optimizer = make_optimizer(denoiser.parameters(), config.lr, ctx.device)
    ema = EMA(denoiser, config.ema_decay)

    def init_weights(folder: str) -> int:
        weights = load_weights(folder)
        for prefix in ("teacher_proj.", "teacher_latent_proj."):
            if hasattr(denoiser, prefix[:-1]) and not any(k.startswith(prefix) for k in weights):
                # a teacher (or its latent) joins weights trained without: its projection starts at zero
                weights.update({k: v for k, v in denoiser.state_dict().items() if k.startswith(prefix)})
        load_into(denoiser, weights, folder)
        return trained_steps(folder)

    step, warmup_start = resume_or_init(out_dir, config.resume, config.init_from, denoiser, ema, optimizer, generator,
                                        init_weights)
    pool = None
    if config.latent_pool > 0:
        pool = LatentPool(var, bank, config.num_context, config.latent_pool, config.batch_size // config.pool_reuse,
                          config.mirror, config.seed, ctx.rank, teacher=teacher,
                          teacher_latent=denoiser.config.teacher_latent, compile=config.compile)
        t0 = time.time()
        pool.advance(step)
        if ctx.is_main:
            print(f"latent pool: {len(pool)} VAR encodings in {time.time() - t0:.1f} s, {pool.chunk} renewed per step",
                  flush=True)
    if step == 0:  # a new denoiser: measure the latent normalisation on VAR encodings (the pool's, if any)
        stats_pool = pool or LatentPool(var, bank, config.num_context, 1024, 256, config.mirror, config.seed, ctx.rank,
                                        teacher=teacher, teacher_latent=denoiser.config.teacher_latent)
        stats_pool.advance(step)
        # every rank normalises alike: rank 0's figures (each rank encodes its own shard)
        shift, scale = broadcast_floats(list(stats_pool.latent_stats(generator)), ctx)
        denoiser.register_to_config(latent_shift=shift, latent_scale=scale)
    ema.model.register_to_config(latent_shift=denoiser.config.latent_shift, latent_scale=denoiser.config.latent_scale)
    model = wrap_ddp(denoiser, ctx)
    forward = torch.compile(model, dynamic=False) if config.compile else model
    train_sched = denoiser.make_scheduler("ddim")
    alphas = train_sched.alphas_cumprod.to(ctx.device)
    log = RunLog(out_dir, ctx.is_main)
    clock = make_clock(config, ctx)
    if ctx.is_main:
        print(f"training diffusion: {sum(p.numel() for p in denoiser.parameters()) / 1e6:.2f}M parameters, "
              f"condition {denoiser.condition_width} channels{' (with the teacher regressor)' if teacher else ''}"
              f"{' and its latent' if denoiser.config.teacher_latent else ''}, "
              f"latent scale {denoiser.config.latent_scale:.4g} shift {denoiser.config.latent_shift:.4g}, "
              f"from step {step}", flush=True)
    amp = bf16_autocast(ctx.device)
    backend = choose_backend(ctx.device, differentiable=True)
    steps_this_run, running = 0, RunningMetrics()

    def checkpoint() -> None:  # the step counter is read when called
        save_checkpoint(out_dir / "checkpoint", denoiser, ema.model, optimizer, step, generator,
                        {"args": config.to_json(), "warmup_start": warmup_start})

    while not clock.done(step, steps_this_run):
        scheduled_lr(optimizer, config.lr, step, warmup_start, config.warmup, clock, config.lr_final)
        if pool is not None:
            pool.advance(step)
            idx = pool.indices(config.batch_size, generator)
            condition, z = pool.gather(idx, generator)
        else:  # fresh VAR targets every step (slow: the VAR costs ~15 denoiser steps)
            batch = bank.sample(config.batch_size, config.num_context, generator, config.mirror)
            condition, z = var_targets(var, batch, config.num_context, generator, teacher,
                                       denoiser.config.teacher_latent)
        z0 = denoiser.normalise(z)
        noise = torch.randn(z0.shape, generator=generator, device=z0.device)
        t = torch.randint(0, len(alphas), (z0.shape[0],), generator=generator, device=z0.device)
        a = alphas[t].reshape(-1, 1, 1, 1)
        noisy = a.sqrt() * z0 + (1 - a).sqrt() * noise
        target = a.sqrt() * noise - (1 - a).sqrt() * z0 if denoiser.config.prediction_type == "v_prediction" \
            else noise
        keep = torch.rand(z0.shape[0], generator=generator, device=z0.device) >= config.cond_dropout
        r = config.render_items
        if r:
            keep[:r] = True
        with amp:
            pred = forward(noisy, t, unwrap(model).project_condition(condition, keep))
        loss = (pred.float() - target).square().mean()
        metrics = {"loss": loss}
        if r:
            views = pool.view_batch(idx[:r], config.num_targets, generator)
            ar, p = a[:r], pred[:r].float()
            x0 = ar.sqrt() * noisy[:r] - (1 - ar).sqrt() * p if denoiser.config.prediction_type == "v_prediction" \
                else (noisy[:r] - (1 - ar).sqrt() * p) / ar.sqrt().clamp_min(1e-3)  # the predicted clean latent
            with torch.no_grad(), amp:
                features = var.encode_image(views.input)
            with amp:
                decoded = var.decode(features, denoiser.denormalise(x0), 1.0)
            render_loss, render_metrics = reconstruction_loss(decoded, views, config, backend)
            loss = loss + config.render_weight * render_loss
            metrics.update({"latent_loss": metrics["loss"], "loss": loss, "render_loss": render_loss,
                            "render_psnr_input": render_metrics["psnr_input"],
                            "render_psnr_novel": render_metrics["psnr_novel"]})
        grad_norm = optimise(loss, denoiser, optimizer, ema, step, config.grad_clip)
        step += 1
        steps_this_run += 1
        after_step(step, {**metrics, "grad_norm": grad_norm}, running, log, clock, optimizer, config.log_every, ctx.is_main,
                   checkpoint)
    running.check_finite(step)
    result = {"step": step, "steps_this_run": steps_this_run, "minutes": clock.minutes, "step_minutes": clock.step_minutes}
    if ctx.is_main:
        ema.model.register_to_config(trained_steps=step)
        denoiser.register_to_config(trained_steps=step)
        checkpoint()
        result.update(preview(out_dir / f"samples_{step:07d}.png", var, ema.model, bank, generator, teacher))
        log.write({"step": step, **{k: v for k, v in result.items() if k.startswith("preview")}})
        if config.export:
            export_model(ema.model, Path(config.export))
    end_run(ctx)
    return result


@torch.no_grad()
def preview(path: Path, var: SplatterNet, denoiser: LatentDenoiser, bank: ViewBank, generator,
            teacher: SplatterNet | None = None, objects: int = 4, samples: int = 3, steps: int = 25) -> dict:
    """Sample a few objects, render the input and target views, write a PNG grid and quick PSNRs."""
    batch = bank.sample(objects, 3, generator)
    features = var.encode_image(batch.input)
    condition = denoiser_condition(features[-1], batch.input, teacher, var if denoiser.config.teacher_latent else None)
    rows, p_in, p_novel = [], [], []
    s = batch.rgb.shape[-2]
    rows.append(torch.cat(list(batch.rgb.flatten(0, 1)), 1))
    for _ in range(samples):
        z = sample_latents(denoiser, condition, steps=steps, guidance=denoiser.config.default_guidance,
                           generator=generator)
        out = var.decode(features, z, 1.0)
        r = render(out.gaussians, batch.viewmats, batch.Ks, s, s).rgb.clamp(0, 1)
        p = psnr(r, batch.rgb)
        p_in.append(p[:, 0].mean().item())
        p_novel.append(p[:, 1:].mean().item())
        rows.append(torch.cat(list(r.flatten(0, 1)), 1))
    import imageio.v3 as iio

    iio.imwrite(path, to_uint8(torch.cat(rows, 0).cpu().numpy()))
    return {"preview_psnr_input": float(np.mean(p_in)), "preview_psnr_novel": float(np.mean(p_novel))}
