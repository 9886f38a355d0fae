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
    gen.use_cuda_graphs(False)
    eager = [gen.generate(x, GenerationSettings())[0].gaussians for x in (image, other)]
    gen.use_cuda_graphs(True)
    graphed = [gen.generate(x, GenerationSettings())[0].gaussians for x in (image, other, image)]
    assert len(gen.graphs.entries) == 1 and not gen.graphs.failed
    for a, b in zip(graphed, eager + eager[:1]):
        assert (a.means - b.means).abs().max().item() < 1e-3
        assert (a.sh - b.sh).abs().max().item() < 1e-3
    assert (graphed[0].means - graphed[1].means).abs().max().item() > 1e-2  # the second input reached the graph
    assert graphed[0].means.data_ptr() != graphed[2].means.data_ptr()      # outputs are copies, not the graph's
