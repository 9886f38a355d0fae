"""The viewport's camera model: an orbit around a target point, world Y up (no Qt here).

State: ``azimuth`` and ``elevation`` in degrees (azimuth 0 looks from +Z at the target, as the input
camera of every sample does; elevation above the XZ plane, clamped to ±89°), ``distance`` from the
target (world units), ``target`` ``(3,)`` (world units) and the field of view ``fov_deg``, which spans
the *shorter* side of the image so the object stays framed in any window shape.

Gestures map to state changes in screen units: :meth:`orbit` (pixels dragged, scaled by the view's
size: a drag across the whole view turns the object by :data:`ORBIT_DEG_PER_VIEW`), :meth:`pan`
(pixels dragged; the point under the cursor follows it), :meth:`zoom` (wheel steps). :meth:`frame`
fits a point cloud, :meth:`reset` returns to a given camera (the input view). :meth:`viewmat` and
:meth:`intrinsics` give OpenCV cameras (world-to-camera ``(4, 4)``, pixel ``K`` ``(3, 3)``), the
convention of :mod:`splatgen.core.cameras`, which computes them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from splatgen.core import framing
from splatgen.core.cameras import fit_intrinsics, orbit_viewmat

#: Degrees of orbit for a drag across the view's shorter side (rotation per pixel follows the view's
#: size: a drag of a third of the view turns the object 40°, from the input view to well short of
#: top-down).
ORBIT_DEG_PER_VIEW = 120.0
#: The view size :meth:`OrbitCamera.orbit` assumes when it is given none, pixels.
DEFAULT_VIEW_PX = 450
#: Distance factor per wheel step (one notch = 120 eighths of a degree = 1 step).
ZOOM_PER_STEP = 0.85
#: Degrees per arrow-key press.
KEY_ORBIT_DEG = 7.5
MIN_DISTANCE, MAX_DISTANCE = 0.05, 100.0
MAX_ELEVATION = 89.0


@dataclass
class OrbitCamera:
    """Orbit camera state; see the module docstring for units and conventions."""

    azimuth: float = 0.0
    elevation: float = framing.INPUT_ELEVATION_DEG
    distance: float = framing.CAMERA_DISTANCE
    target: np.ndarray = field(default_factory=lambda: np.zeros(3))
    fov_deg: float = framing.FOV_DEG

    def __post_init__(self) -> None:
        self.target = np.asarray(self.target, np.float64).reshape(3).copy()
        self.elevation = _clamp(self.elevation, -MAX_ELEVATION, MAX_ELEVATION)

    # ------------------------------------------------------------------ cameras
    def viewmat(self) -> np.ndarray:
        """OpenCV world-to-camera ``(4, 4)`` float64."""
        return orbit_viewmat(self.azimuth, self.elevation, self.distance, self.target.tolist()).double().numpy()

    def intrinsics(self, width: int, height: int) -> np.ndarray:
        """Pixel intrinsics ``(3, 3)`` float64 for a ``width``×``height`` image; the field of view
        spans the shorter side."""
        return fit_intrinsics(self.fov_deg, int(width), int(height)).double().numpy()

    def world_per_pixel(self, width: int, height: int) -> float:
        """World units per pixel at the target's depth."""
        return 2.0 * self.distance * math.tan(math.radians(self.fov_deg) / 2.0) / max(1, min(width, height))

    def state(self) -> tuple:
        """A hashable snapshot (to tell whether the camera moved)."""
        return (round(self.azimuth, 9), round(self.elevation, 9), round(self.distance, 9),
                *np.round(self.target, 9).tolist(), self.fov_deg)

    def copy(self) -> "OrbitCamera":
        return OrbitCamera(self.azimuth, self.elevation, self.distance, self.target.copy(), self.fov_deg)

    # ------------------------------------------------------------------ gestures
    def orbit(self, dx_px: float, dy_px: float, view_px: float = DEFAULT_VIEW_PX) -> None:
        """Drag by ``(dx, dy)`` pixels (x right, y down) in a view whose shorter side is ``view_px``
        pixels: the object turns with the cursor, :data:`ORBIT_DEG_PER_VIEW` degrees per ``view_px``."""
        deg_per_px = ORBIT_DEG_PER_VIEW / max(1.0, float(view_px))
        self.azimuth = (self.azimuth - dx_px * deg_per_px) % 360.0
        self.elevation = _clamp(self.elevation + dy_px * deg_per_px, -MAX_ELEVATION, MAX_ELEVATION)

    def orbit_degrees(self, d_azimuth: float, d_elevation: float) -> None:
        """Turn the camera by degrees (keyboard)."""
        self.azimuth = (self.azimuth + d_azimuth) % 360.0
        self.elevation = _clamp(self.elevation + d_elevation, -MAX_ELEVATION, MAX_ELEVATION)

    def pan(self, dx_px: float, dy_px: float, width: int, height: int) -> None:
        """Drag by ``(dx, dy)`` pixels: the target moves in the image plane so that points at the
        target's depth follow the cursor."""
        vm = self.viewmat()
        right, down = vm[0, :3], vm[1, :3]
        self.target = self.target - (right * dx_px + down * dy_px) * self.world_per_pixel(width, height)

    def zoom(self, steps: float) -> None:
        """Wheel ``steps`` (positive: closer)."""
        self.distance = _clamp(self.distance * ZOOM_PER_STEP ** steps, MIN_DISTANCE, MAX_DISTANCE)

    # ------------------------------------------------------------------ placing
    def reset(self, viewmat: np.ndarray | None = None, target=(0.0, 0.0, 0.0)) -> None:
        """Go to the camera ``viewmat`` (OpenCV world-to-camera, e.g. a sample's input camera), orbiting
        ``target``; ``None``: the canonical input camera."""
        self.target = np.asarray(target, np.float64).reshape(3).copy()
        if viewmat is None:
            self.azimuth, self.elevation, self.distance = 0.0, framing.INPUT_ELEVATION_DEG, framing.CAMERA_DISTANCE
            return
        vm = np.asarray(viewmat, np.float64).reshape(4, 4)
        centre = -vm[:3, :3].T @ vm[:3, 3]
        offset = centre - self.target
        dist = float(np.linalg.norm(offset))
        if dist < 1e-9:
            return
        self.distance = _clamp(dist, MIN_DISTANCE, MAX_DISTANCE)
        self.elevation = _clamp(math.degrees(math.asin(_clamp(offset[1] / dist, -1.0, 1.0))),
                                -MAX_ELEVATION, MAX_ELEVATION)
        self.azimuth = math.degrees(math.atan2(offset[0], offset[2])) % 360.0

    def frame(self, points: np.ndarray, weights: np.ndarray | None = None, margin: float = 1.1) -> None:
        """Centre on a point cloud ``(N, 3)`` and back off until its bounding sphere fits the view.

        Points with ``weights`` ``(N,)`` below 0.1 (e.g. splat opacities) are ignored, and so is the
        outer 1% on each axis (stray splats), as :func:`splatgen.core.cameras.framing_viewmat` does.
        """
        pts = np.asarray(points, np.float64).reshape(-1, 3)
        if weights is not None:
            keep = np.asarray(weights).reshape(-1) >= 0.1
            if keep.sum() >= 4:
                pts = pts[keep]
        pts = pts[np.isfinite(pts).all(1)]
        if len(pts) == 0:
            return
        if len(pts) > 20:
            lo, hi = np.quantile(pts, 0.01, axis=0), np.quantile(pts, 0.99, axis=0)
        else:
            lo, hi = pts.min(0), pts.max(0)
        self.target = (lo + hi) / 2.0
        radius = max(float(np.linalg.norm(hi - lo)) / 2.0, 1e-3)
        self.distance = _clamp(radius / math.sin(math.radians(self.fov_deg) / 2.0) * margin,
                               MIN_DISTANCE, MAX_DISTANCE)


def _clamp(x: float, lo: float, hi: float) -> float:
    return float(min(max(x, lo), hi))
