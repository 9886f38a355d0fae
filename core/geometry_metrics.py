"""Shape metrics between a mesh's surface samples and generated Gaussians: Chamfer, F-score, volume IoU.

**Units and frame.** Distances are world units of the normalised object frame: the object's
bounding sphere has radius ``framing.OBJECT_RADIUS`` = 0.5, so 1.0 is the object's diameter and 0.05
is 5 % of it (about 4 input pixels at the canonical framing). Both sides must be in one frame; the
caller moves the surface samples into the frame the Gaussians live in (:func:`rigid_apply`).

**The generated shape is the splat centres weighted by opacity** (a :class:`WeightedPoints`),
not points from rendered depth: the centres cover the whole object, the underside and the inside
included, where depth only sees what a chosen ring of cameras sees (the dataset's cameras never look
from below, while the surface samples cover every triangle); they need no renderer, so the figure
is the same on every backend and cheap on the CPU (32k centres per sample); and a Splatter Image's
Gaussians are about a pixel wide (median scale ≈ 0.02 here), so a centre stands for its splat
well. Opacity says how much a splat is there: a splat is *present* from :data:`PRESENT_OPACITY` on
(a fainter one lets more than 80 % of what is behind it through), and every splat counts in
proportion to its opacity where it is the source of a distance.

* **Chamfer** (:func:`chamfer`): the mean L2 distance (not squared) of nearest neighbours, each
  way, and their mean. Not squared so that it is a length in the units above, comparable with the
  F-score threshold and the voxel size, and so that a few far floaters do not outweigh the rest.
  ``accuracy``: from each generated centre (weighted by its opacity) to the nearest surface sample;
  ``completeness``: from each surface sample to the nearest present centre.
* **F-score** at ``threshold`` (default :data:`FSCORE_THRESHOLD` = 0.05, 5 % of the diameter):
  precision = the opacity-weighted share of centres within the threshold of the surface; recall =
  the share of surface samples within the threshold of a present centre; their harmonic mean.
* **Volume IoU** (:func:`volume_iou`): both sides voxelised the same way on one grid of voxel side
  :data:`VOXEL` = 1/32 (32 voxels across the diameter): a voxel is occupied when a surface sample or
  a present centre lies in it; then closed by one voxel (dilate, fill the enclosed cavities, erode),
  so that a closed shell becomes a solid and a point-sampling gap of one voxel does not let the
  outside in. Open shells (a sheet, a cup) stay shells. The grid covers both sides (up to
  :data:`GRID_LIMIT` from the origin: a centre beyond it is not counted).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: Opacity from which a splat counts as present (as a target of distances and as occupancy).
PRESENT_OPACITY = 0.2
#: Default F-score threshold, world units (5 % of the object's diameter).
FSCORE_THRESHOLD = 0.05
#: Side of an occupancy voxel, world units (1/32 of the object's diameter).
VOXEL = 1.0 / 32
#: Half-side of the largest occupancy grid, world units (points beyond it are left out of the IoU).
GRID_LIMIT = 2.0


@dataclass
class WeightedPoints:
    """Points ``(N, 3)`` float64 with weights ``(N,)`` in [0, 1] (opacities; 1 for surface samples)."""

    points: np.ndarray
    weights: np.ndarray

    @classmethod
    def of(cls, points, weights=None) -> "WeightedPoints":
        p = np.asarray(points, np.float64).reshape(-1, 3)
        w = np.ones(len(p)) if weights is None else np.asarray(weights, np.float64).reshape(-1)
        if len(w) != len(p):
            raise ValueError(f"{len(p)} points but {len(w)} weights")
        keep = w > 0
        return cls(p[keep], w[keep])

    @property
    def present(self) -> np.ndarray:
        """The points that count as there (:data:`PRESENT_OPACITY` or more); all of them when none does,
        so that a faint prediction still gets a finite (bad) distance."""
        on = self.weights >= PRESENT_OPACITY
        return self.points[on] if on.any() else self.points

    def __len__(self) -> int:
        return len(self.points)


def rigid_apply(matrix, points) -> np.ndarray:
    """``(N, 3)`` points through a 4×4 rigid transform (rotation + translation)."""
    m = np.asarray(matrix, np.float64)
    return np.asarray(points, np.float64) @ m[:3, :3].T + m[:3, 3]


def _tree(points: np.ndarray):
    from scipy.spatial import cKDTree

    return cKDTree(points)


def _nearest(tree, points: np.ndarray) -> np.ndarray:
    # every core: the queries are most of an evaluation's CPU time (the same distances on any count)
    return tree.query(points, k=1, workers=-1)[0]


def _weighted_mean(values: np.ndarray, weights: np.ndarray) -> float:
    return float(np.sum(values * weights) / np.sum(weights))


def directed(a: WeightedPoints, b: WeightedPoints, tree=None) -> np.ndarray:
    """Distance from every point of ``a`` to the nearest present point of ``b``, ``(len(a),)``."""
    return _nearest(tree if tree is not None else _tree(b.present), a.points)


def chamfer(a: WeightedPoints, b: WeightedPoints) -> float:
    """Symmetric Chamfer distance (world units): the mean of ``a → b`` and ``b → a``, each the
    weighted mean of nearest-neighbour distances to the other's present points. NaN if either is empty."""
    if not len(a) or not len(b):
        return math.nan
    return 0.5 * (_weighted_mean(directed(a, b), a.weights) + _weighted_mean(directed(b, a), b.weights))


