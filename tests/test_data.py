"""Dataset builder, packer and loader, on meshes made here (no downloads, no system libraries).

The geometric tests do not trust the renderer: they take the mesh's own triangles, move them with
the normalisation recorded in ``meta.json``, project them with the cameras read back from
``transforms.json`` (OpenCV, ``u = fx·x/z + cx``, pixel centres at +0.5) and rasterise them again
in numpy (:func:`_coverage`), then compare that silhouette with the rendered alpha mask.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from splatgen.core import cameras, framing
from splatgen.core.data.build import SPLITS, build_dataset, split_of
from splatgen.core.data.dataset import MultiViewDataset, load_split_arrays
from splatgen.core.data.pack import codec_loss, pack_dataset
from splatgen.core.data.sources import discover, parse_properties
from splatgen.core.errors import DatasetError

trimesh = pytest.importorskip("trimesh")

SIZE = 64
VIEWS = 6
#: Name of the mesh folder the fixtures build from: object ids are ``shapes__<file stem>``.
LIB = "shapes"


def _name_in(split: str, stem: str, folder: str) -> str:
    """``folder__stem`` + the first number that the hash split puts in ``split``: alone in its category
    (its folder), the balanced split keeps it there, so every split has objects."""
    return next(f"{folder}__{stem}{i}" for i in itertools.count() if split_of(f"{LIB}__{folder}__{stem}{i}") == split)


VAL_NAME = _name_in("val", "cone", "cones")
TEST_NAME = _name_in("test", "cylinder", "cylinders")


# ---------------------------------------------------------------------- meshes made here
def write_obj(path: Path, vertices, faces, uvs=None, texture: str | None = None,
              kd=(0.8, 0.8, 0.8), mtl_extra: str = "") -> None:
    """A minimal OBJ (+ MTL): one material, optional per-vertex UVs and diffuse texture name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"mtllib {path.stem}.mtl", "usemtl mat"]
    lines += [f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in vertices]
    if uvs is not None:
        lines += [f"vt {u:.6f} {v:.6f}" for u, v in uvs]
        lines += ["f " + " ".join(f"{i + 1}/{i + 1}" for i in f) for f in faces]
    else:
        lines += ["f " + " ".join(str(i + 1) for i in f) for f in faces]
    path.write_text("\n".join(lines) + "\n")
    mtl = ["newmtl mat", f"Kd {kd[0]} {kd[1]} {kd[2]}", "d 1.0"]
    if texture:
        mtl.append(f"map_Kd {texture}")
    path.with_suffix(".mtl").write_text("\n".join(mtl) + "\n" + mtl_extra)


def checker(n: int = 64, cells: int = 8) -> Image.Image:
    y, x = np.mgrid[:n, :n] * cells // n
    a = ((x + y) % 2).astype(np.uint8)
    rgb = np.stack([200 * a + 40, 60 + 120 * (1 - a), 90 * np.ones_like(a)], -1).astype(np.uint8)
    return Image.fromarray(rgb, "RGB")


def _cylindrical_uv(v: np.ndarray) -> np.ndarray:
    c = v - v.mean(0)
    return np.stack([0.5 + np.arctan2(c[:, 0], c[:, 2]) / (2 * np.pi), (c[:, 1] - c[:, 1].min()) / np.ptp(c[:, 1])], 1)


def box_mesh(extents=(1.0, 0.6, 0.4)):
    m = trimesh.creation.box(extents=extents)
    v = np.asarray(m.vertices)
    uv = (v[:, [0, 1]] - v[:, [0, 1]].min(0)) / np.ptp(v[:, [0, 1]], 0)
    return v, np.asarray(m.faces), uv


def sphere_mesh():
    m = trimesh.creation.icosphere(subdivisions=2, radius=0.7)
    v = np.asarray(m.vertices) + [0.3, -0.2, 0.1]
    d = m.vertices / np.linalg.norm(m.vertices, axis=1, keepdims=True)
    uv = np.stack([0.5 + np.arctan2(d[:, 0], d[:, 2]) / (2 * np.pi), 0.5 + np.arcsin(d[:, 1]) / np.pi], 1)
    return v, np.asarray(m.faces), uv


def ell_mesh():
    """A non-convex, up/down-asymmetric L of two boxes: a flipped image cannot match it."""
    a = trimesh.creation.box(extents=(1.0, 0.3, 0.3))
    b = trimesh.creation.box(extents=(0.3, 0.9, 0.3))
    b.apply_translation((-0.35, 0.6, 0.0))
    m = trimesh.util.concatenate([a, b])
    return np.asarray(m.vertices), np.asarray(m.faces), None


def cone_mesh():
    """A cone along Z (lying down once Y is up): a sharp apex, and a silhouette that changes with the view."""
    m = trimesh.creation.cone(radius=0.4, height=1.1, sections=20)
    v = np.asarray(m.vertices)
    return v, np.asarray(m.faces), _cylindrical_uv(v)


