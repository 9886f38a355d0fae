"""What a reader hands the renderer: triangle-soup parts with one material each, and why a model failed.

Every source reader (:mod:`splatgen.core.data.sources`) produces a :class:`LoadedModel`; the
renderer (:mod:`splatgen.core.data.mesh_render`) draws its parts. Nothing here touches files or GL.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

#: Crease angle for normals computed when the file has none: sharper edges stay flat.
CREASE_ANGLE_DEG = 40.0


class ModelError(Exception):
    """A model cannot be turned into a dataset object; the message is the one-line reason."""


@dataclass
class Part:
    """One material's triangles as a flat soup (corner ``i`` of triangle ``t`` is row ``3t + i``).

    ``positions (N, 3)``, ``normals (N, 3)`` float32 in the model's (then world) coordinates;
    ``uvs (N, 2)`` or ``None``; ``colors (N, 4)`` float32 RGBA in [0, 1] (vertex colours, else 1);
    ``base_color (4,)`` the material's diffuse RGBA (alpha = opacity ``d``); ``texture`` an
    ``(h, w, 4)`` uint8 RGBA image (row 0 = top) or ``None``; ``blend`` draws it semi-transparent
    after the opaque parts; ``cutout`` discards fragments whose texture alpha < ``ALPHA_CUTOFF``.
    """

    positions: np.ndarray
    normals: np.ndarray
    uvs: np.ndarray | None
    colors: np.ndarray
    base_color: np.ndarray
    texture: np.ndarray | None = None
    blend: bool = False
    cutout: bool = True
    name: str = ""


@dataclass
class LoadedModel:
    parts: list[Part]
    warnings: list[str] = field(default_factory=list)

    @property
    def n_triangles(self) -> int:
        return sum(len(p.positions) // 3 for p in self.parts)


def crease_normals(positions: np.ndarray, crease_deg: float = CREASE_ANGLE_DEG) -> np.ndarray:
    """Per-corner normals ``(N, 3)`` of a triangle soup ``(N, 3)``, smooth except across creases.

    Corners at one position share the area-weighted mean normal of the triangles there that lie
    within ``crease_deg`` of that mean (two passes: the mean of all, then the mean of those close
    to it); a triangle further off keeps its own flat normal there — box edges stay sharp,
    tessellated curves look smooth. Linear time, unlike exact per-corner crease grouping.
    """
    tri = positions.reshape(-1, 3, 3).astype(np.float64)
    fn = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])  # length = 2 · area
    length = np.linalg.norm(fn, axis=1, keepdims=True)
    unit = np.where(length > 0, fn / np.maximum(length, 1e-300), 0.0)
    flat = np.repeat(unit, 3, axis=0)
    # weld corners by exact position: soup corners of one source vertex are bit-identical
    keys = np.ascontiguousarray(positions, dtype=np.float32).view(np.dtype((np.void, 12))).reshape(-1)
    _, pid = np.unique(keys, return_inverse=True)
    pid = pid.reshape(-1)
    n_pos = int(pid.max()) + 1
    corner_fn = np.repeat(fn, 3, axis=0)
    cos_crease = math.cos(math.radians(crease_deg))

    def mean_normal(weight_mask: np.ndarray) -> np.ndarray:
        acc = np.stack([np.bincount(pid, weights=corner_fn[:, i] * weight_mask, minlength=n_pos)
                        for i in range(3)], axis=1)
        return acc / np.maximum(np.linalg.norm(acc, axis=1, keepdims=True), 1e-300)

    smooth = mean_normal(np.ones(len(pid)))
    member = ((flat * smooth[pid]).sum(1) >= cos_crease).astype(np.float64)
    smooth = mean_normal(member)
    out = np.where(((flat * smooth[pid]).sum(1) >= cos_crease)[:, None], smooth[pid], flat)
    bad = np.linalg.norm(out, axis=1) < 0.5
    out[bad] = (0.0, 1.0, 0.0)  # degenerate triangles: any normal will do
    return out.astype(np.float32)
