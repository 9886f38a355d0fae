"""The photo's camera: its elevation and field of view, estimated or set, checked, and drawn.

Every generator predicts the object in the input camera's frame; where that camera stood relative
to the object's up axis decides which way is up in the result (:func:`splatgen.core.generator.base.to_object_frame`).
A photo taken from 45° above but read as if from 15° gives an object tilted by 30°.

**Elevation** (degrees above the horizon, the camera looking at the object's centre): set by the
user, or — the default, ``"auto"`` — estimated by :class:`~splatgen.core.models.elevation_net.ElevationNet`,
a small CNN trained here on the data set's renders, whose cameras are known (``splatgen train
camera``; its error on the test split is in ``benchmarks/``). The estimator only knows the data set's
range, :data:`~splatgen.core.framing.ELEVATION_RANGE_DEG` (−10° … 40°), so its estimate is clamped
to it; a steeper photo must be set by hand. Without a shipped estimator the default is
:data:`~splatgen.core.framing.INPUT_ELEVATION_DEG`. A set elevation must lie in
:data:`ELEVATION_LIMITS_DEG` (short of straight down or up, where "up" in the image is undefined).

**Field of view**: every view in the data set has the one canonical field of view
(:data:`~splatgen.core.framing.FOV_DEG`, 40°), so no network can learn to estimate it from these
renders, and every shipped generator was trained at it (its unprojection uses the canonical
intrinsics). The setting therefore defaults to 40°, is checked (:data:`FOV_LIMITS_DEG`), recorded
with the sample and used by the preview (:func:`draw_ground_grid`); a generator given another value
says in the sample's notices that it assumed 40° (:func:`camera_notices`) rather than ignoring it
silently.

The preview (:func:`draw_ground_grid`) draws, over the prepared 128² input, what the chosen camera
implies: the ground plane under the object (a grid on ``y = −OBJECT_RADIUS``, the bottom of the
normalised object's bounding sphere, ±1 world unit wide), the object's up axis and the horizon when
it is in view, 75 % opaque. With OpenCV's anti-aliased lines (no hand-written rasteriser).
"""

from __future__ import annotations

import copy
import math
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from . import framing
from .errors import ModelError, SettingsError

#: Elevations the user may set, degrees: from well below the object to nearly straight above it.
ELEVATION_LIMITS_DEG = (-60.0, 85.0)
#: Fields of view the user may set, degrees (full angle of the prepared square input).
FOV_LIMITS_DEG = (10.0, 120.0)
#: Name of the shipped estimator's folder under ``assets/models``.
ESTIMATOR_FOLDER = "camera"


def _angle(value, what: str, limits: tuple[float, float]) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise SettingsError(f"the photo's {what} must be a number of degrees, got {value!r}") from None
    if not math.isfinite(v) or not limits[0] <= v <= limits[1]:
        raise SettingsError(f"the photo's {what} must be between {limits[0]:g}° and {limits[1]:g}°, got {value!r}")
    return v


def check_elevation(value) -> float:
    """``value`` as an elevation in degrees, or a :class:`SettingsError` (not a number, NaN, outside
    :data:`ELEVATION_LIMITS_DEG`)."""
    return _angle(value, "elevation", ELEVATION_LIMITS_DEG)


def check_fov(value) -> float:
    """``value`` as a field of view in degrees, or a :class:`SettingsError` (outside :data:`FOV_LIMITS_DEG`)."""
    return _angle(value, "field of view", FOV_LIMITS_DEG)


# ---------------------------------------------------------------------------------------- estimate
@dataclass(frozen=True)
class ElevationEstimate:
    """The estimator's reading of one prepared input: ``elevation_deg`` (clamped to the trained range),
    ``spread_deg`` (its expected absolute error on this image, the Laplace scale), ``raw_deg`` (unclamped)."""

    elevation_deg: float
    spread_deg: float
    raw_deg: float


def estimator_folder() -> Path:
    """The shipped estimator's folder, ``assets/models/camera``."""
    import splatgen.assets

    return Path(next(iter(splatgen.assets.__path__))) / "models" / ESTIMATOR_FOLDER


_lock = threading.Lock()
_cache: dict[tuple[str, str], object] = {}


