"""Train a SplatterNet — the deterministic regressor or the Variational AutoReconstructor — from 2D views.

Each step: pick objects, an input view and target views per object; predict a Splatter Image from
the input; render it (gsplat on CUDA, the torch rasterizer on CPU) into the input view and the target
views, all expressed in the input camera's frame; compare with the images:

``loss = MSE(rgb) + λ_ssim·(1 - SSIM(rgb)) + λ_alpha·L1(alpha) [+ β·KL for the VAR]``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from ..errors import SplatgenError
from ..generator.model_folder import MANIFEST
from ..gaussians import Gaussians
from ..images import to_uint8
from ..models.splatter_net import SplatterNet
from ..render import choose_backend, render
from .config import TrainConfig
from .checkpoint import resumed_run_args, unwrap
from ..metrics import psnr, ssim
from .trainer import (bf16_autocast, weights_init, EMA, make_optimizer, make_clock, end_run, RunLog, RunningMetrics, after_step, optimise, resume_or_init,
                      save_checkpoint, setup_run, scheduled_lr, wrap_ddp)
from .viewbank import ViewBank, ViewBatch, loading_rate


def upsampled_views(batch: ViewBatch, scale: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The batch's views at ``scale``× their size (bilinear) and the cameras' intrinsics for that size:
    ``rgb`` ``(B, V, sS, sS, 3)``, ``alpha`` ``(B, V, sS, sS, 1)``, ``Ks`` ``(B, V, 3, 3)``."""
    if scale == 1:
        return batch.rgb, batch.alpha, batch.Ks
    b, v, s = batch.rgb.shape[:3]
    both = torch.cat([batch.rgb, batch.alpha], -1).reshape(b * v, s, s, 4).permute(0, 3, 1, 2)
    up = F.interpolate(both, scale_factor=scale, mode="bilinear", align_corners=False)
    up = up.permute(0, 2, 3, 1).reshape(b, v, s * scale, s * scale, 4)
    Ks = batch.Ks.clone()
    Ks[..., :2, :] *= scale  # pixel units: focal lengths and principal point scale with the image
    return up[..., :3], up[..., 3:], Ks


def reconstruction_loss(model_out, batch: ViewBatch, config, backend: str) -> tuple[torch.Tensor, dict]:
    """Render predicted Gaussians into every view of the batch and compare. Returns (loss, metrics as
    0-d device tensors).

    The loss is always taken at the views' own size. With ``config.loss_scale`` s > 1 a second term,
    weighted by ``config.zoom_weight``, renders s× larger and compares with the views upsampled: gaps
    between splats that a render at the views' own size never shows (the pixel-grid "waffle" of a
    zoomed render) then cost loss. (The zoomed term alone lets the native-size render drift: a val
    input PSNR 6 dB lower, benchmarks/TRAINING.md.) PSNR is measured at the views' own size."""
    g: Gaussians = model_out.gaussians
    loss, metrics, out = _photometric(g, batch.rgb, batch.alpha, batch.viewmats, batch.Ks, config, backend)
    scale = int(config.loss_scale)
    if scale > 1 and config.zoom_weight > 0:
        rgb, alpha, Ks = upsampled_views(batch, scale)
        zoom_loss, zoom, _ = _photometric(g, rgb, alpha, batch.viewmats, Ks, config, backend)
        loss = loss + config.zoom_weight * zoom_loss
        metrics.update({f"{k}_zoom": v for k, v in zoom.items()})
    with torch.no_grad():
        p = psnr(out.rgb.clamp(0, 1), batch.rgb)  # (B, V)
        metrics["psnr_input"] = p[:, 0].mean()
        metrics["psnr_novel"] = p[:, 1:].mean()
    if model_out.mean is not None:
        kl = model_out.kl()
        loss = loss + config.kl_weight * kl
        metrics["kl"] = kl
    metrics["loss"] = loss
    return loss, metrics  # metrics stay on the device (see RunningMetrics)


