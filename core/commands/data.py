"""``splatgen data build``, ``sources``, ``verify``, ``regroup``, ``saturation``, ``sheet`` and ``pack``: the
command line of :mod:`splatgen.core.data`."""

from __future__ import annotations

import argparse

from .. import framing
from .common import check_output_dir, check_output_file, int_range, positive_int


def build(args: argparse.Namespace) -> int:
    from ..data.build import build_dataset

    check_output_dir(args.out)  # before any work: not a file, writable
    licences = [x for arg in (args.licence or []) for x in arg.split(",") if x.strip()] or None
    summary = build_dataset(args.source, args.out, views=args.views, size=args.size, limit=args.limit,
                            seed=args.seed, workers=args.workers, progress=not args.no_progress,
                            licences=licences, lighting=args.lighting, surface_points=args.surface_points,
                            sample=args.sample)
    print(summary.line())
    if summary.skipped:
        print(f"skipped objects and reasons: {summary.out / 'build_log.txt'}")
    return 0


def sources(args: argparse.Namespace) -> int:
    from ..data.sources import installed_sources

    rows = installed_sources(args.root or ["/"], count=not args.no_count)
    if not rows:
        print("no known source package found under " + ", ".join(args.root or ["/"]))
        return 1
    for r in rows:
        n = "?" if r["objects"] is None else f"{r['objects']} objects"
        lic = ", ".join(f"{k} {v}" for k, v in r["licences"].items())
        print(f"{r['package']:<30} {r['reader']:<13} {n:<14} {r['path']}" + (f"\n{'':<30} licences: {lic}" if lic else ""))
    if not args.no_count:
        print(f"{'total':<30} {'':<13} {sum(r['objects'] or 0 for r in rows)} objects")
    return 0


def verify(args: argparse.Namespace) -> int:
    from ..data.verify import verify_sources

    if args.out is not None:
        check_output_file(args.out)
    report = verify_sources(args.source, per_source=args.per_source, assimp=args.assimp, out=args.out)
    print(report.text())
    return 0 if report.ok else 1


def regroup(args: argparse.Namespace) -> int:
    import time

    from ..data.index import regroup as regroup_dataset

    t0 = time.perf_counter()
    index = regroup_dataset(args.data)
    m, counts = index["merged"], {k: len(v) for k, v in index["splits"].items()}
    print(f"{sum(counts.values())} objects in {m['groups']} groups of twins ({m['objects_in_groups']} objects; "
          f"{m['geometry_merged']} merged by geometry, {m['render_merged']} more by renders); splits: "
          + ", ".join(f"{k} {v}" for k, v in counts.items()) + f" in {time.perf_counter() - t0:.1f} s")
    return 0


def saturation(args: argparse.Namespace) -> int:
    import json

    from ..data.saturation import survey

    report = survey(args.source, per_source=args.per_source, views=args.views, size=args.size, seed=args.seed)
    for name, row in [*report["sources"].items(), ("all", report["all"])]:
        if row.get("objects"):
            print(f"{name:<26} {row['objects']:>4} objects   saturation lit {row['lit']:.3f}  flat {row['flat']:.3f}  "
                  f"lit/flat {row['ratio']:.3f}  textures {row['texture']}")
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=1, ensure_ascii=False)
    return 0


def sheet(args: argparse.Namespace) -> int:
    from ..data.sheet import contact_sheets

    if args.out is not None:
        check_output_dir(args.out)
    for path in contact_sheets(args.data, args.out, columns=args.columns, frame=args.frame):
        print(path)
    return 0


def pack(args: argparse.Namespace) -> int:
    from ..data.pack import codec_loss, pack_dataset

    if args.compare_quality:
        qualities = [None if q == "lossless" else int(q) for q in args.compare_quality]
        for q, r in codec_loss(args.data, qualities, split=args.splits[0]).items():
            print(f"{'lossless' if q is None else f'quality {q}':<12} {r['bytes_per_view']:>8.0f} B a view   "
                  f"PSNR colour {r['psnr_rgb']:.2f} dB (object pixels {r['psnr_rgb_object']:.2f} dB), "
                  f"alpha {r['psnr_alpha']:.2f} dB, max alpha error {r['max_alpha_error']}   ({r['views']} views)")
        return 0

    from ..errors import SplatgenError

    check_output_dir(args.out)
    if not args.shard_mib > 0:
        raise SplatgenError(f"--shard-mib must be above 0, got {args.shard_mib:g}")
    summary = pack_dataset(args.data, args.out, splits=args.splits, quality=args.quality,
                           shard_mib=args.shard_mib, workers=args.workers, progress=not args.no_progress)
    print(summary.line())
    return 0


