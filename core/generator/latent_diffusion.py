"""Seed 001: latent diffusion over Splatter Images, conditioned on the input image.

The VAR's image encoder gives skip features and the denoiser's condition (with the teacher
regressor's features appended, for a denoiser trained with them); the denoiser samples a latent with
classifier-free guidance (:mod:`.sampling`); the VAR's reconstructor decodes latent +
``skip_weight``·skips into a Splatter Image, i.e. Gaussians in the input camera's frame. With a
teacher, sampling may start from the teacher's object as a VAR latent instead of pure noise
(``strength`` < 1, SDEdit; see :func:`~splatgen.core.generator.teacher.teacher_latent`): the samples
keep the regressor's well-inferred shape and vary around it.

Model folder: ``{"kind": "latent-diffusion", "components": {"var": "var", "denoiser": "denoiser",
"teacher": "../regressor"}, "defaults": {...}}`` (``teacher`` only for a denoiser trained with one).
"""

from __future__ import annotations

import math
import threading

import torch

from ..errors import ModelError, SettingsError
from ..gaussians import Gaussians
from ..models.denoiser import SCHEDULERS, LatentDenoiser
from ..models.splatter_net import SplatterNet
from ..render import choose_backend, render
from .base import (GenerationSettings, Generator, ProgressCallback, Sample, SampleCallback,
                   check_image, check_sampling_settings, input_camera, seed_batches, to_object_frame,
                   with_camera)
from .model_folder import load_component
from .resample import merge_samples, pin_input_view, region_mask
from .sampling import first_step, sample_latents
from .step_graphs import StepGraphCache
from .teacher import denoiser_condition, load_teacher, teacher_latent

__all__ = ["LatentDiffusionGenerator"]


