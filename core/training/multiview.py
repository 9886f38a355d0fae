"""Train the multi-view model (seed 003, GSV3D) stage by stage: ``splatgen train mv-*``.

1. ``mv-autoencoder``: the image autoencoder on every view of the batch (MSE + SSIM + β·KL);
2. ``mv-denoiser`` (:mod:`.multiview_diffusion`): N views' latents of the frozen autoencoder, denoised
   jointly given the input view's latent and the cameras;
3. ``mv-decoder``: the Gaussian Splatting Decoder on the frozen autoencoder's latents of N real views
   of an object; its Gaussians are rendered into those N views and ``--num-targets`` views it did not
   see, and compared with the images (MSE + SSIM + alpha L1);
4. ``mv-distill`` (:mod:`.multiview_diffusion`): LoRA adapters on the denoiser, decoder frozen, a 3D
   consistency loss on renders of the decoded Gaussians.

Every stage runs through :func:`run_stage`: the trainer's set-up, EMA, warm-up, logging, resumable
checkpoints and the ``--export`` of the EMA weights as fp16. A batch holds, per object, an input view
(view 0, camera = identity), ``num_views - 1`` further views and, for stages that render, held-out
views; every camera in the input camera's frame. Under torchrun each rank trains on its shard and
the gradients are averaged after the backward pass (:func:`~.trainer.average_gradients`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from ..errors import SplatgenError
from ..gaussians import Gaussians
from ..metrics import psnr, ssim
from ..models import mv_autoencoder
from ..models.mv_decoder import MultiViewGSDecoder
from ..models.weights import load_network
from ..render import choose_backend, render
from .checkpoint import unwrap
from .config import TrainConfig
from .recon import export_model
from .trainer import (bf16_autocast, weights_init, EMA, make_clock, end_run, RunLog, RunningMetrics, after_step, make_optimizer, optimise, resume_or_init,
                      save_checkpoint, setup_run, scheduled_lr)
from .viewbank import ViewBank, ViewBatch


@dataclass
class Stage:
    """One stage's parts for :func:`run_stage`. ``step(batch, generator)`` → (loss, metrics as 0-d
    tensors); ``export(ema_model, folder)`` ships the weights; ``report(ema_model, bank, generator)``
    → numbers logged at the end (optional)."""

    model: torch.nn.Module
    trainable: list
    step: Callable
    extra_views: int = 0  # views per object beyond num_views (held out from the networks' inputs)
    export: Callable = export_model
    report: Callable | None = None
    init_weights: Callable | None = None  # init_from folder → trained steps


def rgba(batch: ViewBatch) -> torch.Tensor:
    """The batch's views as RGBA images ``(B, V, 4, S, S)`` (RGB on the background)."""
    return torch.cat([batch.rgb, batch.alpha], -1).permute(0, 1, 4, 2, 3)


def draw_views(bank: ViewBank, config: TrainConfig, extra: int, generator) -> ViewBatch:
    """Objects with an input view, ``num_views - 1`` more and up to ``extra`` held-out ones."""
    if bank.views_per_object < config.num_views:
        raise SplatgenError(f"--num-views {config.num_views} needs objects with at least that many views; the "
                            f"dataset has {bank.views_per_object}")
    targets = min(config.num_views - 1 + extra, bank.views_per_object - 1)
    return bank.sample(config.batch_size, targets, generator, config.mirror)


def load_frozen(cls, folder: str | None, what: str, option: str, device):
    if not folder:
        raise SplatgenError(f"this stage needs the trained {what}: pass {option} MODEL_FOLDER")
    return load_network(cls, folder, what, error=SplatgenError).to(device).eval().requires_grad_(False)


def full_precision(device: torch.device):
    """A context without autocast: rendering, SSIM and the losses run in float32 (the stages run their
    networks under bf16 autocast on CUDA; SSIM's moments and splat positions need the full precision)."""
    return torch.autocast(torch.device(device).type, enabled=False)


def render_loss(gaussians: Gaussians, batch: ViewBatch, config: TrainConfig, backend: str, seen: int):
    """Render ``gaussians`` ``(B, N)`` into every view of ``batch``; MSE + λ_ssim·(1-SSIM) + λ_alpha·L1(alpha).
    Metrics: PSNR over the first ``seen`` views (the networks' inputs) and the held-out rest."""
    with full_precision(batch.rgb.device):
        return _render_loss(gaussians.to(dtype=torch.float32), batch, config, backend, seen)


