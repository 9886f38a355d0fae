"""Seed 003 (GSV3D): multi-view latents → Gaussians, behind the Generator API.

The autoencoder encodes the input image to a latent; the multi-view denoiser samples the latents of
N orbit views around the object jointly (classifier-free guidance on the input latent; cameras at
azimuths ``360°·k/N`` from the input camera, at its elevation, view 0 being the input view); the
Gaussian Splatting Decoder turns those N latents (+ the input latent) into Gaussians in the input
camera's frame. The generated views themselves (the autoencoder's decoding of the N latents) come
with every sample, in ``sample.info["views"]`` ``(N, 4, S, S)`` RGBA in [0, 1], with their cameras in
``sample.info["view_viewmats"]`` ``(N, 4, 4)`` (object frame, OpenCV), for showing beside the splats;
``sample.latent`` holds the N latents ``(N, C, s, s)``. A sample has ``N·s²·M`` Gaussians, view-major
(16,384 at the shipped size: 8 views × 32² × 2), not a 128² Splatter Image: there is no resampling.

Model folder: ``{"kind": "multi-view", "components": {"autoencoder": "autoencoder",
"denoiser": "denoiser", "decoder": "decoder"}, "defaults": {"guidance": 2.0, "steps": 30, ...}}``.
"""

from __future__ import annotations

import threading

import torch

from .. import framing
from ..cameras import orbit_viewmats, relative_viewmats
from ..errors import ModelError, SettingsError
from ..models import mv_autoencoder
from ..models.mv_decoder import MultiViewGSDecoder
from ..models.mv_denoiser import SCHEDULERS, MultiViewDenoiser
from .base import (GenerationSettings, Generator, ProgressCallback, Sample,
                   SampleCallback, check_image, check_sampling_settings, input_camera, seed_batches,
                   with_camera)
from .sampling import guided_denoise
from .model_folder import load_component

__all__ = ["MultiViewGenerator", "orbit_cameras", "sample_views"]


def orbit_cameras(num_views: int, device=None, elevation_deg: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The N generated views' cameras: (in the input camera's frame ``(N, 4, 4)``, in the object frame
    ``(N, 4, 4)``); azimuths ``360°·k/N`` from the input camera at its elevation (``elevation_deg``,
    default ``framing.INPUT_ELEVATION_DEG``), view 0 = the input. The denoiser was trained on the
    data set's relative cameras (elevations −10° … 40°), so any elevation in that range is one it knows."""
    elev = framing.INPUT_ELEVATION_DEG if elevation_deg is None else float(elevation_deg)
    az = [360.0 * k / num_views for k in range(num_views)]
    world = orbit_viewmats(az, elev, framing.CAMERA_DISTANCE).float()
    rel = relative_viewmats(world, input_camera(None, elev)[0].float())
    return rel.to(device), world.to(device)


@torch.no_grad()
def sample_views(denoiser: MultiViewDenoiser, condition: torch.Tensor, viewmats: torch.Tensor, noise: torch.Tensor,
                 *, steps: int, guidance: float, scheduler: str | None = None,
                 progress: ProgressCallback | None = None, cancel: threading.Event | None = None) -> torch.Tensor:
    """Sample N views' latents jointly. ``condition``: the input view's autoencoder latent ``(B, C, s, s)``;
    ``viewmats`` ``(B, N, 4, 4)``; ``noise`` ``(B, N, C, s, s)`` → autoencoder latents ``(B, N, C, s, s)``.
    Guided: ``pred = uncond + guidance·(cond - uncond)`` with a zero condition for ``uncond``."""
    sched = denoiser.make_scheduler(scheduler)
    sched.set_timesteps(int(steps), device=noise.device)
    cond = denoiser.normalise(condition)
    guided = guidance != 1.0
    if guided:
        cond, viewmats = torch.cat([torch.zeros_like(cond), cond]), torch.cat([viewmats, viewmats])
    x = noise * sched.init_noise_sigma
    timesteps = [int(t) for t in sched.timesteps]
    x = guided_denoise(lambda inp, t: denoiser(inp, t, cond, viewmats), sched, x, timesteps, guidance,
                       progress=progress, cancel=cancel)
    return denoiser.denormalise(x)


