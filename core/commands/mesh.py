"""``splatgen mesh``: a coloured triangle mesh (``.glb`` / ``.obj``) of a splat file.

The work is :func:`splatgen.core.mesh.export_mesh` (depth fusion, marching cubes, simplification,
vertex colours, placement); this module reads the splat file, passes the options and reports. The
splat file's own metadata (the model and licence :func:`splatgen.core.export.save_sample` records)
travels into the mesh's metadata under ``"source"``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ..errors import SplatgenError
from ..mesh import (DEFAULT_FACES, DEFAULT_RESOLUTION, DEFAULT_VIEWS, MAX_FACES, MAX_RESOLUTION, MESH_EXTENSIONS,
                    PIVOTS, SIZE_ALONG, UP_AXES, export_mesh, parse_size)
from ..render import BACKENDS
from .common import check_output_path, int_range


def _size(text: str) -> float:
    try:
        return parse_size(text)
    except SplatgenError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "mesh",
        help="turn a splat file into a coloured mesh (.glb / .obj)",
        description="Mesh a splat file: depth rendered from many views fused into a TSDF, marching cubes, "
                    "simplified to --faces triangles, vertex colours from the renders. The file is in metres "
                    "(glTF's Y up by default, as Blender's importer expects); size, pivot and up axis are "
                    "recorded in its metadata (glTF asset.extras, the OBJ comment header).",
    )
    p.add_argument("file", type=Path, help="splat file: INRIA 3DGS .ply or .splat (splatgen's object frame: Y up)")
    p.add_argument("-o", "--output", type=Path, required=True, help="output mesh: " + " or ".join(MESH_EXTENSIONS))
    p.add_argument("--faces", type=int_range(4, MAX_FACES), default=DEFAULT_FACES,
                   help=f"face budget after simplification (default {DEFAULT_FACES})")
    p.add_argument("--size", type=_size, metavar="SIZE",
                   help="real-world size of the --size-along side, e.g. 1.8m, 180cm, 1800mm (a bare number is "
                        "metres); default: one splat world unit is one metre")
    p.add_argument("--size-along", choices=SIZE_ALONG, default="longest",
                   help="which side of the bounding box --size sets (height: along the up axis; default longest)")
    p.add_argument("--pivot", choices=PIVOTS, default="base",
                   help="origin at the centre of the bottom (base, default) or of the bounding box (center)")
    p.add_argument("--up", choices=UP_AXES, default="y", help="up axis of the file (default y, glTF's convention)")
    p.add_argument("--resolution", type=int_range(8, MAX_RESOLUTION), default=DEFAULT_RESOLUTION,
                   help=f"voxels along the longest side (default {DEFAULT_RESOLUTION}; detail ≈ side / resolution)")
    p.add_argument("--views", type=int_range(6, 512), default=DEFAULT_VIEWS,
                   help=f"rendered views fused (default {DEFAULT_VIEWS})")
    p.add_argument("--backend", choices=BACKENDS, default="auto",
                   help="renderer of the views: auto (gsplat on CUDA, else OpenGL, else torch)")
    return p


def run(args: argparse.Namespace) -> int:
    from ..io import load_splats

    check_output_path(args.output, dict.fromkeys(MESH_EXTENSIONS))   # fail before the work, not after it
    gaussians = load_splats(args.file)
    if gaussians.num_gaussians == 0:
        raise SplatgenError(f"{args.file}: holds no splats; nothing to mesh")
    if args.backend == "gsplat":
        from ..devices import pick_device

        gaussians = gaussians.to(pick_device("cuda"))
    source = {"file": args.file.name, **_source_metadata(args.file)}
    start = time.perf_counter()
    result = export_mesh(gaussians, args.output, faces=args.faces, size_m=args.size, size_along=args.size_along,
                         pivot=args.pivot, up=args.up, resolution=args.resolution, views=args.views,
                         backend=args.backend, metadata={"source": source})
    placement = result.metadata["placement"]
    extent = [hi - lo for lo, hi in zip(placement["bounds_min"], placement["bounds_max"])]
    print(f"wrote {result.path} ({result.mesh.num_faces:,} faces, {len(result.mesh.vertices):,} vertices; "
          f"{' x '.join(f'{e:.3f}' for e in extent)} m, pivot {args.pivot}, {args.up.upper()} up) "
          f"in {time.perf_counter() - start:.1f} s")
    return 0


def _source_metadata(path: Path) -> dict:
    """The splat file's own metadata (model, licence, ...), or nothing when it has none or cannot say."""
    from ..errors import SplatFileError

    try:
        if path.suffix.lower() == ".ply":
            from ..io.ply import read_ply_metadata

            return read_ply_metadata(path)
        from ..io.splat import read_splat_metadata

        return read_splat_metadata(path)
    except SplatFileError:
        return {}