def cylinder_mesh():
    m = trimesh.creation.cylinder(radius=0.25, height=1.2, sections=20)
    m.apply_transform(trimesh.transformations.rotation_matrix(np.pi / 2, (1, 0, 0)))  # upright: Y-axis
    v = np.asarray(m.vertices)
    return v, np.asarray(m.faces), _cylindrical_uv(v)


#: object name (id without the library) → mesh maker
MESHES = {"box": box_mesh, "furniture__sphere": sphere_mesh, "ell": ell_mesh,
          VAL_NAME: cone_mesh, TEST_NAME: cylinder_mesh}


@pytest.fixture(scope="module")
def mesh_dir(tmp_path_factory) -> Path:
    """Five textured / coloured meshes; three land in train, one in val, one in test."""
    root = tmp_path_factory.mktemp("m") / LIB
    root.mkdir()
    checker().save(root / "checker.png")
    v, f, uv = box_mesh()
    write_obj(root / "box.obj", v, f, uv, texture="checker.png")
    v, f, uv = sphere_mesh()
    write_obj(root / "furniture" / "sphere.obj", v, f, uv, texture="../checker.png")
    v, f, _ = ell_mesh()
    write_obj(root / "ell.obj", v, f, kd=(0.2, 0.4, 0.9))
    v, f, uv = cone_mesh()
    write_obj(root / (VAL_NAME.replace("__", "/") + ".obj"), v, f, uv, texture="../checker.png")
    v, f, uv = cylinder_mesh()
    write_obj(root / (TEST_NAME.replace("__", "/") + ".obj"), v, f, uv, texture="../checker.png")
    return root


@pytest.fixture(scope="module")
def built(mesh_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ds") / "data"
    summary = build_dataset(mesh_dir, out, views=VIEWS, size=SIZE, seed=3, workers=0, progress=False)
    assert summary.rendered == len(MESHES) and not summary.skipped, summary.skipped
    assert summary.counts == {"train": 3, "val": 1, "test": 1}
    return out


def _world_vertices(folder: Path, vertices: np.ndarray) -> np.ndarray:
    M = np.array(json.loads((folder / "meta.json").read_text())["normalization"])
    return vertices @ M[:3, :3].T + M[:3, 3]


def _project(viewmat: np.ndarray, K: np.ndarray, X: np.ndarray) -> np.ndarray:
    """World points ``(N, 3)`` → pixel coordinates ``(N, 2)`` with an OpenCV camera."""
    cam = X @ viewmat[:3, :3].T + viewmat[:3, 3]
    assert (cam[:, 2] > framing.NEAR).all()
    uvw = cam @ K.T
    return uvw[:, :2] / uvw[:, 2:3]


def _coverage(tri_uv: np.ndarray, size: int, sub: int) -> np.ndarray:
    """A numpy rasteriser: ``(size, size)`` fraction of each pixel's ``sub × sub`` sample points inside
    any of the triangles ``tri_uv (F, 3, 2)`` (pixel coordinates). Pixel ``(i, j)`` covers
    ``[i, i+1) × [j, j+1)``; its samples sit at ``i + (k + 0.5) / sub`` — with ``sub`` the builder's
    supersampling factor these are exactly the pixel centres (+0.5) of the supersampled render.
    """
    n = size * sub
    hit = np.zeros((n, n), bool)
    for a, b, c in tri_uv:
        area = (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])
        if abs(area) < 1e-12:
            continue
        lo = np.clip(np.floor(np.min([a, b, c], 0) * sub - 0.5).astype(int), 0, n - 1)
        hi = np.clip(np.ceil(np.max([a, b, c], 0) * sub - 0.5).astype(int), 0, n - 1)
        ys, xs = np.mgrid[lo[1]:hi[1] + 1, lo[0]:hi[0] + 1]
        px, py = (xs + 0.5) / sub, (ys + 0.5) / sub
        s = np.sign(area)
        inside = np.ones(px.shape, bool)
        for p, q in ((a, b), (b, c), (c, a)):
            inside &= s * ((q[0] - p[0]) * (py - p[1]) - (q[1] - p[1]) * (px - p[0])) >= 0
        hit[lo[1]:hi[1] + 1, lo[0]:hi[0] + 1] |= inside
    return hit.reshape(size, sub, size, sub).mean((1, 3))


def _centroid(w: np.ndarray) -> np.ndarray:
    jj, ii = np.mgrid[:w.shape[0], :w.shape[1]] + 0.5
    return np.array([(w * ii).sum(), (w * jj).sum()]) / w.sum()


def _silhouette_errors(alpha: np.ndarray, tri_uv: np.ndarray, supersample: int) -> dict:
    """How the rendered alpha ``(S, S)`` uint8 differs from the silhouette of ``tri_uv``."""
    a = alpha.astype(np.float64) / 255.0
    exact = _coverage(tri_uv, alpha.shape[0], supersample)  # what the renderer should have sampled
    fine = _coverage(tri_uv, alpha.shape[0], 8)  # ≈ the true area of each pixel that is covered
    err = np.abs(a - exact)
    return {
        "max_err": float(err.max()),
        "n_off": int((err > 2 / 255).sum()),
        "n_silhouette": int((exact > 0).sum()),
        "soft_iou": float(np.minimum(a, fine).sum() / np.maximum(a, fine).sum()),
        "centroid_shift": float(np.linalg.norm(_centroid(a) - _centroid(fine))),
        "area_ratio": float(a.sum() / fine.sum()),
    }