def load_estimator(folder: str | Path | None = None, device: torch.device | str = "cpu"):
    """The estimator network of ``folder`` (default: the shipped one), loaded once and kept per device
    (float32; strictly through :func:`~splatgen.core.models.weights.load_network`); ``None`` when the
    default folder is not shipped. A given folder that does not load is a :class:`ModelError`."""
    from .models.elevation_net import ElevationNet
    from .models.weights import load_network

    path = Path(folder) if folder is not None else estimator_folder()
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:  # "cuda" and "cuda:0" are one copy
        device = torch.device("cuda", torch.cuda.current_device())
    key = (str(path.resolve()), str(device))
    with _lock:
        if key not in _cache:
            if folder is None and not path.is_dir():
                return None
            cpu_key = (key[0], "cpu")
            if cpu_key not in _cache:
                _cache[cpu_key] = load_network(ElevationNet, path, "camera estimator", error=ModelError)
            if device.type != "cpu":
                _cache[key] = copy.deepcopy(_cache[cpu_key]).to(device)
        return _cache[key]


@torch.no_grad()
def estimate_elevation(image: torch.Tensor, net=None) -> ElevationEstimate | None:
    """The elevation of the camera that took the prepared input ``image`` ``(4, S, S)`` (or a batch
    ``(B, 4, S, S)``: the first is read) with ``net`` (default the shipped estimator); ``None`` without one."""
    x = torch.as_tensor(image).detach().float()
    # on the image's device: a GPU request then costs no copy to the host and no CPU network
    net = net if net is not None else load_estimator(device=x.device)
    if net is None:
        return None
    x = x.to(next(net.parameters()).device)
    x = x[None] if x.dim() == 3 else x[:1]
    mu, log_b = net.read(x)
    raw = float(net.degrees(mu)[0])
    lo, hi = net.config.elevation_range
    return ElevationEstimate(elevation_deg=min(max(raw, lo), hi),
                             spread_deg=float(torch.exp(log_b[0])) * net.degrees_per_unit, raw_deg=raw)


def resolve_camera(elevation, fov, image: torch.Tensor | None) -> tuple[float, float, dict]:
    """The input camera of a request → (elevation °, field of view °, a record for ``sample.info["camera"]``).

    ``elevation`` ``None`` (or ``"auto"``): the estimate for ``image`` (or
    :data:`framing.INPUT_ELEVATION_DEG` without an estimator or an image); else checked. ``fov``
    ``None``: :data:`framing.FOV_DEG`; else checked. The record holds ``elevation_deg``, ``fov_deg``,
    ``elevation_source`` (``"set"``, ``"estimate"`` or ``"default"``) and, for an estimate, its
    ``estimate_spread_deg``."""
    record: dict = {}
    if elevation is None or (isinstance(elevation, str) and elevation.strip().lower() == "auto"):
        est = estimate_elevation(image) if _is_input(image) else None
        if est is None:
            elev, record["elevation_source"] = float(framing.INPUT_ELEVATION_DEG), "default"
        else:
            elev, record["elevation_source"] = est.elevation_deg, "estimate"
            record["estimate_spread_deg"] = round(est.spread_deg, 2)
    else:
        elev, record["elevation_source"] = check_elevation(elevation), "set"
    f = float(framing.FOV_DEG) if fov is None else check_fov(fov)
    return elev, f, {"elevation_deg": round(elev, 3), "fov_deg": round(f, 3), **record}


def _is_input(image) -> bool:
    """Whether ``image`` looks like a prepared input ``(4, S, S)`` float (else the generator's own check
    says what is wrong with it)."""
    return isinstance(image, torch.Tensor) and image.dim() == 3 and image.shape[0] == 4 and image.is_floating_point() \
        and image.shape[1] == image.shape[2] >= 16


