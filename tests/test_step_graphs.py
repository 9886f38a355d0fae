"""CUDA graphs of the denoising loop give the eager loop's latents, with progress and cancel intact.

Needs a CUDA device (skipped elsewhere); run on the GPU machine:
``python3 -m pytest -q tests/test_step_graphs.py`` (see scripts/device/train_eval.sh).
"""

from __future__ import annotations

import threading

import pytest
import torch

from splatgen.core.generator import load_generator
from splatgen.core.generator.sampling import Cancelled, sample_latents
from splatgen.core.generator.step_graphs import StepGraphCache

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a CUDA device")


@pytest.fixture(scope="module")
def gen():
    return load_generator("diffusion", torch.device("cuda"))


@pytest.mark.parametrize("scheduler,steps,guidance,strength", [("ddim", 50, 2.0, 1.0), ("dpm", 20, 3.0, 1.0),
                                                               ("ddim", 10, 1.0, 1.0), ("ddim", 50, 2.0, 0.7),
                                                               ("dpm", 20, 2.0, 0.5)])
def test_graphs_match_the_eager_loop(gen, scheduler, steps, guidance, strength):
    den = gen.denoiser
    torch.manual_seed(0)
    cond = torch.randn(3, den.condition_width, 16, 16, device="cuda")
    noise = torch.randn(3, den.config.latent_channels, 16, 16, device="cuda")
    start = torch.randn(3, den.config.latent_channels, 16, 16, device="cuda")
    kw = dict(steps=steps, guidance=guidance, scheduler=scheduler, noise=noise, strength=strength, start=start)
    eager = sample_latents(den, cond, **kw)
    cache = StepGraphCache()
    first = sample_latents(den, cond, graphs=cache, **kw)
    again = sample_latents(den, cond, graphs=cache, **kw)  # replay of the captured loop
    assert len(cache.entries) == 1
    scale = eager.abs().max().item()
    assert (first - eager).abs().max().item() < 1e-3 * scale
    assert torch.equal(first, again)
    # new inputs reach the captured graphs: other noise, same graphs, the eager result for that noise
    other_kw = {**kw, "noise": noise.flip(0)}
    other = sample_latents(den, cond, graphs=cache, **other_kw)
    assert len(cache.entries) == 1
    assert (other - sample_latents(den, cond, **other_kw)).abs().max().item() < 1e-3 * scale
    assert (other - first).abs().max().item() > 0.1 * scale


def test_progress_and_cancel_between_replays(gen):
    den = gen.denoiser
    cond = torch.randn(1, den.condition_width, 16, 16, device="cuda")
    cache, seen, cancel = StepGraphCache(), [], threading.Event()
    sample_latents(den, cond, steps=12, graphs=cache, progress=lambda i, n: seen.append((i, n)))
    assert seen == [(i, 12) for i in range(1, 13)]

    def stop_at_5(i, n):
        if i == 5:
            cancel.set()

    with pytest.raises(Cancelled):
        sample_latents(den, cond, steps=12, graphs=cache, progress=stop_at_5, cancel=cancel)


def test_generator_uses_graphs_on_cuda_and_samples_match(gen):
    from splatgen.core.generator.base import GenerationSettings
    from splatgen.core.generator.benchmark import example_input

    image = example_input("cuda")
    s = GenerationSettings(steps=25, num_samples=2, seed=7)  # the model's default strength
    gen.use_cuda_graphs(True)
    graphed = gen.generate(image, s)
    assert gen.graphs is not None and gen.graphs.entries
    gen.use_cuda_graphs(False)
    eager = gen.generate(image, s)
    gen.use_cuda_graphs(True)
    for a, b in zip(graphed, eager):
        assert (a.gaussians.means - b.gaussians.means).abs().max().item() < 1e-2
