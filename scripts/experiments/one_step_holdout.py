"""A one-step student against its teacher on the real photos held out of the distillation (#33's last target).

Held-out photos have no other views, so what can be compared is the seen side: each model's sample
(same seeds, same guidance) rendered at the input camera against the photo, its PSNR and the
saturation it keeps (the colours are matched to the photo by default, as in generation; with
``--no-colour-match`` the networks' own colours are compared), and the two models' agreement there.

    python scripts/experiments/one_step_holdout.py MODEL --images data/distil-images [--seeds 2] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import math
import warnings
from pathlib import Path

import numpy as np
import torch

from splatgen.core import framing
from splatgen.core.cameras import canonical_intrinsics
from splatgen.core.distil.images import ImageSet
from splatgen.core.evaluation import saturation_ratio
from splatgen.core.generator import GenerationSettings, load_generator
from splatgen.core.metrics import psnr
from splatgen.core.render import render


def front(sample) -> torch.Tensor:
    """The sample rendered at its input camera, ``(S, S, 3)``."""
    s = framing.IMAGE_SIZE
    out = render(sample.gaussians, sample.input_viewmat[None], canonical_intrinsics(s).to(sample.K), s, s,
                 background=torch.tensor(framing.BACKGROUND, dtype=torch.float32))
    return out.rgb[0].clamp(0, 1).cpu()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", type=Path)
    ap.add_argument("--images", type=Path, default=Path("data/distil-images"))
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--no-colour-match", action="store_true")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    torch.set_num_threads(2)
    warnings.filterwarnings("ignore", "Mean of empty slice")  # a grey object has no saturation ratio: NaN
    gen = load_generator(args.model, device="cpu")
    holdout = ImageSet(args.images, split="holdout")
    rows = []
    for k in range(len(holdout)):
        image = holdout.inputs([k])[0]
        settings = GenerationSettings(seed=0, num_samples=args.seeds, colour_match=not args.no_colour_match)
        student, teacher = gen.generate(image, settings), gen.refine(image, settings)
        photo, alpha = image[:3].permute(1, 2, 0), image[3:].permute(1, 2, 0)
        fs, ft = [front(x) for x in student], [front(x) for x in teacher]
        rows.append({"image": holdout.rows[k]["origin"],
                     "student_front_psnr": float(np.mean([float(psnr(f, photo)) for f in fs])),
                     "teacher_front_psnr": float(np.mean([float(psnr(f, photo)) for f in ft])),
                     "student_saturation_ratio": float(np.nanmean([saturation_ratio(f, photo, alpha) for f in fs])),
                     "teacher_saturation_ratio": float(np.nanmean([saturation_ratio(f, photo, alpha) for f in ft])),
                     "front_agreement_psnr": float(np.mean([float(psnr(a, b)) for a, b in zip(fs, ft)]))})
    keys = [k for k in rows[0] if k != "image"]
    summary = {k: float(np.nanmean([r[k] for r in rows if not math.isnan(r[k])])) for k in keys}
    result = {"model": str(args.model), "images": len(rows), "seeds": args.seeds,
              "colour_match": not args.no_colour_match, **summary, "per_image": rows}
    for k in keys:
        print(f"{k:28s} {summary[k]:.4f}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