def _photometric(g: Gaussians, rgb, alpha, viewmats, Ks, config, backend: str):
    """MSE + SSIM + alpha L1 of ``g`` rendered at ``rgb``'s size ``(B, V, S, S, 3)`` → (loss, metrics, render)."""
    s = rgb.shape[-2]
    out = render(g, viewmats, Ks, s, s, backend=backend)
    mse = (out.rgb - rgb).square().mean()
    ssim_val = ssim(out.rgb, rgb).mean()
    alpha_l1 = (out.alpha - alpha).abs().mean()
    loss = mse + config.ssim_weight * (1 - ssim_val) + config.alpha_weight * alpha_l1
    return loss, {"mse": mse, "ssim": ssim_val, "alpha_l1": alpha_l1}, out


def encoder_views(batch: ViewBatch, num_context: int) -> dict:
    """The VAR encoder's views: the input view and the first ``num_context`` targets, posed.

    The remaining targets are rendered but unseen by the encoder, so the latent must describe the
    object in 3D rather than copy the views it was shown."""
    n = 1 + num_context
    views = torch.cat([batch.rgb[:, :n], batch.alpha[:, :n]], -1).permute(0, 1, 4, 2, 3)
    return {"views": views.contiguous(), "viewmats": batch.viewmats[:, :n]}


def save_samples(path: Path, model, batch: ViewBatch, backend: str, num_context: int, n: int = 4) -> None:
    """A PNG grid: per object, the target views (top) and the model's renders of them (bottom)."""
    model.eval()
    with torch.no_grad():
        sub = ViewBatch(*(t[:n] for t in (batch.input, batch.rgb, batch.alpha, batch.viewmats, batch.Ks,
                                          batch.objects)))
        out = model(sub.input, **encoder_views(sub, num_context)) if model.config.variational else model(sub.input)
        s = batch.rgb.shape[-2]
        r = render(out.gaussians, batch.viewmats[:n], batch.Ks[:n], s, s, backend=backend)
    model.train()
    gt = batch.rgb[:n].clamp(0, 1)
    pred = r.rgb.clamp(0, 1)
    rows = []
    for i in range(gt.shape[0]):
        rows.append(torch.cat(list(gt[i]), 1))
        rows.append(torch.cat(list(pred[i]), 1))
    grid = to_uint8(torch.cat(rows, 0).cpu().numpy())
    import imageio.v3 as iio

    iio.imwrite(path, grid)


