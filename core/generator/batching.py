"""How many samples of one request a generator denoises together: chosen from the device's free memory.

A batch costs memory in proportion to its samples (each decodes 128²·M Gaussians and their
activations), so the batch is ``free memory × FRACTION / bytes per sample``, clamped to
``[1, ceiling]``. The bytes per sample start from the generator's estimate and, on CUDA, are
replaced by what the first batch really allocated at its peak (``torch.cuda.max_memory_allocated``),
so the size follows the model and the GPU rather than a constant. On the CPU the free memory is
``MemAvailable`` of ``/proc/meminfo`` (or ``os.sysconf`` where there is none).
"""

from __future__ import annotations

import contextlib
import os

import torch

#: Share of the free memory one batch may take (the rest: renders, the viewer, other programs).
FRACTION = 0.5


def free_memory_bytes(device: torch.device) -> int:
    """Bytes the device can still allocate: CUDA's free memory, or the system's available RAM."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return 4 << 30  # unknown: assume 4 GiB


class BatchSizer:
    """The batch size of one generator on one device.

    ``estimate_bytes``: memory one sample needs (a first guess, in bytes); ``ceiling``: the largest
    batch worth running (beyond it the device gains no throughput, e.g. the CPU's two cores).
    """

    def __init__(self, device: torch.device, estimate_bytes: int, ceiling: int):
        self.device = device
        self.bytes_per_sample = max(1, int(estimate_bytes))
        self.ceiling = max(1, int(ceiling))
        self.measured = False

    def size(self) -> int:
        """Samples per batch now, from the free memory and the bytes per sample."""
        fits = int(free_memory_bytes(self.device) * FRACTION // self.bytes_per_sample)
        return max(1, min(self.ceiling, fits))

    @contextlib.contextmanager
    def measure(self, batch: int):
        """Around one batch of ``batch`` samples: on CUDA, the first time, record the peak it allocated
        above what was allocated before, per sample (later batches use that figure)."""
        if self.device.type != "cuda" or self.measured:
            yield
            return
        torch.cuda.synchronize(self.device)
        before = torch.cuda.memory_allocated(self.device)
        torch.cuda.reset_peak_memory_stats(self.device)
        yield
        torch.cuda.synchronize(self.device)
        peak = torch.cuda.max_memory_allocated(self.device) - before
        if peak > 0:
            self.bytes_per_sample = max(1, peak // max(1, batch))
            self.measured = True