class LatentDiffusionGenerator(Generator):
    """Seed 001: latent diffusion over the VAR's Splatter-Image latents, conditioned on the input image."""

    kind = "latent-diffusion"
    stochastic = True
    # Measured on the 2-core CPU: 264 ms a sample in batches of 8, 201 ms in batches of 32, ~21 MiB each.
    sample_bytes_estimate = 24 << 20
    batch_ceiling = {"cuda": 256, "cpu": 32}

    def __init__(self, var: SplatterNet, denoiser: LatentDenoiser, name: str = "diffusion",
                 device: torch.device = torch.device("cpu"), defaults: dict | None = None,
                 teacher: SplatterNet | None = None):
        self.name, self.device = name, device
        if not var.config.variational:
            raise SettingsError("the latent diffusion generator needs a VAR (variational SplatterNet)")
        if denoiser.config.teacher_channels and teacher is None:
            raise SettingsError("the denoiser was trained with a teacher regressor's features: pass teacher=")
        if teacher is not None and not denoiser.config.teacher_channels:
            raise SettingsError("this denoiser takes no teacher features; leave teacher=None")
        self.var = var.to(device).eval()
        self.denoiser = denoiser.to(device).eval()
        self.teacher = teacher.to(device).eval() if teacher is not None else None
        d = dict(guidance=denoiser.config.default_guidance, skip_weight=var.config.default_skip_weight,
                 steps=denoiser.config.default_steps, scheduler=denoiser.config.default_scheduler, strength=1.0)
        d.update(defaults or {})
        self.defaults = GenerationSettings(**d)
        if self.defaults.strength != 1.0 and self.teacher is None:
            raise SettingsError("a default strength below 1 needs a teacher regressor to start from")
        self.use_cuda_graphs(True)

    @classmethod
    def from_folder(cls, path, manifest, device):
        parts = manifest.get("components") or {}
        var = load_component(SplatterNet, path / parts.get("var", "var"), "VAR")
        denoiser = load_component(LatentDenoiser, path / parts.get("denoiser", "denoiser"), "denoiser")
        if not var.config.variational:
            raise ModelError(f"{path}: the 'var' component is a regressor, not a VAR")
        if (denoiser.config.latent_channels, denoiser.config.latent_size) != var.latent_shape[:2] or \
                denoiser.config.condition_channels != var.config.channels[-1]:
            raise ModelError(f"{path}: denoiser (latent {denoiser.config.latent_channels}×{denoiser.config.latent_size}²,"
                             f" condition {denoiser.config.condition_channels}) does not match the VAR "
                             f"(latent {var.latent_shape}, features {var.config.channels[-1]})")
        teacher = None
        if denoiser.config.teacher_channels:
            teacher = load_teacher(path, parts, denoiser.config.teacher_channels, denoiser.config.teacher_sha256)
        return cls(var, denoiser, name=str(manifest.get("name") or path.name), device=device,
                   defaults=manifest.get("defaults"), teacher=teacher)

    @property
    def starts_from_teacher(self) -> bool:
        return self.teacher is not None

    def use_cuda_graphs(self, enabled: bool = True) -> None:
        """On CUDA, replay the denoising loop as captured per-step CUDA graphs (the default there: a
        50-step sample is otherwise bound by kernel launches). The first sample of each shape
        (batch, steps, guidance, scheduler) captures it; later ones replay. No effect on the CPU."""
        self.graphs = StepGraphCache() if enabled and self.device.type == "cuda" else None

    # ------------------------------------------------------------------ settings
    def validate(self, s: GenerationSettings) -> GenerationSettings:
        s = self.resolve(s)
        check_sampling_settings(s, SCHEDULERS)
        if not (math.isfinite(s.strength) and 0.0 < s.strength <= 1.0):
            raise SettingsError(f"strength must be above 0 and at most 1, got {s.strength}")
        if s.strength < 1.0 and self.teacher is None:
            raise SettingsError("strength below 1 starts from the teacher regressor's object; this model has no "
                                "teacher: use strength 1")
        return s

    # ------------------------------------------------------------------ the pipeline
    @torch.no_grad()
    def encode(self, image: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Prepared image ``(4, S, S)`` → (VAR image features, finest first, for the decoder's skips;
        the denoiser's condition ``(1, C, s, s)``: the VAR's 16×16 features [+ the teacher's])."""
        image = check_image(image, self.var.config.image_size).to(self.device).float()[None]
        features = self.var.encode_image(image)
        latent_var = self.var if self.denoiser.config.teacher_latent else None
        return features, denoiser_condition(features[-1], image, self.teacher, latent_var)

    @torch.no_grad()
    def start_latent(self, image: torch.Tensor, strength: float, condition: torch.Tensor | None = None
                     ) -> torch.Tensor | None:
        """Where sampling at ``strength`` starts: the teacher's object as a VAR latent ``(1, C, s, s)``
        for ``strength`` < 1 (see :func:`~splatgen.core.generator.teacher.teacher_latent`), else None.
        A denoiser with ``teacher_latent`` already has it at the end of ``condition`` (from :meth:`encode`)."""
        if strength >= 1.0:
            return None
        if condition is not None and self.denoiser.config.teacher_latent:
            return condition[:, -self.denoiser.config.latent_channels:]
        image = check_image(image, self.var.config.image_size).to(self.device).float()[None]
        return teacher_latent(self.var, self.teacher, image)

    def noise(self, seed: int) -> torch.Tensor:
        """The starting noise ``(1, C, s, s)`` of seed ``seed``: drawn on the CPU, so a seed gives the
        same sample on every device."""
        g = torch.Generator().manual_seed(int(seed))
        return torch.randn((1, *self.var.latent_shape), generator=g).to(self.device)

    @torch.no_grad()
    def decode(self, features: list[torch.Tensor], latents: torch.Tensor, skip_weight: float) -> Gaussians:
        """Latents ``(B, C, s, s)`` → Gaussians ``(B, N)`` in the input camera's frame."""
        b = latents.shape[0]
        return self.var.decode([f.expand(b, *f.shape[1:]) for f in features], latents, skip_weight).gaussians

    @torch.no_grad()
    def generate(self, image, settings=GenerationSettings(), *, progress: ProgressCallback | None = None,
                 cancel: threading.Event | None = None, on_sample: SampleCallback | None = None) -> list[Sample]:
        """Samples are denoised :attr:`max_batch` at a time (from the device's free memory); with
        ``on_sample`` the first one runs alone, so the caller has something to show after one sample's time."""
        s, camera = with_camera(self.validate(settings), image)
        features, condition = self.encode(image)
        start = self.start_latent(image, float(s.strength), condition)
        batches = seed_batches(s.seed, s.num_samples, self.max_batch, first_alone=on_sample is not None)
        run = int(s.steps) - first_step(int(s.steps), float(s.strength))  # steps that run per batch
        total = run * len(batches)
        samples: list[Sample] = []
        for k, batch in enumerate(batches):
            def batch_progress(done: int, _steps: int, k=k) -> None:
                if progress is not None:
                    progress(k * run + done, total)

            noise = torch.cat([self.noise(seed) for seed in batch])
            cond = condition.expand(len(batch), *condition.shape[1:])
            with self.measure_batch(len(batch)):
                z = sample_latents(self.denoiser, cond, steps=int(s.steps), guidance=float(s.guidance),
                                   scheduler=s.scheduler, noise=noise, progress=batch_progress, cancel=cancel,
                                   graphs=self.graphs, strength=float(s.strength),
                                   start=None if start is None else start.expand(len(batch), *start.shape[1:]))
                gaussians = self.decode(features, z, float(s.skip_weight))
            for sample in self.make_samples(gaussians, batch, s, z, camera=camera, photo=image):
                samples.append(sample)
                if on_sample is not None:
                    on_sample(sample, len(samples) - 1)
        return samples

    def resample(self, image, sample: Sample, region="occluded", seed: int = 1, *, progress=None,
                 cancel=None) -> Sample:
        """Redraw what the input view does not pin down (``region="occluded"``), or the splats of a
        bool mask ``(N,)``, from a fresh draw with ``seed``; see :mod:`splatgen.core.generator.resample`."""
        settings = GenerationSettings(**{**sample.settings.as_dict(), "seed": int(seed), "num_samples": 1})
        s, camera = with_camera(self.validate(settings), image)
        camera = sample.info.get("camera", camera)
        original = sample.gaussians.to(self.device)
        if not isinstance(region, str):
            redraw = region_mask(original, region)
        elif region != "occluded":
            raise SettingsError(f"region must be 'occluded' or a mask over splats, got {region!r}")
        features, condition = self.encode(image)
        z = sample_latents(self.denoiser, condition, steps=int(s.steps), guidance=float(s.guidance),
                           scheduler=s.scheduler, noise=self.noise(seed), progress=progress, cancel=cancel,
                           graphs=self.graphs, strength=float(s.strength),
                           start=self.start_latent(image, float(s.strength), condition))
        viewmat, K = input_camera(self.device, s.elevation)
        info = {**sample.info, "resampled_from_seed": sample.seed}
        if isinstance(region, str):
            with torch.no_grad():
                target = render(original, viewmat[None], K, sample.image_size, sample.image_size, backend=choose_backend(self.device, differentiable=True)).rgb[0]

            def decode(latent):
                return to_object_frame(self.var.decode(features, latent, float(s.skip_weight)).gaussians[0], s.elevation)

            z, fit = pin_input_view(decode, z, target, viewmat, K, sample.image_size)
            with torch.no_grad():
                merged = decode(z)
            info.update(region="occluded", pin_iterations=fit["iterations"], input_view_psnr=round(fit["input_psnr"], 2))
        else:
            fresh = self.make_sample(self.decode(features, z, float(s.skip_weight))[0], int(seed), s, z[0], camera=camera,
                                     photo=image)
            merged = merge_samples(original, fresh.gaussians, redraw)
            info.update(region="mask", redrawn_splats=int(redraw.sum()))
        return Sample(gaussians=merged, input_viewmat=sample.input_viewmat, K=sample.K, seed=int(seed),
                      settings=s, model=self.name, image_size=sample.image_size, latent=z[0].detach(), info=info)
