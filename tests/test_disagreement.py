"""How unusual each sample of a set is (splatgen.core.disagreement): the score against a direct
computation, and a deliberately different sample scoring highest."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from splatgen.core.disagreement import disagreement, sample_disagreement
from splatgen.core.gaussians import random_gaussians


def test_the_score_is_the_mean_mse_to_the_other_samples():
    images = torch.rand(4, 2, 5, 6, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    got = disagreement(images)
    for s in range(4):
        want = sum(((images[s] - images[t]) ** 2).mean().item() for t in range(4) if t != s) / 3
        assert got[s].item() == pytest.approx(want, rel=1e-9)
    assert disagreement(images[:1]).tolist() == [0.0]                       # alone: nothing to disagree with
    assert disagreement(images[[0, 0, 0]]).abs().max() < 1e-12            # identical samples agree


def test_a_deliberately_different_sample_scores_highest():
    base = random_gaussians(400, seed=0)
    samples = []
    for k in range(6):                                  # the same object, its colours a little off each time
        noise = 0.05 * torch.randn(base.sh.shape, generator=torch.Generator().manual_seed(k))
        samples.append(dataclasses.replace(base, sh=base.sh + noise))
    odd = random_gaussians(250, seed=7, radius=0.3, center=(0.15, 0.1, 0.0))   # another shape, fewer splats
    samples.insert(3, odd)
    scores = sample_disagreement(samples)
    assert scores.shape == (7,) and scores.dtype == torch.float64
    assert int(scores.argmax()) == 3
    assert scores[3] > 2 * max(scores[i] for i in range(7) if i != 3)
