"""Spatial (Morton, Z-order) ordering of splats, for the formats that store them in blocks.

Neighbouring splats in a Morton order are neighbours in space: a PlayCanvas compressed PLY
quantises each block of 256 splats against that block's bounding box (tighter box, finer steps),
and SPZ's byte streams compress better when consecutive positions share their high bytes. The
order changes nothing a renderer shows (splats are depth-sorted when drawn).
"""

from __future__ import annotations

import numpy as np

__all__ = ["morton_order"]

_BITS = 10  # per axis: 1024^3 cells over the bounding box


def _spread(v: np.ndarray) -> np.ndarray:
    """Insert two zero bits between the low 10 bits of each ``uint64`` in ``v``."""
    v = v & 0x3FF
    v = (v | (v << 16)) & 0x030000FF
    v = (v | (v << 8)) & 0x0300F00F
    v = (v | (v << 4)) & 0x030C30C3
    v = (v | (v << 2)) & 0x09249249
    return v


def morton_order(means: np.ndarray) -> np.ndarray:
    """Indices ``(N,)`` (int64) that sort positions ``means (N, 3)`` along a Morton curve over their
    bounding box (10 bits per axis; ties keep input order)."""
    means = np.asarray(means, dtype=np.float64).reshape(-1, 3)
    if len(means) < 2:
        return np.arange(len(means), dtype=np.int64)
    lo, hi = means.min(axis=0), means.max(axis=0)
    extent = np.where(hi > lo, hi - lo, 1.0)
    cells = np.clip((means - lo) / extent * (1 << _BITS), 0, (1 << _BITS) - 1).astype(np.uint64)
    code = _spread(cells[:, 0]) | (_spread(cells[:, 1]) << np.uint64(1)) | (_spread(cells[:, 2]) << np.uint64(2))
    return np.argsort(code, kind="stable").astype(np.int64)
