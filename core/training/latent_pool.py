"""The denoiser's training targets, encoded by the frozen VAR into a pool that is renewed a chunk per step.

Encoding a batch with the VAR (image encoder for the condition, view encoder over the input plus
context views for the posterior) costs many times the denoiser's own forward and backward pass,
so drawing fresh targets for every item of every step starves the denoiser (benchmarks/README.md,
"Latent pool"). The pool holds ``size`` encoded items (condition features, posterior mean and
log-variance of a random object, input view, context views and mirroring); every step replaces the
oldest ``chunk`` of them, and batches are drawn from the whole pool, a new latent sampled from each
item's posterior every time. An item is thus drawn ``batch / chunk`` times on average ("reuse").

Reuse must stay small. A pool that was kept for thousands of steps (each item drawn over a hundred
times) let the denoiser learn one posterior per input view, i.e. the context views that
happened to be drawn: its loss fell, its samples lost diversity and best-of-4 got worse. Renewing a
chunk per step keeps many context draws per input view in play, as fresh targets do.

Chunk ``k`` is drawn from a generator seeded by (seed, rank, k), and the pool at step ``s`` holds
chunks ``s - slots + 1 … s``: the pool is a function of the step, so a resumed run trains exactly on
what an uninterrupted one would.
"""

from __future__ import annotations

import torch

from ..errors import SplatgenError
from ..models.splatter_net import SplatterNet
from ..generator.teacher import denoiser_condition
from .recon import encoder_views
from .viewbank import ViewBank, ViewBatch, mirror


def var_posterior(var: SplatterNet, batch, num_context: int, teacher: SplatterNet | None = None,
                  teacher_latent: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The denoiser's view of a :class:`~.viewbank.ViewBatch` through the frozen VAR: (condition = the
    image encoder's last features ``(B, C, s, s)``, with a teacher its features appended [and its latent],
    posterior mean and log-variance ``(B, C_lat, s, s)`` from the input view plus the first ``num_context``
    targets)."""
    features = denoiser_condition(var.encode_image(batch.input)[-1], batch.input, teacher,
                                  var if teacher_latent else None)
    mean, logvar = var.encode_views(**encoder_views(batch, num_context))
    return features, mean, logvar


def chunk_generator(seed: int, rank: int, chunk: int, device) -> torch.Generator:
    """The generator of chunk ``chunk``: independent of the training loop's stream and of when a run resumed."""
    return torch.Generator(device=device).manual_seed(((seed * 1009 + rank) * 1_000_003 + chunk) % (2 ** 63))


