"""``splatgen eval``: PSNR / SSIM, shape (Chamfer, F-score, volume IoU) and diversity of a model on held-out objects."""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

from .common import positive_int


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "eval", help="evaluate a model on a dataset split (PSNR, SSIM, shape, best-of-K, diversity)",
        description="Frame 0 of each object is the input, every other frame a target. Where the objects have "
                    "surface samples (the data builder's surface.safetensors, or a packed val/test split), the "
                    "generated splats' shape is measured against them too: Chamfer distance, F-score and volume "
                    "IoU, in world units of the normalised frame (bounding-sphere radius 0.5). Prints the means "
                    "over objects and writes them (and per-object and per-category rows) as JSON.")
    p.add_argument("--data", required=True, type=Path,
                   help="a dataset root built by `splatgen data build` or packed by `splatgen data pack` (see "
                        "--split), or a folder of object folders")
    p.add_argument("--split", default="test", help="split of a dataset root (default: test)")
    p.add_argument("-m", "--model", default=None, help="model folder or shipped model name (default: the shipped diffusion model)")
    p.add_argument("-n", "--samples", "-k", type=int, default=4, help="samples per object for stochastic models (default 4)")
    p.add_argument("--steps", type=int, default=None, help="denoising steps (default: the model's)")
    p.add_argument("--guidance", type=float, default=None)
    p.add_argument("--skip-weight", type=float, default=None)
    p.add_argument("--scheduler", choices=("ddim", "dpm"), default=None)
    p.add_argument("--strength", type=float, default=None,
                   help="fraction of the schedule to run: 1 = from pure noise, below 1 = from the teacher "
                        "regressor's object (default: the model's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-colour-match", dest="colour_match", action="store_false",
                   help="score the model's own colours (default: matched to the input view, as generation does)")
    p.add_argument("--max-objects", type=positive_int, default=None, help="only the first N objects")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--fscore-threshold", type=float, default=None, metavar="D",
                   help="distance for the F-score, world units (default 0.05: 5%% of the object's diameter)")
    p.add_argument("-o", "--json", type=Path, default=None,
                   help="write every figure here (a .json file): means, per category, per object")
    p.add_argument("--table", action="store_true",
                   help="also print a table (Markdown) of the main figures per category and overall")
    p.add_argument("--posterior-context", type=int, default=None, metavar="N",
                   help="diagnostic for the diffusion model: score its VAR decoding the posterior latent of the input "
                        "view plus N other views (novel = the views it did not see) instead of samples")
    p.add_argument("--perceptual", nargs="?", const="shipped", default=None, metavar="FOLDER",
                   help="also the KID between generated and real novel views and the category accuracy, on the "
                        "features of the classifier trained here (default: the shipped one, assets/models/perceptual)")
    p.add_argument("--no-progress", action="store_true")
    return p


