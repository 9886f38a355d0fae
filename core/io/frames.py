"""The frame splat files are stored in: the ecosystem's "PLY frame" against splatgen's Y-up object frame.

Splats trained from COLMAP captures (the INRIA ``.ply``) have Y down; the tools that read them
(PlayCanvas' SuperSplat and splat-transform, whose ``Transform.PLY`` says so for PLY, compressed
PLY, ``.splat``, ``.spz`` and SOG) turn such files 180° about Z to show them Y-up. glTF
(``KHR_gaussian_splatting``) is Y-up as splatgen's frame is. So :func:`~splatgen.core.io.save_splats`
writes the PLY family turned 180° about Z (x → −x, y → −y), and :func:`~splatgen.core.io.load_splats`
turns them back:

* ``.ply`` / ``.compressed.ply`` carry the header line ``comment frame: ply``; a file without it (an
  older splatgen file, or a Y-up file from elsewhere) is read as it is, so older files keep opening
  the right way up;
* ``.splat`` / ``.spz`` have no room for a marker and are always in the PLY frame, as their readers
  elsewhere assume.

The turn is a rotation, so each spherical-harmonic coefficient of order ``m`` changes sign by
``(-1)^|m|`` (the real SH ``Y_l^m`` is ``cos``/``sin`` of ``mφ``, and φ → φ + π).
"""

from __future__ import annotations

from dataclasses import replace

import torch

from ..gaussians import Gaussians

#: Header comment key / value that marks a ``.ply`` or ``.compressed.ply`` as being in the PLY frame.
FRAME_KEY = "frame"
PLY_FRAME = "ply"
#: Formats (names of :data:`~splatgen.core.io.SPLAT_FORMATS`) stored in the PLY frame.
PLY_FAMILY = ("ply", "compressed-ply", "spz", "splat")
#: Of those, the ones whose header says so (the others always are).
MARKED = ("ply", "compressed-ply")

#: What the turn 180° about Z does to a position ``(x, y, z)``: x and y change sign.
POSITION_SIGNS = torch.tensor([-1.0, -1.0, 1.0])


def sh_signs(num_coefficients: int) -> torch.Tensor:
    """``(K,)`` ±1: how each SH coefficient (index ``l² + l + m``) changes under a turn of 180° about Z."""
    signs = []
    l = 0
    while len(signs) < num_coefficients:
        signs += [(-1.0) ** abs(m) for m in range(-l, l + 1)]
        l += 1
    return torch.tensor(signs[:num_coefficients])


def turn_about_z(gaussians: Gaussians, back: bool = False) -> Gaussians:
    """Gaussians ``(N,)`` turned 180° about Z: splatgen's frame → the PLY frame, or with ``back`` the
    PLY frame → splatgen's. The two differ only in the quaternions' sign (the turn's quaternion
    ``r = (0, 0, 0, 1)`` squares to ``-1``): saving applies ``r⁻¹``, reading ``r``, so a saved file
    reads back bit-exact, and splat-transform's own turn (``r``) recovers our quaternions as they were."""
    signs = sh_signs(gaussians.sh.shape[-2]).to(gaussians.sh)
    w, x, y, z = gaussians.quats.unbind(-1)
    quats = torch.stack([-z, -y, x, w], -1)          # r ⊗ q (w, x, y, z order)
    if not back:
        quats = -quats                               # r⁻¹ ⊗ q = -(r ⊗ q)
    return replace(gaussians, means=gaussians.means * POSITION_SIGNS.to(gaussians.means),
                   quats=quats, sh=gaussians.sh * signs[:, None])
