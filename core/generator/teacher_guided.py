"""Seed 000 (A Lesson in Splats): teacher-guided diffusion over Splatter Images, 2D supervision only.

The denoiser (:class:`~splatgen.core.models.splatter_denoiser.SplatterDenoiser`) samples the raw
Splatter-Image channels of the input camera's frame, conditioned on the input image; the frozen
teacher regressor (the shipped deterministic SplatterNet) gives the object the samples start from and
that training noised. Design, each choice and why:

* **Training input = the noised teacher.** ``x_t = √ᾱ_t·norm(teacher(image)) + √(1-ᾱ_t)·ε`` at a
  uniform random t: the only 3D the run ever sees is the teacher's, and the target is 2D (renders
  against the object's views, :mod:`splatgen.core.training.teacher_guided`), so no 3D ground truth.
* **x0-prediction** (``prediction_type="sample"``): the loss is on renders of the clean prediction, so
  the network must output clean Gaussians; ε or v would have to be converted with 1/√ᾱ_t, which blows
  up at large t. Preconditioned ``x̂_0 = √ᾱ_t·x_t + √(1-ᾱ_t)·F`` (EDM, σ_data = 1): identity plus a
  correction at small t, free generation at large t.
* **Schedule**: cosine (``squaredcos_cap_v2``), 1000 training steps, DDIM (or DPM-Solver++) with
  trailing spacing and 4 steps by default: each step is a UNet pass at 128², so few steps keep one
  sample near the CPU budget, and x0-prediction stays usable at few steps (the last one is the clean prediction).
* **Inference from noise or from the noised teacher.** ``strength`` 1 starts from pure noise (the
  widest spread of hidden sides); below 1 the teacher's object is noised to the first timestep that
  runs (SDEdit, like training's input): the smaller the strength, the closer the sample stays to the
  teacher, on the input view first (the input-view agreement knob).
* **Classifier-free guidance** by dropping the image condition in training (``--cond-dropout``; the
  image zeroed, a keep plane 0); ``guidance`` w mixes ``x̂_0 = u + w·(c - u)`` (linear in the
  prediction, so the same as guiding ε). Default 1 (none): the noised teacher already carries the image.
* **Resampling the occluded part** draws a new seed and pins the input view by refining the fresh
  Splatter Image against the original's input-view render (:func:`~.resample.pin_input_view`, the
  same reconstruction guidance as the latent model's, here directly on the normalised channels);
  a splat mask or brush weights merge the two samples slot by slot (they share the pixel grid).
* **Model folder** reuses the teacher by path (``"teacher": "../regressor"``, checked by sha256), so
  the shipped set holds one copy of the regressor.

Model folder: ``{"kind": "teacher-guided", "components": {"denoiser": "denoiser", "teacher": "../regressor"},
"defaults": {"steps": 4, "strength": 1.0, ...}}``.
"""

from __future__ import annotations

import math
import threading
from pathlib import Path

import torch

from ..errors import ModelError, SettingsError
from ..models.splatter_denoiser import SCHEDULERS, SplatterDenoiser
from ..models.splatter_image import raw_to_gaussians
from ..models.splatter_net import SplatterNet
from ..render import choose_backend, render
from .base import (GenerationSettings, Generator, ProgressCallback, Sample, SampleCallback, check_image,
                   check_sampling_settings, input_camera, seed_batches, to_object_frame,
                   with_camera)
from .model_folder import load_component
from .resample import merge_samples, pin_input_view, region_mask
from .sampling import first_step, guided_denoise
from .teacher import weights_sha256

__all__ = ["TeacherGuidedGenerator", "sample_splatter", "load_guided_teacher"]