def _matches_true_area(errors: list[dict]) -> bool:
    """Whether views' alpha agrees with the true covered area, averaged over the views (one view of a
    thin part at 64² aliases by a few tenths of a pixel; a camera error shifts every view alike)."""
    mean = {k: float(np.mean([e[k] for e in errors])) for k in ("soft_iou", "centroid_shift")}
    area = float(np.mean([abs(e["area_ratio"] - 1) for e in errors]))
    return mean["soft_iou"] > 0.96 and mean["centroid_shift"] < 0.15 and area < 0.015


def _dilate(mask: np.ndarray) -> np.ndarray:
    """``mask`` grown by one pixel (3 × 3)."""
    pad = np.pad(mask, 1)
    h, w = mask.shape
    return np.max([pad[dy:dy + h, dx:dx + w] for dy in range(3) for dx in range(3)], axis=0)


# ---------------------------------------------------------------------- geometry of what is written
@pytest.mark.parametrize("name", list(MESHES))
def test_cameras_match_rendered_views(built, name):
    folder = built / f"{LIB}__{name}"
    meta = json.loads((folder / "meta.json").read_text())
    verts, faces, _ = MESHES[name]()
    X = _world_vertices(folder, np.asarray(verts, dtype=np.float64))
    # normalised: centred bounding box, bounding sphere radius OBJECT_RADIUS
    lo, hi = X.min(0), X.max(0)
    assert np.allclose((lo + hi) / 2, 0, atol=1e-5)
    assert np.isclose(np.linalg.norm(hi - lo) / 2, framing.OBJECT_RADIUS, atol=1e-5)

    # on disk: instant-ngp / nerfstudio camera-to-world, OpenGL axes (the camera looks down its -z)
    raw = json.loads((folder / "transforms.json").read_text())
    assert (raw["w"], raw["h"]) == (SIZE, SIZE) and np.isclose(raw["cx"], SIZE / 2) and np.isclose(raw["cy"], SIZE / 2)
    assert np.isclose(raw["fl_x"], framing.focal_length(SIZE)) and np.isclose(raw["fl_y"], raw["fl_x"])
    for frame in raw["frames"]:
        c2w = np.array(frame["transform_matrix"])
        eye = c2w[:3, 3]
        assert np.allclose(-c2w[:3, 2], -eye / np.linalg.norm(eye), atol=1e-5)  # looks at the origin
        assert c2w[1, 1] > 0.5  # camera +y (up in OpenGL) is world up: elevations stay below 60°

    cams = cameras.load_transforms(folder)
    assert len(cams) == VIEWS and cams.width == cams.height == SIZE
    assert torch.allclose(cams.Ks[0], cameras.canonical_intrinsics(SIZE), atol=1e-4)
    centres = cameras.camera_centers(cams.viewmats).numpy()
    assert np.allclose(np.linalg.norm(centres, axis=1), framing.CAMERA_DISTANCE, atol=1e-4)
    elev = np.degrees(np.arcsin(centres[:, 1] / framing.CAMERA_DISTANCE))
    lo_el, hi_el = framing.ELEVATION_RANGE_DEG
    assert ((elev >= lo_el - 1e-3) & (elev <= hi_el + 1e-3)).all()
    assert np.allclose(elev, meta["elevations_deg"], atol=1e-3)

    # points all over the surface, not only the vertices (a box's 8 corners are all on the outline)
    surface = trimesh.Trimesh(verts, faces, process=False)
    samples, _ = trimesh.sample.sample_surface(surface, 2000, seed=0)
    S = _world_vertices(folder, samples)
    s = meta["supersample"]
    errors, inside = [], []
    for j in range(VIEWS):
        alpha = np.asarray(Image.open(folder / cams.file_paths[j]))[..., 3]
        V, K = cams.viewmats[j].double().numpy(), cams.Ks[j].double().numpy()
        uv = _project(V, K, X)
        assert ((uv > 0) & (uv < SIZE)).all()
        # the silhouette: the renderer sampled exactly the points the numpy rasteriser tests — at most
        # one sample of a pixel differs (a sample lying exactly on an edge), in at most 1 % of pixels
        e = _silhouette_errors(alpha, uv[faces], s)
        where = f"{name} view {j}: {e}"
        assert e["max_err"] <= 1 / s**2 + 2 / 255 and e["n_off"] <= max(2, 0.01 * e["n_silhouette"]), where
        errors.append(e)

        # every surface point lands on the mask, give or take one pixel: a pixel that the surface
        # covers by less than one of its s × s samples is drawn with alpha 0, so a point near the
        # outline may sit in such a pixel — never more than one pixel outside the drawn mask
        ps = np.floor(_project(V, K, S)).astype(int)
        assert _dilate(alpha > 0)[ps[:, 1], ps[:, 0]].all(), f"{where}: surface points off the mask"
        inside.append((alpha[ps[:, 1], ps[:, 0]] > 0).mean())
        # world up is image up: the highest vertex is drawn above the lowest
        assert uv[X[:, 1].argmax(), 1] < uv[X[:, 1].argmin(), 1]
    # against the true covered area too: a half-pixel offset, a flip or a wrong focal length fails this
    assert _matches_true_area(errors), errors
    assert np.mean(inside) > 0.97, f"{name}: only {np.mean(inside):.3f} of surface points inside the masks"


