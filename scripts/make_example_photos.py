#!/usr/bin/env python3
"""Make the example photos in assets/examples/*.png: renders of real CC0 objects with alpha.

Each is a 512×384 RGBA "photo" of one object of Debian's ``sweethome3d-furniture`` package
(BlendSwap-CC-0.sh3f; creators and licence in assets/examples/README.md), lit and rasterised with
the dataset builder's own renderer (:mod:`splatgen.core.data.mesh_render`), but seen the way a
photo sees it: a landscape frame, the object off centre and at its own size, so the GUI's image
preparation (crop, centre, scale to the training framing) has real work to do. The objects are
from the dataset's *test* split: the shipped models never saw them.

    .venv/bin/python scripts/make_example_photos.py       # rewrites assets/examples/<name>.png

Needs the apt package sweethome3d-furniture (scripts/install.sh installs it). Deterministic.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from splatgen.core.cameras import intrinsics_from_fov, orbit_viewmat
from splatgen.core.data import mesh_render
from splatgen.core.data.sources import read_catalog

LIBRARY = "/usr/share/sweethome3d/furniture/BlendSwap-CC-0.sh3f"
OUT = Path(__file__).resolve().parent.parent / "assets" / "examples"
WIDTH, HEIGHT = 512, 384
FOV_DEG = 45.0

# name: (object id, azimuth°, elevation°, camera distance, look-at offset (world x, y, z))
PHOTOS = {
    "armchair": ("blendswap-cc-0__armchair", 35.0, 14.0, 2.1, (0.25, 0.0, 0.0)),
    "biplane": ("blendswap-cc-0__cartoon_biplane", -40.0, 22.0, 2.3, (-0.2, 0.05, 0.0)),
    "sofa": ("blendswap-cc-0__sofa2", 25.0, 12.0, 2.0, (0.0, 0.08, 0.0)),
    "bar_stool": ("blendswap-cc-0__silla2", -20.0, 10.0, 2.4, (-0.3, 0.0, 0.0)),
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    objects, _ = read_catalog(LIBRARY)
    by_id = {o.object_id: o for o in objects}
    renderer = mesh_render.MeshRenderer(supersample=3)
    K = intrinsics_from_fov(FOV_DEG, WIDTH, HEIGHT).numpy()
    for name, (object_id, az, el, dist, offset) in PHOTOS.items():
        obj = by_id.get(object_id)
        if obj is None:
            print(f"{object_id} not found in {LIBRARY}", file=sys.stderr)
            return 1
        model = mesh_render.load_parts(obj.container, obj.model_path)
        parts = mesh_render.transform_parts(
            model.parts, mesh_render.normalisation_matrix(model.parts, obj.model_rotation, obj.size_cm))
        viewmat = orbit_viewmat(az, el, dist, target=(-offset[0], -offset[1], -offset[2])).numpy()
        rgba = renderer.render(parts, viewmat[None].astype(np.float64), K, WIDTH, HEIGHT)[0]
        path = args.out / f"{name}.png"
        Image.fromarray(rgba, "RGBA").save(path, optimize=True)
        print(f"wrote {path}: {obj.name} by {obj.creator} ({obj.license}), {path.stat().st_size // 1024} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
