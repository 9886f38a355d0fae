"""How a depth image is shown: white (near) to black (far), over the background by alpha.

One rule for every view that shows depth: the Qt viewport (its OpenGL path draws it in
``shaders/display.frag``, its gsplat path with :func:`shade_depth`) and the browser viewer. The grey
level is ``t = clamp((d - lo) / (hi - lo), 0, 1)`` over the range :func:`depth_range` gives — the
nearest and farthest the scene's bounding sphere can be seen from the camera — so that a scene keeps
its shades while the camera orbits, and the picture is ``α·(1 - t) + (1 - α)·background``.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from .. import framing


def scene_bounds(means) -> tuple[np.ndarray, float]:
    """The bounding sphere of splat centres ``(N, 3)``: centre (their mean, float64 ``(3,)``) and radius
    (to the farthest one), world units; ``(0, 0)`` for no splats."""
    if isinstance(means, torch.Tensor):
        means = means.detach().cpu().numpy()
    m = np.asarray(means, np.float64).reshape(-1, 3)
    if m.shape[0] == 0:
        return np.zeros(3), 0.0
    centre = m.mean(0)
    return centre, float(np.sqrt(((m - centre) ** 2).sum(1).max()))


def depth_range(bounds: tuple[np.ndarray, float], viewmat, near: float = framing.NEAR,
                far: float = framing.FAR) -> tuple[float, float]:
    """The depths shown white and black for a camera (world-to-camera ``viewmat (4, 4)``): the nearest
    and farthest the sphere ``bounds`` (:func:`scene_bounds`) can be along the camera's z axis,
    within ``(near, far)``."""
    centre, radius = bounds
    vm = np.asarray(viewmat, np.float64).reshape(4, 4)
    z = float(vm[2, :3] @ np.asarray(centre, np.float64) + vm[2, 3])
    return max(near, z - radius), min(far, max(z + radius, near + 1e-6))


def shade_depth(depth, alpha, background: Sequence[float], depth_range: tuple[float, float]):
    """Expected depth ``(…, 1)`` and alpha ``(…, 1)`` → the picture ``(…, 3)``, floats in [0, 1].

    numpy arrays give a numpy array, torch tensors a tensor on their device; ``background`` is RGB in
    [0, 1]; ``depth_range``: ``(lo, hi)``, the depths shown white and black.
    """
    lo, hi = float(depth_range[0]), float(depth_range[1])
    hi = hi if hi > lo else lo + 1e-6
    if isinstance(depth, torch.Tensor):
        bg = torch.as_tensor(background, dtype=depth.dtype, device=depth.device).reshape(3)
        a = alpha.clamp(0.0, 1.0)
        t = ((depth - lo) / (hi - lo)).clamp(0.0, 1.0)
    else:
        depth, alpha = np.asarray(depth, np.float32), np.asarray(alpha, np.float32)
        bg = np.asarray(background, np.float32).reshape(3)
        a = np.clip(alpha, 0.0, 1.0)
        t = np.clip((depth - np.float32(lo)) / np.float32(hi - lo), 0.0, 1.0)
    return a * (1 - t) + (1 - a) * bg
