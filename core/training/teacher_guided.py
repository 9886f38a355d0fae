"""Train the teacher-guided denoiser (seed 000): ``splatgen train teacher-guided --teacher REGRESSOR``.

Each step: objects with an input view and ``--num-targets`` other views (a :class:`ViewBank` batch);
the frozen teacher regressor's raw Splatter Image of the input view, normalised and noised to a
uniform random timestep t per item (``x_t``); the denoiser predicts the clean Splatter Image from
``x_t``, t and the input image (dropped with probability ``--cond-dropout`` for classifier-free
guidance); its Gaussians are rendered into the input and target views and compared with the images,
:func:`~splatgen.core.training.recon.reconstruction_loss` (MSE + λ_ssim·(1-SSIM) + λ_alpha·L1(alpha)).
No 3D ground truth: the only 3D is the teacher's, and it is only ever the noisy input.

What is noised (``--noisy-source``): ``teacher`` (above) gives the denoiser an x_t that holds nothing
the image does not, so the x̂₀ that minimises the render loss learns to ignore it and the samples
agree (measured: pairwise novel PSNR ~50 dB). ``posterior`` noises instead the frozen VAR's
(``--var``) posterior-mean decoding from the input view and the first ``--num-context`` target views,
in the same Splatter Image layout of the input camera: a clean object that has seen more of the
object than the image shows (on val it renders novel views better than the regressor). x_t then
carries information the condition lacks, at low noise x̂₀ must read it, its target varies with the
context views drawn, and a chain started from pure noise has a hidden side to choose. The renders
stay the only supervision; the VAR is 2D-trained, so no 3D ground truth enters either way. The
teacher still gives the normalisation, the starting weights (``--splat-backbone teacher``) and the
model folder's teacher (inference from the noised teacher at ``--strength`` < 1).

Multi-step supervision (``--chain-prob p``, the abstract's "transitioning from single-step to
multi-step denoising"): in a share p of the steps the input is not the noised teacher but where the
generator's own default sampler (DDIM, ``default_steps``, from pure noise) stands before one of its
later steps, reached with the denoiser's predictions without gradients; that step's prediction is
rendered and trained like any other. Single-step training only ever shows the denoiser noised
*teacher* objects; the sampler feeds it its own, and this is where it learns to refine them.

``--splat-backbone teacher`` starts a new denoiser from the teacher's weights (see
:mod:`splatgen.core.models.splatter_denoiser`): the run begins at the teacher's quality.

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
from ..generator.sampling import guided_denoise
from ..models.splatter_denoiser import SplatterDenoiser
from ..models.splatter_image import CHANNELS_PER_GAUSSIAN, raw_to_gaussians
from ..models.splatter_net import SplatterNet, SplatterOutput
from ..models.weights import load_network
from ..render import choose_backend
from .checkpoint import resumed_run_args, unwrap
from .config import TrainConfig
from .recon import encoder_views, export_model, reconstruction_loss
from .trainer import (bf16_autocast, weights_init, EMA, make_clock, end_run, RunLog, RunningMetrics, after_step, make_optimizer, optimise, resume_or_init,
                      save_checkpoint, setup_run, scheduled_lr, wrap_ddp)
from .viewbank import ViewBank, ViewBatch, loading_rate

#: Batches of teacher outputs a new run measures the normalisation on.
STATS_BATCHES = 4
#: The golden ratio's fractional part: step·GOLDEN mod 1 spreads the chained steps evenly.
GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0


def teacher_folder(config: TrainConfig) -> Path:
    """``--teacher``, or the shipped regressor."""
    if config.teacher:
        return Path(config.teacher)
    from ..generator.model_folder import models_dir

    return models_dir() / "regressor"


class TeacherSource:
    """The clean object that is noised: the frozen teacher's raw Splatter Image of the input view,
    ``(B, 15·M, S, S)``, for a :class:`ViewBatch`."""

    def __init__(self, teacher: SplatterNet):
        self.net = teacher

    @torch.no_grad()
    def __call__(self, batch: ViewBatch) -> torch.Tensor:
        return self.net(batch.input).raw


class PosteriorSource:
    """The clean object that is noised with ``--noisy-source posterior``: the frozen VAR's decoding of
    its posterior mean from the input view and the batch's first ``num_context`` targets (at the VAR's
    default skip weight), raw ``(B, 15·M, S, S)`` in the teacher's layout."""

    def __init__(self, var: SplatterNet, num_context: int):
        self.net, self.num_context = var, num_context

    @torch.no_grad()
    def __call__(self, batch: ViewBatch) -> torch.Tensor:
        features = self.net.encode_image(batch.input)
        mean, _ = self.net.encode_views(**encoder_views(batch, self.num_context))
        return self.net.decode(features, mean, self.net.config.default_skip_weight).raw


