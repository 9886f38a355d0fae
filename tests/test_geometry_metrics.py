"""Shape metrics (core/geometry_metrics.py) on shapes with known answers, and ``splatgen eval``'s geometry:
surface samples read from a built and from a packed dataset, in the right frame, and 3D diversity.

Analytic values used here: for two spheres of radius r whose centres are d ≤ r apart, the distance
from a uniform point of one to the other sphere, |‖p − c‖ − r|, has mean d/2 and is below τ ≤ d
with probability τ/d (‖p − c‖ is distributed with density s/(2rd) on [r − d, r + d]); two balls of
radius r at distance d overlap in a lens of volume π(4r + d)(2r − d)²/12.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from splatgen.core import geometry_metrics as gm

trimesh = pytest.importorskip("trimesh")


def sphere_points(n: int, radius: float = 0.5, centre=(0.0, 0.0, 0.0)) -> np.ndarray:
    """``n`` nearly uniform points on a sphere (a Fibonacci lattice: no clumps, no holes)."""
    i = np.arange(n) + 0.5
    polar, azimuth = np.arccos(1 - 2 * i / n), np.pi * (1 + 5**0.5) * i
    unit = np.stack([np.cos(azimuth) * np.sin(polar), np.sin(azimuth) * np.sin(polar), np.cos(polar)], 1)
    return unit * radius + np.asarray(centre)


# ---------------------------------------------------------------------- known shapes
@pytest.mark.parametrize("d", [0.1, 0.2])
def test_sphere_against_a_shifted_sphere_gives_the_analytic_chamfer_and_fscore(d):
    surface = sphere_points(30_000)
    pred = gm.WeightedPoints.of(sphere_points(30_000, centre=(0.0, d, 0.0)))
    m = gm.surface_metrics(pred, surface, threshold=0.05)
    assert m["chamfer_accuracy"] == pytest.approx(d / 2, rel=0.02)  # not squared: d²/3 would be 0.0033 / 0.0133
    assert m["chamfer_completeness"] == pytest.approx(d / 2, rel=0.02)
    assert m["chamfer"] == pytest.approx(d / 2, rel=0.02)
    assert m["precision"] == pytest.approx(0.05 / d, abs=0.01) and m["recall"] == pytest.approx(0.05 / d, abs=0.01)
    assert m["fscore"] == pytest.approx(0.05 / d, abs=0.01)
    assert gm.surface_metrics(pred, surface, threshold=d)["fscore"] == pytest.approx(1.0, abs=0.01)
    same = gm.surface_metrics(gm.WeightedPoints.of(surface), surface)
    assert same["chamfer"] == 0 and same["fscore"] == 1 and same["volume_iou"] == 1


def test_opacity_weights_the_source_and_faint_splats_are_not_targets():
    """Faint floaters far away add to the accuracy term in proportion to their opacity, and a surface
    point cannot be 'covered' by them."""
    surface = sphere_points(20_000)
    on_surface = sphere_points(5_000)
    floaters = np.array([[0.0, 0.0, 0.5 + 0.4]]) + np.zeros((100, 3))  # 0.4 outside the sphere, at its top
    base = gm.surface_metrics(gm.WeightedPoints.of(on_surface), surface)
    for w in (0.05, 0.15):  # below PRESENT_OPACITY
        pred = gm.WeightedPoints.of(np.concatenate([on_surface, floaters]), np.r_[np.ones(5_000), np.full(100, w)])
        m = gm.surface_metrics(pred, surface)
        expect = (base["chamfer_accuracy"] * 5_000 + 0.4 * 100 * w) / (5_000 + 100 * w)
        assert m["chamfer_accuracy"] == pytest.approx(expect, rel=1e-3)
        assert m["chamfer_completeness"] == pytest.approx(base["chamfer_completeness"])  # not targets
        assert m["precision"] == pytest.approx(5_000 / (5_000 + 100 * w), rel=1e-6)
    # a prediction only of faint splats still gets a finite distance (every splat counts then)
    faint = gm.WeightedPoints.of(sphere_points(5_000, centre=(0, 0.1, 0)), np.full(5_000, 0.05))
    assert gm.surface_metrics(faint, surface)["chamfer"] == pytest.approx(0.05, rel=0.05)
    empty = gm.surface_metrics(gm.WeightedPoints.of(np.zeros((0, 3))), surface)
    assert all(math.isnan(v) for v in empty.values())


def test_volume_iou_fills_closed_shells_and_matches_two_balls():
    r, d = 0.4, 0.2
    a, b = sphere_points(20_000, r), sphere_points(20_000, r, (d, 0.0, 0.0))
    lens = math.pi * (4 * r + d) * (2 * r - d) ** 2 / 12
    ball = 4 / 3 * math.pi * r**3
    exact = lens / (2 * ball - lens)  # 0.463
    # surface voxels count whole: the solid grows by about half a voxel, the overlap a little more
    assert exact < gm.volume_iou(a, b) < exact + 0.04
    assert gm.volume_iou(a, a) == 1.0 and gm.volume_iou(a, a + [2 * r + 0.1, 0, 0]) == 0.0
    # a closed shell is a solid ...
    grid = gm.occupancy(a, np.full(3, -0.5), (32, 32, 32))
    assert ball < grid.sum() * gm.VOXEL**3 < ball * 1.25
    # ... an open one (a bowl: the lower half of the sphere) stays a shell
    bowl = a[a[:, 1] < 0]
    shell = gm.occupancy(bowl, np.full(3, -0.5), (32, 32, 32)).sum() * gm.VOXEL**3
    assert shell < 0.4 * ball / 2
    # a gap of one voxel in the shell (sparse points) does not let the outside in
    sparse = sphere_points(1_500, r)  # about 0.037 apart: more than a voxel
    assert ball < gm.occupancy(sparse, np.full(3, -0.5), (32, 32, 32)).sum() * gm.VOXEL**3 < ball * 1.3


def test_pairwise_chamfer_is_zero_for_copies_and_grows_with_the_shift():
    base = gm.WeightedPoints.of(sphere_points(8_000))
    shifted = [gm.WeightedPoints.of(sphere_points(8_000, centre=(0, 0, s))) for s in (0.0, 0.1, 0.2)]
    assert gm.pairwise_chamfer([base, shifted[0]]) == 0.0
    assert gm.pairwise_chamfer([base, shifted[1]]) == pytest.approx(0.05, rel=0.03)
    # the mean over the three pairs of (0, 0.1, 0.2): shifts 0.1, 0.2, 0.1
    assert gm.pairwise_chamfer(shifted) == pytest.approx((0.05 + 0.1 + 0.05) / 3, rel=0.03)
    assert math.isnan(gm.pairwise_chamfer([base]))