def run(args: argparse.Namespace) -> int:
    from ..errors import SplatgenError
    from ..evaluation import evaluate, evaluate_posterior, find_objects
    from ..geometry_metrics import FSCORE_THRESHOLD
    from ..generator import GenerationSettings, load_generator
    from ..atomic import atomic_write
    from ..benchmarks import machine_info
    from .common import check_output_file, check_output_path, make_output_dir

    if args.samples < 1:
        raise SplatgenError(f"--samples must be at least 1, got {args.samples}")
    if args.posterior_context is not None and args.posterior_context < 0:
        raise SplatgenError(f"--posterior-context must be 0 or more, got {args.posterior_context}")
    threshold = FSCORE_THRESHOLD if args.fscore_threshold is None else args.fscore_threshold
    if not (math.isfinite(threshold) and threshold > 0):
        raise SplatgenError(f"--fscore-threshold must be a positive distance, got {args.fscore_threshold}")
    if args.json:
        check_output_file(args.json)  # before the work, not after it
    objects = find_objects(args.data, args.split)[: args.max_objects]
    t0 = time.time()
    gen = load_generator(args.model, args.device)
    load_seconds = round(time.time() - t0, 2)
    if args.posterior_context is not None:
        result = evaluate_posterior(gen, objects, args.posterior_context, seed=args.seed, skip_weight=args.skip_weight,
                                    progress=not args.no_progress, fscore_threshold=threshold)
    else:
        k = args.samples if gen.stochastic else 1
        settings = GenerationSettings(guidance=args.guidance, skip_weight=args.skip_weight, steps=args.steps,
                                      scheduler=args.scheduler, seed=args.seed, num_samples=k, strength=args.strength,
                                      colour_match=args.colour_match)
        perceptual = None
        if args.perceptual is not None:
            from ..perceptual import load_model, shipped_model

            folder = shipped_model() if args.perceptual == "shipped" else args.perceptual
            perceptual = load_model(folder, "cpu" if gen.device.type == "cpu" else gen.device)
        result = evaluate(gen, objects, settings, progress=not args.no_progress, fscore_threshold=threshold,
                          perceptual=perceptual)
    result["load_seconds"] = load_seconds
    result["command"] = "splatgen eval " + " ".join(_argv_of(args))
    result["machine"] = machine_info()  # where and when: the figures are compared across machines and days
    result["machine"]["load_average_1min"] = round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None
    for key in ("objects", "input_psnr", "input_ssim", "input_ms_ssim", "input_saturation_ratio", "novel_psnr",
                "novel_ssim", "novel_ms_ssim",
                "best_of_k_novel_psnr", "k",
                "diversity_novel_psnr", "diversity_input_psnr", "consistency_psnr", "kid_novel", "novel_category_accuracy",
                "real_category_accuracy", "context_psnr", "num_context",
                "geometry_objects", "chamfer", "chamfer_accuracy", "chamfer_completeness", "fscore", "precision",
                "recall", "volume_iou", "best_of_k_chamfer", "best_of_k_fscore", "best_of_k_volume_iou",
                "diversity_chamfer"):
        if key in result:
            v = result[key]
            print(f"{key:22s} {v:.4f}" if isinstance(v, float) else f"{key:22s} {v}")
    if "chamfer" not in result:
        print("geometry               not measured: the objects have no surface samples")
    else:
        print(f"(geometry: world units, object radius 0.5; F-score at {threshold:g})")
    if args.table:
        print(format_table(result))
    elif "per_category" in result:
        main_key = "best_of_k_novel_psnr" if "best_of_k_novel_psnr" in result else "novel_psnr"
        print(f"per category ({main_key}):")
        for category, means in result["per_category"].items():
            print(f"  {category:20s} {means['objects']:4d} objects  {_fmt(means.get(main_key), 3)}")
    if args.json:
        make_output_dir(args.json.parent)
        atomic_write(check_output_path(args.json), (json.dumps(result, indent=1) + "\n").encode())
        print(f"wrote {args.json}")
    return 0


#: The table's columns: (summary key, heading, decimals); a column shows when the summary has its key.
TABLE_COLUMNS = (
    ("input_psnr", "input PSNR", 2), ("novel_psnr", "novel PSNR", 2), ("novel_ssim", "novel SSIM", 3),
    ("best_of_k_novel_psnr", "best-of-k novel PSNR", 2), ("diversity_novel_psnr", "diversity PSNR", 2),
    ("context_psnr", "context PSNR", 2), ("consistency_psnr", "view consistency PSNR", 2),
    ("chamfer", "Chamfer", 4), ("fscore", "F-score", 3), ("volume_iou", "volume IoU", 3),
    ("best_of_k_chamfer", "best-of-k Chamfer", 4), ("best_of_k_fscore", "best-of-k F-score", 3),
    ("best_of_k_volume_iou", "best-of-k IoU", 3), ("diversity_chamfer", "diversity Chamfer", 4),
)


def _fmt(v, decimals: int) -> str:
    return "–" if v is None else f"{v:.{decimals}f}"


def format_table(result: dict) -> str:
    """A Markdown table of ``splatgen eval``'s summary: one row per category (when the objects have
    categories) and one for all objects; a column per figure the summary holds."""
    cols = [c for c in TABLE_COLUMNS if c[0] in result]
    geometry = "geometry_objects" in result
    head = ["category", "objects", *(["with surface"] if geometry else []), *(c[1] for c in cols)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    rows = [*result.get("per_category", {}).items(), ("all", result)]
    for name, means in rows:
        cells = [f"**{name}**" if name == "all" else name, str(means["objects"]),
                 *([str(means.get("geometry_objects", 0))] if geometry else []),
                 *(_fmt(means.get(key), d) for key, _, d in cols)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _argv_of(args: argparse.Namespace) -> list[str]:
    import sys

    return sys.argv[2:] if len(sys.argv) > 2 and sys.argv[1] == "eval" else []
