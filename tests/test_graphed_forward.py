"""The regressor's forward replayed as a CUDA graph gives the eager Gaussians, for new inputs too.

The CUDA cases need a CUDA device (skipped elsewhere); run on the GPU machine:
``python3 -m pytest -q tests/test_graphed_forward.py``.
"""

from __future__ import annotations

import pytest
import torch

from splatgen.core.generator import GenerationSettings, load_generator
from splatgen.core.generator.benchmark import example_input
from splatgen.core.generator.graphed import GraphedForward

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a CUDA device")


def test_on_the_cpu_the_function_runs_as_it_is():
    calls = []

    def fn(x):
        calls.append(x.shape)
        return x * 2, x.sum(dim=1)

    g = GraphedForward(fn)
    x = torch.arange(6.0).reshape(2, 3)
    a, b = g(x)
    assert torch.equal(a, x * 2) and torch.equal(b, x.sum(dim=1)) and calls == [(2, 3)] and not g.entries


@cuda
def test_the_regressor_graph_matches_eager_and_reads_new_inputs():
    gen = load_generator("regressor", torch.device("cuda"))
    image = example_input("cuda")
    other = image.flip(-1)
    assert gen.graphs is None  # off by default until the GPU checks below pass on a device
    gen.use_cuda_graphs(False)
    eager = [gen.generate(x, GenerationSettings())[0].gaussians for x in (image, other)]
    gen.use_cuda_graphs(True)
    graphed = [gen.generate(x, GenerationSettings())[0].gaussians for x in (image, other, image)]
    assert not gen.graphs.failed, f"capture failed: {gen.graphs.failed}"
    assert len(gen.graphs.entries) == 1
    for i, (a, b) in enumerate(zip(graphed, eager + eager[:1])):
        for name in ("means", "sh", "log_scales", "opacity_logits"):
            diff = (getattr(a, name) - getattr(b, name)).abs().max().item()
            assert diff < 1e-3, f"input {i}: {name} differ from eager by {diff:.3g}"
    moved = (graphed[0].means - graphed[1].means).abs().max().item()
    assert moved > 1e-2, f"the second input did not reach the graph (means moved {moved:.3g})"
    assert graphed[0].means.data_ptr() != graphed[2].means.data_ptr()      # outputs are copies, not the graph's
