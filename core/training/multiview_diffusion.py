"""The multi-view denoiser's stages (seed 003): ``mv-denoiser`` and ``mv-distill`` (geometric distillation).

``mv-denoiser``: per object, the frozen autoencoder's latents of the input view and ``num_views - 1``
other views (normalised); all views are noised to one random timestep and the denoiser predicts
``v`` for all of them at once, given the input view's latent (dropped for ``--cond-dropout`` of the
items, for classifier-free guidance) and the cameras. A new denoiser measures the latent
normalisation on the data first.

``mv-distill`` (GSV3D's geometric distillation): the denoiser frozen with LoRA adapters (PyPI
``peft``, rank ``--lora-rank``) on its attention projections, the Gaussian decoder and the
autoencoder frozen. Each step adds to the diffusion loss ``--consistency-weight`` × a 3D loss on the
predicted clean latents ``x̂0``: the decoder turns them into Gaussians, rendered (RGB, depth) into the
object's views, which must match (a) the real views (MSE), (b) the generated views, i.e. the
autoencoder's decoding of ``x̂0`` (MSE), and (c) ``--depth-weight`` × the depth of the decoder's
Gaussians from the *real* views' latents, where the object covers the pixel (L1). Only the adapters
train; the export merges them into the denoiser, so the shipped model needs no ``peft``.
:func:`consistency` reports, before and after, how far the generated views are from renders of their
decoded Gaussians at the same cameras (PSNR).
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch

from ..generator.multi_view import sample_views as sample_latents
from ..metrics import psnr
from ..models import mv_autoencoder
from ..models.mv_decoder import MultiViewGSDecoder
from ..models.mv_denoiser import MultiViewDenoiser
from ..models.weights import load_network
from ..errors import SplatgenError
from ..render import choose_backend, render
from .checkpoint import unwrap
from .config import TrainConfig
from .trainer import broadcast_floats
from .multiview import Stage, draw_views, full_precision, load_frozen, rgba
from .trainer import weights_init
from .viewbank import ViewBank, ViewBatch

#: LoRA targets: every attention projection of the UNet (self-attention across views and cross-attention).
LORA_TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]
#: The consistency report: objects, denoising steps, guidance (fixed objects and noise, so before and
#: after compare the same draws).
REPORT_OBJECTS, REPORT_STEPS, REPORT_GUIDANCE = 8, 20, 2.0
#: Denoiser config keys that belong to its weights (shape, latent normalisation).
WEIGHT_KEYS = ("block_out_channels", "layers_per_block", "cross_attention_dim", "attention_heads", "token_patch",
               "latent_scale", "latent_shift")


def diffusion_inputs(denoiser: MultiViewDenoiser, z: torch.Tensor, alphas: torch.Tensor, generator):
    """Noised normalised latents of ``z`` ``(B, N, C, s, s)`` at one random timestep per object:
    (noisy, timesteps ``(B,)``, alpha_bar ``(B, 1, 1, 1, 1)``, target: v or ε)."""
    z0 = denoiser.normalise(z)
    noise = torch.randn(z0.shape, generator=generator, device=z0.device)
    t = torch.randint(0, len(alphas), (z0.shape[0],), generator=generator, device=z0.device)
    a = alphas[t].reshape(-1, 1, 1, 1, 1)
    noisy = a.sqrt() * z0 + (1 - a).sqrt() * noise
    target = a.sqrt() * noise - (1 - a).sqrt() * z0 if denoiser.config.prediction_type == "v_prediction" else noise
    return noisy, t, a, target


@torch.no_grad()
def latent_stats(vae, bank: ViewBank, config: TrainConfig, generator, batches: int = 4) -> tuple[float, float]:
    """(shift, scale) that make the autoencoder's latents of training views zero-mean, unit-variance."""
    zs = [mv_autoencoder.encode(vae, rgba(draw_views(bank, config, 0, generator))) for _ in range(batches)]
    z = torch.cat([x.flatten() for x in zs]).float()
    return float(z.mean()), float(1.0 / z.std().clamp_min(1e-6))


