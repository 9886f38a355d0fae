"""Cameras: intrinsics, orbit poses and the one place where OpenCV and OpenGL axes meet.

Inside the code every camera is OpenCV-style (x right, y down, z forward) and given as a
world-to-camera 4×4 ``viewmat`` plus a 3×3 pixel intrinsics matrix ``K`` — exactly what
``gsplat.rasterization`` takes. Pixel centres sit at +0.5: pixel (i, j) covers [i, i+1) × [j, j+1).

On disk (``transforms.json`` of instant-ngp / nerfstudio) cameras are camera-to-world with OpenGL
axes (x right, y up, z backward). :func:`opengl_c2w_to_viewmat` and :func:`viewmat_to_opengl_c2w`
are the only conversions between the two; everything else calls them.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from . import framing
from .atomic import atomic_write
from .errors import SettingsError, SplatgenError

# Flipping the camera's y and z axes turns OpenGL camera axes into OpenCV ones (and back).
_GL_CV_FLIP = torch.diag(torch.tensor([1.0, -1.0, -1.0, 1.0], dtype=torch.float64))


def camera_coordinate(points: np.ndarray, viewmat_row) -> np.ndarray:
    """One camera-space coordinate of world points: ``points (N, 3) · row[:3] + row[3]``, float32
    ``(N,)``, for a row of a world-to-camera ``viewmat`` (row 2: the depth z).

    Elementwise on purpose, for the per-frame paths of the OpenGL viewers: ``points @ R.T`` goes to
    BLAS, whose worker threads keep spinning after the call, and on a 2-core machine they take the
    cores from llvmpipe's rasterizer threads (benchmarks/README.md, "Per-frame CPU work without
    BLAS").
    """
    r = np.asarray(viewmat_row, np.float32)
    return points[:, 0] * r[0] + points[:, 1] * r[1] + points[:, 2] * r[2] + r[3]


def finite(value, what: str, *, low: float | None = None, high: float | None = None,
           error: type[SplatgenError] = SettingsError) -> float:
    """``value`` as a float, checked: a finite number (in ``(low, high)``, exclusive, when given);
    else ``error`` naming ``what``. Every camera quantity from a user (orbit angles and distances,
    fields of view, a camera file's focal lengths and sizes) passes through here."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise error(f"{what} must be a number, got {value!r}") from None
    if not math.isfinite(x):
        raise error(f"{what} must be a finite number, got {value!r}")
    if (low is not None and x <= low) or (high is not None and x >= high):
        bounds = f"above {low:g}" if high is None else f"between {low:g} and {high:g} (exclusive)"
        raise error(f"{what} must be {bounds}, got {value!r}")
    return x


def intrinsics_from_fov(fov_deg: float, width: int, height: int, *, fov_axis: str = "x") -> torch.Tensor:
    """Pinhole intrinsics ``(3, 3)`` for a full field of view in degrees along ``fov_axis``.

    Square pixels; the principal point is the image centre (W/2, H/2) in +0.5-centred pixel coordinates.
    """
    fov_deg = finite(fov_deg, "the field of view (degrees)", low=0, high=180)
    width, height = (int(finite(v, "the image size", low=0)) for v in (width, height))
    extent = width if fov_axis == "x" else height
    f = 0.5 * extent / math.tan(math.radians(fov_deg) / 2.0)
    return torch.tensor([[f, 0.0, width / 2.0], [0.0, f, height / 2.0], [0.0, 0.0, 1.0]])


def fit_intrinsics(fov_deg: float, width: int, height: int) -> torch.Tensor:
    """Pinhole intrinsics ``(3, 3)`` whose field of view ``fov_deg`` (degrees) spans the *shorter*
    side of a ``width``×``height`` image, so an object framed for ``fov_deg`` stays whole in any
    aspect (the viewport's, the turntables' and the orbit stills' camera)."""
    return intrinsics_from_fov(fov_deg, width, height, fov_axis="x" if width <= height else "y")


def canonical_intrinsics(size: int = framing.IMAGE_SIZE) -> torch.Tensor:
    """Intrinsics ``(3, 3)`` of the canonical square camera at ``size``×``size`` pixels."""
    return intrinsics_from_fov(framing.FOV_DEG, size, size)


def scale_intrinsics(K: torch.Tensor, sx: float, sy: float | None = None) -> torch.Tensor:
    """Intrinsics for an image resized by ``sx`` (and ``sy``) — focal lengths and centre scale alike."""
    sy = sx if sy is None else sy
    S = torch.diag(torch.tensor([sx, sy, 1.0], dtype=K.dtype, device=K.device))
    return S @ K


def look_at(eye: torch.Tensor, target: torch.Tensor, up: Sequence[float] = (0.0, 1.0, 0.0)) -> torch.Tensor:
    """OpenCV world-to-camera ``(4, 4)`` for a camera at ``eye`` looking at ``target``, ``up`` upward."""
    eye = torch.as_tensor(eye, dtype=torch.float64)
    target = torch.as_tensor(target, dtype=torch.float64)
    up_v = torch.as_tensor(up, dtype=torch.float64)
    z = torch.nn.functional.normalize(target - eye, dim=0)
    x = torch.linalg.cross(z, up_v)
    if x.norm() < 1e-8:  # looking straight along `up`: pick any perpendicular
        x = torch.linalg.cross(z, torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64))
    x = torch.nn.functional.normalize(x, dim=0)
    y = torch.linalg.cross(z, x)  # points "down" in the image
    c2w = torch.eye(4, dtype=torch.float64)
    c2w[:3, 0], c2w[:3, 1], c2w[:3, 2], c2w[:3, 3] = x, y, z, eye
    return torch.linalg.inv(c2w).float()


