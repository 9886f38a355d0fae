"""``splatgen eval``: PSNR / SSIM (and diversity) of a model on held-out objects."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from .common import positive_int


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "eval", help="evaluate a model on a dataset split (PSNR, SSIM, best-of-K, diversity)",
        description="Frame 0 of each object is the input, every other frame a target. Prints the means over "
                    "objects and writes them (and per-object rows) as JSON.")
    p.add_argument("--data", required=True, type=Path,
                   help="a dataset root built by `splatgen data build` (see --split), or a folder of object folders")
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
    p.add_argument("--max-objects", type=positive_int, default=None, help="only the first N objects")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("-o", "--json", type=Path, default=None, help="write the results here (a .json file)")
    p.add_argument("--posterior-context", type=int, default=None, metavar="N",
                   help="diagnostic for the diffusion model: score its VAR decoding the posterior latent of the input "
                        "view plus N other views (novel = the views it did not see) instead of samples")
    p.add_argument("--no-progress", action="store_true")
    return p


def run(args: argparse.Namespace) -> int:
    from ..errors import SplatgenError
    from ..evaluation import evaluate, evaluate_posterior, find_objects
    from ..generator import GenerationSettings, load_generator
    from ..atomic import atomic_write
    from .common import check_output_file, check_output_path, make_output_dir

    if args.samples < 1:
        raise SplatgenError(f"--samples must be at least 1, got {args.samples}")
    if args.posterior_context is not None and args.posterior_context < 0:
        raise SplatgenError(f"--posterior-context must be 0 or more, got {args.posterior_context}")
    if args.json:
        check_output_file(args.json)  # before the work, not after it
    objects = find_objects(args.data, args.split)[: args.max_objects]
    t0 = time.time()
    gen = load_generator(args.model, args.device)
    load_seconds = round(time.time() - t0, 2)
    if args.posterior_context is not None:
        result = evaluate_posterior(gen, objects, args.posterior_context, seed=args.seed, skip_weight=args.skip_weight,
                                    progress=not args.no_progress)
    else:
        k = args.samples if gen.stochastic else 1
        settings = GenerationSettings(guidance=args.guidance, skip_weight=args.skip_weight, steps=args.steps,
                                      scheduler=args.scheduler, seed=args.seed, num_samples=k, strength=args.strength)
        result = evaluate(gen, objects, settings, progress=not args.no_progress)
    result["load_seconds"] = load_seconds
    result["command"] = "splatgen eval " + " ".join(_argv_of(args))
    for key in ("objects", "input_psnr", "input_ssim", "input_ms_ssim", "input_saturation_ratio", "novel_psnr",
                "novel_ssim", "novel_ms_ssim",
                "best_of_k_novel_psnr", "k",
                "diversity_novel_psnr", "diversity_input_psnr", "context_psnr", "num_context"):
        if key in result:
            v = result[key]
            print(f"{key:22s} {v:.3f}" if isinstance(v, float) else f"{key:22s} {v}")
    if "per_category" in result:
        main_key = "best_of_k_novel_psnr" if "best_of_k_novel_psnr" in result else "novel_psnr"
        print(f"per category ({main_key}):")
        for category, means in result["per_category"].items():
            print(f"  {category:20s} {means['objects']:4d} objects  {means[main_key]:.3f}")
    if args.json:
        make_output_dir(args.json.parent)
        atomic_write(check_output_path(args.json), (json.dumps(result, indent=1) + "\n").encode())
        print(f"wrote {args.json}")
    return 0


def _argv_of(args: argparse.Namespace) -> list[str]:
    import sys

    return sys.argv[2:] if len(sys.argv) > 2 and sys.argv[1] == "eval" else []
