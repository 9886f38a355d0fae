"""The denoiser's training targets, computed by the frozen VAR once per pool and reused for many steps.

Encoding a batch with the VAR (image encoder for the condition, view encoder over the input plus
context views for the posterior) costs about 15 times the denoiser's own forward and backward pass,
so drawing fresh targets every step starves the denoiser (session 5 measured ~10 steps/s on an H100).
Like a latent diffusion model trained on precomputed latents, the pool holds, for every (object,
input view) pair of the split, the condition features and the posterior's mean and log-variance;
each draw samples a new latent from that posterior. Every ``refresh`` steps the pool is rebuilt
with new context views and new mirroring, from a generator seeded by (seed, rank, pool index), so a
resumed run sees exactly the pools an uninterrupted one would.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from ..errors import SplatgenError
from ..models.splatter_net import SplatterNet
from .recon import encoder_views
from .viewbank import ViewBank, mirror


@dataclass
class LatentPool:
    """``condition`` ``(N, C, s, s)`` float16 (the image encoder's last features), ``mean`` and
    ``logvar`` ``(N, C_lat, s, s)`` float32 (the VAR posterior of each item); ``objects``, ``views`` and
    ``mirrored`` ``(N,)`` say which input each item encodes."""

    condition: torch.Tensor
    mean: torch.Tensor
    logvar: torch.Tensor
    objects: torch.Tensor
    views: torch.Tensor
    mirrored: torch.Tensor
    index: int  # which pool of the run this is (step // refresh)

    def __len__(self) -> int:
        return self.condition.shape[0]

    def sample(self, batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """(condition ``(B, C, s, s)`` float32, latent ``(B, C_lat, s, s)`` drawn from each item's posterior)."""
        dev = self.mean.device
        idx = torch.randint(0, len(self), (batch_size,), generator=generator, device=dev)
        eps = torch.randn((batch_size, *self.mean.shape[1:]), generator=generator, device=dev)
        return self.condition[idx].float(), self.mean[idx] + torch.exp(0.5 * self.logvar[idx]) * eps


def pool_generator(seed: int, rank: int, index: int, device) -> torch.Generator:
    """The generator of pool ``index``: independent of the training loop's stream and of when a run resumed."""
    return torch.Generator(device=device).manual_seed(((seed * 1009 + rank) * 100_003 + index) % (2 ** 63))


@torch.no_grad()
def build_latent_pool(var: SplatterNet, bank: ViewBank, num_context: int, max_items: int, mirror_prob: float,
                      generator: torch.Generator, index: int = 0, batch_size: int = 256) -> LatentPool:
    """Encode every (object, input view) pair of ``bank`` (a random subset of ``max_items`` when there
    are more), each with ``num_context`` random other views and mirrored with ``mirror_prob``."""
    dev = bank.images.device
    o, v = bank.num_objects, bank.views_per_object
    if num_context > v - 1:
        raise SplatgenError(f"--num-context {num_context} needs at least {num_context + 1} views per object; "
                            f"the dataset has {v}")
    pairs = torch.randperm(o * v, generator=generator, device=dev)[:max_items]
    objects, inputs = pairs // v, pairs % v
    conds, means, logvars, flips = [], [], [], []
    for start in range(0, len(pairs), batch_size):
        obj, inp = objects[start:start + batch_size], inputs[start:start + batch_size]
        # context views: a random permutation of the other views (the input's key sorts first)
        keys = torch.rand(len(obj), v, generator=generator, device=dev)
        keys[torch.arange(len(obj), device=dev), inp] = -1.0
        context = torch.argsort(keys, dim=1)[:, 1:1 + num_context]
        batch = bank.batch(obj, inp, context)
        flip = torch.rand(len(obj), generator=generator, device=dev) < mirror_prob
        if mirror_prob > 0:
            batch = mirror(batch, flip)
        features = var.encode_image(batch.input)[-1]
        mean, logvar = var.encode_views(**encoder_views(batch, num_context))
        conds.append(features.to(torch.float16))
        means.append(mean.float())
        logvars.append(logvar.float())
        flips.append(flip)
    pool = LatentPool(torch.cat(conds), torch.cat(means), torch.cat(logvars), objects, inputs, torch.cat(flips), index)
    if not torch.isfinite(pool.condition).all():
        raise SplatgenError("the VAR's condition features overflow float16; train with --latent-pool 0")
    return pool


def refreshed_pool(pool: LatentPool | None, step: int, refresh: int, build, announce: bool = True) -> LatentPool:
    """``pool`` if it is the one for ``step`` (pool ``step // refresh``; refresh 0: one pool for the
    run), else ``build(index)``, timed on stdout when ``announce``."""
    index = step // refresh if refresh > 0 else 0
    if pool is not None and pool.index == index:
        return pool
    t0 = time.time()
    pool = build(index)
    if announce:
        print(f"latent pool {index}: {len(pool)} items in {time.time() - t0:.1f} s", flush=True)
    return pool


__all__ = ["LatentPool", "build_latent_pool", "pool_generator", "refreshed_pool"]
