"""``splatgen data build`` and ``splatgen data pack``."""

from __future__ import annotations

import argparse

from .. import framing


def _build(args: argparse.Namespace) -> int:
    from .build import build_dataset

    summary = build_dataset(args.source, args.out, views=args.views, size=args.size, limit=args.limit,
                            seed=args.seed, workers=args.workers, progress=not args.no_progress)
    print(summary.line())
    if summary.skipped:
        print(f"skipped objects and reasons: {summary.out / 'build_log.txt'}")
    return 0


def _pack(args: argparse.Namespace) -> int:
    from .pack import pack_dataset

    summary = pack_dataset(args.data, args.out, splits=args.splits, quality=args.quality,
                           shard_mib=args.shard_mib, workers=args.workers, progress=not args.no_progress)
    print(summary.line())
    return 0


def register(subparsers) -> None:
    """Add ``data`` (with ``build`` and ``pack``) to the ``splatgen`` command line."""
    data = subparsers.add_parser("data", help="build and pack multi-view training data",
                                 description="Build multi-view RGBA datasets from 3D models and pack them.")
    sub = data.add_subparsers(dest="data_command", metavar="STEP")
    data.set_defaults(func=lambda a: (data.print_help(), 0)[1])

    b = sub.add_parser(
        "build", help="render 3D models to a multi-view dataset",
        description=(
            "Render every object of SOURCE (a SweetHome3D .sh3f library, a folder of them, or a folder of "
            "OBJ/GLB/GLTF/PLY/STL/OFF meshes) to RGBA views at the canonical framing: each object is centred, "
            f"scaled to a bounding sphere of radius {framing.OBJECT_RADIUS} (catalog rotation and size applied, "
            f"Y up) and seen from distance {framing.CAMERA_DISTANCE} with a {framing.FOV_DEG:g} degree field of "
            "view, at random azimuths in [0, 360) and elevations in "
            f"[{framing.ELEVATION_RANGE_DEG[0]:g}, {framing.ELEVATION_RANGE_DEG[1]:g}] degrees. Writes one folder "
            "per object (transforms.json in the instant-ngp/nerfstudio convention, RGBA PNGs, meta.json with "
            "creator, licence, category and source file), dataset.json with a deterministic train/val/test "
            "split by object (90/5/5, a hash of the object id) and a dataset card README.md. Objects that "
            "cannot be loaded are skipped with a one-line reason in OUT/build_log.txt; one bad object never "
            "stops the build. Re-running with the same settings resumes: finished objects are kept."))
    b.add_argument("--source", required=True, help=".sh3f file, folder of .sh3f files, or folder of meshes")
    b.add_argument("--out", required=True, help="dataset folder to create or resume")
    b.add_argument("--views", type=int, default=24, help="views per object, N (default 24)")
    b.add_argument("--size", type=int, default=framing.IMAGE_SIZE,
                   help=f"image side in pixels (default {framing.IMAGE_SIZE})")
    b.add_argument("--limit", type=int, default=None, help="only the first K objects found (for a quick try)")
    b.add_argument("--seed", type=int, default=0,
                   help="camera sampling seed (default 0); an object's cameras depend only on it and the object id")
    b.add_argument("--workers", type=int, default=None,
                   help="rendering processes (default: one per 2 CPU cores; 0: in this process)")
    b.add_argument("--no-progress", action="store_true", help="no progress bar")
    b.set_defaults(func=_build)

    p = sub.add_parser(
        "pack", help="pack a built split into compact shards",
        description=(
            "Encode the views of built splits as WebP (lossless and bit-exact unless --quality) into a few "
            "safetensors shards with the cameras, plus index.json and the dataset card, for copying to a "
            "training machine; MultiViewDataset and load_split_arrays read the packed folder like the built "
            "one. Shards of the packed splits already in OUT are replaced; other splits there are kept. An "
            "empty split (a small dataset can leave val or test empty) is recorded as packed with no objects."))
    p.add_argument("--data", required=True, help="built dataset folder (with dataset.json)")
    p.add_argument("--out", required=True, help="folder for the shards and index.json")
    p.add_argument("--splits", nargs="+", default=["train"], help="splits to pack (default: train)")
    p.add_argument("--quality", type=int, default=None,
                   help="lossy WebP colour quality 1-100 (default: lossless, which is exact and decodes faster)")
    p.add_argument("--shard-mib", type=float, default=4.0, help="approximate shard size in MiB (default 4)")
    p.add_argument("--workers", type=int, default=None,
                   help="encoding processes (default: one per CPU core, at most 8)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_pack)