def camera_notices(model: str, elevation_deg: float, fov_deg: float, orbit: bool = False) -> list[str]:
    """What a generator trained at the canonical framing cannot honour of the input camera, in words:
    a field of view other than :data:`framing.FOV_DEG` (assumed instead), an elevation outside the
    data set's range (honoured, but the network has seen no such view); with ``orbit`` (a generator
    that generates views around the object at the input's elevation) what that means for its views."""
    notes = []
    if abs(fov_deg - framing.FOV_DEG) > 1e-6:
        notes.append(f"{model} was trained at the canonical {framing.FOV_DEG:g}° field of view and cannot take "
                     f"another: the photo's {fov_deg:g}° is recorded but the object is unprojected at "
                     f"{framing.FOV_DEG:g}°")
    lo, hi = framing.ELEVATION_RANGE_DEG
    if not lo <= elevation_deg <= hi:
        extra = " and of its generated views around it" if orbit else ""
        notes.append(f"the photo's elevation {elevation_deg:g}° is outside the {lo:g}°…{hi:g}° of the training "
                     f"views: the object is placed upright for it, but the shape of its hidden side{extra} "
                     "comes from views the model has not seen")
    return notes


# ---------------------------------------------------------------------------------------- preview
def _project(points: np.ndarray, elevation_deg: float, fov_deg: float, size: int) -> tuple[np.ndarray, np.ndarray]:
    """World points ``(N, 3)`` → (pixels ``(N, 2)``, camera depth ``(N,)``) for the input camera."""
    from .cameras import intrinsics_from_fov, orbit_viewmat

    vm = orbit_viewmat(0.0, elevation_deg, framing.CAMERA_DISTANCE).numpy()
    K = intrinsics_from_fov(fov_deg, size, size).double().numpy()
    cam = points @ vm[:3, :3].T + vm[:3, 3]
    z = cam[:, 2]
    uv = (cam[:, :2] / np.maximum(z, 1e-6)[:, None]) * np.diag(K)[:2] + K[:2, 2]
    return uv, z


def draw_ground_grid(rgb: np.ndarray, elevation_deg: float, fov_deg: float = framing.FOV_DEG,
                     colour=(0, 150, 255), up_colour=(230, 40, 40), horizon_colour=(40, 170, 60)) -> np.ndarray:
    """``rgb`` ``(S, S, 3)`` uint8 (the prepared input) with the chosen camera's ground grid, the
    object's up axis and (when in view) the horizon drawn over it → a new ``(S, S, 3)`` uint8 array.
    ``elevation_deg`` / ``fov_deg`` as set (unchecked values are checked here: :class:`SettingsError`)."""
    import cv2

    elevation_deg, fov_deg = check_elevation(elevation_deg), check_fov(fov_deg)
    base = np.ascontiguousarray(np.asarray(rgb, np.uint8)[..., :3])
    out = base.copy()
    size = out.shape[0]
    shift = 4  # sub-pixel precision of cv2's lines: 1/16 px
    y0 = -framing.OBJECT_RADIUS
    ticks = np.linspace(-1.0, 1.0, 9)
    along = np.linspace(-1.0, 1.0, 41)
    lines = [np.stack([np.full_like(along, t), np.full_like(along, y0), along], 1) for t in ticks]
    lines += [np.stack([along, np.full_like(along, y0), np.full_like(along, t)], 1) for t in ticks]

    def polyline(points: np.ndarray, col, thickness: int = 1) -> None:
        uv, z = _project(points, elevation_deg, fov_deg, size)
        ok = z > framing.NEAR
        run: list[np.ndarray] = []
        for good, p in zip(ok, uv):  # split where the line passes behind the camera
            if good and np.all(np.abs(p) < 1e4):
                run.append(p)
            elif run:
                _draw(run, col, thickness)
                run = []
        if run:
            _draw(run, col, thickness)

    def _draw(run, col, thickness) -> None:
        if len(run) > 1:
            pts = np.round(np.asarray(run) * (1 << shift)).astype(np.int32)[None]
            cv2.polylines(out, pts, False, col, thickness, cv2.LINE_AA, shift)

    for line in lines:
        polyline(line, colour)
    polyline(np.array([[0.0, y0, 0.0], [0.0, framing.OBJECT_RADIUS, 0.0]]), up_colour, 1)
    # the horizon: directions parallel to the ground at infinity, v = cy − f·tan(elevation)
    f = framing.focal_length(size, fov_deg)
    v = size / 2 - f * math.tan(math.radians(elevation_deg))
    if 0 <= v < size:
        yy = int(round(v * (1 << shift)))
        cv2.line(out, (0, yy), (size << shift, yy), horizon_colour, 1, cv2.LINE_AA, shift)
    return cv2.addWeighted(out, 0.75, base, 0.25, 0.0)  # the lines a little see-through: the object stays legible