class LatentPool:
    """``condition`` ``(N, C, s, s)`` float16 (the VAR image encoder's last features [+ the teacher's [+ its
    latent]]), ``mean`` and
    ``logvar`` ``(N, C_lat, s, s)`` float32 (each item's VAR posterior); ``objects``, ``views`` and
    ``mirrored`` ``(N,)`` say which input each item encodes. ``N = slots · chunk``, at most ``size`` and at most
    two items per input view of the split."""

    def __init__(self, var: SplatterNet, bank: ViewBank, num_context: int, size: int, chunk: int,
                 mirror_prob: float, seed: int = 0, rank: int = 0, encode_batch: int = 256,
                 teacher: SplatterNet | None = None, teacher_latent: bool = False, compile: bool = False):
        if num_context > bank.views_per_object - 1:
            raise SplatgenError(f"--num-context {num_context} needs at least {num_context + 1} views per object; "
                                f"the dataset has {bank.views_per_object}")
        self.var, self.bank, self.num_context, self.mirror_prob = var, bank, num_context, mirror_prob
        self.teacher, self.teacher_latent = teacher, teacher_latent
        self.seed, self.rank, self.encode_batch = seed, rank, encode_batch
        if compile:  # encoding is most of a denoiser step's time; the renders between the networks stay eager
            for net in (var.encoder, var.view_encoder) + ((teacher.encoder, teacher.reconstructor) if teacher else ()):
                net.compile(dynamic=False)  # in place: the state dict keeps its keys
        self.chunk = max(1, chunk)
        # a small split needs no more items than two per input view (one per mirroring, on average)
        size = min(size, 2 * bank.num_objects * bank.views_per_object)
        self.slots = max(1, size // self.chunk)
        self.last: int | None = None  # newest chunk held
        self.condition = self.mean = self.logvar = None
        self.objects = self.views = self.mirrored = None

    def __len__(self) -> int:
        return self.slots * self.chunk

    # ------------------------------------------------------------------ filling
    def _draw(self, k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Chunk ``k``'s items: objects ``(m,)``, input views ``(m,)``, context views ``(m, num_context)``, mirrored ``(m,)``."""
        dev = self.bank.images.device
        g = chunk_generator(self.seed, self.rank, k, dev)
        o, v, m = self.bank.num_objects, self.bank.views_per_object, self.chunk
        objects = torch.randint(0, o, (m,), generator=g, device=dev)
        # a random permutation of each object's views: the first is the input, the next the context
        perm = torch.argsort(torch.rand(m, v, generator=g, device=dev), dim=1)
        flip = torch.rand(m, generator=g, device=dev) < self.mirror_prob
        return objects, perm[:, 0], perm[:, 1:1 + self.num_context], flip

    @torch.no_grad()
    def _encode(self, objects, inputs, context, flip) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        conds, means, logvars = [], [], []
        amp = torch.autocast("cuda", dtype=torch.bfloat16, enabled=objects.device.type == "cuda")
        for i in range(0, len(objects), self.encode_batch):
            sl = slice(i, i + self.encode_batch)
            batch = mirror(self.bank.batch(objects[sl], inputs[sl], context[sl]), flip[sl])
            with amp:
                features, mean, logvar = var_posterior(self.var, batch, self.num_context, self.teacher,
                                                       self.teacher_latent)
            conds.append(features.to(torch.float16))
            means.append(mean.float())
            logvars.append(logvar.float())
        return torch.cat(conds), torch.cat(means), torch.cat(logvars)

    def advance(self, step: int) -> None:
        """Hold chunks ``step - slots + 1 … step``: encode the ones not held yet, oldest slots first."""
        if self.last is not None and self.last >= step:
            return
        first = step - self.slots + 1 if self.last is None else max(self.last + 1, step - self.slots + 1)
        ks = list(range(first, step + 1))
        drawn = [self._draw(k) for k in ks]
        objects, inputs, context, flip = (torch.cat(parts) for parts in zip(*drawn))
        cond, mean, logvar = self._encode(objects, inputs, context, flip)
        if self.condition is None:
            if not torch.isfinite(cond).all():
                raise SplatgenError("the condition features overflow float16; train with --latent-pool 0")
            n = len(self)
            self.condition = cond.new_empty((n, *cond.shape[1:]))
            self.mean, self.logvar = mean.new_empty((n, *mean.shape[1:])), logvar.new_empty((n, *logvar.shape[1:]))
            self.objects, self.views = objects.new_empty(n), inputs.new_empty(n)
            self.mirrored = flip.new_empty(n)
        m = self.chunk
        for j, k in enumerate(ks):  # chunk k lives in slot k mod slots
            dst, src = slice((k % self.slots) * m, (k % self.slots + 1) * m), slice(j * m, (j + 1) * m)
            self.condition[dst], self.mean[dst], self.logvar[dst] = cond[src], mean[src], logvar[src]
            self.objects[dst], self.views[dst], self.mirrored[dst] = objects[src], inputs[src], flip[src]
        self.last = step

    def latent_stats(self, generator: torch.Generator) -> tuple[float, float]:
        """Mean and 1/std of one posterior sample per item (a new denoiser's latent normalisation)."""
        z = self.mean + torch.exp(0.5 * self.logvar) * torch.randn(self.mean.shape, generator=generator,
                                                                     device=self.mean.device)
        return float(z.mean()), float(1.0 / z.std().clamp_min(1e-6))

    # ------------------------------------------------------------------ drawing
    def sample(self, batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """(condition ``(B, C, s, s)`` float32, latent ``(B, C_lat, s, s)`` drawn from each item's posterior)."""
        return self.gather(self.indices(batch_size, generator), generator)

    def indices(self, batch_size: int, generator: torch.Generator) -> torch.Tensor:
        """``(B,)`` random items of the pool."""
        return torch.randint(0, len(self), (batch_size,), generator=generator, device=self.mean.device)

    def gather(self, idx: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Items ``idx`` as :meth:`sample` gives them: condition and a fresh draw from each posterior."""
        eps = torch.randn((len(idx), *self.mean.shape[1:]), generator=generator, device=self.mean.device)
        return self.condition[idx].float(), self.mean[idx] + torch.exp(0.5 * self.logvar[idx]) * eps

    def view_batch(self, idx: torch.Tensor, num_targets: int, generator: torch.Generator) -> ViewBatch:
        """Items ``idx`` as a :class:`~.viewbank.ViewBatch` to render into: each item's input view (mirrored
        as it was encoded) and ``num_targets`` other views of its object, drawn at random."""
        v = self.bank.views_per_object
        if not 1 <= num_targets <= v - 1:
            raise SplatgenError(f"--num-targets must be between 1 and {v - 1} for {v} views per object")
        inputs = self.views[idx]
        offsets = torch.argsort(torch.rand(len(idx), v - 1, generator=generator, device=idx.device), dim=1)
        targets = (inputs[:, None] + 1 + offsets[:, :num_targets]) % v  # distinct, never the input view
        return mirror(self.bank.batch(self.objects[idx], inputs, targets), self.mirrored[idx])


__all__ = ["LatentPool", "chunk_generator", "var_posterior"]