def clean_source(config: TrainConfig, teacher: SplatterNet, device):
    """The run's :class:`TeacherSource` or :class:`PosteriorSource` (``--noisy-source``)."""
    if config.noisy_source == "teacher":
        return TeacherSource(teacher)
    if not config.var:
        raise SplatgenError("--noisy-source posterior noises a VAR's posterior: pass --var VAR_FOLDER "
                            "(e.g. assets/models/diffusion/var)")
    if config.num_targets <= config.num_context:
        raise SplatgenError(f"--noisy-source posterior: --num-targets ({config.num_targets}) must exceed "
                            f"--num-context ({config.num_context}), so a rendered view is one the VAR did not see")
    var = load_network(SplatterNet, config.var, "VAR", error=SplatgenError)
    if not var.config.variational:
        raise SplatgenError(f"{config.var}: --var must be a VAR (variational), not a regressor")
    tc, vc = teacher.config, var.config
    if (vc.image_size, vc.gaussians_per_pixel) != (tc.image_size, tc.gaussians_per_pixel):
        raise SplatgenError(f"{config.var}: the VAR makes {vc.gaussians_per_pixel} Gaussians per pixel at "
                            f"{vc.image_size}², the teacher {tc.gaussians_per_pixel} at {tc.image_size}²: "
                            "they must share the Splatter Image layout")
    return PosteriorSource(var.to(device).eval().requires_grad_(False), config.num_context)


def check_source_on_resume(out_dir: Path, config: TrainConfig) -> None:
    """Refuse ``--resume`` with another ``--noisy-source`` (or another ``--var`` for the posterior) than
    the checkpoint's run: the noisy inputs would change their distribution midway through one run."""
    saved = resumed_run_args(out_dir, config.resume)
    if saved is None:
        return
    before = (saved.get("noisy_source", "teacher"), saved.get("var") if saved.get("noisy_source") == "posterior" else None)
    now = (config.noisy_source, config.var if config.noisy_source == "posterior" else None)
    if before[0] != now[0] or (now[0] == "posterior" and Path(str(before[1])).resolve() != Path(str(now[1])).resolve()):
        raise SplatgenError(f"{out_dir}: this run noises the {before[0]}"
                            f"{f' of {before[1]}' if before[1] else ''}; resume it the same way, or start a new "
                            "run folder (--init-from its exported model)")


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
    stats = measure_stats(teacher, bank, config, device)
    if config.splat_backbone == "teacher":  # the regressor's architecture, from its weights
        tc = teacher.config
        model = SplatterDenoiser(image_size=tc.image_size, gaussians_per_pixel=tc.gaussians_per_pixel,
                                 block_out_channels=tuple(tc.channels), attention_head_dim=tc.attention_head_dim,
                                 backbone="teacher", teacher_sha256=sha256, **stats).to(device)
        model.init_from_teacher(teacher)
        return model
    channels = list(config.splat_channels)
    return SplatterDenoiser(image_size=teacher.config.image_size,
                            gaussians_per_pixel=teacher.config.gaussians_per_pixel,
                            block_out_channels=tuple(channels), norm_num_groups=min(32, math.gcd(*channels)),
                            attention_head_dim=min(32, channels[-1]),
                            teacher_sha256=sha256, **stats).to(device)