def _render_loss(gaussians: Gaussians, batch: ViewBatch, config: TrainConfig, backend: str, seen: int):
    s = batch.rgb.shape[-2]
    out = render(gaussians, batch.viewmats, batch.Ks, s, s, backend=backend)
    mse = (out.rgb - batch.rgb).square().mean()
    ssim_val = ssim(out.rgb, batch.rgb).mean()
    alpha_l1 = (out.alpha - batch.alpha).abs().mean()
    loss = mse + config.ssim_weight * (1 - ssim_val) + config.alpha_weight * alpha_l1
    metrics = {"mse": mse, "ssim": ssim_val, "alpha_l1": alpha_l1}
    with torch.no_grad():
        p = psnr(out.rgb.detach().clamp(0, 1), batch.rgb)  # (B, V)
        metrics["psnr_seen"] = p[:, :seen].mean()
        if p.shape[1] > seen:
            metrics["psnr_held_out"] = p[:, seen:].mean()
    return loss, metrics, out


# ------------------------------------------------------------------ the stages of this module
def autoencoder_stage(config: TrainConfig, ctx, bank: ViewBank, start: dict) -> Stage:
    vae = mv_autoencoder.make_autoencoder(**({"channels": config.mv_channels} if config.mv_channels else {}))
    vae = vae.to(ctx.device).train()

    def step(batch: ViewBatch, generator):
        images = rgba(batch).flatten(0, 1)
        posterior = vae.encode(images * 2.0 - 1.0).latent_dist
        rec = (vae.decode(posterior.sample(generator)).sample + 1.0) * 0.5
        with full_precision(images.device):
            rec = rec.float()
            mse = (rec - images).square().mean()
            ssim_val = ssim(rec[:, :3].permute(0, 2, 3, 1), images[:, :3].permute(0, 2, 3, 1)).mean()
            kl = posterior.kl().float().mean() / posterior.mean[0].numel()  # per latent element
            loss = mse + config.ssim_weight * (1 - ssim_val) + config.kl_weight * kl
        with torch.no_grad():
            p = psnr(rec.detach().float()[:, :3].clamp(0, 1).permute(0, 2, 3, 1), images[:, :3].permute(0, 2, 3, 1))
        return loss, {"loss": loss, "mse": mse, "ssim": ssim_val, "kl": kl, "psnr": p.mean()}

    return Stage(vae, list(vae.parameters()), step, init_weights=weights_init(vae))


def decoder_stage(config: TrainConfig, ctx, bank: ViewBank, start: dict) -> Stage:
    vae = load_frozen(mv_autoencoder.AutoencoderKL, config.autoencoder, "autoencoder", "--autoencoder", ctx.device)
    size = {"block_out_channels": tuple(config.mv_channels)} if config.mv_channels else {}
    size["gaussians_per_pixel"] = config.gaussians_per_pixel
    size.update({k: v for k, v in start.items() if k in SIZE_KEYS[:6]})  # the weights' own size wins
    decoder = MultiViewGSDecoder(latent_channels=vae.config.latent_channels,
                                 latent_size=mv_autoencoder.latent_size(vae), **size).to(ctx.device)
    backend = choose_backend(ctx.device, differentiable=True)
    n = config.num_views

    def step(batch: ViewBatch, generator):
        with torch.no_grad():
            z = mv_autoencoder.encode(vae, rgba(batch)[:, :n]).float()
        g = decoder(z, batch.viewmats[:, :n], z[:, 0])
        loss, metrics, _ = render_loss(g, batch, config, backend, seen=n)
        return loss, {"loss": loss, **metrics}

    return Stage(decoder, list(decoder.parameters()), step, extra_views=config.num_targets,
                 init_weights=weights_init(decoder))


# ------------------------------------------------------------------ the loop
def stage_builder(model: str):
    if model == "mv-autoencoder":
        return autoencoder_stage
    if model == "mv-decoder":
        return decoder_stage
    from . import multiview_diffusion

    return {"mv-denoiser": multiview_diffusion.denoiser_stage, "mv-distill": multiview_diffusion.distill_stage}[model]


#: Config keys of a multi-view network that belong to its weights (shape, latent normalisation).
SIZE_KEYS = ("block_out_channels", "layers_per_block", "cross_attention_dim", "attention_heads", "token_patch",
             "gaussians_per_pixel", "latent_scale", "latent_shift")


