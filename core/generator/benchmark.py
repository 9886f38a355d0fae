"""``splatgen bench generate``: model load, regressor pass and full diffusion samples, timed.

The input is the shipped example splat rendered from the input camera (a real object at the
canonical framing), so the benchmark needs no dataset.
"""

from __future__ import annotations

import time

import torch

from .. import framing
from ..benchmarks import example_splat_file, machine_info, time_call
from .base import GenerationSettings, input_camera


def example_input(device="cpu") -> torch.Tensor:
    """``(4, 128, 128)`` prepared input: the shipped example splat seen from the input camera."""
    from ..io import load_splats
    from ..render import render

    g = load_splats(example_splat_file())
    viewmat, K = input_camera()

    out = render(g, viewmat[None], K, framing.IMAGE_SIZE, framing.IMAGE_SIZE, backend="torch")
    return torch.cat([out.rgb[0], out.alpha[0]], -1).permute(2, 0, 1).clamp(0, 1).to(device)


def run_generate_benchmark(device: str = "auto", steps: int = 50, guidance: float = 2.0, repeat: int = 3,
                           threads: int | None = 2) -> dict:
    """Time the regressor and full 50-step samples (strength 1: from pure noise), and, for a model whose
    default strength is below 1, samples at that default too (the teacher's latent, then the steps that
    run). On CUDA, the eager loop and the CUDA-graph loop (the default there) are both timed, and the
    graphs' latents are compared with the eager ones."""
    from ..devices import pick_device
    from .registry import load_generator

    dev = pick_device(device)
    if dev.type == "cpu" and threads:
        torch.set_num_threads(threads)
    t0 = time.perf_counter()
    gen = load_generator("diffusion", dev)
    load_s = time.perf_counter() - t0
    reg = load_generator("regressor", dev)
    image = example_input(dev)
    rows = []

    def add(name, fn, **extra):
        r = time_call(fn, warmup=1, repeat=repeat, device=dev)
        rows.append({"what": name, **extra, **r})
        print(f"{name:50s} {r['median_ms']:9.1f} ms")

    add("regressor: one reconstruction", lambda: reg.generate(image))
    modes = [("eager", False), ("CUDA graphs", True)] if dev.type == "cuda" else [("eager", False)]
    latents = {}
    strengths = [1.0] + ([gen.defaults.strength] if gen.defaults.strength != 1.0 else [])
    for label, graphs in modes:
        gen.use_cuda_graphs(graphs)
        for strength in strengths:
            for n in (1, 4):
                s = GenerationSettings(steps=steps, guidance=guidance, num_samples=n, scheduler="ddim",
                                       strength=strength)
                if graphs:
                    t = time.perf_counter()
                    gen.generate(image, s)
                    print(f"capture for {n} sample(s), strength {strength}: {time.perf_counter() - t:.2f} s")
                add(f"diffusion {label}: {n} sample(s), {steps} steps, guidance {guidance}, strength {strength}",
                    lambda s=s: gen.generate(image, s), samples=n, steps=steps, strength=strength, cuda_graphs=graphs)
                if n == 4:
                    latents[(label, strength)] = torch.stack([x.latent for x in gen.generate(image, s)])
    extra = {}
    if len(modes) == 2:
        diff = max((latents[("eager", st)] - latents[("CUDA graphs", st)]).abs().max().item() for st in strengths)
        extra["graphs_vs_eager_max_abs_latent_diff"] = diff
        print(f"CUDA graphs vs eager: max |latent difference| {diff:.2e}")
    return {"machine": machine_info(), "device": str(dev), "threads": torch.get_num_threads() if dev.type == "cpu" else None,
            "model_load_s": load_s, "results": rows, **extra}
