"""A cut-out the user can fix: painted strokes (and a rectangle) → GrabCut in its mask mode → a mask.

The automatic cut-out (:func:`splatgen.core.imageprep.segment_foreground`) is seeded from the image
border and fails on cluttered scenes. Here the user's hints become GrabCut's hard labels
(``cv2.GC_INIT_WITH_MASK``): pixels under an object stroke are ``GC_FGD``, under a background stroke
``GC_BGD``, outside a dragged rectangle ``GC_BGD``; every other pixel starts from the previous
result as *probably* foreground / background. GrabCut runs on a working copy whose longer side is at
most :data:`CUTOUT_SIDE` px; :func:`full_size_mask` brings the result to the photo's size for
:func:`~splatgen.core.imageprep.prepare_image` (its ``mask=`` argument).

Stroke coordinates are normalised to the photo: ``x / width``, ``y / height`` in [0, 1]; a stroke's
radius is a fraction of the photo's longer side, so one set of strokes fits any scale of the photo.
:class:`CutoutMemory` keeps each photo's strokes and mask for a session, keyed by path, mtime, size.
No Qt here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import cv2
import numpy as np

from .errors import ImageError
from .imageprep import GRABCUT_SIDE, _clean, _resize_long, segment_foreground

__all__ = ["CUTOUT_SIDE", "Stroke", "Cutout", "CutoutMemory", "photo_key", "working_copy", "automatic_mask",
           "hint_labels", "refine_cutout", "full_size_mask", "iou"]

#: GrabCut works on a copy of the photo at most this many pixels long (a stroke's update stays
#: well under a second on one core).
CUTOUT_SIDE = 384


@dataclass(frozen=True)
class Stroke:
    """One painted line: ``foreground`` (object) or background; ``points`` ``(N, 2)`` float (x, y)
    normalised to the photo's width / height; ``radius`` a fraction of its longer side."""

    foreground: bool
    points: tuple[tuple[float, float], ...]
    radius: float = 0.012


@dataclass
class Cutout:
    """A photo's user cut-out: the hints so far and the mask they gave (``(h, w)`` bool at the
    working scale, None before the first refinement). ``rect`` (x0, y0, x1, y1) normalised, or None."""

    strokes: list[Stroke] = field(default_factory=list)
    rect: tuple[float, float, float, float] | None = None
    mask: np.ndarray | None = None


def photo_key(path) -> tuple[str, int, int]:
    """What identifies a photo file for the session: (absolute path, mtime in ns, size in bytes)."""
    st = os.stat(path)
    return os.path.abspath(os.fspath(path)), int(st.st_mtime_ns), int(st.st_size)


class CutoutMemory:
    """Each photo's :class:`Cutout` for the session; an edited file (new mtime or size) starts afresh."""

    def __init__(self):
        self._items: dict[tuple[str, int, int], Cutout] = {}

    def get(self, path) -> Cutout | None:
        try:
            return self._items.get(photo_key(path))
        except OSError:
            return None

    def set(self, path, cutout: Cutout | None) -> None:
        key = photo_key(path)
        if cutout is None:
            self._items.pop(key, None)
        else:
            self._items[key] = cutout

    def mask(self, path) -> np.ndarray | None:
        c = self.get(path)
        return None if c is None else c.mask


def working_copy(rgb: np.ndarray, side: int = CUTOUT_SIDE) -> np.ndarray:
    """``(H, W, 3|4)`` uint8 → the RGB copy GrabCut works on, longer side ≤ ``side``."""
    return np.ascontiguousarray(_resize_long(np.asarray(rgb)[:, :, :3], side))


def automatic_mask(pixels: np.ndarray, side: int = CUTOUT_SIDE) -> np.ndarray:
    """The starting point before any hint, ``(h, w)`` bool at the working scale of ``pixels``
    ``(H, W, 3|4)`` uint8: its alpha (≥ 128) when it has one, else the border-seeded GrabCut of
    :mod:`~splatgen.core.imageprep`; all background when that finds nothing."""
    work = working_copy(pixels, side)
    h, w = work.shape[:2]
    if pixels.shape[2] == 4 and int(pixels[:, :, 3].min()) < 255:
        return cv2.resize(pixels[:, :, 3], (w, h), interpolation=cv2.INTER_AREA) >= 128
    try:
        fg = segment_foreground(_resize_long(pixels[:, :, :3], GRABCUT_SIDE))
    except ImageError:
        return np.zeros((h, w), bool)
    return cv2.resize(fg.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR) >= 0.5


