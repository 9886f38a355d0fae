#!/usr/bin/env python3
"""Make the shipped example splat file, assets/examples/teddy_bear.ply, from a real textured mesh.

The mesh is the teddy bear of Debian's ``sweethome3d-furniture`` package (BlendSwap-CC-0.sh3f,
"Burlap Bear" by manitislate, CC0-1.0; credit in assets/examples/README.md). It is loaded and
placed at the canonical framing with the dataset builder's own helpers, then ``--count`` points
are sampled on its surface (area-weighted, fixed seed) and each becomes a small Gaussian: a flat
disc lying in the surface (two equal in-plane scales, a thin one along the normal), coloured by
the texture at that point and lit with the same fixed world lights the dataset views use, so it
looks like a training view from every side.
It is written with splatgen's own writer (INRIA 3DGS .ply, SH degree 0).

    .venv/bin/python scripts/make_example_splat.py            # rewrites assets/examples/teddy_bear.ply
    .venv/bin/splatgen render assets/examples/teddy_bear.ply -o /tmp/teddy.png

Needs the apt package sweethome3d-furniture (scripts/install.sh installs it).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
import torch

from splatgen.core.data import mesh_render
from splatgen.core.data.sources import read_catalog
from splatgen.core.gaussians import Gaussians
from splatgen.core.io import save_splats

LIBRARY = "/usr/share/sweethome3d/furniture/BlendSwap-CC-0.sh3f"
OBJECT_ID = "blendswap-cc-0__teddyBear"
OUT = Path(__file__).resolve().parent.parent / "assets" / "examples" / "teddy_bear.ply"


def sample_surface(parts: list[mesh_render.Part], count: int, rng: np.random.Generator):
    """``count`` area-weighted surface samples → positions, normals, RGBA colours, all ``(count, ·)``."""
    tris = [p.positions.reshape(-1, 3, 3).astype(np.float64) for p in parts]
    areas = np.concatenate([0.5 * np.linalg.norm(np.cross(t[:, 1] - t[:, 0], t[:, 2] - t[:, 0]), axis=1)
                            for t in tris])
    owner = np.concatenate([np.full(len(t), i) for i, t in enumerate(tris)])
    first = np.concatenate([[0], np.cumsum([len(t) for t in tris])[:-1]])
    pick = rng.choice(len(areas), size=count, p=areas / areas.sum())
    r1, r2 = rng.random(count), rng.random(count)
    s = np.sqrt(r1)
    bary = np.stack([1 - s, s * (1 - r2), s * r2], axis=1)  # uniform on the triangle

    pos = np.zeros((count, 3))
    nrm = np.zeros((count, 3))
    rgba = np.zeros((count, 4))
    for i, p in enumerate(parts):
        sel = np.nonzero(owner[pick] == i)[0]
        if not len(sel):
            continue
        tri = pick[sel] - first[i]
        corners = 3 * tri[:, None] + np.arange(3)[None]       # (k, 3) rows of the triangle soup
        b = bary[sel][:, :, None]
        pos[sel] = (p.positions[corners] * b).sum(1)
        nrm[sel] = (p.normals[corners] * b).sum(1)
        col = (p.colors[corners] * b).sum(1) * p.base_color[None]
        if p.texture is not None and p.uvs is not None:
            uv = (p.uvs[corners] * b).sum(1)
            h, w = p.texture.shape[:2]
            # OBJ v runs up from the image's bottom row; the texture's row 0 is its top (wrap repeat)
            x = np.floor((uv[:, 0] % 1.0) * w).astype(int).clip(0, w - 1)
            y = np.floor(((1.0 - uv[:, 1]) % 1.0) * h).astype(int).clip(0, h - 1)
            col = col * (p.texture[y, x].astype(np.float64) / 255.0)
        rgba[sel] = col
    nrm /= np.maximum(np.linalg.norm(nrm, axis=1, keepdims=True), 1e-12)
    return pos, nrm, rgba, float(areas.sum())


def lit(rgb: np.ndarray, normals: np.ndarray) -> np.ndarray:
    """The dataset renderer's fixed Lambertian lighting (:mod:`splatgen.core.data.mesh_render`)."""
    key = np.asarray(mesh_render.KEY_LIGHT[0]) / np.linalg.norm(mesh_render.KEY_LIGHT[0])
    fill = np.asarray(mesh_render.FILL_LIGHT[0]) / np.linalg.norm(mesh_render.FILL_LIGHT[0])
    light = (mesh_render.AMBIENT + mesh_render.SKY * normals[:, 1]
             + mesh_render.KEY_LIGHT[1] * np.maximum(normals @ key, 0)
             + mesh_render.FILL_LIGHT[1] * np.maximum(normals @ fill, 0))
    return np.clip(rgb * light[:, None], 0, 1)


def disc_quats(normals: np.ndarray) -> np.ndarray:
    """wxyz quaternions ``(N, 4)`` of rotations taking the local z axis to ``normals`` ``(N, 3)``."""
    z = np.array([0.0, 0.0, 1.0])
    axis = np.cross(np.broadcast_to(z, normals.shape), normals)
    cos = normals[:, 2]
    q = np.concatenate([(1.0 + cos)[:, None], axis], axis=1)   # half-angle trick, unnormalised
    flip = cos < -1 + 1e-9                                      # normal = -z: turn about x
    q[flip] = [0.0, 1.0, 0.0, 0.0]
    return q / np.linalg.norm(q, axis=1, keepdims=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=20_000, help="number of splats (default 20000)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)

    objects, _ = read_catalog(LIBRARY)
    obj = next((o for o in objects if o.object_id == OBJECT_ID), None)
    if obj is None:
        print(f"{OBJECT_ID} not found in {LIBRARY}", file=sys.stderr)
        return 1
    model = mesh_render.load_parts(obj.container, obj.model_path)
    parts = [p for p in model.parts if not p.blend]  # opaque parts only (the bear has no others)
    parts = mesh_render.transform_parts(
        parts, mesh_render.normalisation_matrix(parts, obj.model_rotation, obj.size_cm))

    rng = np.random.default_rng(args.seed)
    # oversample, then drop samples in cut-out (transparent) texels, as the dataset renderer does
    pos, nrm, rgba, area = sample_surface(parts, int(args.count * 1.25), rng)
    keep = np.nonzero(rgba[:, 3] >= mesh_render.ALPHA_CUTOFF)[0][: args.count]
    if len(keep) < args.count:
        print(f"only {len(keep)} opaque samples; lower --count", file=sys.stderr)
        return 1
    pos, nrm, rgba = pos[keep], nrm[keep], rgba[keep]
    rgb = lit(rgba[:, :3], nrm)

    spacing = math.sqrt(area / args.count)      # mean distance between neighbouring samples
    sigma = 0.8 * spacing                       # in-plane std. dev.: neighbours overlap, no holes
    scales = np.tile([sigma, sigma, 0.1 * sigma], (args.count, 1))
    g = Gaussians.from_activated(
        means=torch.from_numpy(pos).float(),
        quats=torch.from_numpy(disc_quats(nrm)).float(),
        scales=torch.from_numpy(scales).float(),
        opacities=torch.full((args.count,), 0.95),
        rgb=torch.from_numpy(rgb).float(),
    )
    save_splats(args.out, g)
    print(f"wrote {args.out}: {args.count} splats from {obj.name} ({obj.creator}, {obj.license}), "
          f"sigma {sigma:.4f}, {args.out.stat().st_size / 2**20:.2f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
