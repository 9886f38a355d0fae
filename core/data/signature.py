"""Signature views: a few tiny renders of every object from the same fixed cameras.

A dataset object's own cameras are random (drawn from its id), so two objects' views cannot be
compared pixel by pixel. The builder therefore also renders :data:`AZIMUTHS_DEG` at
:data:`ELEVATION_DEG`, :data:`SIZE`² pixels, twice: flat (albedo, :data:`~.saturation.FLAT_LIGHTING`:
the same for every object, so twins under different lights still match) and under the object's
own lights (with the flat row, the lit/flat saturation of the whole dataset, no re-render). Both
rows go into one PNG, ``signature.png`` (``2·SIZE × len(AZIMUTHS_DEG)·SIZE`` RGBA; row 0 flat,
row 1 lit), a few kB an object. :mod:`splatgen.core.data.split` groups near-identical objects by them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

SIGNATURE_FILE = "signature.png"
#: Fixed cameras of the signature views (degrees), the same for every object.
AZIMUTHS_DEG = (30.0, 120.0, 210.0, 300.0)
ELEVATION_DEG = 20.0
SIZE = 32


def render_signature(renderer, parts, lighting) -> np.ndarray:
    """``(2, V, SIZE, SIZE, 4)`` uint8: the fixed views flat (``[0]``) and under ``lighting`` (``[1]``)."""
    from .. import cameras, framing
    from .saturation import FLAT_LIGHTING

    vm = cameras.orbit_viewmats(list(AZIMUTHS_DEG), [ELEVATION_DEG] * len(AZIMUTHS_DEG),
                                framing.CAMERA_DISTANCE).numpy()
    K = cameras.canonical_intrinsics(SIZE).numpy()
    flat = renderer.render(parts, vm, K, SIZE, SIZE, lighting=FLAT_LIGHTING)
    lit = renderer.render(parts, vm, K, SIZE, SIZE, lighting=lighting)
    return np.stack([flat, lit])


def save_signature(path: str | Path, views: np.ndarray) -> None:
    """Write ``(2, V, S, S, 4)`` views as one ``(2S, V·S)`` RGBA PNG."""
    from PIL import Image

    rows, v, s = views.shape[0], views.shape[1], views.shape[2]
    tile = views.transpose(0, 2, 1, 3, 4).reshape(rows * s, v * s, 4)
    Image.fromarray(np.ascontiguousarray(tile), "RGBA").save(path, compress_level=6)


def load_signature(path: str | Path, views: int = len(AZIMUTHS_DEG)) -> np.ndarray:
    """Read ``signature.png`` back as ``(2, V, S, S, 4)`` uint8 (:class:`OSError` / ``ValueError``,
    :class:`~splatgen.core.errors.ImageError` among them, if unreadable)."""
    from ..image_loading import VIEW_FORMATS, read_rgba

    tile = read_rgba(path, formats=VIEW_FORMATS)
    s = tile.shape[1] // views
    if s * views != tile.shape[1] or tile.shape[0] % s:
        raise ValueError(f"{path}: {tile.shape[1]}×{tile.shape[0]} is not a signature of {views} views")
    return tile.reshape(tile.shape[0] // s, s, views, s, 4).transpose(0, 2, 1, 3, 4)


__all__ = ["SIGNATURE_FILE", "AZIMUTHS_DEG", "ELEVATION_DEG", "SIZE", "render_signature", "save_signature",
           "load_signature"]