def orbit_position(azimuth_deg: float, elevation_deg: float, distance: float) -> torch.Tensor:
    """Camera centre on a Y-up sphere: azimuth 0 looks from +Z toward the origin; elevation above XZ."""
    az = math.radians(finite(azimuth_deg, "the azimuth (degrees)"))
    el = math.radians(finite(elevation_deg, "the elevation (degrees)"))
    distance = finite(distance, "the camera distance", low=0)
    return torch.tensor([
        distance * math.cos(el) * math.sin(az),
        distance * math.sin(el),
        distance * math.cos(el) * math.cos(az),
    ], dtype=torch.float64)


def orbit_viewmat(
    azimuth_deg: float,
    elevation_deg: float,
    distance: float = framing.CAMERA_DISTANCE,
    target: Sequence[float] = (0.0, 0.0, 0.0),
) -> torch.Tensor:
    """OpenCV world-to-camera ``(4, 4)`` of an orbit camera around ``target`` (world Y up)."""
    t = torch.as_tensor(target, dtype=torch.float64)
    if not bool(torch.isfinite(t).all()):
        raise SettingsError(f"the orbit's centre must be finite, got {t.tolist()}")
    return look_at(orbit_position(azimuth_deg, elevation_deg, distance) + t, t)


def orbit_viewmats(
    azimuths_deg: Sequence[float],
    elevation_deg: float | Sequence[float],
    distance: float = framing.CAMERA_DISTANCE,
    target: Sequence[float] = (0.0, 0.0, 0.0),
) -> torch.Tensor:
    """Several orbit cameras ``(C, 4, 4)``; ``elevation_deg`` is one value or one per azimuth."""
    if isinstance(elevation_deg, (int, float)):
        elevation_deg = [float(elevation_deg)] * len(azimuths_deg)
    return torch.stack([orbit_viewmat(a, e, distance, target) for a, e in zip(azimuths_deg, elevation_deg)])


# ---------------------------------------------------------------------- OpenCV <-> OpenGL
def opengl_c2w_to_viewmat(c2w_gl: torch.Tensor) -> torch.Tensor:
    """OpenGL camera-to-world ``(..., 4, 4)`` (on-disk convention) → OpenCV world-to-camera."""
    c2w_gl = torch.as_tensor(c2w_gl, dtype=torch.float64)
    c2w_cv = c2w_gl @ _GL_CV_FLIP
    return torch.linalg.inv(c2w_cv).float()