def surface_metrics(pred: WeightedPoints, surface: np.ndarray, threshold: float = FSCORE_THRESHOLD,
                    voxel: float = VOXEL) -> dict[str, float]:
    """Every figure of the module docstring for one prediction against surface samples ``(M, 3)``.

    Returns ``chamfer``, ``chamfer_accuracy``, ``chamfer_completeness`` (world units), ``precision``,
    ``recall``, ``fscore`` (at ``threshold``), ``volume_iou``; NaN for all when the prediction is empty.
    """
    gt = WeightedPoints.of(surface)
    names = ("chamfer", "chamfer_accuracy", "chamfer_completeness", "precision", "recall", "fscore", "volume_iou")
    if not len(pred) or not len(gt):
        return dict.fromkeys(names, math.nan)
    to_gt = directed(pred, gt)  # (N,) each centre → surface
    to_pred = directed(gt, pred)  # (M,) each surface sample → present centres
    acc, comp = _weighted_mean(to_gt, pred.weights), float(to_pred.mean())
    precision = _weighted_mean((to_gt <= threshold).astype(np.float64), pred.weights)
    recall = float((to_pred <= threshold).mean())
    f = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return {"chamfer": 0.5 * (acc + comp), "chamfer_accuracy": acc, "chamfer_completeness": comp,
            "precision": precision, "recall": recall, "fscore": f,
            "volume_iou": volume_iou(pred.present, gt.points, voxel)}


def occupancy(points: np.ndarray, origin: np.ndarray, shape: tuple[int, int, int], voxel: float = VOXEL) -> np.ndarray:
    """Boolean grid ``shape`` whose voxel ``(i, j, k)`` spans ``origin + voxel·[i, i+1)…``: voxels
    holding a point, closed by one voxel and with enclosed cavities filled (module docstring)."""
    from scipy import ndimage

    grid = np.zeros(shape, bool)
    idx = np.floor((np.asarray(points, np.float64) - origin) / voxel).astype(np.int64)
    inside = ((idx >= 0) & (idx < np.array(shape))).all(1)
    grid[tuple(idx[inside].T)] = True
    closed = ndimage.binary_fill_holes(ndimage.binary_dilation(grid))
    return ndimage.binary_erosion(closed, border_value=1)


def volume_iou(a: np.ndarray, b: np.ndarray, voxel: float = VOXEL) -> float:
    """IoU of the occupancies (:func:`occupancy`) of point sets ``a`` and ``b`` ``(N, 3)`` on one grid
    aligned to multiples of ``voxel`` from the origin, covering both (within ±:data:`GRID_LIMIT`)."""
    both = np.concatenate([np.asarray(a, np.float64).reshape(-1, 3), np.asarray(b, np.float64).reshape(-1, 3)])
    both = both[(np.abs(both) <= GRID_LIMIT).all(1)]
    if not len(both):
        return math.nan
    lo = (np.floor(both.min(0) / voxel) - 2) * voxel  # two voxels of margin for the closing
    hi = (np.floor(both.max(0) / voxel) + 3) * voxel
    shape = tuple(int(round(n)) for n in (hi - lo) / voxel)
    oa, ob = occupancy(a, lo, shape, voxel), occupancy(b, lo, shape, voxel)
    union = np.count_nonzero(oa | ob)
    return float(np.count_nonzero(oa & ob) / union) if union else math.nan


def pairwise_chamfer(sets: list[WeightedPoints]) -> float:
    """Mean :func:`chamfer` over all pairs of ``sets`` (3D diversity of samples); NaN for fewer than 2."""
    trees = [_tree(s.present) if len(s) else None for s in sets]
    values = []
    for i in range(len(sets)):
        for j in range(i + 1, len(sets)):
            a, b = sets[i], sets[j]
            if trees[i] is None or trees[j] is None:
                values.append(math.nan)
                continue
            values.append(0.5 * (_weighted_mean(directed(a, b, trees[j]), a.weights)
                                 + _weighted_mean(directed(b, a, trees[i]), b.weights)))
    return float(np.mean(values)) if values else math.nan