class MultiViewGenerator(Generator):
    """Seed 003: N orbit views' latents generated jointly, decoded into Gaussians."""

    kind = "multi-view"
    stochastic = True
    orbits = True
    sample_bytes_estimate = 96 << 20  # an object is N views
    batch_ceiling = {"cuda": 64, "cpu": 2}

    def __init__(self, autoencoder, denoiser: MultiViewDenoiser, decoder: MultiViewGSDecoder, name: str = "multi-view",
                 device: torch.device = torch.device("cpu"), defaults: dict | None = None):
        self.name, self.device = name, device
        lat = (autoencoder.config.latent_channels, mv_autoencoder.latent_size(autoencoder))
        for part, what in ((denoiser, "denoiser"), (decoder, "decoder")):
            if (part.config.latent_channels, part.config.latent_size) != lat:
                raise SettingsError(f"the {what} works on {part.config.latent_channels}×{part.config.latent_size}² "
                                    f"latents, the autoencoder makes {lat[0]}×{lat[1]}²")
        self.autoencoder = autoencoder.to(device).eval()
        self.denoiser = denoiser.to(device).eval()
        self.decoder = decoder.to(device).eval()
        self.num_views = int(denoiser.config.num_views)
        d = dict(guidance=denoiser.config.default_guidance, skip_weight=1.0, steps=denoiser.config.default_steps,
                 scheduler=denoiser.config.default_scheduler, strength=1.0)
        d.update(defaults or {})
        self.defaults = GenerationSettings(**d)

    @classmethod
    def from_folder(cls, path, manifest, device):
        parts = manifest.get("components") or {}
        autoencoder = load_component(mv_autoencoder.AutoencoderKL, path / parts.get("autoencoder", "autoencoder"),
                                     "autoencoder")
        denoiser = load_component(MultiViewDenoiser, path / parts.get("denoiser", "denoiser"), "multi-view denoiser")
        decoder = load_component(MultiViewGSDecoder, path / parts.get("decoder", "decoder"), "Gaussian decoder")
        try:
            return cls(autoencoder, denoiser, decoder, name=str(manifest.get("name") or path.name), device=device,
                       defaults=manifest.get("defaults"))
        except SettingsError as exc:
            raise ModelError(f"{path}: {exc}") from None

    def validate(self, s: GenerationSettings) -> GenerationSettings:
        s = self.resolve(s)
        check_sampling_settings(s, SCHEDULERS)  # its skip weight is accepted and unused: no skips
        if s.strength != 1.0:
            raise SettingsError("strength below 1 starts from a teacher's object; the multi-view model has none: "
                                "use strength 1")
        return s

    def noise(self, seed: int) -> torch.Tensor:
        """Starting noise ``(1, N, C, s, s)`` of ``seed``, drawn on the CPU (the same sample on every device)."""
        c, s = self.denoiser.config.latent_channels, self.denoiser.config.latent_size
        g = torch.Generator().manual_seed(int(seed))
        return torch.randn((1, self.num_views, c, s, s), generator=g).to(self.device)

    @torch.no_grad()
    def generate(self, image, settings=GenerationSettings(), *, progress: ProgressCallback | None = None,
                 cancel: threading.Event | None = None, on_sample: SampleCallback | None = None) -> list[Sample]:
        s = self.validate(settings)
        image = check_image(image, self.autoencoder.config.sample_size).to(self.device).float()[None]
        s, camera = with_camera(s, image[0])
        z_in = mv_autoencoder.encode(self.autoencoder, image)  # (1, C, s, s)
        rel, world = orbit_cameras(self.num_views, self.device, s.elevation)
        batches = seed_batches(s.seed, s.num_samples, self.max_batch, first_alone=on_sample is not None)
        steps, samples = int(s.steps), []
        for k, batch in enumerate(batches):
            def batch_progress(done: int, _total: int, k=k) -> None:
                if progress is not None:
                    progress(k * steps + done, steps * len(batches))

            b = len(batch)
            cond, vms = z_in.expand(b, *z_in.shape[1:]), rel.expand(b, *rel.shape)
            with self.measure_batch(b):
                z = sample_views(self.denoiser, cond, vms, torch.cat([self.noise(seed) for seed in batch]),
                                 steps=steps, guidance=float(s.guidance), scheduler=s.scheduler,
                                 progress=batch_progress, cancel=cancel)
                gaussians = self.decoder(z, vms, cond)
                views = mv_autoencoder.decode(self.autoencoder, z).clamp(0, 1)
            for i, sample in enumerate(self.make_samples(gaussians, batch, s, z, camera=camera, photo=image[0])):
                sample.info.update(views=views[i], view_viewmats=world)
                samples.append(sample)
                if on_sample is not None:
                    on_sample(sample, len(samples) - 1)
        return samples

    def resample(self, image, sample, region="occluded", seed: int = 1, *, progress=None, cancel=None):
        raise SettingsError("the multi-view model cannot redraw part of a sample yet; generate another seed instead")