@torch.no_grad()
def sample_splatter(denoiser: SplatterDenoiser, image: torch.Tensor, noise: torch.Tensor, *, steps: int,
                    strength: float = 1.0, start: torch.Tensor | None = None, guidance: float = 1.0,
                    scheduler: str | None = None, progress: ProgressCallback | None = None,
                    cancel: threading.Event | None = None) -> torch.Tensor:
    """Raw Splatter Images ``(B, 15·M, S, S)`` for input views ``image`` ``(B, 4, S, S)``.

    ``noise`` ``(B, 15·M, S, S)``; ``strength`` < 1 needs ``start`` (the teacher's raw channels, same
    shape), noised to the first timestep that runs (:func:`~.sampling.first_step`)."""
    sched = denoiser.make_scheduler(scheduler)
    sched.set_timesteps(int(steps), device=noise.device)
    begin = first_step(int(steps), float(strength))
    if hasattr(sched, "set_begin_index"):
        sched.set_begin_index(begin)
    timesteps = [int(t) for t in sched.timesteps[begin:]]
    b = noise.shape[0]
    if begin:
        if start is None:
            raise ValueError("sampling at strength < 1 starts from the teacher's object: pass start=")
        x = denoiser.add_noise(denoiser.normalise(start.float()), noise.float(),
                               torch.full((b,), timesteps[0], device=noise.device, dtype=torch.long))
    else:
        x = noise.float() * sched.init_noise_sigma
    guided = guidance != 1.0
    cond = denoiser.condition(image.float())
    if guided:
        cond = torch.cat([denoiser.condition(image.float(), torch.zeros(b, device=image.device)), cond])
    x = guided_denoise(lambda inp, t: denoiser(inp, t, cond), sched, x, timesteps, guidance, progress=progress,
                       cancel=cancel)
    return denoiser.denormalise(x)


def load_guided_teacher(path: Path, parts: dict, denoiser: SplatterDenoiser) -> SplatterNet:
    """The teacher regressor named by ``parts["teacher"]`` (relative to the model folder ``path``): a
    regressor of the denoiser's image size and Gaussians per pixel, with the weights it was trained with."""
    if "teacher" not in parts:
        raise ModelError(f"{path}: a teacher-guided model needs its teacher regressor: the manifest names no "
                         "'teacher' component")
    folder = (path / parts["teacher"]).resolve()
    if not folder.is_dir():
        raise ModelError(f"{path}: the denoiser needs its teacher regressor at {folder} (components.teacher); "
                         "keep the regressor folder beside this one")
    teacher = load_component(SplatterNet, folder, "teacher regressor")
    c = denoiser.config
    if teacher.config.variational or (teacher.config.image_size, teacher.config.gaussians_per_pixel) != \
            (c.image_size, c.gaussians_per_pixel):
        raise ModelError(f"{folder}: not a regressor of {c.image_size}² images with {c.gaussians_per_pixel} "
                         "Gaussians per pixel, which the denoiser's teacher must be")
    if c.teacher_sha256 and weights_sha256(folder) != c.teacher_sha256:
        raise ModelError(f"{folder}: this regressor is not the one the denoiser was trained with (weights differ "
                         f"from sha256 {c.teacher_sha256[:12]}…); ship the two together")
    return teacher


