"""What every generator shares: the settings of a request, a generated sample, the input camera.

A generator turns one prepared 128² input image (see :mod:`splatgen.core.imageprep`) into samples.
Every sample's Gaussians live in one **object frame**: Y up, the object centred at the origin, the
input camera on the +Z side looking at it from ``framing.CAMERA_DISTANCE`` at the photo's elevation.
The networks themselves predict in the input camera's frame (OpenCV axes); :func:`to_object_frame`
is the one place that moves them out, so the elevation decides which way is up in the result.

The photo's camera is part of the request (:class:`GenerationSettings` ``elevation`` / ``fov``,
degrees): ``None`` ("auto") takes the shipped estimator's reading of the input (or
``framing.INPUT_ELEVATION_DEG``, the middle of the training range, without one) and the canonical
field of view; see :mod:`splatgen.core.photo_camera`. Each sample records the camera it was placed
with in ``sample.info["camera"]`` and says what its generator could not honour in
``sample.info["notices"]`` (every shipped network is trained at the one canonical field of view).
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field, replace
from typing import Callable

import torch

from .. import framing
from ..cameras import canonical_intrinsics, orbit_viewmat
from ..errors import SettingsError
from ..framing import INPUT_ELEVATION_DEG
from ..gaussians import Gaussians
from ..colour_match import match_batch_to_photo
from ..photo_camera import camera_notices, check_elevation, check_fov, resolve_camera
from .batching import BatchSizer

#: The largest request a generator takes: samples per call, denoising steps.
MAX_SAMPLES = 256
MAX_STEPS = 1000

#: ``progress(done, total)`` — called after every denoising step (done = 1 … total).
ProgressCallback = Callable[[int, int], None]
#: ``on_sample(sample, index)`` — called with each finished sample as soon as it exists (index 0 … n-1).
SampleCallback = Callable[["Sample", int], None]


class Cancelled(Exception):
    """Generation was cancelled through its ``cancel`` event (raised before the next step runs)."""


@dataclass(frozen=True)
class GenerationSettings:
    """The knobs of one request. ``None`` fields take the model's defaults (:meth:`Generator.resolve`)."""

    guidance: float | None = None  # classifier-free guidance weight w (1 = no guidance)
    skip_weight: float | None = None  # weight of the input image's skip features, 0 … 1
    steps: int | None = None  # denoising steps
    scheduler: str | None = None  # "ddim" or "dpm"
    seed: int = 0  # sample i uses seed + i
    num_samples: int = 1
    # fraction of the schedule to run: 1 = from pure noise; below 1, from the teacher's object noised
    # to that level (SDEdit; latent diffusion with a teacher regressor only)
    strength: float | None = None
    # the photo's camera, degrees: elevation above the horizon (None = "auto": estimated from the input)
    # and full field of view (None = the canonical framing.FOV_DEG); see splatgen.core.photo_camera
    elevation: float | None = None
    fov: float | None = None
    # fit one affine colour transform of each sample on its render of the input view against the photo
    # and apply it to every splat (splatgen.core.colour_match): the photo's colours on the seen side,
    # the same correction on the hidden one
    colour_match: bool = True

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in ("guidance", "skip_weight", "steps", "scheduler", "seed", "num_samples",
                                              "strength", "elevation", "fov", "colour_match")}


@dataclass
class Sample:
    """One generated object.

    ``gaussians`` ``(N,)`` in the object frame (module docstring), ``N = 128·128·M`` in Splatter-Image
    slot order (pixel-major, M per pixel), nothing pruned, so two samples of one input line up slot
    by slot (resampling relies on it). ``input_viewmat`` ``(4, 4)`` OpenCV world-to-camera and ``K``
    ``(3, 3)`` pixel intrinsics of the input camera at ``image_size``² pixels. ``latent`` is the VAR
    latent ``(C, s, s)`` the sample was decoded from (None for deterministic models).
    """

    gaussians: Gaussians
    input_viewmat: torch.Tensor
    K: torch.Tensor
    seed: int
    settings: GenerationSettings
    model: str
    image_size: int = framing.IMAGE_SIZE
    latent: torch.Tensor | None = None
    info: dict = field(default_factory=dict)

    def to(self, device) -> "Sample":
        return replace(self, gaussians=self.gaussians.to(device), input_viewmat=self.input_viewmat.to(device),
                       K=self.K.to(device), latent=None if self.latent is None else self.latent.to(device))


