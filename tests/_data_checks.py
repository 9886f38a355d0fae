"""Checks shared by the source-reader tests (tests/test_data_sources*.py): not a test module itself.

Each reader test writes a tiny file of its format, builds a dataset from it and checks that the
mesh's own vertices, moved by the normalisation recorded in ``meta.json`` and projected with the
cameras read back from ``transforms.json``, land in the rendered alpha masks (the numpy
rasteriser of tests/test_data.py), and renders one front view to look at texture orientation and
colours.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from splatgen.core import cameras
from test_data import _dilate, _matches_true_area, _project, _silhouette_errors

SIZE = 64


def build(source: Path, out: Path, views: int = 4, size: int = SIZE, **kwargs):
    from splatgen.core.data.build import build_dataset

    return build_dataset(source, out, views=views, size=size, seed=1, workers=0, progress=False, **kwargs)


def assert_vertices_in_masks(folder: Path, vertices: np.ndarray, faces: np.ndarray) -> None:
    """The triangles ``faces`` of ``vertices`` ``(N, 3)`` (the model frame the reader should produce,
    Y up, right-handed) cover the rendered alpha masks of every view of ``folder``."""
    meta = json.loads((folder / "meta.json").read_text())
    M = np.array(meta["normalization"])
    X = np.asarray(vertices, np.float64) @ M[:3, :3].T + M[:3, 3]
    cams = cameras.load_transforms(folder)
    errors = []
    for j in range(len(cams)):
        alpha = np.asarray(Image.open(folder / cams.file_paths[j]))[..., 3]
        V, K = cams.viewmats[j].double().numpy(), cams.Ks[j].double().numpy()
        uv = _project(V, K, X)
        errors.append(_silhouette_errors(alpha, uv[np.asarray(faces)], meta["supersample"]))
        p = np.clip(np.floor(uv).astype(int), 0, alpha.shape[0] - 1)
        assert _dilate(alpha > 0)[p[:, 1], p[:, 0]].all(), f"view {j}: vertices off the mask"
    assert _matches_true_area(errors), errors


def front_view(model, size: int = SIZE) -> np.ndarray:
    """``(size, size, 4)`` uint8 of a loaded model, normalised, seen level from +Z (image right = +X)."""
    from splatgen.core.data.mesh_render import MeshRenderer, normalisation_matrix, transform_parts

    parts = transform_parts(model.parts, normalisation_matrix(model.parts))
    vm = cameras.orbit_viewmat(0.0, 0.0).numpy()[None]
    K = cameras.canonical_intrinsics(size).numpy()
    return MeshRenderer().render(parts, vm, K, size, size)[0]


def quad_texture(n: int = 32, alpha_right: int = 255) -> np.ndarray:
    """``(n, n, 4)`` uint8: top half red, bottom half blue (image rows from the top); the right half's
    alpha is ``alpha_right`` (a team-colour mask or a cut-out, depending on the material)."""
    tex = np.zeros((n, n, 4), np.uint8)
    tex[: n // 2] = (255, 0, 0, 255)
    tex[n // 2:] = (0, 0, 255, 255)
    tex[:, n // 2:, 3] = alpha_right
    return tex


def quadrants(img: np.ndarray) -> dict[str, np.ndarray]:
    """RGBA at the centres of the four quadrants of the middle of a front view of a unit quad."""
    s = img.shape[0]
    c, d = s // 2, s // 8
    return {"top_left": img[c - d, c - d].astype(int), "top_right": img[c - d, c + d].astype(int),
            "bottom_left": img[c + d, c - d].astype(int), "bottom_right": img[c + d, c + d].astype(int)}
