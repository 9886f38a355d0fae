"""Experiment: inference-time variants of the diffusion sampler, scored on the val split.

    python scripts/experiments/val_sampler_variants.py ETA GUIDANCE SCHEDULER STEPS [NOISE_SCALE [RESCALE [JSON]]]

Evaluates the shipped diffusion model on ``data/eval_val`` (35 objects, 4 samples each, seed 0) as
``splatgen eval`` does, with three knobs the product does not expose: DDIM's ``eta`` (0 =
deterministic DDIM, 1 = DDPM-like fresh noise each step), a scale on the starting noise (< 1:
"truncated" samples) and guidance rescaling (Lin et al. 2024: the guided prediction's standard
deviation pulled back towards the conditional one's by the factor RESCALE, 0 = off). Prints novel
PSNR, best-of-4, diversity and input PSNR on one line; JSON: the evaluation summary, with this command.
Results are in benchmarks/TRAINING.md. Wraps the scheduler and the generator's
sampling call for the run only; nothing here changes the product.
"""

from __future__ import annotations

import os
import sys

import torch

import splatgen.core.generator.latent_diffusion as latent_diffusion
import splatgen.core.generator.sampling as sampling
from splatgen.core.evaluation import evaluate, find_objects
from splatgen.core.generator import GenerationSettings, load_generator
from record import save_result  # scripts/experiments/record.py


def main(argv: list[str]) -> None:
    eta, guidance, scheduler, steps = float(argv[0]), float(argv[1]), argv[2], int(argv[3])
    noise_scale = float(argv[4]) if len(argv) > 4 else 1.0
    rescale = float(argv[5]) if len(argv) > 5 else 0.0
    torch.set_num_threads(int(os.environ.get("THREADS", "2")))  # THREADS=1: two runs side by side on 2 cores
    if eta > 0:
        make_scheduler = sampling.LatentDenoiser.make_scheduler
        step_noise = torch.Generator().manual_seed(1234)

        def make_with_eta(self, name=None):
            sched = make_scheduler(self, name)
            step = sched.step
            sched.step = lambda pred, t, latents, **kw: step(pred, t, latents, eta=eta, generator=step_noise)
            return sched

        sampling.LatentDenoiser.make_scheduler = make_with_eta
    if noise_scale != 1.0:
        sample_latents = latent_diffusion.sample_latents

        def scaled(*args, noise=None, **kwargs):
            return sample_latents(*args, noise=None if noise is None else noise * noise_scale, **kwargs)

        latent_diffusion.sample_latents = scaled
    gen = load_generator("diffusion", "cpu")
    if rescale > 0 and guidance != 1.0:
        forward = gen.denoiser.forward

        def rescaled(noisy, t, cond):  # the sampler combines uncond + w·(cond − uncond) of this output
            u, c = forward(noisy, t, cond).chunk(2)
            guided = u + guidance * (c - u)
            dims = tuple(range(1, guided.dim()))
            target = guided * c.std(dim=dims, keepdim=True) / guided.std(dim=dims, keepdim=True)
            guided = rescale * target + (1 - rescale) * guided
            return torch.cat([u, u + (guided - u) / guidance])

        gen.denoiser.forward = rescaled
    settings = GenerationSettings(guidance=guidance, scheduler=scheduler, steps=steps, num_samples=4, seed=0)
    r = evaluate(gen, find_objects("data/eval_val", None), settings, progress=False)
    if len(argv) > 6:
        save_result(r, argv[6])
    print(f"eta {eta} guidance {guidance} {scheduler} {steps} steps noise×{noise_scale} rescale {rescale}: "
          f"novel {r['novel_psnr']:.3f} "
          f"best-of-4 {r['best_of_k_novel_psnr']:.3f} diversity {r['diversity_novel_psnr']:.2f} "
          f"input {r['input_psnr']:.2f} ({r['seconds']:.0f} s)")


if __name__ == "__main__":
    main(sys.argv[1:])
