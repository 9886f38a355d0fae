"""A brush stroke's redraw is feathered: no seam in the shape of the stroke, the stroke's inside is the
fresh draw, the view away from it unchanged. Two generated samples of one photo (the session's)
stand for the original and the fresh draw, merged as the brush resample merges them."""

from __future__ import annotations

import numpy as np
import torch
from scipy.ndimage import binary_dilation, binary_erosion

from splatgen.core import framing
from splatgen.core.cameras import orbit_viewmat
from splatgen.core.generator.resample import brush_region, brush_weights, merge_samples
from splatgen.core.render import render

SIZE = 128  # the samples' own image size (their K)


def _gradient(img: torch.Tensor) -> np.ndarray:
    """``(H, W, 3)`` → ``(H, W)`` |∂x| + |∂y| summed over channels."""
    g = torch.zeros(img.shape[:2])
    g[:, :-1] += (img[:, 1:] - img[:, :-1]).abs().sum(-1)
    g[:-1] += (img[1:] - img[:-1]).abs().sum(-1)
    return g.numpy()


def test_a_feathered_brush_leaves_no_seam(generated_samples):
    original, fresh = generated_samples
    # painted from behind and to the side, where two draws differ (the photo pins the front)
    vm = orbit_viewmat(160.0, 15.0, framing.CAMERA_DISTANCE).float()
    K = original.K.float()
    yy, xx = torch.meshgrid(torch.arange(SIZE), torch.arange(SIZE), indexing="ij")
    brush = ((yy - 64) ** 2 + (xx - 64) ** 2) < 20 ** 2

    def view(g):
        with torch.no_grad():
            return render(g, vm[None], K[None], SIZE, SIZE).rgb[0]

    weights = brush_weights(original.gaussians, brush, vm, K.double())
    assert weights.dtype == torch.float32 and weights.shape == original.gaussians.shape
    assert 0 < int((weights == 1).sum()) and int(((weights > 0) & (weights < 1)).sum()) > 100  # a soft edge
    hard = view(merge_samples(original.gaussians, fresh.gaussians, brush_region(original.gaussians, brush, vm, K)))
    soft = view(merge_samples(original.gaussians, fresh.gaussians, weights))
    a, b = view(original.gaussians), view(fresh.gaussians)

    m = brush.numpy()
    edge = binary_dilation(m, iterations=3) & ~binary_erosion(m, iterations=3)   # across the stroke's edge
    own = (_gradient(a)[edge].mean() + _gradient(b)[edge].mean()) / 2            # what the object has there

    def seam(img) -> float:
        return float(_gradient(img)[edge].mean() - own)

    assert seam(hard) > 0.004                     # the hard merge: a visible step along the stroke
    assert seam(soft) < 0.4 * seam(hard), (seam(soft), seam(hard))
    # still a redraw: inside the stroke the fresh draw, well away from it the original
    core, away = binary_erosion(m, iterations=4), ~binary_dilation(m, iterations=14)
    diff = lambda x, y, where: float((x - y).abs().mean(-1).numpy()[where].mean())  # noqa: E731
    assert diff(soft, b, core) < 0.1 * diff(a, b, core)
    assert diff(soft, a, away) < 1e-3
