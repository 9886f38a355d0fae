"""``splatgen distil images`` and ``collect``: the command line of :mod:`splatgen.core.distil` (issue #33)."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import check_output_dir, positive_int


def images(args: argparse.Namespace) -> int:
    from ..distil.images import STAMPS_DIR, build_image_set

    check_output_dir(args.out)
    stamps = None if args.no_stamps else (args.stamps or STAMPS_DIR)
    index = build_image_set(args.out, stamps, args.data, split=args.split, views_per_object=args.views_per_object)
    by_source = {}
    for r in index["images"]:
        by_source[r["source"]] = by_source.get(r["source"], 0) + 1
    print(f"wrote {len(index['images'])} images to {args.out}: " + ", ".join(f"{n} {s}" for s, n in by_source.items())
          + f"; {index['counts']['distil']} to distil on, {index['counts']['holdout']} held out")
    if "stamps" in index["sources"]:
        print(f"stamps: {index['sources']['stamps']['kept']} photos kept, {index['sources']['stamps']['skipped']} "
              "left out (drawings, stamps to paint, cartoons, mirror copies)")
    return 0


def collect(args: argparse.Namespace) -> int:
    from ..distil.collect import collect as run_collect

    check_output_dir(args.out)

    def progress(done: int, total: int) -> None:
        if not args.no_progress:
            print(f"  {done}/{total} items", flush=True)

    index = run_collect(args.teacher, args.images, args.out, noises_per_image=args.noises_per_image,
                        guidances=tuple(args.guidance), steps=args.steps, batch_size=args.batch_size,
                        shard_items=args.shard_items, max_items=args.max_items, seed=args.seed, device=args.device,
                        progress=progress, num_views=args.num_views)
    print(f"{args.out}: {index['items']} of {index['planned_items']} items in {len(index['shards'])} shards "
          f"(teacher {index['teacher']['name']}, DDIM {index['steps']} steps, guidance "
          f"{', '.join(f'{g:g}' for g in index['guidances'])})")
    return 0


STEPS = {"images": images, "collect": collect}


def run(args: argparse.Namespace) -> int:
    if args.distil_command is None:
        args.command_parser.print_help()
        return 0
    return STEPS[args.distil_command](args)


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``distil`` (with ``images`` and ``collect``) to the ``splatgen`` command line."""
    distil = subparsers.add_parser("distil", help="the one-step generator's distillation data (images, teacher runs)",
                                   description="Build the distillation image set and collect the multi-view teacher's "
                                               "outputs on it, for the one-step generator (seed 002).")
    sub = distil.add_subparsers(dest="distil_command", metavar="STEP")
    i = sub.add_parser("images", help="RGBA images of single objects, no 3D: stamp photos and dataset views",
                       description="Write the distillation image set: the photos among Debian's tuxpaint-stamps-default "
                                   "cut-outs (drawings, letters and stamps meant to be painted are left out; a tenth "
                                   "of the photos is held out) and views of a dataset's split, framed as the "
                                   "generator's 128² input, with each image's licence.")
    i.add_argument("--out", "-o", type=Path, required=True, help="a new folder")
    i.add_argument("--stamps", type=Path, default=None,
                   help="the stamps folder (default /usr/share/tuxpaint/stamps, Debian's tuxpaint-stamps-default)")
    i.add_argument("--no-stamps", action="store_true", help="dataset views only")
    i.add_argument("--data", type=Path, default=None, help="a built or packed dataset whose views join the set")
    i.add_argument("--split", default="train", help="its split (default train)")
    i.add_argument("--views-per-object", type=positive_int, default=1, metavar="K",
                   help="views of each dataset object, spread over its orbit (default 1)")
    c = sub.add_parser("collect", help="run the multi-view teacher over an image set: {noise, cameras, input, views}",
                       description="For every image of an image set's distil split and several seeds, run the "
                                   "multi-view teacher's deterministic DDIM from that seed's noise and write the "
                                   "quadruples in shards; a stopped collection continues where it stopped.")
    c.add_argument("--images", type=Path, required=True, help="an image set (splatgen distil images)")
    c.add_argument("--teacher", "--model", dest="teacher", required=True,
                   help="the multi-view model folder (a latent-diffusion one, e.g. assets/models/diffusion, stands in "
                        "until the multi-view model is good enough to distil)")
    c.add_argument("--num-views", type=positive_int, default=8, metavar="N",
                   help="the stand-in teacher's rendered views per item, view 0 the input camera (default 8)")
    c.add_argument("--out", "-o", type=Path, required=True, help="the collection folder (new, or one to continue)")
    c.add_argument("--noises-per-image", type=positive_int, default=2, metavar="K")
    c.add_argument("--guidance", type=float, nargs="+", default=[2.0], metavar="G",
                   help="classifier-free guidance; several values cycle over the items (default 2)")
    c.add_argument("--steps", type=positive_int, default=30, help="DDIM steps (default 30)")
    c.add_argument("--batch-size", type=positive_int, default=32)
    c.add_argument("--shard-items", type=positive_int, default=128)
    c.add_argument("--max-items", type=positive_int, default=None, help="stop after this many more items")
    c.add_argument("--seed", type=int, default=0, help="the first item's seed (default 0)")
    c.add_argument("--device", default="auto", help="auto | cpu | cuda")
    c.add_argument("--no-progress", action="store_true")
    return distil