def denoiser_stage(config: TrainConfig, ctx, bank: ViewBank, start: dict) -> Stage:
    vae = load_frozen(mv_autoencoder.AutoencoderKL, config.autoencoder, "autoencoder", "--autoencoder", ctx.device)
    size = {"block_out_channels": tuple(config.mv_channels)} if config.mv_channels else {}
    size.update({k: start[k] for k in WEIGHT_KEYS if k in start})
    denoiser = MultiViewDenoiser(latent_channels=vae.config.latent_channels, latent_size=mv_autoencoder.latent_size(vae),
                                 num_views=config.num_views, **size).to(ctx.device)
    if "latent_scale" not in start:  # a new denoiser: measure the normalisation of this autoencoder's latents
        shift, scale = latent_stats(vae, bank, config, torch.Generator(device=ctx.device).manual_seed(config.seed))
        shift, scale = broadcast_floats([shift, scale], ctx)  # every rank alike: rank 0's shard's figures
        denoiser.register_to_config(latent_shift=shift, latent_scale=scale)
    alphas = denoiser.make_scheduler("ddim").alphas_cumprod.to(ctx.device)
    n = config.num_views

    def step(batch: ViewBatch, generator):
        with torch.no_grad():
            z = mv_autoencoder.encode(vae, rgba(batch)[:, :n]).float()
        noisy, t, _, target = diffusion_inputs(denoiser, z, alphas, generator)
        keep = torch.rand(z.shape[0], generator=generator, device=z.device) >= config.cond_dropout
        pred = denoiser(noisy, t, denoiser.normalise(z[:, 0]), batch.viewmats[:, :n], keep)
        loss = (pred.float() - target).square().mean()
        return loss, {"loss": loss}

    return Stage(denoiser, list(denoiser.parameters()), step, init_weights=weights_init(denoiser))


def add_lora(denoiser: MultiViewDenoiser, rank: int) -> list[torch.nn.Parameter]:
    """Attach LoRA adapters (``peft``) to the denoiser's attention projections; freeze everything else.
    The adapters start as the identity (B = 0). Returns the adapters' parameters."""
    from peft import LoraConfig

    denoiser.requires_grad_(False)
    denoiser.add_adapter(LoraConfig(r=rank, lora_alpha=rank, init_lora_weights=True, target_modules=LORA_TARGETS))
    params = [p for name, p in denoiser.named_parameters() if "lora_" in name]
    for p in params:
        p.requires_grad_(True)
    return params


def export_distilled(model, folder: Path) -> None:
    """The denoiser with its adapters merged in (``fuse_lora`` + ``unload_lora``), fp16, ``save_pretrained``:
    a plain :class:`MultiViewDenoiser` folder that loads without ``peft``."""
    merged = copy.deepcopy(unwrap(model))
    merged.fuse_lora()
    merged.unload_lora()
    folder.mkdir(parents=True, exist_ok=True)
    merged.half().save_pretrained(folder, safe_serialization=True)


def consistency_loss(denoiser, decoder, vae, batch: ViewBatch, z: torch.Tensor, noisy, pred, a, keep,
                     config: TrainConfig, backend: str) -> tuple[torch.Tensor, dict]:
    """The 3D loss of the module docstring on the kept items (0 when none is kept)."""
    n, s = z.shape[1], batch.rgb.shape[-2]
    z_hat = denoiser.denormalise(denoiser.predict_clean(noisy, pred.float(), a))
    gaussians = decoder(z_hat, batch.viewmats[:, :n], z[:, 0]).to(dtype=torch.float32)
    generated = mv_autoencoder.decode(vae, z_hat).float().permute(0, 1, 3, 4, 2)[..., :3]  # (B, N, S, S, 3)
    with torch.no_grad():
        real_gaussians = decoder(z, batch.viewmats[:, :n], z[:, 0]).to(dtype=torch.float32)
    with full_precision(z.device):
        out = render(gaussians, batch.viewmats, batch.Ks, s, s, backend=backend)
        with torch.no_grad():
            reference = render(real_gaussians, batch.viewmats, batch.Ks, s, s, backend=backend).depth
        return _terms(out, generated, reference, batch, n, keep, config)


def _terms(out, generated, reference, batch: ViewBatch, n: int, keep, config: TrainConfig):
    mask = (batch.alpha > 0.5).float()
    real = (out.rgb - batch.rgb).square().flatten(1).mean(1)
    gen = (out.rgb[:, :n] - generated).square().flatten(1).mean(1)
    depth = ((out.depth - reference).abs() * mask).flatten(1).sum(1) / mask.flatten(1).sum(1).clamp_min(1.0)
    w = keep.float() / keep.float().sum().clamp_min(1.0)
    terms = {"real_mse": (real * w).sum(), "generated_mse": (gen * w).sum(), "depth_l1": (depth * w).sum()}
    return terms["real_mse"] + terms["generated_mse"] + config.depth_weight * terms["depth_l1"], terms