@torch.no_grad()
def chain_input(forward, denoiser: SplatterDenoiser, cond: torch.Tensor, noise: torch.Tensor, stop: int,
                steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Where the default sampler stands before its step ``stop`` (of ``steps``, DDIM from pure noise,
    as the generator runs at strength 1), reached with the denoiser's own predictions and no gradients.
    Returns (x, t): ``x`` ``(B, 15·M, S, S)`` normalised, ``t`` ``(B,)`` that step's timestep."""
    sched = denoiser.make_scheduler("ddim")
    sched.set_timesteps(int(steps), device=noise.device)
    timesteps = [int(t) for t in sched.timesteps]
    x = guided_denoise(lambda inp, t: forward(inp, t, cond), sched, noise * sched.init_noise_sigma,
                       timesteps[:stop], 1.0)
    return x, torch.full((noise.shape[0],), timesteps[stop], device=noise.device, dtype=torch.long)


def training_loss(forward, denoiser: SplatterDenoiser, source, batch: ViewBatch, config: TrainConfig,
                  generator: torch.Generator, backend: str, amp=None, timesteps: torch.Tensor | None = None,
                  step: int = 0) -> tuple[torch.Tensor, dict]:
    """One step's loss: the noised clean object → the denoiser's clean Splatter Image → renders vs the views.
    ``forward``: the (compiled / DDP) denoiser to call; ``source``: batch → the raw clean object to noise
    (:class:`TeacherSource` / :class:`PosteriorSource`); ``timesteps`` ``(B,)`` fixes t (tests), else uniform;
    ``step``: the global step, which decides whether this one trains through the chain (``--chain-prob``).
    Returns (loss, metrics as 0-d device tensors)."""
    b, dev = batch.input.shape[0], batch.input.device
    amp = amp if amp is not None else torch.autocast(dev.type, enabled=False)
    t = torch.randint(0, denoiser.config.num_train_timesteps, (b,), generator=generator, device=dev)
    t = t if timesteps is None else timesteps.to(t)
    noise = torch.randn((b, denoiser.num_channels, *batch.input.shape[-2:]), generator=generator, device=dev)
    keep = torch.rand(b, generator=generator, device=dev) >= config.cond_dropout
    cond = denoiser.condition(batch.input, keep)
    steps = int(denoiser.config.default_steps)
    # which steps chain: a golden-ratio sequence of the step counter (no host sync on a device draw,
    # and a resumed run chains the same steps); `stop` cycles through the sampler's steps after the first
    chained = steps > 1 and (step * GOLDEN) % 1.0 < config.chain_prob
    if chained and timesteps is None:  # the sampler's own chain from noise up to its step `stop`
        stop = 1 + step % (steps - 1)
        with amp:
            x_t, t = chain_input(forward, denoiser, cond, noise, stop, steps)
        x_t = x_t.float()
    else:  # the noised clean object (its pass only here: a chained step never reads it)
        with torch.no_grad():
            x0 = denoiser.normalise(source(batch).float())
        x_t = denoiser.add_noise(x0, noise, t)
    with amp:
        pred = forward(x_t, t, cond)
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
    check_source_on_resume(out_dir, config)
    tfolder = teacher_folder(config)
    teacher = load_teacher(tfolder, ctx.device)
    source = clean_source(config, teacher, ctx.device)  # a wrong --var fails before the data loads
    t_load = time.perf_counter()
    bank: ViewBank = bank_loader(ctx.device, ctx.rank, ctx.world_size)  # a wrong --data fails before the run folder exists
    load_s = time.perf_counter() - t_load
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
              f"{bank.views_per_object} views ({loading_rate(bank, load_s)}), teacher {tfolder}, noising the "
              f"{config.noisy_source}{f' of {config.var}' if config.noisy_source == 'posterior' else ''}, device {ctx.device} "
              f"x{ctx.world_size}, from step {step}", flush=True)
    amp = bf16_autocast(ctx.device)
    steps_this_run, running = 0, RunningMetrics()

    def checkpoint() -> None:  # the step counter is read when called
        save_checkpoint(out_dir / "checkpoint", model, ema.model, optimizer, step, generator,
                        {"args": config.to_json(), "warmup_start": warmup_start})

    while not clock.done(step, steps_this_run):
        scheduled_lr(optimizer, config.lr, step, warmup_start, config.warmup, clock, config.lr_final)
        batch = bank.sample(config.batch_size, config.num_targets, generator, config.mirror)
        loss, metrics = training_loss(forward, model, source, batch, config, generator, backend, amp, step=step)
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


__all__ = ["train_teacher_guided", "training_loss", "TeacherSource", "PosteriorSource", "clean_source", "write_model_folder", "measure_stats", "load_teacher"]