#: The steps of ``splatgen data``.
STEPS = {"build": build, "sources": sources, "verify": verify, "regroup": regroup, "saturation": saturation,
         "sheet": sheet, "pack": pack}


def run(args: argparse.Namespace) -> int:
    if args.data_command is None:  # `splatgen data` alone: its help
        args.command_parser.print_help()
        return 0
    return STEPS[args.data_command](args)


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``data`` (with ``build``, ``sources``, ``verify``, ``regroup``, ``saturation``, ``sheet`` and ``pack``) to the ``splatgen`` command line."""
    data = subparsers.add_parser("data", help="build and pack multi-view training data",
                                 description="Build multi-view RGBA datasets from 3D models and pack them.")
    sub = data.add_subparsers(dest="data_command", metavar="STEP")

    b = sub.add_parser(
        "build", help="render 3D models to a multi-view dataset",
        description=(
            "Render every object of each SOURCE to RGBA views at the canonical framing. A SOURCE is a game "
            "package's data as Debian installs it or as `dpkg-deb -x` unpacks it (0ad-data, megaglest-data, "
            "supertuxkart-data, flightgear-data-models/-ai; `splatgen data sources` lists those found), a "
            "SweetHome3D .sh3f library or a folder of them, or a folder of OBJ/GLB/GLTF/PLY/STL/OFF meshes; "
            "the reader is chosen from what the path holds. Each object is centred, scaled to a bounding "
            f"sphere of radius {framing.OBJECT_RADIUS} (Y up) and seen from distance {framing.CAMERA_DISTANCE} "
            f"with a {framing.FOV_DEG:g} degree field of view, at random azimuths in [0, 360) and elevations in "
            f"[{framing.ELEVATION_RANGE_DEG[0]:g}, {framing.ELEVATION_RANGE_DEG[1]:g}] degrees, under its own "
            "lights (fixed across its views). Writes one folder per object (transforms.json in the "
            "instant-ngp/nerfstudio convention, RGBA PNGs, surface.safetensors with surface samples, meta.json "
            "with creator, licence, source, category, lighting), dataset.json with a deterministic "
            "train/val/test split by geometry group (90/5/5: identical shapes never straddle splits) and a "
            "dataset card README.md. Objects that cannot be loaded are skipped with a one-line reason in "
            "OUT/build_log.txt; one bad object never stops the build. Re-running with the same settings "
            "resumes: finished objects are kept."))
    b.add_argument("--source", required=True, action="append",
                   help="a package's data folder or dpkg-deb tree, .sh3f file, or folder of meshes; repeat for several")
    b.add_argument("-o", "--out", required=True, help="dataset folder to create or resume")
    b.add_argument("--views", type=int_range(1, 1000), default=24, help="views per object, N (default 24)")
    b.add_argument("--size", type=int_range(16, 4096), default=framing.IMAGE_SIZE,
                   help=f"image side in pixels (default {framing.IMAGE_SIZE}; 256 for a 256² dataset)")
    b.add_argument("--limit", type=positive_int, default=None,
                   help="only the first K objects of each source (for a quick try)")
    b.add_argument("--sample", type=positive_int, default=None,
                   help="only K objects of each source, spread evenly over it (a quick look at its variety)")
    b.add_argument("--licence", action="append", metavar="LIST",
                   help="keep only these licences: families (cc0, cc-by, cc-by-sa, gpl), exact ids "
                        "(GPL-2.0-or-later) or presets (permissive, gpl3), comma-separated; e.g. cc0,cc-by")
    b.add_argument("--lighting", choices=("varied", "fixed"), default="varied",
                   help="varied: each object under its own lights (default); fixed: one rig for all")
    b.add_argument("--surface-points", type=int, default=10_000,
                   help="surface samples stored per object (default 10000; 0: none)")
    b.add_argument("--seed", type=int, default=0,
                   help="camera and lighting seed (default 0); an object's cameras and lights depend only on it and the object id")
    b.add_argument("--workers", type=int, default=None,
                   help="rendering processes (default: one per 2 CPU cores; 0: in this process)")
    b.add_argument("--no-progress", action="store_true", help="no progress bar")

    s = sub.add_parser(
        "sources", help="list the source packages installed and how many objects each gives",
        description=("Look for the game and furniture packages splatgen reads (0ad-data, megaglest-data, "
                     "supertuxkart-data, flightgear-data-models/-ai, sweethome3d-furniture) below each ROOT "
                     "(default /; also trees unpacked with `dpkg-deb -x`) and count the objects a build would "
                     "render from each, with their licences."))
    s.add_argument("--root", action="append", help="file-system root to look under (repeatable; default /)")
    s.add_argument("--no-count", action="store_true", help="only list what is installed, without counting objects")

    v = sub.add_parser(
        "verify", help="check the readers on real package files against independent facts",
        description=("For each SOURCE, read a sample of its models with splatgen's reader and compare with facts "
                     "read independently: vertex and face counts from assimp (`assimp info`, where assimp reads "
                     "the format), file-size and header arithmetic, and the game's own metadata (left/right prop "
                     "points and wheels, declared texture files). Writes a JSON report to --out if given."))
    v.add_argument("--source", required=True, action="append", help="a package's data (as for build); repeatable")
    v.add_argument("--per-source", type=int, default=40, help="models checked per source (default 40; 0: all)")
    v.add_argument("--assimp", default="assimp", help="the assimp command (Debian's assimp-utils)")
    v.add_argument("-o", "--out", default=None, help="JSON report path")

    g = sub.add_parser(
        "regroup", help="redo the groups, split and card of a built dataset (no rendering)",
        description=("Rewrite dataset.json and the dataset card of a built dataset from its object folders: "
                     "groups of twins (same geometry or near-identical signature views), the category-balanced "
                     "split by group, counts and saturation. Nothing is rendered (seconds for thousands of objects)."))
    g.add_argument("--data", required=True, help="built dataset folder (with dataset.json)")

    t = sub.add_parser(
        "saturation", help="do the renders wash colours out? lit against flat (albedo) saturation per source",
        description=("Render a few objects of each source as the builder lights them and flat (ambient 1: the "
                     "albedo), and print the mean HSV saturation of both and of the source textures."))
    t.add_argument("--source", required=True, action="append", help="a source (as for build); repeatable")
    t.add_argument("--per-source", type=int, default=12, help="objects a source, spread evenly (default 12)")
    t.add_argument("--views", type=int, default=8, help="views an object (default 8)")
    t.add_argument("--size", type=int, default=framing.IMAGE_SIZE, help="view size in pixels")
    t.add_argument("--seed", type=int, default=0, help="the build seed whose lights are used (default 0)")
    t.add_argument("--out", default=None, help="JSON report path")

    c = sub.add_parser(
        "sheet", help="contact sheets of a built dataset, one PNG a source",
        description=("Tile one view of every object of a built dataset (on the framing's background, labelled "
                     "with the object's category) into one PNG per source: sheet_<source>.png in OUT (default: "
                     "the dataset folder), to see at a glance that objects are upright, textured and centred."))
    c.add_argument("--data", required=True, help="built dataset folder (with dataset.json)")
    c.add_argument("-o", "--out", default=None, help="folder for the PNGs (default: the dataset folder)")
    c.add_argument("--columns", type=int_range(1, 1000), default=10, help="objects a row (default 10)")
    c.add_argument("--frame", type=int, default=0, help="which view of each object (default 0)")

    p = sub.add_parser(
        "pack", help="pack a built split into compact shards",
        description=(
            "Encode the views of built splits as WebP (lossless and bit-exact unless --quality) into a few "
            "safetensors shards with the cameras, plus index.json and the dataset card, for copying to a "
            "training machine; MultiViewDataset and load_split_arrays read the packed folder like the built "
            "one. Shards of the packed splits already in OUT are replaced; other splits there are kept. An "
            "empty split (a small dataset can leave val or test empty) is recorded as packed with no objects."))
    p.add_argument("--data", required=True, help="built dataset folder (with dataset.json)")
    p.add_argument("-o", "--out", required=True, help="folder for the shards and index.json")
    p.add_argument("--splits", nargs="+", default=["train"], help="splits to pack (default: train)")
    p.add_argument("--quality", type=int_range(1, 100), default=None,
                   help="lossy WebP colour quality 1-100 (default: lossless, which is exact and decodes faster)")
    p.add_argument("--shard-mib", type=float, default=4.0, help="approximate shard size in MiB (default 4)")
    p.add_argument("--compare-quality", nargs="+", metavar="Q",
                   help="pack nothing; print bytes a view and PSNR of decoded against original views for these "
                        "qualities (1-100 or 'lossless') on 60 objects of the first split")
    p.add_argument("--workers", type=int, default=None,
                   help="encoding processes (default: one per CPU core, at most 8)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return data
