"""Seed 002 (DD3G): the one-step student as a generator: image + the teacher's noise → Gaussians in one pass.

The student (:class:`~splatgen.core.models.one_step.OneStepNet`) learnt the teacher's deterministic map
noise → object (``splatgen distil collect``, then ``splatgen train one-step``), so a sample's seed
draws the very noise the teacher draws for that seed (``noise_shape`` from a CPU generator) and the
student's object predicts the teacher's: a preview. :meth:`OneStepGenerator.refine` runs the teacher
from the same seed and settings, the slow result the preview stands for. The guidance is an input of
the student, so the guidance setting acts as it does for the teacher; steps, scheduler and strength
belong to the teacher's sampler and are not used here (one pass).

Model folder: ``{"kind": "one-step", "components": {"student": "student", "teacher": "../diffusion"}}``
(``teacher`` optional: without it there is no :meth:`refine`).
"""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path

import torch

from ..errors import ModelError, SettingsError
from ..models.one_step import OneStepNet
from .base import (Cancelled, GenerationSettings, Generator, ProgressCallback, Sample, SampleCallback,
                   check_image, check_sampling_settings, seed_batches, with_camera)
from .model_folder import load_component

__all__ = ["OneStepGenerator"]


class OneStepGenerator(Generator):
    """Seed 002: a one-step student of a diffusion teacher; :meth:`refine` runs the teacher itself."""

    kind = "one-step"
    stochastic = True
    sample_bytes_estimate = 24 << 20  # a full-resolution Splatter Image a sample, as the regressor's
    batch_ceiling = {"cuda": 256, "cpu": 32}

    def __init__(self, student: OneStepNet, name: str = "one-step", device: torch.device = torch.device("cpu"),
                 defaults: dict | None = None, teacher_folder: Path | None = None):
        self.name, self.device = name, device
        self.student = student.to(device).eval()
        self.teacher_folder = teacher_folder
        self._teacher = None
        self._teacher_lock = threading.Lock()
        d = dict(guidance=student.config.default_guidance, skip_weight=1.0, steps=1, scheduler="none", strength=1.0)
        d.update(defaults or {})
        self.defaults = GenerationSettings(**d)

    @classmethod
    def from_folder(cls, path, manifest, device):
        parts = manifest.get("components") or {}
        student = load_component(OneStepNet, path / parts.get("student", "student"), "one-step student")
        teacher = None
        if parts.get("teacher"):
            teacher = (path / parts["teacher"]).resolve()
            if not teacher.is_dir():
                raise ModelError(f"{path}: the student's teacher is not at {teacher} (components.teacher); keep "
                                 "the teacher's folder beside this one, or leave 'teacher' out (no refine)")
        return cls(student, name=str(manifest.get("name") or path.name), device=device,
                   defaults=manifest.get("defaults"), teacher_folder=teacher)

    # ------------------------------------------------------------------ settings
    def validate(self, s: GenerationSettings) -> GenerationSettings:
        s = self.resolve(s)
        # steps, scheduler and strength are the teacher's sampler's: one pass here, whatever they say
        check_sampling_settings(replace(s, steps=1, scheduler="none"), ("none",))
        return s

    def noise(self, seed: int) -> torch.Tensor:
        """The teacher's starting noise for ``seed``, ``(1, noise_channels, s, s)``: drawn on the CPU as
        the teacher draws it (``torch.randn(noise_shape)``), so one seed is one object for both."""
        g = torch.Generator().manual_seed(int(seed))
        shape = tuple(self.student.config.noise_shape)
        return torch.randn(shape, generator=g).reshape(1, -1, *shape[-2:]).to(self.device)

    # ------------------------------------------------------------------ the pipeline
    @torch.no_grad()
    def generate(self, image, settings=GenerationSettings(), *, progress: ProgressCallback | None = None,
                 cancel: threading.Event | None = None, on_sample: SampleCallback | None = None) -> list[Sample]:
        s, camera = with_camera(self.validate(settings), image)
        image = check_image(image, self.student.config.image_size).to(self.device).float()[None]
        batches = seed_batches(s.seed, s.num_samples, self.max_batch, first_alone=on_sample is not None)
        samples: list[Sample] = []
        for k, batch in enumerate(batches):
            if cancel is not None and cancel.is_set():
                raise Cancelled()
            b = len(batch)
            with self.measure_batch(b):
                noise = torch.cat([self.noise(x) for x in batch])
                out = self.student(image.expand(b, -1, -1, -1), noise, float(s.guidance))
            if progress is not None:
                progress(k + 1, len(batches))
            for sample in self.make_samples(out.gaussians, batch, s, latents=noise, camera=camera, photo=image[0]):
                samples.append(sample)
                if on_sample is not None:
                    on_sample(sample, len(samples) - 1)
        return samples

    # ------------------------------------------------------------------ the teacher
    @property
    def teacher(self) -> Generator | None:
        """The teacher generator (loaded on first use), or None when the folder names none."""
        with self._teacher_lock:  # two threads asking at once load it once
            if self._teacher is None and self.teacher_folder is not None:
                from .registry import load_generator

                self._teacher = load_generator(self.teacher_folder, self.device)
        return self._teacher

    def resample(self, image, sample: Sample, region="occluded", seed: int = 1, *, progress=None,
                 cancel=None) -> Sample:
        """Not offered: the student has no sampler to redraw part of a sample with; another seed is one
        pass away, and :meth:`refine` gives the teacher's sample, whose model can resample."""
        raise SettingsError(f"{self.name} is a one-step model: it cannot redraw part of a sample; draw another "
                            "seed, or refine with its teacher and resample that")

    def refine(self, image, settings=GenerationSettings(), **kwargs) -> list[Sample]:
        """The teacher's samples for the same image, seeds and guidance: what the previews stand for.
        By default the teacher samples as the student learnt it (``teacher_steps`` of
        ``teacher_scheduler``, from pure noise); ``settings``' steps, scheduler and strength override that."""
        teacher = self.teacher
        if teacher is None:
            raise SettingsError(f"{self.name} names no teacher (components.teacher): there is nothing to refine with")
        s = self.resolve(settings)
        return teacher.generate(image, GenerationSettings(
            seed=s.seed, num_samples=s.num_samples, guidance=s.guidance, elevation=s.elevation, fov=s.fov,
            colour_match=s.colour_match,
            # a sample's own settings say steps 1, scheduler "none" (one pass): those are not the teacher's
            steps=settings.steps if settings.steps not in (None, 1) or settings.scheduler not in (None, "none")
            else int(self.student.config.teacher_steps),
            scheduler=settings.scheduler if settings.scheduler not in (None, "none")
            else self.student.config.teacher_scheduler,
            strength=settings.strength if settings.strength is not None else 1.0), **kwargs)