def starting_size(config: TrainConfig, out_dir: Path, keys=SIZE_KEYS) -> dict:
    """The size of the network the run continues (its checkpoint, else ``--init-from``), so resuming or
    starting from weights never builds another shape than theirs."""
    folders = ([out_dir / "checkpoint" / "model"] if config.resume else []) + \
        ([Path(config.init_from)] if config.init_from else [])
    for folder in folders:
        path = folder / "config.json"
        if path.exists():
            try:
                cfg = json.loads(path.read_text())
            except (OSError, ValueError) as exc:
                raise SplatgenError(f"{path}: unreadable model config ({exc})") from None
            return {k: cfg[k] for k in keys if k in cfg}
    return {}


def run_stage(config: TrainConfig, bank_loader) -> dict:
    """The loop behind ``splatgen train mv-*``. ``bank_loader(device, rank, world_size) -> ViewBank``
    (the rank's shard). Under torchrun every rank builds the same network (same seed), draws its own
    batches from its shard, and the gradients are averaged over the ranks before each step."""
    ctx = setup_run(config.device)
    if config.compile:
        raise SplatgenError("the multi-view stages do not use --compile (yet): leave it out")
    torch.manual_seed(config.seed)
    out_dir = Path(config.out)
    bank: ViewBank = bank_loader(ctx.device, ctx.rank, ctx.world_size)  # a wrong --data fails before the run folder exists
    generator = torch.Generator(device=ctx.device).manual_seed(config.seed * 1000 + ctx.rank)
    stage: Stage = stage_builder(config.model)(config, ctx, bank, starting_size(config, out_dir)
                                               if config.model != "mv-autoencoder" else {})
    out_dir.mkdir(parents=True, exist_ok=True)
    model = stage.model
    optimizer = make_optimizer(stage.trainable, config.lr, ctx.device)
    ema = EMA(model, config.ema_decay)
    step, warmup_start = resume_or_init(out_dir, config.resume, config.init_from, model, ema, optimizer, generator,
                                        stage.init_weights or weights_init(model))
    log = RunLog(out_dir, ctx.is_main)
    clock = make_clock(config, ctx)
    total = sum(p.numel() for p in model.parameters())
    trained = sum(p.numel() for p in stage.trainable)
    if ctx.is_main:
        print(f"training {config.model}: {total / 1e6:.2f}M parameters ({trained / 1e6:.3f}M trained), "
              f"{bank.num_objects} objects x {bank.views_per_object} views, {config.num_views} views a step, "
              f"device {ctx.device} x{ctx.world_size}, from step {step}", flush=True)
    amp = bf16_autocast(ctx.device)
    steps_this_run, running = 0, RunningMetrics()

    def checkpoint() -> None:  # the step counter is read when called
        save_checkpoint(out_dir / "checkpoint", model, ema.model, optimizer, step, generator,
                        {"args": config.to_json(), "warmup_start": warmup_start})

    result = {}
    if stage.report is not None and step == 0 and ctx.is_main:
        result.update({f"{k}_before": v for k, v in stage.report(model, bank, generator).items()})
        log.write({"step": step, **result})
    while not clock.done(step, steps_this_run):
        scheduled_lr(optimizer, config.lr, step, warmup_start, config.warmup, clock, config.lr_final)
        batch = draw_views(bank, config, stage.extra_views, generator)
        with amp:
            loss, metrics = stage.step(batch, generator)
        grad_norm = optimise(loss, model, optimizer, ema, step, config.grad_clip, sync=ctx if ctx.distributed else None)
        step += 1
        steps_this_run += 1
        after_step(step, {**metrics, "grad_norm": grad_norm}, running, log, clock, optimizer, config.log_every,
                   ctx.is_main, checkpoint)
    running.check_finite(step)
    key = "distilled_steps" if config.model == "mv-distill" else "trained_steps"
    for m in (ema.model, unwrap(model)):
        if key in m.config:  # the autoencoder is diffusers' own class: no bookkeeping keys
            m.register_to_config(**{key: step})
    if ctx.is_main:
        checkpoint()
        if stage.report is not None:
            after = {f"{k}_after": v for k, v in stage.report(ema.model, bank, generator).items()}
            result.update(after)
            log.write({"step": step, **after})
        if config.export:
            stage.export(ema.model, Path(config.export))
    end_run(ctx)
    return {"step": step, "steps_this_run": steps_this_run, "minutes": clock.minutes, "step_minutes": clock.step_minutes, **result}


__all__ = ["run_stage", "Stage", "render_loss", "rgba", "draw_views", "load_frozen", "full_precision"]
