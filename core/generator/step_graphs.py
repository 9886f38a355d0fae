"""CUDA graphs of the guided denoising loop, one graph per step, so a sample is not launch-bound.

The denoiser is small (16×16 latents): eagerly, each of the 50 steps spends far longer launching its
few hundred kernels (UNet, guidance, scheduler update) than running them. Here every step is
captured once per shape (batch, steps, guidance, scheduler, first step) and then replayed; between replays the
loop still reports progress and honours ``cancel``, so the Generator API behaves as in the eager loop.

What makes the diffusers schedulers capturable: timesteps are passed as Python ints, so the
schedulers index their CPU tables (``alphas_cumprod``, ``sigmas``) on the host and the values become
kernel arguments of that step's graph; DPM-Solver's step counter starts from ``set_begin_index(0)``
instead of searching the timestep table on the device. The scheduler's own state (DPM-Solver keeps
the previous model outputs) lives in tensors of the graphs' shared memory pool, kept alive here.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from typing import Callable

import torch

from ..models.denoiser import LatentDenoiser
from .guidance import guidance_condition, guided_step

log = logging.getLogger(__name__)


class StepGraphs:
    """The captured loop for one shape: static input buffers, one CUDA graph per step."""

    def __init__(self, denoiser: LatentDenoiser, batch: int, steps: int, guidance: float, scheduler: str | None,
                 device: torch.device, begin: int = 0):
        c, s = denoiser.config.latent_channels, denoiser.config.latent_size
        self.denoiser, self.guidance, self.scheduler_name = denoiser, float(guidance), scheduler
        self.guided = self.guidance != 1.0
        self.steps, self.begin = steps, begin
        self.scheduler = self._new_scheduler(device)
        self.timesteps = [int(t) for t in self.scheduler.timesteps[begin:]]
        self.latents = torch.zeros((batch, c, s, s), device=device)
        proj = denoiser.config.condition_projection
        self.cond = torch.zeros(((2 if self.guided else 1) * batch, proj, s, s), device=device)
        self._capture()

    def _new_scheduler(self, device: torch.device):
        sched = self.denoiser.make_scheduler(self.scheduler_name)
        sched.set_timesteps(self.steps, device=device)
        if hasattr(sched, "set_begin_index"):  # multistep solvers: count steps from here, no device search
            sched.set_begin_index(self.begin)
        return sched

    def _step(self, t: int) -> torch.Tensor:
        return guided_step(self.denoiser, self.scheduler, self.latents, t, self.cond, self.guidance)

    def _capture(self) -> None:
        # Warm up on a side stream first (lazy initialisation, cuBLAS workspaces), as capture requires;
        # a scratch scheduler keeps the real one's multistep state clean.
        real = self.scheduler
        self.scheduler = self._new_scheduler(self.latents.device)
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for t in self.timesteps[:3]:
                self._step(t)
        torch.cuda.current_stream().wait_stream(side)
        self.scheduler = real
        self.graphs: list[torch.cuda.CUDAGraph] = []
        pool = torch.cuda.graph_pool_handle()
        for t in self.timesteps:
            graph = torch.cuda.CUDAGraph()
            # thread_local: CUDA work of other threads (the GUI's viewport renders with gsplat on the
            # UI thread) neither breaks nor is broken by the capture
            with torch.cuda.graph(graph, pool=pool, capture_error_mode="thread_local"):
                self.latents.copy_(self._step(t))
            self.graphs.append(graph)

    def run(self, projected_condition: torch.Tensor, latents: torch.Tensor,
            before_step: Callable[[int, int], None] | None = None) -> torch.Tensor:
        """Replay the loop from ``latents`` ``(B, C, s, s)`` (normalised, noised to the first captured
        timestep: scaled noise, or an SDEdit start) for the projected condition ``(B, P, s, s)``;
        returns the final normalised latents. ``before_step(i, n)`` runs before step ``i`` is queued,
        once step ``i - 1`` has finished on the GPU (so progress is real and a cancel raised there
        stops within one step), and once more with ``i = n`` at the end."""
        self.cond.copy_(guidance_condition(projected_condition, self.guidance))
        self.latents.copy_(latents)
        n = len(self.graphs)
        done = None
        for i, graph in enumerate(self.graphs):
            if done is not None:
                done.synchronize()  # a few µs of idle GPU per step, against progress racing ahead
            if before_step is not None:
                before_step(i, n)
            graph.replay()
            done = torch.cuda.Event()
            done.record()
        if done is not None:
            done.synchronize()
        if before_step is not None:
            before_step(n, n)
        return self.latents.clone()


class StepGraphCache:
    """Captured loops by shape, for one denoiser on one CUDA device (held by a generator).

    Use under ``lock``: the captured loops share input buffers, so one runs at a time. A shape whose
    capture failed is remembered and sampled eagerly from then on (``get`` returns None)."""

    def __init__(self, max_entries: int = 8):
        self.entries: OrderedDict[tuple, StepGraphs] = OrderedDict()
        self.failed: dict[tuple, str] = {}
        self.max_entries = max_entries
        self.lock = threading.Lock()

    def get(self, denoiser: LatentDenoiser, batch: int, steps: int, guidance: float, scheduler: str | None,
            device: torch.device, begin: int = 0) -> StepGraphs | None:
        name = scheduler or denoiser.config.default_scheduler
        key = (id(denoiser), batch, steps, float(guidance), name, begin)
        if key in self.failed:
            return None
        if key in self.entries:
            self.entries.move_to_end(key)
            return self.entries[key]
        if len(self.entries) >= self.max_entries:  # drop the least recently used shape (and its pool)
            self.entries.popitem(last=False)
        try:
            with torch.cuda.device(device):
                self.entries[key] = StepGraphs(denoiser, batch, steps, guidance, name, device, begin)
        except RuntimeError as exc:  # capture refused (driver, memory): the eager loop still works
            self.failed[key] = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            log.warning("CUDA graph capture failed (%s); sampling this shape without graphs", self.failed[key])
            return None
        return self.entries[key]