def viewmat_to_opengl_c2w(viewmat: torch.Tensor) -> torch.Tensor:
    """OpenCV world-to-camera ``(..., 4, 4)`` → OpenGL camera-to-world (on-disk convention)."""
    c2w_cv = torch.linalg.inv(torch.as_tensor(viewmat, dtype=torch.float64))
    return (c2w_cv @ _GL_CV_FLIP).float()


def camera_centers(viewmats: torch.Tensor) -> torch.Tensor:
    """Camera centres in world space ``(..., 3)`` from world-to-camera ``(..., 4, 4)``."""
    R = viewmats[..., :3, :3]
    t = viewmats[..., :3, 3:]
    return -(R.transpose(-1, -2) @ t)[..., 0]


def relative_viewmats(viewmats: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Express cameras in the frame of a ``reference`` camera (its camera space becomes world space).

    ``viewmats`` ``(..., 4, 4)`` and ``reference`` ``(4, 4)`` are world-to-camera; the result maps
    points in the reference camera's coordinates into each camera: ``V @ inv(V_ref)``.
    """
    return viewmats @ torch.linalg.inv(reference.double()).to(viewmats.dtype)


# ---------------------------------------------------------------------- transforms.json
class CameraFileError(SplatgenError, ValueError):
    """A camera file could not be read; the message names the file and the problem."""


@dataclass
class CameraSet:
    """Cameras of one ``transforms.json``: OpenCV ``viewmats (C, 4, 4)``, ``Ks (C, 3, 3)``, image size."""

    viewmats: torch.Tensor
    Ks: torch.Tensor
    width: int
    height: int
    file_paths: list[str] = field(default_factory=list)
    extra: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return self.viewmats.shape[0]


def _frame_intrinsics(meta: dict, frame: dict, path: Path, i: int) -> tuple[torch.Tensor, int, int]:
    def get(key: str):
        return frame.get(key, meta.get(key))

    def number(key: str, value, **bounds) -> float:
        return finite(value, f"{path}: frame {i} '{key}'", error=CameraFileError, **bounds)

    w, h = get("w"), get("h")
    if w is None or h is None:
        raise CameraFileError(f"{path}: frame lacks image size 'w'/'h'")
    w, h = number("w", w, low=0), number("h", h, low=0)
    if w != int(w) or h != int(h) or w > 65536 or h > 65536:
        raise CameraFileError(f"{path}: frame {i} image size {w:g}x{h:g} is not a whole number of pixels up to 65536")
    fx, fy = get("fl_x"), get("fl_y")
    if fx is None:
        angle = get("camera_angle_x")
        if angle is None:
            raise CameraFileError(f"{path}: frame lacks 'fl_x' and 'camera_angle_x'")
        fx = 0.5 * w / math.tan(number("camera_angle_x", angle, low=0, high=math.pi) / 2)
    fx = number("fl_x", fx, low=0)
    fy = fx if fy is None else number("fl_y", fy, low=0)
    cx, cy = get("cx"), get("cy")
    cx = w / 2 if cx is None else number("cx", cx)
    cy = h / 2 if cy is None else number("cy", cy)
    K = torch.tensor([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])
    return K, int(w), int(h)


def load_transforms(path: str | os.PathLike) -> CameraSet:
    """Read a ``transforms.json`` (instant-ngp / nerfstudio) into OpenCV cameras.

    ``path`` may be the file or the folder holding it. Per-frame intrinsics override global ones.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "transforms.json"
    try:
        meta = json.loads(path.read_text())
    except FileNotFoundError:
        raise CameraFileError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CameraFileError(f"{path}: not a readable JSON file ({exc})") from None
    frames = meta.get("frames") if isinstance(meta, dict) else None
    if not frames or not isinstance(frames, list):
        raise CameraFileError(f"{path}: no 'frames' list in the file")
    viewmats, Ks, sizes = [], [], []
    for i, frame in enumerate(frames):
        if not isinstance(frame, dict):
            raise CameraFileError(f"{path}: frame {i} is not a JSON object")
        try:
            c2w = torch.tensor(frame["transform_matrix"], dtype=torch.float64)
        except (KeyError, TypeError, ValueError):
            raise CameraFileError(f"{path}: frame {i} has no valid 'transform_matrix'") from None
        if c2w.shape != (4, 4) or not torch.isfinite(c2w).all():
            raise CameraFileError(f"{path}: frame {i} 'transform_matrix' is not a finite 4x4 matrix")
        if abs(float(torch.linalg.det(c2w[:3, :3]))) < 1e-9 or c2w[3].tolist() != [0.0, 0.0, 0.0, 1.0]:
            raise CameraFileError(f"{path}: frame {i} 'transform_matrix' is not a camera pose (a rigid 4x4 "
                                  "with last row 0 0 0 1)")
        K, w, h = _frame_intrinsics(meta, frame, path, i)
        viewmats.append(opengl_c2w_to_viewmat(c2w))
        Ks.append(K)
        sizes.append((w, h))
    w, h = sizes[0]
    extra = {k: v for k, v in meta.items() if k != "frames"}
    return CameraSet(torch.stack(viewmats), torch.stack(Ks), w, h,
                     [str(f.get("file_path", "")) for f in frames], extra)


def transforms_dict(
    viewmats: torch.Tensor,
    K: torch.Tensor,
    width: int,
    height: int,
    file_paths: Sequence[str] | None = None,
    **extra,
) -> dict:
    """Cameras (OpenCV ``viewmats (C, 4, 4)``, shared ``K (3, 3)``) → a ``transforms.json`` dict."""
    K = torch.as_tensor(K, dtype=torch.float64)
    frames = []
    for i, vm in enumerate(viewmats):
        c2w = viewmat_to_opengl_c2w(vm).double()
        frame = {"transform_matrix": [[round(float(v), 9) for v in row] for row in c2w]}
        if file_paths is not None:
            frame = {"file_path": file_paths[i], **frame}
        frames.append(frame)
    out = {
        "camera_model": "OPENCV",
        "fl_x": float(K[0, 0]), "fl_y": float(K[1, 1]),
        "cx": float(K[0, 2]), "cy": float(K[1, 2]),
        "w": int(width), "h": int(height),
        "camera_angle_x": 2 * math.atan(0.5 * width / float(K[0, 0])),
    }
    out.update(extra)
    out["frames"] = frames
    return out


def save_transforms(path: str | os.PathLike, *args, **kwargs) -> None:
    """Write :func:`transforms_dict` to ``path`` (atomically)."""
    atomic_write(path, json.dumps(transforms_dict(*args, **kwargs), indent=2).encode())


def framing_viewmat(means: torch.Tensor, fov_deg: float = framing.FOV_DEG,
                    azimuth_deg: float = 30.0, elevation_deg: float = 20.0) -> torch.Tensor:
    """An orbit camera ``(4, 4)`` that frames a point cloud ``(N, 3)``: it sees the whole bounding sphere."""
    center, distance = framing_orbit(means, fov_deg)
    return orbit_viewmat(azimuth_deg, elevation_deg, distance, center)


def framing_orbit(means: torch.Tensor, fov_deg: float = framing.FOV_DEG) -> tuple[list[float], float]:
    """The orbit that frames a point cloud ``(N, 3)`` from any direction: its centre ``[x, y, z]``
    and the camera distance (world units) at which a ``fov_deg`` view holds the whole bounding
    sphere (of the 1st–99th percentile box, so stray outliers do not count), with a 10% margin."""
    pts = means.detach().reshape(-1, 3).double()
    if pts.shape[0] > 20:  # ignore stray outliers
        sample = pts[torch.randperm(pts.shape[0], generator=torch.Generator().manual_seed(0))[:100_000]]
        lo, hi = torch.quantile(sample, 0.01, dim=0), torch.quantile(sample, 0.99, dim=0)
    else:
        lo, hi = pts.min(0).values, pts.max(0).values
    center = (lo + hi) / 2
    radius = max(float((hi - lo).norm() / 2), 1e-3)
    distance = radius / math.sin(math.radians(fov_deg) / 2) * 1.1
    return center.tolist(), distance