def train_reconstruction(config: TrainConfig, bank_loader) -> dict:
    """The training loop behind ``splatgen train regressor|var``. ``bank_loader(device, rank, world_size) -> ViewBank`` (rank's shard of the split)."""
    ctx = setup_run(config.device)
    torch.manual_seed(config.seed + ctx.rank)
    out_dir = Path(config.out)
    t_load = time.perf_counter()
    bank: ViewBank = bank_loader(ctx.device, ctx.rank, ctx.world_size)  # a wrong --data fails before the run folder exists
    load_s = time.perf_counter() - t_load
    out_dir.mkdir(parents=True, exist_ok=True)
    variational = config.model == "var"
    model = SplatterNet(variational=variational, gaussians_per_pixel=config.gaussians_per_pixel).to(ctx.device)
    if config.decoder_only:
        freeze_latent_space(model)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = make_optimizer(trainable, config.lr, ctx.device)
    ema = EMA(model, config.ema_decay)
    generator = torch.Generator(device=ctx.device).manual_seed(config.seed * 1000 + ctx.rank)

    check_resume_settings(out_dir, config)
    step, warmup_start = resume_or_init(out_dir, config.resume, config.init_from, model, ema, optimizer, generator,
                                        weights_init(model))
    ddp_model = wrap_ddp(model, ctx)
    backend = choose_backend(ctx.device, differentiable=True)
    log = RunLog(out_dir, ctx.is_main)
    clock = make_clock(config, ctx)
    if ctx.is_main:
        n_params = sum(p.numel() for p in model.parameters())
        print(f"training {config.model}: {n_params / 1e6:.2f}M parameters, {bank.num_objects} objects x "
              f"{bank.views_per_object} views ({loading_rate(bank, load_s)}), device {ctx.device} x{ctx.world_size}, "
              f"from step {step}", flush=True)
    steps_this_run, running = 0, RunningMetrics()
    amp = bf16_autocast(ctx.device)
    batch = None
    # the network alone: gsplat's rasteriser and the loss stay eager (custom CUDA ops break graphs)
    forward = torch.compile(ddp_model, dynamic=False) if config.compile else ddp_model

    def checkpoint() -> None:  # the step counter is read when called
        save_checkpoint(out_dir / "checkpoint", model, ema.model, optimizer, step, generator,
                        {"args": config.to_json(), "warmup_start": warmup_start})

    while not clock.done(step, steps_this_run):
        scheduled_lr(optimizer, config.lr, step, warmup_start, config.warmup, clock, config.lr_final)
        batch = bank.sample(config.batch_size, config.num_targets, generator, config.mirror)
        with amp:
            model_out = forward(batch.input, **encoder_views(batch, config.num_context)) if variational \
                else forward(batch.input)
        loss, metrics = reconstruction_loss(model_out, batch, config, backend)
        grad_norm = optimise(loss, model, optimizer, ema, step, config.grad_clip)
        step += 1
        steps_this_run += 1
        after_step(step, {**metrics, "grad_norm": grad_norm}, running, log, clock, optimizer, config.log_every, ctx.is_main,
                   checkpoint)
    running.check_finite(step)
    if ctx.is_main:
        ema.model.register_to_config(trained_steps=step)
        unwrap(model).register_to_config(trained_steps=step)
        checkpoint()
        if batch is not None:
            save_samples(out_dir / f"samples_{step:07d}.png", ema.model, batch, backend, config.num_context)
        if config.export:
            export_model(ema.model, Path(config.export))
            if not variational:  # a regressor is a generator on its own: its export loads as a model folder
                write_regressor_manifest(Path(config.export), step)
    end_run(ctx)
    return {"step": step, "steps_this_run": steps_this_run, "minutes": clock.minutes, "step_minutes": clock.step_minutes}


def check_resume_settings(out_dir: Path, config) -> None:
    """Refuse ``--resume`` with another ``--decoder-only`` than the checkpoint's run: unfreezing the
    encoders midway would move the latent space a denoiser was trained on (and freezing them midway
    is a different run)."""
    saved = resumed_run_args(out_dir, config.resume)
    if saved is None:
        return
    before, now = bool(saved.get("decoder_only", False)), bool(config.decoder_only)
    if before != now:
        flag = "with" if before else "without"
        raise SplatgenError(f"{out_dir}: this run was started {flag} --decoder-only; resume it the same way, "
                            "or start a new run folder (--init-from its exported model)")


def freeze_latent_space(model: SplatterNet) -> None:
    """Train only the VAR's decoder (``--decoder-only``): the image encoder, the view encoder and the
    latent head stay fixed, so the latents and the denoiser's condition features do not move and a
    denoiser trained on this VAR stays valid while the reconstruction from its latents improves."""
    if not model.config.variational:
        raise SplatgenError("--decoder-only applies to the VAR (splatgen train var), not the regressor")
    for part in (model.encoder, model.view_encoder, model.to_latent):
        part.requires_grad_(False)


def write_regressor_manifest(folder: Path, step: int) -> None:
    """``splatgen.json`` of a regressor model folder whose network lies in the folder itself."""
    manifest = {"format": 1, "kind": "regressor", "name": f"Splatter-Image regressor (deterministic), step {step:,}",
                "components": {"net": "."}}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")


def export_model(model, folder: Path) -> None:
    """Ship a model: fp16 safetensors + config.json via ``save_pretrained``.

    The copy keeps the live config (``from_config`` would rebuild it from the constructor's view and
    drop values registered during training, such as the latent normalisation)."""
    import copy

    folder.mkdir(parents=True, exist_ok=True)
    copy.deepcopy(unwrap(model)).to(torch.float16).save_pretrained(folder, safe_serialization=True)