class TeacherGuidedGenerator(Generator):
    """Seed 000: Splatter Images sampled around the teacher regressor's, conditioned on the image."""

    kind = "teacher-guided"
    stochastic = True
    sample_bytes_estimate = 48 << 20  # a full-resolution Splatter Image a sample
    batch_ceiling = {"cuda": 64, "cpu": 4}

    def __init__(self, denoiser: SplatterDenoiser, teacher: SplatterNet, name: str = "teacher-guided",
                 device: torch.device = torch.device("cpu"), defaults: dict | None = None):
        self.name, self.device = name, device
        if teacher.config.variational or teacher.config.gaussians_per_pixel != denoiser.config.gaussians_per_pixel:
            raise SettingsError("the teacher must be a regressor with the denoiser's Gaussians per pixel")
        self.denoiser = denoiser.to(device).eval()
        self.teacher = teacher.to(device).eval()
        c = denoiser.config
        d = dict(guidance=c.default_guidance, skip_weight=1.0, steps=c.default_steps, scheduler=c.default_scheduler,
                 strength=c.default_strength)
        d.update(defaults or {})
        self.defaults = GenerationSettings(**d)

    @classmethod
    def from_folder(cls, path, manifest, device):
        parts = manifest.get("components") or {}
        denoiser = load_component(SplatterDenoiser, path / parts.get("denoiser", "denoiser"), "teacher-guided denoiser")
        teacher = load_guided_teacher(path, parts, denoiser)
        return cls(denoiser, teacher, name=str(manifest.get("name") or path.name), device=device,
                   defaults=manifest.get("defaults"))

    @property
    def starts_from_teacher(self) -> bool:
        return True

    def validate(self, s: GenerationSettings) -> GenerationSettings:
        s = self.resolve(s)
        check_sampling_settings(s, SCHEDULERS)  # the skip weight is accepted and unused: no skips
        if not (math.isfinite(s.strength) and 0.0 < s.strength <= 1.0):
            raise SettingsError(f"strength must be above 0 and at most 1, got {s.strength}")
        return s

    def noise(self, seed: int) -> torch.Tensor:
        """Starting noise ``(1, 15·M, S, S)`` of ``seed``, drawn on the CPU (the same sample on every device)."""
        c = self.denoiser.config
        g = torch.Generator().manual_seed(int(seed))
        return torch.randn((1, self.denoiser.num_channels, c.image_size, c.image_size), generator=g).to(self.device)

    @torch.no_grad()
    def generate(self, image, settings=GenerationSettings(), *, progress: ProgressCallback | None = None,
                 cancel: threading.Event | None = None, on_sample: SampleCallback | None = None) -> list[Sample]:
        s, camera = with_camera(self.validate(settings), image)
        image = check_image(image, self.denoiser.config.image_size).to(self.device).float()[None]
        start = self.teacher(image).raw if s.strength < 1.0 else None
        batches = seed_batches(s.seed, s.num_samples, self.max_batch, first_alone=on_sample is not None)
        run = int(s.steps) - first_step(int(s.steps), float(s.strength))
        samples: list[Sample] = []
        for k, batch in enumerate(batches):
            def batch_progress(done: int, _total: int, k=k) -> None:
                if progress is not None:
                    progress(k * run + done, run * len(batches))

            b = len(batch)
            with self.measure_batch(b):
                raw = sample_splatter(self.denoiser, image.expand(b, -1, -1, -1),
                                      torch.cat([self.noise(x) for x in batch]), steps=int(s.steps),
                                      strength=float(s.strength),
                                      start=None if start is None else start.expand(b, -1, -1, -1),
                                      guidance=float(s.guidance), scheduler=s.scheduler, progress=batch_progress,
                                      cancel=cancel)
            gaussians = raw_to_gaussians(raw, self.denoiser.config.gaussians_per_pixel)
            for sample in self.make_samples(gaussians, batch, s, camera=camera, photo=image[0]):
                samples.append(sample)
                if on_sample is not None:
                    on_sample(sample, len(samples) - 1)
        return samples

    def resample(self, image, sample: Sample, region="occluded", seed: int = 1, *, progress=None,
                 cancel=None) -> Sample:
        """Redraw what the input view does not pin down (``region="occluded"``: a fresh draw with ``seed``,
        its Splatter Image refined until it renders the input view like ``sample`` did), or the splats of
        a mask / weights ``(N,)`` slot by slot; see :mod:`splatgen.core.generator.resample`."""
        s = self.validate(GenerationSettings(**{**sample.settings.as_dict(), "seed": int(seed), "num_samples": 1}))
        s, camera = with_camera(s, image)
        camera = sample.info.get("camera", camera)
        original = sample.gaussians.to(self.device)
        if not isinstance(region, str):
            redraw = region_mask(original, region)
        elif region != "occluded":
            raise SettingsError(f"region must be 'occluded' or a mask over splats, got {region!r}")
        image = check_image(image, self.denoiser.config.image_size).to(self.device).float()[None]
        start = self.teacher(image).raw if s.strength < 1.0 else None
        raw = sample_splatter(self.denoiser, image, self.noise(seed), steps=int(s.steps), strength=float(s.strength),
                              start=start, guidance=float(s.guidance), scheduler=s.scheduler, progress=progress,
                              cancel=cancel)
        m = self.denoiser.config.gaussians_per_pixel
        info = {**sample.info, "resampled_from_seed": sample.seed}
        if isinstance(region, str):
            viewmat, K = input_camera(self.device, s.elevation)
            backend = choose_backend(self.device, differentiable=True)
            with torch.no_grad():
                target = render(original, viewmat[None], K, sample.image_size, sample.image_size, backend=backend).rgb[0]

            def decode(x):  # the normalised Splatter Image is the "latent" the input view is pinned through
                return to_object_frame(raw_to_gaussians(self.denoiser.denormalise(x), m)[0], s.elevation)

            x, fit = pin_input_view(decode, self.denoiser.normalise(raw), target, viewmat, K, sample.image_size)
            with torch.no_grad():
                merged = decode(x)
            info.update(region="occluded", pin_iterations=fit["iterations"], input_view_psnr=round(fit["input_psnr"], 2))
        else:
            merged = merge_samples(original, self.make_sample(raw_to_gaussians(raw, m)[0], int(seed), s,
                                                              camera=camera, photo=image[0]).gaussians,
                                   redraw)
            info.update(region="mask", redrawn_splats=int((redraw > 0).sum()))
        return Sample(gaussians=merged, input_viewmat=sample.input_viewmat, K=sample.K, seed=int(seed), settings=s,
                      model=self.name, image_size=sample.image_size, info=info)