def _paint(labels: np.ndarray, stroke: Stroke, value: int) -> None:
    h, w = labels.shape
    r = max(1, round(stroke.radius * max(h, w)))
    pts = np.array([[round(x * (w - 1)), round(y * (h - 1))] for x, y in stroke.points], np.int32)
    if len(pts) == 1:
        cv2.circle(labels, tuple(int(v) for v in pts[0]), r, int(value), -1)
    else:
        cv2.polylines(labels, [pts.reshape(-1, 1, 2)], False, int(value), thickness=2 * r + 1)


def hint_labels(shape: tuple[int, int], previous: np.ndarray | None, strokes=(), rect=None) -> np.ndarray:
    """GrabCut's label image ``(h, w)`` uint8: ``previous`` (bool, or None = nothing yet) as probable
    labels, outside ``rect`` definite background (inside it, probably foreground where there is no
    previous result), then the strokes as definite labels, in the order painted."""
    h, w = shape
    if previous is None:
        labels = np.full((h, w), cv2.GC_PR_FGD if rect is not None else cv2.GC_PR_BGD, np.uint8)
    else:
        labels = np.where(previous, cv2.GC_PR_FGD, cv2.GC_PR_BGD).astype(np.uint8)
    if rect is not None:
        x0, y0, x1, y1 = rect
        inside = np.zeros((h, w), bool)
        inside[max(0, int(np.floor(min(y0, y1) * h))):int(np.ceil(max(y0, y1) * h)),
               max(0, int(np.floor(min(x0, x1) * w))):int(np.ceil(max(x0, x1) * w))] = True
        labels[~inside] = cv2.GC_BGD
    for s in strokes:
        _paint(labels, s, cv2.GC_FGD if s.foreground else cv2.GC_BGD)
    return labels


def refine_cutout(work: np.ndarray, previous: np.ndarray | None, strokes=(), rect=None,
                  iterations: int = 5) -> np.ndarray:
    """GrabCut (mask mode) of ``work`` ``(h, w, 3)`` uint8 RGB with the hints of :func:`hint_labels`
    → ``(h, w)`` bool. Specks are dropped and pin-holes filled, but painted pixels keep their label."""
    labels = hint_labels(work.shape[:2], previous, strokes, rect)
    fg_any = np.isin(labels, (cv2.GC_FGD, cv2.GC_PR_FGD))
    bg_any = np.isin(labels, (cv2.GC_BGD, cv2.GC_PR_BGD))
    if not fg_any.any():
        return np.zeros(work.shape[:2], bool)
    if not bg_any.any():
        return np.ones(work.shape[:2], bool)
    hard_fg, hard_bg = labels == cv2.GC_FGD, labels == cv2.GC_BGD
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(0)  # same hints, same mask
    cv2.grabCut(np.ascontiguousarray(work[:, :, ::-1]), labels, None, bgd, fgd, int(iterations),
                cv2.GC_INIT_WITH_MASK)
    fg = (labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)
    fg = _clean(fg) if fg.any() else fg
    return (fg | hard_fg) & ~hard_bg


def full_size_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A working-scale bool mask → uint8 alpha ``(height, width)`` for ``size`` = (width, height),
    slightly smoothed and linearly interpolated."""
    soft = cv2.GaussianBlur(np.asarray(mask, np.float32), (0, 0), 0.6)
    return np.clip(cv2.resize(soft, tuple(int(v) for v in size), interpolation=cv2.INTER_LINEAR) * 255 + 0.5,
                   0, 255).astype(np.uint8)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two same-shape bool masks (1.0 when both are empty)."""
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    union = int((a | b).sum())
    return 1.0 if union == 0 else float((a & b).sum()) / union
