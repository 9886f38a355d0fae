"""A network's no-grad forward replayed as one CUDA graph per input shape.

A request of one sample on the GPU runs the regressor's few hundred small kernels once; launched
one by one from Python they take several times longer than they run (the GPU idles between them).
Captured once per input shape and replayed, they are queued by one call. The captured function
returns a tuple of tensors; each replay copies the input into the graph's static buffer, replays,
and returns clones (the graph overwrites its outputs at the next replay).

Use under the cache's lock (one replay at a time: the graphs share their input buffers). A shape
whose capture fails is remembered and run eagerly from then on, so graphs never cost correctness.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from typing import Callable

import torch

log = logging.getLogger(__name__)


class _Captured:
    """One captured call: static input, graph, static outputs."""

    def __init__(self, fn: Callable[[torch.Tensor], tuple[torch.Tensor, ...]], example: torch.Tensor):
        self.input = example.clone()
        # warm up on a side stream first (lazy initialisation, cuDNN autotuning), as capture requires
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(2):
                fn(self.input)
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        # thread_local: CUDA work of other threads (the GUI renders with gsplat on the UI thread)
        # neither breaks nor is broken by the capture
        with torch.cuda.graph(self.graph, capture_error_mode="thread_local"):
            self.outputs = tuple(fn(self.input))

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        self.input.copy_(x)
        self.graph.replay()
        return tuple(o.clone() for o in self.outputs)


class GraphedForward:
    """``fn(x) -> tuple of tensors`` (no grad, fixed shapes for a given input shape), replayed as a
    CUDA graph for CUDA inputs and called as it is otherwise (CPU, or a shape whose capture failed)."""

    def __init__(self, fn: Callable[[torch.Tensor], tuple[torch.Tensor, ...]], max_entries: int = 4):
        self.fn = fn
        self.entries: OrderedDict[tuple, _Captured] = OrderedDict()
        self.failed: dict[tuple, str] = {}
        self.max_entries = max_entries
        self.lock = threading.Lock()

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if x.device.type != "cuda":
            return tuple(self.fn(x))
        key = (tuple(x.shape), x.dtype, x.device.index)
        with self.lock:
            if key in self.failed:
                return tuple(self.fn(x))
            entry = self.entries.get(key)
            if entry is None:
                if len(self.entries) >= self.max_entries:  # drop the least recently used shape
                    self.entries.popitem(last=False)
                try:
                    with torch.cuda.device(x.device):
                        entry = self.entries[key] = _Captured(self.fn, x)
                except RuntimeError as exc:  # capture refused (driver, memory): eager still works
                    self.failed[key] = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                    log.warning("CUDA graph capture failed (%s); running this shape eagerly", self.failed[key])
                    return tuple(self.fn(x))
            self.entries.move_to_end(key)
            return entry(x)
