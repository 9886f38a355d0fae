"""Shape metrics (core/geometry_metrics.py) on shapes with known answers, and ``splatgen eval``'s geometry:
surface samples read from a built and from a packed dataset, in the right frame, and 3D diversity.

Analytic values used here: for two spheres of radius r whose centres are d ≤ r apart, the distance
from a uniform point of one to the other sphere, |‖p − c‖ − r|, has mean d/2 and is below τ ≤ d
with probability τ/d (‖p − c‖ is distributed with density s/(2rd) on [r − d, r + d]); two balls of
radius r at distance d overlap in a lens of volume π(4r + d)(2r − d)²/12.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from splatgen.core import geometry_metrics as gm
from splatgen.core.generator import GenerationSettings
from splatgen.core.generator.base import Generator
from splatgen.core.render import render

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


# ---------------------------------------------------------------------- evaluation: frames, forms
@pytest.fixture(scope="module")
def built_with_surfaces(tmp_path_factory) -> Path:
    """Two asymmetric meshes (a box, an L) built at the models' 128² with surface samples, both in the
    test split, in two categories."""
    from splatgen.core.data.build import build_dataset
    from test_data import LIB, _name_in, box_mesh, ell_mesh, write_obj

    src = tmp_path_factory.mktemp("geo-src") / LIB
    for stem, folder, mesh in (("ell", "ells", ell_mesh), ("box", "boxes", box_mesh)):
        name = _name_in("test", stem, folder)
        v, f, _ = mesh()
        write_obj(src / (name.replace("__", "/") + ".obj"), v, f, kd=(0.8, 0.3, 0.2))
    out = tmp_path_factory.mktemp("geo") / "data"
    summary = build_dataset(src, out, views=3, size=128, seed=2, workers=0, progress=False, surface_points=3000)
    assert summary.counts["test"] == 2, summary.counts
    return out


class PerfectGenerator(Generator):
    """A deterministic 'model' that predicts each object's own surface samples as opaque splats in the
    input camera's frame (as a network predicts), handed on through the generator's own ``make_sample``.
    ``folders`` are the objects in the order they are evaluated; ``camera_frame=False`` leaves the points
    in the world frame instead (a frame mistake)."""

    name, kind, stochastic = "perfect", "test", False

    def __init__(self, folders: list[Path], camera_frame: bool = True):
        self.folders, self.camera_frame, self.device = list(folders), camera_frame, torch.device("cpu")

    def generate(self, image, settings=None, **kw):
        from splatgen.core.cameras import load_transforms
        from splatgen.core.data.surface import load_surface
        from splatgen.core.gaussians import Gaussians

        folder = self.folders.pop(0)
        pts = torch.from_numpy(load_surface(folder)[0]).double()
        V0 = load_transforms(folder).viewmats[0].double()  # world → the input camera (OpenCV)
        cam = pts @ V0[:3, :3].T + V0[:3, 3] if self.camera_frame else pts + torch.tensor([0.0, 0.0, 2.0])
        n = len(cam)
        g = Gaussians.from_activated(cam.float(), torch.tensor([1.0, 0, 0, 0]).expand(n, 4), torch.full((n, 3), 0.01),
                                     torch.full((n,), 0.99), torch.full((n, 3), 0.5))
        return [self.make_sample(g, 0, settings)]


def _evaluate(root: Path, built: Path, camera_frame: bool = True) -> dict:
    """:func:`evaluate` of a :class:`PerfectGenerator` on the test split of ``root`` (built or packed)."""
    from splatgen.core.evaluation import evaluate, find_objects
    from splatgen.core.generator import GenerationSettings

    objects = find_objects(root, "test")
    gen = PerfectGenerator([built / o.name for o in objects], camera_frame)
    return evaluate(gen, objects, GenerationSettings(), progress=False)


def test_eval_reports_view_consistency_only_for_samples_that_carry_views(built_with_surfaces, tmp_path):
    """A generator whose samples carry their generated views (the multi-view model's form) gets
    ``consistency_psnr``: high when the views are renders of the splats, low when they are not."""
    from splatgen.core.evaluation import evaluate, find_objects

    objects = find_objects(built_with_surfaces, "test")

    class WithViews(PerfectGenerator):
        def __init__(self, folders, views_of):
            super().__init__(folders)
            self.views_of = views_of

        def generate(self, image, settings=None, **kw):
            sample = super().generate(image, settings)[0]
            vms = sample.input_viewmat[None].expand(2, 4, 4).clone()
            vms[1, 0, 3] += 0.3  # a second camera beside the input's
            out = render(sample.gaussians, vms, sample.K, 128, 128)
            sample.info.update(views=self.views_of(torch.cat([out.rgb, out.alpha], -1).permute(0, 3, 1, 2)),
                               view_viewmats=vms)
            return [sample]

    folders = [built_with_surfaces / o.name for o in objects]
    agree = evaluate(WithViews(folders, lambda v: v.clamp(0, 1)), objects, GenerationSettings(), progress=False)
    assert agree["consistency_psnr"] > 60 and all(r["consistency_psnr"] > 60 for r in agree["per_object"])
    blank = evaluate(WithViews(folders, lambda v: torch.ones_like(v)), objects, GenerationSettings(), progress=False)
    assert blank["consistency_psnr"] < 20
    plain = _evaluate(built_with_surfaces, built_with_surfaces)
    assert "consistency_psnr" not in plain and "consistency_psnr" not in plain["per_object"][0]


def test_pack_carries_surface_samples_and_eval_reads_them_in_the_right_frame(built_with_surfaces, tmp_path):
    """A perfect prediction scores Chamfer ≈ 0, F = 1, IoU ≈ 1 from the built folders and from the
    packed form (float16 samples); the same points left in the world frame do not; a pack without
    surface samples still evaluates, without geometry."""
    from safetensors.numpy import load_file

    from splatgen.core.data.dataset import MultiViewDataset
    from splatgen.core.data.pack import pack_dataset
    from splatgen.core.data.surface import load_surface

    built = built_with_surfaces
    packed, bare = tmp_path / "packed", tmp_path / "bare"
    pack_dataset(built, packed, splits=["test"], workers=1, progress=False)
    pack_dataset(built, bare, splits=["test"], workers=1, progress=False, surface_splits=())
    source = MultiViewDataset(packed, "test", num_targets=1).source
    shard = load_file(str(packed / "test-00000.safetensors"))  # an independent look at the shard
    for i, oid in enumerate(source.ids):
        pts = load_surface(built / oid)[0]
        got = source.surface(i)
        assert got.dtype == np.float32 and got.shape == pts.shape == (3000, 3)
        assert np.abs(got - pts).max() < 1.5e-4  # float16 of coordinates within ±0.5
        assert shard[f"{i:05d}.surface"].dtype == np.float16
        assert json.loads((packed / "index.json").read_text())["objects"][oid]["surface_points"] == 3000
    assert MultiViewDataset(bare, "test", num_targets=1).source.surface(0) is None

    for root in (built, packed):
        res = _evaluate(root, built)
        assert res["geometry_objects"] == 2 and res["geometry"]["fscore_threshold"] == gm.FSCORE_THRESHOLD
        for row in res["per_object"]:
            assert row["chamfer"] < 2e-4 and row["fscore"] == 1.0 and row["volume_iou"] > 0.98, row
        assert set(res["per_category"]) == {"ells", "boxes"}
    wrong = _evaluate(packed, built, camera_frame=False)
    for row in wrong["per_object"]:  # the frames matter, and the metric sees it
        assert row["chamfer"] > 0.05 and row["fscore"] < 0.8, row
    res = _evaluate(bare, built)
    assert "chamfer" not in res and "geometry" not in res and "geometry_objects" not in res
    assert res["objects"] == 2 and res["input_psnr"] > 10


def test_eval_cli_reports_geometry_as_json_and_a_table(built_with_surfaces, tmp_path, run_splatgen):
    """The shipped regressor on the two built objects: every geometry figure in the JSON (means, per
    category, per object), a Markdown table per category; a broken surface file is one line on stderr."""
    import shutil

    r = run_splatgen("eval", "--data", built_with_surfaces, "-m", "regressor", "--device", "cpu", "--no-progress",
                     "--json", tmp_path / "e.json", "--table", "--fscore-threshold", "0.1")
    assert r.returncode == 0, r.stderr
    res = json.loads((tmp_path / "e.json").read_text(), parse_constant=lambda c: pytest.fail(f"{c} in the JSON"))
    assert res["geometry"]["fscore_threshold"] == 0.1 and res["geometry_objects"] == 2
    for scope in (res, *res["per_category"].values(), *res["per_object"]):
        assert 0 < scope["chamfer"] < 0.15 and 0 < scope["fscore"] <= 1 and 0 <= scope["volume_iou"] <= 1, scope
        assert scope["chamfer"] == pytest.approx((scope["chamfer_accuracy"] + scope["chamfer_completeness"]) / 2)
    assert res["chamfer"] == pytest.approx(np.mean([row["chamfer"] for row in res["per_object"]]))
    lines = r.stdout.splitlines()
    head = next(line for line in lines if line.startswith("| category"))
    assert "Chamfer" in head and "F-score" in head and "volume IoU" in head and "best-of-k" not in head
    rows = [line for line in lines if line.startswith("| ") and line is not head]
    assert {row.split("|")[1].strip() for row in rows} == {"ells", "boxes", "**all**"}
    all_row = next(row for row in rows if "**all**" in row).split("|")
    assert float(all_row[head.split("|").index(" Chamfer ")]) == pytest.approx(res["chamfer"], abs=1e-4)

    r = run_splatgen("eval", "--data", built_with_surfaces, "-m", "regressor", "--fscore-threshold", "-1")
    assert r.returncode == 2 and "threshold" in r.stderr and "Traceback" not in r.stderr


def test_broken_surface_files_are_dataset_errors(built_with_surfaces, tmp_path):
    """Made here: a truncated safetensors header, a file of the wrong shape, NaN points, a huge file."""
    import shutil

    from safetensors.numpy import save_file

    from splatgen.core.errors import DatasetError
    from splatgen.core.evaluation import MAX_SURFACE_BYTES, EvalObject, object_surface

    folder = tmp_path / "obj"
    shutil.copytree(next(p.parent for p in built_with_surfaces.glob("*/surface.safetensors")), folder)
    obj = EvalObject("obj", folder)
    assert object_surface(obj).shape == (3000, 3)
    path = folder / "surface.safetensors"
    for name, write in (
        ("garbage", lambda: path.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}garbage")),
        ("no normals", lambda: save_file({"points": np.zeros((4, 3), np.float32)}, str(path))),
        ("2 columns", lambda: save_file({"points": np.zeros((4, 2), np.float32), "normals": np.zeros((4, 2), np.float32)},
                                        str(path))),
        ("NaN", lambda: save_file({"points": np.full((4, 3), np.nan, np.float32),
                                   "normals": np.zeros((4, 3), np.float32)}, str(path))),
        ("huge", lambda: os.truncate(path, MAX_SURFACE_BYTES + 1)),  # sparse: nothing is written
    ):
        write()
        with pytest.raises(DatasetError, match="surface"):
            object_surface(obj)
    path.unlink()
    assert object_surface(obj) is None  # no file: no geometry, not an error


# ---------------------------------------------------------------------- 3D diversity
def test_samples_of_one_input_differ_in_shape_less_than_samples_of_two(shipped_generator, generated_samples):
    """The shipped diffusion model (4 steps): two samples of the example differ in shape (pairwise
    Chamfer > 0) but less than they differ from samples of another photo."""
    from splatgen.assets import __path__ as assets_path
    from splatgen.core.evaluation import geometry_row, splat_points
    from splatgen.core.generator import GenerationSettings
    from splatgen.core.imageprep import prepare_image
    from conftest import SAMPLE_STEPS

    photo = prepare_image(Path(next(iter(assets_path))) / "examples" / "biplane.png").image
    other = shipped_generator.generate(photo, GenerationSettings(num_samples=2, seed=3, steps=SAMPLE_STEPS))
    a = [splat_points(s.gaussians) for s in generated_samples]
    b = [splat_points(s.gaussians) for s in other]
    within_a, within_b = gm.pairwise_chamfer(a), gm.pairwise_chamfer(b)
    across = np.mean([gm.chamfer(x, y) for x in a for y in b])
    assert 0 < within_a < across and 0 < within_b < across, (within_a, within_b, across)
    assert geometry_row(a, [None, None]) == {"diversity_chamfer": within_a}  # what eval reports, no surface needed
