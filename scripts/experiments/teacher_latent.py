"""Experiment: how good a latent does the VAR encode from the regressor's renders of an object?

    python scripts/experiments/teacher_latent.py [STRENGTHS [JSON]]

The VAR's posterior from the input view plus two real other views decodes close to the regressor
(benchmarks/TRAINING.md); the denoiser's samples from the input alone do not. This scores, on ``data/eval_val``
(frame 0 the input, every other frame a target, CPU), latents that need no other real view:

* ``post2``   the VAR posterior mean from the input + 2 real frames (a diagnostic: they are targets);
* ``post0``   the VAR posterior mean from the input view alone;
* ``teach_gt``  input + the regressor's renders at the poses of the same 2 frames;
* ``teach_syn`` input + the regressor's renders at two poses that need no data: dataset-style orbit
  cameras, by default the product's (:func:`~splatgen.core.generator.teacher.teacher_view_poses`), or
  ``POSES="AZ1,AZ2@E_IN,E_CTX"`` to search others (azimuths from the input's, the input assumed at
  elevation E_IN, the others at E_CTX);

each decoded with the input's skips and rendered from every target frame, beside the regressor
itself. With STRENGTHS (comma-separated, e.g. ``0.3,0.5``), ``teach_syn`` is also the start of
SDEdit-style sampling: noised to that fraction of the schedule and denoised by the shipped denoiser
(DDIM, the default guidance, 4 samples, seed 0): one-sample and best-of-4 novel PSNR. Nothing here
changes the product.
"""

from __future__ import annotations

import json
import os
import sys
import time

import numpy as np
import torch

from splatgen.core import framing
from splatgen.core.cameras import canonical_intrinsics, relative_viewmats
from splatgen.core.evaluation import find_objects, load_object
from splatgen.core.generator import load_generator
from splatgen.core.metrics import psnr
from splatgen.core.generator.teacher import teacher_view_poses
from splatgen.core.render import render
from record import save_result  # scripts/experiments/record.py


def synthetic_poses(spec: str) -> torch.Tensor:
    """``"AZ1,AZ2,…@E_IN,E_CTX"``: dataset-style orbit cameras at azimuths AZ (degrees from the input's)
    and elevation E_CTX, relative to an input camera assumed at elevation E_IN → ``(n, 4, 4)``."""
    from splatgen.core.cameras import orbit_viewmat

    azs, els = spec.split("@")
    e_in, e_ctx = (float(e) for e in els.split(","))
    ref = orbit_viewmat(0.0, e_in)
    return torch.stack([relative_viewmats(orbit_viewmat(float(a), e_ctx)[None], ref)[0] for a in azs.split(",")])


@torch.no_grad()
def main(argv: list[str]) -> None:
    strengths = [float(s) for s in argv[0].split(",")] if argv and argv[0] else []
    torch.set_num_threads(int(os.environ.get("THREADS", "2")))
    diffusion, regressor = load_generator("diffusion", "cpu"), load_generator("regressor", "cpu")
    var, reg, den = diffusion.var, regressor.net, diffusion.denoiser
    s = framing.IMAGE_SIZE
    K = canonical_intrinsics(s)
    syn = synthetic_poses(os.environ["POSES"]) if "POSES" in os.environ else teacher_view_poses()
    rows, t0 = [], time.time()
    for obj in find_objects("data/eval_val", None):
        images, alphas, viewmats = load_object(obj)
        rel = relative_viewmats(viewmats, viewmats[0])
        rgba = torch.cat([images, alphas], -1).permute(0, 3, 1, 2)  # (V, 4, S, S)
        image = rgba[:1]
        features = var.encode_image(image)
        Ks = K.expand(len(rel), 3, 3)

        def score(g) -> float:
            r = render(g, rel, Ks, s, s).rgb.clamp(0, 1)
            return float(psnr(r[1:], images[1:]).mean())

        teacher_g = reg(image).gaussians[0]
        rng = np.random.default_rng([0, *obj.name.encode()])
        ctx = sorted(rng.choice(np.arange(1, len(images)), 2, replace=False).tolist())

        def teacher_views(poses: torch.Tensor) -> torch.Tensor:
            out = render(teacher_g, poses, K.expand(len(poses), 3, 3), s, s)
            return torch.cat([out.rgb, out.alpha], -1).permute(0, 3, 1, 2)

        latents = {
            "post2": var.encode_views(rgba[[0, *ctx]][None], rel[[0, *ctx]][None])[0],
            "post0": var.encode_views(image[None], rel[:1][None])[0],
            "teach_gt": var.encode_views(torch.cat([image, teacher_views(rel[ctx])])[None], rel[[0, *ctx]][None])[0],
            "teach_syn": var.encode_views(torch.cat([image, teacher_views(syn)])[None],
                                          torch.cat([rel[:1], syn])[None])[0],
        }
        row = {"object": obj.name, "regressor": score(teacher_g)}
        for name, z in latents.items():
            row[name] = score(var.decode(features, z, 1.0).gaussians[0])
            row[f"{name}_dist"] = float((z - latents["post2"]).norm() / latents["post2"].norm())
        cond = diffusion.encode(image[0])[1]
        for strength in strengths:
            sched = den.make_scheduler("ddim")
            sched.set_timesteps(50)
            start = int(round(50 * (1 - strength)))
            ts = sched.timesteps[start:]
            g = torch.Generator().manual_seed(0)
            z0 = den.normalise(latents["teach_syn"]).expand(4, -1, -1, -1)
            z = sched.add_noise(z0, torch.randn(z0.shape, generator=g), ts[:1].expand(4))
            c = den.project_condition(cond.expand(4, -1, -1, -1))
            c2 = torch.cat([torch.zeros_like(c), c])
            w = den.config.default_guidance
            for t in ts:
                u, cp = den(torch.cat([z, z]), t.expand(8), c2).chunk(2)
                z = sched.step(u + w * (cp - u), t, z).prev_sample
            gs = var.decode([f.expand(4, *f.shape[1:]) for f in features], den.denormalise(z), 1.0).gaussians
            p = [score(gs[i]) for i in range(4)]
            row[f"sde{strength}_1"], row[f"sde{strength}_best4"] = p[0], max(p)
        rows.append(row)
        print(json.dumps({k: (round(v, 2) if isinstance(v, float) else v) for k, v in row.items()}), flush=True)
    keys = [k for k in rows[0] if k != "object"]
    summary = {"objects": len(rows), **{k: float(np.mean([r[k] for r in rows])) for k in keys},
               "seconds": round(time.time() - t0, 1), "per_object": rows}
    print(json.dumps({k: round(v, 3) for k, v in summary.items() if isinstance(v, float)}))
    if len(argv) > 1:
        save_result(summary, argv[1])


if __name__ == "__main__":
    main(sys.argv[1:])