@torch.no_grad()
def consistency(vae, denoiser: MultiViewDenoiser, decoder: MultiViewGSDecoder, batch: ViewBatch, num_views: int, *,
                steps: int = REPORT_STEPS, guidance: float = REPORT_GUIDANCE, seed: int = 0) -> dict:
    """Generate ``num_views`` views per object of ``batch`` (its input view as the condition, its cameras),
    decode them into Gaussians and render those at the same cameras. Returns mean PSNRs (dB):
    ``consistency_psnr`` (generated views vs renders; the 3D consistency), ``render_psnr`` (renders vs
    the real views, input excluded) and ``generated_psnr`` (generated vs real views, input excluded)."""
    was_training = denoiser.training
    denoiser.eval()
    n, s = num_views, batch.rgb.shape[-2]
    vms = batch.viewmats[:, :n]
    z_in = mv_autoencoder.encode(vae, rgba(batch)[:, 0])
    c, ls = denoiser.config.latent_channels, denoiser.config.latent_size
    noise = torch.randn((z_in.shape[0], n, c, ls, ls), generator=torch.Generator().manual_seed(seed)).to(z_in.device)
    z = sample_latents(denoiser, z_in, vms, noise, steps=steps, guidance=guidance)
    generated = mv_autoencoder.decode(vae, z).clamp(0, 1).permute(0, 1, 3, 4, 2)[..., :3]
    out = render(decoder(z, vms, z_in), vms, batch.Ks[:, :n], s, s, backend=choose_backend(z.device,
                                                                                           differentiable=True))
    rendered, real = out.rgb.clamp(0, 1), batch.rgb[:, :n]
    denoiser.train(was_training)
    return {"consistency_psnr": float(psnr(rendered, generated).mean()),
            "render_psnr": float(psnr(rendered[:, 1:], real[:, 1:]).mean()),
            "generated_psnr": float(psnr(generated[:, 1:], real[:, 1:]).mean())}


def distill_stage(config: TrainConfig, ctx, bank: ViewBank, start: dict) -> Stage:
    vae = load_frozen(mv_autoencoder.AutoencoderKL, config.autoencoder, "autoencoder", "--autoencoder", ctx.device)
    decoder = load_frozen(MultiViewGSDecoder, config.decoder, "Gaussian decoder", "--decoder", ctx.device)
    if not config.denoiser:
        raise SplatgenError("mv-distill adapts a trained denoiser: pass --denoiser MODEL_FOLDER")
    if config.init_from:
        raise SplatgenError("mv-distill starts from --denoiser (with new adapters); --init-from does not apply")
    denoiser = load_network(MultiViewDenoiser, config.denoiser, "multi-view denoiser", error=SplatgenError)
    lat = (vae.config.latent_channels, mv_autoencoder.latent_size(vae))
    for part, what in ((denoiser, "denoiser"), (decoder, "decoder")):
        if (part.config.latent_channels, part.config.latent_size) != lat:
            raise SplatgenError(f"the {what} does not work on this autoencoder's {lat[0]}×{lat[1]}² latents")
    denoiser = denoiser.to(ctx.device)
    adapters = add_lora(denoiser, config.lora_rank)
    denoiser.train()
    alphas = denoiser.make_scheduler("ddim").alphas_cumprod.to(ctx.device)
    backend = choose_backend(ctx.device, differentiable=True)
    n = config.num_views
    g = torch.Generator(device=ctx.device).manual_seed(config.seed + 7)
    report_batch = bank.sample(min(REPORT_OBJECTS, bank.num_objects), n - 1, g)  # the same objects before and after

    def step(batch: ViewBatch, generator):
        with torch.no_grad():
            z = mv_autoencoder.encode(vae, rgba(batch)[:, :n]).float()
        noisy, t, a, target = diffusion_inputs(denoiser, z, alphas, generator)
        keep = torch.rand(z.shape[0], generator=generator, device=z.device) >= config.cond_dropout
        pred = denoiser(noisy, t, denoiser.normalise(z[:, 0]), batch.viewmats[:, :n], keep)
        diffusion = (pred.float() - target).square().mean()
        loss3d, terms = consistency_loss(denoiser, decoder, vae, batch, z, noisy, pred, a, keep, config, backend)
        loss = diffusion + config.consistency_weight * loss3d
        return loss, {"loss": loss, "diffusion_loss": diffusion, "loss_3d": loss3d, **terms}

    def report(model, _bank, _generator) -> dict:
        return consistency(vae, model, decoder, report_batch, n, seed=config.seed)

    return Stage(denoiser, adapters, step, extra_views=config.num_targets, export=export_distilled, report=report,
                 init_weights=lambda folder: 0)


__all__ = ["denoiser_stage", "distill_stage", "consistency", "add_lora", "export_distilled", "LORA_TARGETS"]