def test_silhouette_check_detects_camera_errors(built):
    """The checks above are sharp enough: half a pixel off, an upside-down image or a 3 % focal
    length error each fail them."""
    folder = built / f"{LIB}__ell"
    verts, faces, _ = ell_mesh()
    X = _world_vertices(folder, verts)
    cams = cameras.load_transforms(folder)
    alpha = np.asarray(Image.open(folder / cams.file_paths[0]))[..., 3]
    V, K = cams.viewmats[0].double().numpy(), cams.Ks[0].double().numpy()
    half = K.copy()
    half[:2, 2] += 0.5  # pixel centres at 0 instead of +0.5
    focal = K.copy()
    focal[0, 0] *= 1.03
    focal[1, 1] *= 1.03
    for bad_alpha, bad_K in ((alpha, half), (alpha[::-1], K), (alpha, focal)):
        e = _silhouette_errors(bad_alpha, _project(V, bad_K, X)[faces], 2)
        assert e["n_off"] > 0.01 * e["n_silhouette"]
        assert not _matches_true_area([e]), e
    assert _matches_true_area([_silhouette_errors(alpha, _project(V, K, X)[faces], 2)])  # while the right one passes


def test_texture_orientation_and_lighting(tmp_path):
    """A quad facing the camera with a top-red / bottom-blue texture renders red on top."""
    from splatgen.core.data.mesh_render import MeshRenderer, load_parts, normalisation_matrix, transform_parts

    tex = np.zeros((32, 32, 3), np.uint8)
    tex[:16] = (255, 0, 0)  # image rows 0..15 (top of the file) red
    tex[16:] = (0, 0, 255)
    Image.fromarray(tex).save(tmp_path / "t.png")
    v = np.array([[-1, -1, 0], [1, -1, 0], [1, 1, 0], [-1, 1, 0]], float)
    uv = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], float)  # OBJ: v = 1 is the top of the image
    write_obj(tmp_path / "q.obj", v, [[0, 1, 2], [0, 2, 3]], uv, texture="t.png")
    model = load_parts(str(tmp_path), "q.obj")
    parts = transform_parts(model.parts, normalisation_matrix(model.parts))
    vm = cameras.orbit_viewmat(0.0, 0.0).numpy()[None]  # from +Z, level
    K = cameras.canonical_intrinsics(SIZE).numpy()
    img = MeshRenderer().render(parts, vm, K, SIZE, SIZE)[0].astype(int)
    top, bottom = img[SIZE // 2 - 8, SIZE // 2], img[SIZE // 2 + 8, SIZE // 2]
    assert top[3] == bottom[3] == 255
    assert top[0] > 100 and top[2] < 30, top
    assert bottom[2] > 100 and bottom[0] < 30, bottom
    # the back of the quad is lit too (two-sided) and the background is transparent
    back = MeshRenderer().render(parts, cameras.orbit_viewmat(180.0, 0.0).numpy()[None], K, SIZE, SIZE)[0]
    assert back[SIZE // 2, SIZE // 2, 3] == 255 and back[..., :3].max() > 60
    assert img[0, 0, 3] == 0


# ---------------------------------------------------------------------- bad input, resume
def test_bad_inputs_are_skipped_and_logged(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    checker().save(src / "tex.png")
    v, f, uv = box_mesh()
    write_obj(src / "good.obj", v, f, uv, texture="tex.png")
    write_obj(src / "missing_texture.obj", v, f, uv, texture="nowhere/gone.png")
    write_obj(src / "absolute_texture.obj", v, f, uv, texture="C:\\Users\\someone\\Desktop\\TEX.PNG")
    write_obj(src / "zero_size.obj", np.zeros((8, 3)), f)
    (src / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really a png" * 8)
    write_obj(src / "corrupt_texture.obj", v, f, uv, texture="corrupt.png")
    write_obj(src / "missing_mtl.obj", v, f, uv, texture="tex.png")
    (src / "missing_mtl.mtl").unlink()
    (src / "bad_indices.obj").write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\nf 1 2 9\n")  # a broken mesh file
    (src / "empty.obj").write_text("")
    (src / "comments_only.obj").write_text("# nothing here\nmtllib none.mtl\n")
    (src / "garbage.glb").write_bytes(b"\x00\x01not a gltf at all" * 10)
    (src / "notes.txt").write_text("not a mesh, not even looked at")
    trimesh.PointCloud(np.random.default_rng(0).normal(size=(50, 3))).export(src / "points.ply")
    # non-manifold: three triangles on one edge, plus a dangling one
    nm_v = [[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [2, 2, 2]]
    write_obj(src / "non_manifold.obj", nm_v, [[0, 1, 2], [0, 1, 3], [0, 1, 4], [2, 4, 5]])

    out = tmp_path / "out"
    summary = build_dataset(src, out, views=2, size=32, workers=0, progress=False)
    index = json.loads((out / "dataset.json").read_text())
    rendered = {k.split("__", 1)[1] for k in index["objects"]}
    assert rendered == {"good", "missing_texture", "absolute_texture", "non_manifold", "corrupt_texture",
                        "missing_mtl"}
    skipped = {k.split("__", 1)[1]: v for k, v in summary.skipped.items()}
    assert set(skipped) == {"zero_size", "empty", "comments_only", "garbage", "points", "bad_indices"}
    assert "zero-size" in skipped["zero_size"] and "empty" in skipped["empty"]
    assert "no triangles" in skipped["comments_only"] and "no triangles" in skipped["points"]
    assert "unreadable GLB" in skipped["garbage"] and "unreadable OBJ" in skipped["bad_indices"]
    log = (out / "build_log.txt").read_text()
    for name, reason in skipped.items():
        assert f"SKIP src__{name}: {reason}\n" in log and "\n" not in reason  # one line each
    assert "WARN src__missing_texture: missing texture nowhere/gone.png" in log
    assert "file name only" in log  # the absolute Windows path was found next to the OBJ
    assert "WARN src__corrupt_texture: texture corrupt.png unreadable" in log
    assert "WARN src__missing_mtl: missing material library missing_mtl.mtl" in log
    meta = json.loads((out / "src__absolute_texture" / "meta.json").read_text())
    assert meta["textured"] is True
    for name in ("missing_texture", "corrupt_texture", "missing_mtl"):  # drawn in their plain colour
        meta = json.loads((out / f"src__{name}" / "meta.json").read_text())
        assert meta["textured"] is False and meta["warnings"], name
    for name in rendered:  # and drawn: every rendered object covers part of every view
        for frame in sorted((out / f"src__{name}").glob("rgba_*.png")):
            assert (np.asarray(Image.open(frame))[..., 3] > 0).any(), frame
    plain = np.asarray(Image.open(out / "src__missing_mtl" / "rgba_000.png"))
    assert np.ptp(plain[plain[..., 3] == 255][:, :3], axis=0).max() < 120  # grey shading, no stray texture
    card = (out / "README.md").read_text()
    assert "## Skipped" in card and "src__garbage" in card


def test_resume_skips_finished_objects(mesh_dir, tmp_path):
    out = tmp_path / "d"
    n = len(MESHES)
    first = build_dataset(mesh_dir, out, views=2, size=32, workers=0, progress=False)
    assert first.rendered == n
    frame = out / f"{LIB}__box"
    ended = subprocess.Popen(["true"])
    ended.wait()
    (out / f".tmp-stale-{ended.pid}").mkdir()  # left by a killed run: its process has ended
    (out / f".tmp-busy-{os.getpid()}").mkdir()  # another build's, still running: left alone
    again = build_dataset(mesh_dir, out, views=2, size=32, workers=0, progress=False)
    assert again.rendered == 0 and again.resumed == n
    assert not (out / f".tmp-stale-{ended.pid}").exists() and (out / f".tmp-busy-{os.getpid()}").is_dir()
    before = (frame / "rgba_001.png").read_bytes()
    (frame / "rgba_001.png").unlink()  # an incomplete object is redone, identically
    third = build_dataset(mesh_dir, out, views=2, size=32, workers=0, progress=False)
    assert third.rendered == 1 and third.resumed == n - 1
    assert (frame / "rgba_001.png").read_bytes() == before


# ---------------------------------------------------------------------- SweetHome3D libraries
PROPERTIES = """\
# a tiny catalog
id=Test#Lib
name=Test library
license=Creative Commons Attribution 3.0 United States license
provider=tests

id#1=Test#crate
name#1=Cr\\u00e4te
category#1=Boxes
creator#1=Alice \\
    Example
model#1=/lib/crate/crate.obj
width#1=80
depth#1=40
height#1=20
modelRotation#1=1 0 0 0 0 1 0 -1 0

id#2=Test#ghost
name#2=Ghost
category#2=Boxes
creator#2=Bob
model#2=/lib/ghost/ghost.obj
width#2=10
depth#2=10
height#2=10
"""


def make_sh3f(path: Path) -> np.ndarray:
    """A .sh3f with one Z-up textured box (catalog rotates it Y-up) and one entry whose model is missing."""
    v, f, uv = box_mesh(extents=(1.0, 1.0, 1.0))
    tmp = path.parent / "crate_src"
    write_obj(tmp / "crate.obj", v, f, uv, texture="crate.png")
    checker(32).save(tmp / "crate.png")
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("PluginFurnitureCatalog.properties", PROPERTIES.encode("latin-1"))
        z.writestr("LICENSE.TXT", "LICENSE\n\nhttp://creativecommons.org/licenses/by/3.0/us/\n")
        for name in ("crate.obj", "crate.mtl", "crate.png"):
            z.write(tmp / name, f"lib/crate/{name}")
        z.writestr("lib/crate/LICENSE.txt", "by Alice")
    return v


def test_sh3f_library(tmp_path):
    lib = tmp_path / "My Lib.sh3f"
    v = make_sh3f(lib)
    objects, problems = discover(lib)
    assert [o.object_id for o in objects] == ["my_lib__crate"]
    assert problems and problems[0][0] == "my_lib__ghost" and "not found" in problems[0][1]
    o = objects[0]
    assert (o.name, o.category, o.creator, o.license) == ("Cräte", "Boxes", "Alice Example", "CC-BY-3.0-US")
    assert o.size_cm == (80.0, 40.0, 20.0) and o.model_rotation[1] == [0.0, 0.0, 1.0]

    out = tmp_path / "out"
    summary = build_dataset(lib, out, views=3, size=32, workers=0, progress=False)
    assert summary.rendered == 1 and "my_lib__ghost" in summary.skipped
    meta = json.loads((out / "my_lib__crate" / "meta.json").read_text())
    assert meta["source_file"].endswith("My Lib.sh3f!/lib/crate/crate.obj")
    assert meta["license_url"] == "http://creativecommons.org/licenses/by/3.0/us/"
    assert "lib/crate/LICENSE.txt" in meta["license_files"] and meta["textured"]
    # rotation then catalog size: extents along x, y, z in proportion width : height : depth
    X = _world_vertices(out / "my_lib__crate", v)
    ext = X.max(0) - X.min(0)
    assert np.allclose(ext / ext[0], [1.0, 20 / 80, 40 / 80], atol=1e-5)
    card = (out / "README.md").read_text()
    assert "CC-BY-3.0-US" in card and "Alice Example" in card and "Boxes" in card
    assert "## How it was made" in card and f"splatgen data build --source {lib}" in card


def test_properties_parser():
    text = "a=1\nb : two words\\\n   continued\nc\\=d=3\n! comment\ne \\u00e9t\\u00e9\n".encode("latin-1")
    p = parse_properties(text)
    assert p == {"a": "1", "b": "two wordscontinued", "c=d": "3", "e": "été"}


# ---------------------------------------------------------------------- splits
def test_split_is_deterministic_and_stable():
    ids = [f"lib__object{i}" for i in range(4000)]
    first = [split_of(i) for i in ids]
    assert first == [split_of(i) for i in ids]  # pure function of the id: adding objects moves none
    frac = {s: first.count(s) / len(ids) for s in SPLITS}
    assert abs(frac["train"] - 0.90) < 0.02 and abs(frac["val"] - 0.05) < 0.015
    # pinned, so a change of the hash (which would reshuffle every dataset) fails loudly
    pinned = {"scopia__bed1": "train", "blendswap-cc-0__bed2": "val", "blendswap-cc-0__armchair": "test",
              "blendswap-cc-0__littlePlant": "val", "blendswap-cc-0__ammoBox": "test"}
    assert {k: split_of(k) for k in pinned} == pinned


# ---------------------------------------------------------------------- pack + loader
def test_codec_loss_measures_what_a_quality_costs(built):
    loss = codec_loss(built, [None, 90, 20], split="train", objects=3, views=2)
    assert {q: r["views"] for q, r in loss.items()} == {None: 6, 90: 6, 20: 6}
    assert loss[None]["psnr_rgb"] == float("inf") and loss[None]["max_alpha_error"] == 0  # lossless is exact
    assert loss[90]["max_alpha_error"] == 0 == loss[20]["max_alpha_error"]  # alpha stays lossless
    # lower quality: fewer bytes, more error; the object's pixels carry it, not the empty background
    assert loss[20]["bytes_per_view"] < loss[90]["bytes_per_view"] < loss[None]["bytes_per_view"]
    assert 15 < loss[20]["psnr_rgb_object"] < loss[90]["psnr_rgb_object"] < 60
    assert loss[90]["psnr_rgb_object"] < loss[90]["psnr_rgb"]


def test_pack_and_loader_round_trip(built, tmp_path):
    packed = tmp_path / "packed"
    summary = pack_dataset(built, packed, splits=list(SPLITS), workers=1, progress=False)
    assert summary.objects == {"train": 3, "val": 1, "test": 1} and not summary.failed
    assert summary.views == {k: v * VIEWS for k, v in summary.objects.items()}
    index = json.loads((packed / "index.json").read_text())
    assert index["codec"] == "webp-lossless" and (packed / "DATASET_CARD.md").is_file()

    for split in SPLITS:
        a = MultiViewDataset(built, split, num_targets=3, eval_mode=True)
        b = MultiViewDataset(packed, split, num_targets=3, eval_mode=True)
        assert a.object_ids == b.object_ids and len(a) == summary.objects[split]
        for i in range(len(a)):
            x, y = a[i], b[i]
            for key in ("image", "alpha", "K", "target_images", "target_alphas", "target_viewmats", "target_Ks",
                        "input_viewmat"):
                assert torch.equal(x[key], y[key]), key  # lossless: identical
            assert x["object_id"] == y["object_id"] and x["category"] == y["category"]
            assert x["input_index"] == 0 and x["target_indices"].tolist() == [0, 1, 2]
            assert torch.allclose(x["target_viewmats"][0], torch.eye(4), atol=1e-5)
            assert x["image"].shape == (3, SIZE, SIZE) and x["target_images"].shape == (3, 3, SIZE, SIZE)
            # composited on the canonical background where alpha is 0
            bg = x["alpha"][0] == 0
            assert torch.allclose(x["image"][:, bg], torch.tensor(framing.BACKGROUND).view(3, 1))
            # the pixels are the PNG's pixels
            png = np.array(Image.open(built / x["object_id"] / "rgba_000.png"))
            assert torch.equal(x["alpha"][0], torch.from_numpy(png[..., 3]).float() / 255)

        # the GPU trainer's view bank: the whole split at once, same pixels from both forms
        images, viewmats, ids = load_split_arrays(built, split, workers=2)
        p_images, p_viewmats, p_ids = load_split_arrays(packed, split, workers=2)
        assert ids == p_ids == a.object_ids
        assert images.shape == (len(ids), VIEWS, SIZE, SIZE, 4) and images.dtype == np.uint8
        assert viewmats.shape == (len(ids), VIEWS, 4, 4) and viewmats.dtype == np.float32
        assert np.array_equal(images, p_images) and np.array_equal(viewmats, p_viewmats)
        for k, oid in enumerate(ids):
            cams = cameras.load_transforms(built / oid)
            assert np.allclose(viewmats[k], cams.viewmats.numpy(), atol=1e-6)  # dataset world frame
            for j in (0, VIEWS - 1):
                assert np.array_equal(images[k, j], np.asarray(Image.open(built / oid / cams.file_paths[j])))


def test_empty_split_packs_and_loads_sensibly(tmp_path):
    """A small dataset can leave val / test empty: packing them is not an error, loading them says so."""
    src = tmp_path / LIB
    v, f, _ = box_mesh()
    write_obj(src / "box.obj", v, f)  # shapes__box: train
    built = tmp_path / "d"
    build_dataset(src, built, views=2, size=32, workers=0, progress=False)
    packed = tmp_path / "p"
    summary = pack_dataset(built, packed, splits=list(SPLITS), workers=1, progress=False)
    assert summary.objects == {"train": 1, "val": 0, "test": 0} and "val: 0 objects" in summary.line()
    assert json.loads((packed / "index.json").read_text())["splits"]["val"] == []
    assert sorted(p.name for p in packed.glob("*.safetensors")) == ["train-00000.safetensors"]
    for root in (built, packed):
        assert len(MultiViewDataset(root, "train", num_targets=2)) == 1
        for split in ("val", "test"):
            with pytest.raises(DatasetError, match=f"split '{split}' has no objects"):
                MultiViewDataset(root, split)
            with pytest.raises(DatasetError, match="has no objects"):
                load_split_arrays(root, split)
    with pytest.raises(DatasetError, match="nothing to pack"):
        pack_dataset(built, tmp_path / "p2", splits=["val", "test"], workers=1, progress=False)
    # a split never packed is told apart from an empty one
    pack_dataset(built, tmp_path / "p3", splits=["train"], workers=1, progress=False)
    with pytest.raises(DatasetError, match="no packed split 'val'"):
        MultiViewDataset(tmp_path / "p3", "val")


def test_relative_cameras_project_into_target_masks(built):
    ds = MultiViewDataset(built, "train", num_targets=4)
    torch.manual_seed(0)
    oid = f"{LIB}__box"
    i = ds.object_ids.index(oid)
    verts, faces, _ = box_mesh()
    X = _world_vertices(built / oid, verts)
    samples, _ = trimesh.sample.sample_surface(trimesh.Trimesh(verts, faces, process=False), 1000, seed=1)
    S = _world_vertices(built / oid, samples)
    absolute = cameras.load_transforms(built / oid).viewmats.double()
    seen = set()
    for _ in range(5):
        item = ds[i]
        inp, tgt = item["input_index"], item["target_indices"].tolist()
        assert tgt[0] == inp and len(set(tgt)) == 4  # input first, no repeats
        seen.add(inp)
        V = item["input_viewmat"].double()
        assert torch.allclose(V, absolute[inp], atol=1e-6)
        # relative target camera ∘ input camera = the target's own camera
        assert torch.allclose(item["target_viewmats"].double() @ V, absolute[tgt], atol=1e-5)
        V = V.numpy()
        S_in, X_in = (P @ V[:3, :3].T + V[:3, 3] for P in (S, X))  # points in the input camera's frame
        for j in range(4):
            Vt, Kt = item["target_viewmats"][j].double().numpy(), item["target_Ks"][j].double().numpy()
            a = (item["target_alphas"][j, 0].numpy() * 255).round().astype(np.uint8)
            ps = np.floor(_project(Vt, Kt, S_in)).astype(int)
            assert _dilate(a > 0)[ps[:, 1], ps[:, 0]].all()  # as in test_cameras_match_rendered_views
            assert (a[ps[:, 1], ps[:, 0]] > 0).mean() > 0.9
            e = _silhouette_errors(a, _project(Vt, Kt, X_in)[faces], 2)
            assert e["n_off"] <= max(2, 0.01 * e["n_silhouette"]), e
    assert len(seen) > 1  # the input view is drawn at random


def test_lossy_pack_is_close(built, tmp_path):
    pack_dataset(built, tmp_path / "p", splits=["train"], quality=90, workers=1, progress=False)
    a = MultiViewDataset(built, "train", num_targets=2, eval_mode=True)
    b = MultiViewDataset(tmp_path / "p", "train", num_targets=2, eval_mode=True)
    x, y = a[0], b[0]
    assert torch.equal(x["alpha"], y["alpha"])  # alpha stays lossless
    assert (x["image"] - y["image"]).abs().mean() < 0.02


def test_dataloader_workers(tmp_path, built):
    pack_dataset(built, tmp_path / "p", splits=["train"], workers=1, progress=False)
    ds = MultiViewDataset(tmp_path / "p", "train", num_targets=2)
    loader = torch.utils.data.DataLoader(ds, batch_size=2, num_workers=1)
    batch = next(iter(loader))
    assert batch["target_viewmats"].shape == (2, 2, 4, 4) and len(batch["object_id"]) == 2


def test_pack_replaces_only_the_shards_it_wrote(tmp_path, built):
    out = tmp_path / "p"
    out.mkdir()
    mine = out / "train-00000.safetensors"
    mine.write_bytes(b"a file of mine")
    with pytest.raises(DatasetError, match="no earlier `splatgen data pack` wrote"):
        pack_dataset(built, out, splits=["train"], workers=1, progress=False)
    assert mine.read_bytes() == b"a file of mine" and sorted(p.name for p in out.iterdir()) == [mine.name]
    mine.unlink()
    for _ in range(2):  # a second pack replaces the first's shards
        pack_dataset(built, out, splits=["train"], workers=1, progress=False)
    assert len(MultiViewDataset(out, "train")) == 3


def test_pack_leaves_out_an_object_whose_view_is_a_program(tmp_path, built):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(built, data)
    victim = sorted(json.loads((data / "dataset.json").read_text())["splits"]["train"])[0]
    (data / victim / "rgba_000.png").write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 8 8\n{ } loop\n")
    summary = pack_dataset(data, tmp_path / "p", splits=["train"], workers=1, progress=False)
    assert list(summary.failed) == [victim] and "not an image in a supported format" in summary.failed[victim]
    assert summary.objects["train"] == 2


# ---------------------------------------------------------------------- errors and CLI
def test_errors(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        build_dataset(tmp_path / "nope", tmp_path / "o", progress=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no .sh3f"):
        build_dataset(tmp_path / "empty", tmp_path / "o", progress=False)
    with pytest.raises(DatasetError, match="neither"):
        MultiViewDataset(tmp_path / "empty")
    with pytest.raises(DatasetError, match="no such"):
        MultiViewDataset(tmp_path / "missing")
    with pytest.raises(DatasetError, match="dataset.json"):
        pack_dataset(tmp_path / "empty", tmp_path / "p", progress=False)
    (tmp_path / "only_bad").mkdir()
    (tmp_path / "only_bad" / "x.obj").write_text("")
    with pytest.raises(DatasetError, match="no object could be rendered"):
        build_dataset(tmp_path / "only_bad", tmp_path / "o2", workers=0, progress=False)


def test_cli_build_and_pack(mesh_dir, tmp_path, capsys):
    from splatgen.core.cli import main

    out, packed = tmp_path / "d", tmp_path / "p"
    # --workers 1: the rendering runs in a separate process, as a real build does
    assert main(["data", "build", "--source", str(mesh_dir), "--out", str(out), "--views", "2", "--size", "32",
                 "--limit", "2", "--workers", "1", "--no-progress"]) == 0
    assert "2 rendered" in capsys.readouterr().out
    index = json.loads((out / "dataset.json").read_text())
    assert len(index["objects"]) == 2 and index["views"] == 2 and index["size"] == 32
    split = next(s for s, ids in index["splits"].items() if ids)
    assert main(["data", "pack", "--data", str(out), "--out", str(packed), "--splits", split, "--no-progress"]) == 0
    assert (packed / "index.json").is_file()
    assert main(["data", "pack", "--data", str(tmp_path / "none"), "--out", str(packed)]) == 2
    assert "no such dataset folder" in capsys.readouterr().err