def input_camera(device=None, elevation_deg: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The input photo's camera in the object frame: (viewmat ``(4, 4)``, K ``(3, 3)``), at
    ``elevation_deg`` (default ``framing.INPUT_ELEVATION_DEG``). K is always the canonical intrinsics:
    the networks unproject with them whatever the photo's field of view."""
    elev = INPUT_ELEVATION_DEG if elevation_deg is None else float(elevation_deg)
    viewmat = orbit_viewmat(0.0, elev, framing.CAMERA_DISTANCE)
    return viewmat.to(device), canonical_intrinsics(framing.IMAGE_SIZE).to(device)


def to_object_frame(gaussians_camera: Gaussians, elevation_deg: float | None = None) -> Gaussians:
    """Gaussians in the input camera's frame (OpenCV) → the object frame (module docstring) of a photo
    taken at ``elevation_deg`` (default ``framing.INPUT_ELEVATION_DEG``)."""
    viewmat, _ = input_camera(gaussians_camera.device, elevation_deg)
    return gaussians_camera.transformed(torch.linalg.inv(viewmat.double()).to(gaussians_camera.dtype))


def with_camera(settings: GenerationSettings, image: torch.Tensor | None) -> tuple[GenerationSettings, dict]:
    """``settings`` with the photo's camera resolved (``elevation`` / ``fov`` in degrees, ``None`` →
    the estimate for ``image`` / the canonical FOV; out-of-range values are a :class:`SettingsError`),
    and the record for ``sample.info["camera"]`` (:func:`splatgen.core.photo_camera.resolve_camera`)."""
    elev, fov, record = resolve_camera(settings.elevation, settings.fov, image)
    return replace(settings, elevation=elev, fov=fov), record


def check_sampling_settings(s: "GenerationSettings", schedulers: tuple[str, ...]) -> None:
    """The ranges every sampling generator enforces on resolved settings (one :class:`SettingsError` each):
    guidance 0–20, skip weight 0–2, steps 1–:data:`MAX_STEPS`, a scheduler of ``schedulers``, samples
    1–:data:`MAX_SAMPLES`, a seed in [0, 2⁶³)."""
    if not (math.isfinite(s.guidance) and 0.0 <= s.guidance <= 20.0):
        raise SettingsError(f"guidance must be between 0 and 20, got {s.guidance}")
    if not (math.isfinite(s.skip_weight) and 0.0 <= s.skip_weight <= 2.0):
        raise SettingsError(f"skip weight must be between 0 and 2, got {s.skip_weight}")
    if not 1 <= int(s.steps) <= MAX_STEPS:
        raise SettingsError(f"steps must be between 1 and {MAX_STEPS}, got {s.steps}")
    if s.scheduler not in schedulers:
        raise SettingsError(f"scheduler must be one of {', '.join(schedulers)}, got {s.scheduler!r}")
    if not 1 <= int(s.num_samples) <= MAX_SAMPLES:
        raise SettingsError(f"number of samples must be between 1 and {MAX_SAMPLES}, got {s.num_samples}")
    if not 0 <= int(s.seed) < 2**63:
        raise SettingsError(f"seed must be a non-negative integer, got {s.seed}")


def check_image(image: torch.Tensor, size: int) -> torch.Tensor:
    """The prepared input ``(4, size, size)`` float, or a :class:`SettingsError` saying what it is instead."""
    image = torch.as_tensor(image)
    if image.shape != (4, size, size) or not image.is_floating_point():
        raise SettingsError(f"the input must be a prepared RGBA image of shape (4, {size}, {size}) in [0, 1], "
                            f"got {image.dtype} {tuple(image.shape)}; prepare photos with prepare_image()")
    return image


def seed_batches(seed: int, num_samples: int, max_batch: int, first_alone: bool = False) -> list[list[int]]:
    """Seeds ``seed … seed + num_samples - 1`` in batches of at most ``max_batch``; with ``first_alone``
    the first seed makes a batch of its own (a caller streaming samples gets one to show early)."""
    seeds = [int(seed) + i for i in range(int(num_samples))]
    head = seeds[:1] if first_alone and len(seeds) > 1 else []
    rest = seeds[len(head):]
    return ([head] if head else []) + [rest[i:i + max_batch] for i in range(0, len(rest), max_batch)]


class Generator:
    """Interface of every generator (the latent diffusion model, the deterministic regressor, …).

    Attributes: ``name`` (shown in the GUI), ``kind`` (the model folder manifest's ``kind``, the key of
    :data:`~splatgen.core.generator.registry.GENERATORS`), ``stochastic`` (False: one sample whatever
    the seed), ``defaults`` (a fully resolved :class:`GenerationSettings`), ``device``.

    A subclass implements :meth:`from_folder` and :meth:`generate` (and :meth:`validate`,
    :meth:`resample` where they apply).
    """

    name: str = "generator"
    kind: str = "abstract"
    stochastic: bool = False
    defaults: GenerationSettings = GenerationSettings()
    device: torch.device = torch.device("cpu")
    #: Memory one sample takes while it is generated, bytes (a first guess; on CUDA the first batch
    #: measures it), and the largest batch worth running per device type (see :mod:`.batching`).
    sample_bytes_estimate: int = 32 << 20
    batch_ceiling: dict = {"cuda": MAX_SAMPLES, "cpu": 8}

    @property
    def max_batch(self) -> int:
        """Samples denoised together now: from the device's free memory (:class:`.batching.BatchSizer`)."""
        return self._batch_sizer().size()

    def _batch_sizer(self) -> BatchSizer:
        sizer = self.__dict__.get("_sizer")
        if sizer is None or sizer.device != self.device:
            ceiling = self.batch_ceiling.get(self.device.type, self.batch_ceiling.get("cpu", 1))
            sizer = self.__dict__["_sizer"] = BatchSizer(self.device, self.sample_bytes_estimate, ceiling)
        return sizer

    def measure_batch(self, batch: int):
        """Context manager around one batch of ``batch`` samples (on CUDA the first one sets the bytes per sample)."""
        return self._batch_sizer().measure(batch)

    @classmethod
    def from_folder(cls, path, manifest: dict, device: torch.device) -> "Generator":
        """Build the generator from a model folder ``path`` whose ``splatgen.json`` is ``manifest``
        (see :mod:`.model_folder`); raise :class:`~splatgen.core.errors.ModelError` when it does not fit."""
        raise NotImplementedError

    @property
    def starts_from_teacher(self) -> bool:
        """Whether ``strength`` below 1 is possible: sampling can start from a teacher regressor's object."""
        return False

    #: Whether the generator also makes views around the object at the input camera's elevation.
    orbits: bool = False

    def camera_notices(self, settings: GenerationSettings) -> list[str]:
        """What this generator cannot honour of the input camera of resolved ``settings``, in words
        (:func:`splatgen.core.photo_camera.camera_notices`); empty when it honours all of it."""
        return camera_notices(self.name, float(settings.elevation), float(settings.fov), orbit=self.orbits)

    def resolve(self, settings: GenerationSettings) -> GenerationSettings:
        """Fill ``None`` fields from :attr:`defaults` (the camera's ``None`` stays: it needs the image,
        see :func:`with_camera`)."""
        if settings.elevation is not None and not (isinstance(settings.elevation, str)
                                                   and settings.elevation.strip().lower() == "auto"):
            check_elevation(settings.elevation)
        if settings.fov is not None:
            check_fov(settings.fov)
        d = self.defaults
        return replace(settings, **{k: getattr(d, k) for k in ("guidance", "skip_weight", "steps", "scheduler",
                                                              "strength") if getattr(settings, k) is None})

    def validate(self, settings: GenerationSettings) -> GenerationSettings:
        """Resolve defaults and check ranges (a :class:`SettingsError` names the bad value)."""
        return self.resolve(settings)

    def generate(self, image: torch.Tensor, settings: GenerationSettings = GenerationSettings(), *,
                 progress: ProgressCallback | None = None, cancel: threading.Event | None = None,
                 on_sample: SampleCallback | None = None) -> list[Sample]:
        """``image`` ``(4, S, S)`` in [0, 1] (RGB on the canonical background + alpha) → samples of
        seeds ``seed, seed + 1, …``. ``progress(done, total)`` counts the denoising steps of the whole
        call; ``on_sample(sample, index)`` gets each sample as soon as it is decoded; a set ``cancel``
        raises :class:`Cancelled` before the next step (samples handed on so far stay valid)."""
        raise NotImplementedError

    def resample(self, image: torch.Tensor, sample: Sample, region: str | torch.Tensor = "occluded", seed: int = 1,
                 *, progress: ProgressCallback | None = None, cancel: threading.Event | None = None) -> Sample:
        """Redraw part of ``sample`` (see :mod:`.resample`)."""
        raise SettingsError(f"{self.name} is deterministic: there is nothing to resample; "
                            "pick a diffusion model to draw other versions of the hidden side")

    def make_sample(self, camera_gaussians: Gaussians, seed: int, settings: GenerationSettings,
                    latent: torch.Tensor | None = None, camera: dict | None = None,
                    photo: torch.Tensor | None = None) -> Sample:
        """A :class:`Sample` of Gaussians ``(N,)`` predicted in the input camera's frame, placed in the
        object frame for ``settings.elevation`` (resolved by :func:`with_camera`; ``camera`` its record);
        with the prepared ``photo`` ``(4, S, S)`` and ``settings.colour_match``, its colours matched to
        the photo first (:func:`splatgen.core.colour_match.match_to_photo`, recorded in ``info``)."""
        return self.make_samples(camera_gaussians[None], [seed], settings,
                                 None if latent is None else latent[None], camera, photo)[0]

    def make_samples(self, camera_gaussians: Gaussians, seeds, settings: GenerationSettings,
                     latents: torch.Tensor | None = None, camera: dict | None = None,
                     photo: torch.Tensor | None = None) -> list[Sample]:
        """:meth:`make_sample` for a batch ``(B, N)`` of one request's samples (``seeds``, ``latents``
        ``(B, …)``): their colour matching renders the input view of all of them in one call."""
        viewmat, K = input_camera(self.device, settings.elevation)
        g = camera_gaussians.to(dtype=torch.float32)
        records = [None] * len(seeds)
        if photo is not None and settings.colour_match:
            g, records = match_batch_to_photo(g, photo, framing.BACKGROUND)
        notices = self.camera_notices(settings) if settings.elevation is not None and settings.fov is not None else []
        samples = []
        for i, seed in enumerate(seeds):
            info = {"camera": dict(camera or {"elevation_deg": settings.elevation, "fov_deg": settings.fov})}
            if records[i] is not None:
                info["colour_match"] = records[i]
            if notices:
                info["notices"] = list(notices)
            samples.append(Sample(gaussians=to_object_frame(g[i], settings.elevation), input_viewmat=viewmat, K=K,
                                  seed=seed, settings=settings, model=self.name,
                                  latent=None if latents is None else latents[i], info=info))
        return samples
