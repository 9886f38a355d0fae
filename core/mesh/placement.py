"""Where an exported mesh sits in its file: real-world size, pivot and up axis.

splatgen's object frame is Y up with the input camera on +Z (:mod:`splatgen.core.generator.base`),
which is glTF's own convention (Y up, front facing +Z, right-handed, metres), the one Blender's glTF
importer expects and turns into its Z up. A :class:`Placement` maps that frame to the file's:

* ``up="y"`` keeps it; ``up="z"`` turns it a quarter about X, ``(x, y, z) → (x, -z, y)``: Z up,
  front facing -Y, as Blender's own axes (for tools that read a file's axes as they are);
* ``size_m`` scales uniformly so that the box side named by ``size_along`` is that many metres:
  ``"longest"``, ``"height"`` (the up axis), ``"width"`` (X) or ``"depth"`` (front to back); without
  it, one splatgen world unit becomes one metre;
* ``pivot="base"`` puts the origin at the centre of the box's bottom face (the object stands on the
  ground plane), ``pivot="center"`` at the box's centre.

The box is the mesh's axis-aligned bounding box in the file's axes. :func:`parse_size` reads a size
as a person writes it (``1.8m``, ``180cm``, ``1800mm``; a bare number is metres).
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass

import numpy as np

from ..errors import SettingsError

PIVOTS = ("base", "center")
UP_AXES = ("y", "z")
SIZE_ALONG = ("longest", "height", "width", "depth")
#: Metres per unit of the sizes :func:`parse_size` reads.
UNITS = {"m": 1.0, "cm": 0.01, "mm": 0.001}
#: The largest size taken, metres (a sanity bound: beyond it a unit was surely mistyped).
MAX_SIZE_M = 1e5

_SIZE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(m|cm|mm)?\s*$")


def parse_size(text: str | float) -> float:
    """A size as written (``"1.8m"``, ``"180cm"``, ``"1800 mm"``, ``"1.8"`` = metres) → metres."""
    if isinstance(text, (int, float)):
        value, unit = float(text), "m"
    else:
        match = _SIZE.match(str(text))
        if not match:
            raise SettingsError(f"size must be a number with an optional unit m, cm or mm (e.g. 1.8m, 180cm), "
                                f"got {text!r}")
        value, unit = float(match.group(1)), match.group(2) or "m"
    metres = value * UNITS[unit]
    if not (math.isfinite(metres) and 0 < metres <= MAX_SIZE_M):
        raise SettingsError(f"size must be above 0 and at most {MAX_SIZE_M:g} m, got {text!r}")
    return metres


@dataclass(frozen=True)
class Placement:
    """Size, pivot and up axis of an export (module docstring); checked on creation."""

    size_m: float | None = None
    size_along: str = "longest"
    pivot: str = "base"
    up: str = "y"

    def __post_init__(self) -> None:
        if self.size_m is not None:
            object.__setattr__(self, "size_m", parse_size(self.size_m))
        for name, value, choices in (("size_along", self.size_along, SIZE_ALONG), ("pivot", self.pivot, PIVOTS),
                                     ("up", self.up, UP_AXES)):
            if value not in choices:
                raise SettingsError(f"{name} must be one of {', '.join(choices)}, got {value!r}")

    @property
    def up_index(self) -> int:
        """Index of the up axis in the file's coordinates (1 for Y, 2 for Z)."""
        return 1 if self.up == "y" else 2

    @property
    def depth_index(self) -> int:
        """Index of the front-to-back axis in the file's coordinates."""
        return 2 if self.up == "y" else 1

    def axes(self) -> np.ndarray:
        """Rotation ``(3, 3)`` from the object frame (Y up) to the file's axes."""
        if self.up == "y":
            return np.eye(3)
        return np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])

    def matrix(self, vertices: np.ndarray) -> np.ndarray:
        """The 4×4 (float64) that takes ``vertices`` ``(V, 3)`` of the object frame to the file: turn to
        the file's axes, move the pivot to the origin, scale to ``size_m``."""
        rot = self.axes()
        turned = vertices @ rot.T
        lo, hi = turned.min(0), turned.max(0)
        pivot = 0.5 * (lo + hi)
        if self.pivot == "base":
            pivot[self.up_index] = lo[self.up_index]
        scale = 1.0
        if self.size_m is not None:
            axis = {"longest": int(np.argmax(hi - lo)), "height": self.up_index, "width": 0,
                    "depth": self.depth_index}[self.size_along]
            extent = float(hi[axis] - lo[axis])
            if extent <= 0:
                raise SettingsError(f"the mesh has no extent along its {self.size_along} side to scale to "
                                    f"{self.size_m:g} m")
            scale = self.size_m / extent
        m = np.eye(4)
        m[:3, :3] = scale * rot
        m[:3, 3] = -scale * pivot
        return m

    def record(self, matrix: np.ndarray, vertices: np.ndarray) -> dict:
        """What the file's metadata says about the placement: the settings, the units, the up axis, the
        object-frame → file matrix (row-major) and the file's bounds (``vertices`` as placed)."""
        lo, hi = vertices.min(0), vertices.max(0)
        num = lambda v: round(float(v), 9) + 0.0  # noqa: E731  (no float noise, no -0.0)
        return {
            **asdict(self),
            "units": "m",
            "up_axis": self.up.upper(),
            "front_axis": "+Z" if self.up == "y" else "-Y",
            "scale": num(np.linalg.norm(matrix[:3, 0])),
            "object_to_file": [[num(v) for v in row] for row in matrix],
            "bounds_min": [num(v) for v in lo],
            "bounds_max": [num(v) for v in hi],
        }


def apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """``points`` ``(N, 3)`` through a 4×4 affine ``matrix``."""
    return points @ matrix[:3, :3].T + matrix[:3, 3]
