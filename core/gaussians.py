"""The Gaussians container: one set (or a batch of sets) of 3D Gaussian splats.

Parameters are stored *raw*, exactly as the INRIA 3DGS `.ply` format stores them, so that file
round trips are bit-exact and networks can predict them directly:

=================  ===================  =====================================================
field              shape                meaning
=================  ===================  =====================================================
``means``          ``(*B, N, 3)``       centres, world units
``quats``          ``(*B, N, 4)``       rotations as quaternions **wxyz**, not necessarily unit
``log_scales``     ``(*B, N, 3)``       natural log of the standard deviations, world units
``opacity_logits`` ``(*B, N)``          logit of the opacity
``sh``             ``(*B, N, K, 3)``    spherical-harmonic colour coefficients, K = (deg+1)^2;
                                        ``sh[..., 0, :]`` is ``f_dc`` and RGB = 0.5 + C0 * f_dc
=================  ===================  =====================================================

``*B`` are optional leading batch dimensions (e.g. several samples of one photo). The activated
values that renderers consume are the properties ``scales`` (exp), ``opacities`` (sigmoid),
``unit_quats`` and ``rgb``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import Iterable, Sequence

import torch

#: Zeroth-order real spherical-harmonic constant: RGB = 0.5 + SH_C0 * f_dc.
SH_C0 = 0.28209479177387814


def rgb_to_sh0(rgb: torch.Tensor) -> torch.Tensor:
    """RGB in [0, 1] ``(..., 3)`` → zeroth-order SH coefficient ``(..., 3)``."""
    return (rgb - 0.5) / SH_C0


def sh0_to_rgb(sh0: torch.Tensor) -> torch.Tensor:
    """Zeroth-order SH coefficient ``(..., 3)`` → RGB ``(..., 3)`` (not clamped)."""
    return sh0 * SH_C0 + 0.5


@dataclass
class Gaussians:
    """A set of 3D Gaussians; see the module docstring for fields, shapes and units."""

    means: torch.Tensor
    quats: torch.Tensor
    log_scales: torch.Tensor
    opacity_logits: torch.Tensor
    sh: torch.Tensor

    def __post_init__(self) -> None:
        shape = self.means.shape[:-1]
        expected = {
            "means": (*shape, 3),
            "quats": (*shape, 4),
            "log_scales": (*shape, 3),
            "opacity_logits": tuple(shape),
        }
        for name, want in expected.items():
            got = tuple(getattr(self, name).shape)
            if got != tuple(want):
                raise ValueError(f"Gaussians.{name} has shape {got}, expected {tuple(want)}")
        if self.sh.dim() != len(shape) + 2 or tuple(self.sh.shape[:-2]) != tuple(shape) or self.sh.shape[-1] != 3:
            raise ValueError(f"Gaussians.sh has shape {tuple(self.sh.shape)}, expected {(*shape, 'K', 3)}")
        k = self.sh.shape[-2]
        if round(math.sqrt(k)) ** 2 != k:
            raise ValueError(f"Gaussians.sh has {k} coefficients per channel; must be (degree+1)^2")

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_activated(
        cls,
        means: torch.Tensor,
        quats: torch.Tensor,
        scales: torch.Tensor,
        opacities: torch.Tensor,
        rgb: torch.Tensor,
    ) -> "Gaussians":
        """Build from activated values: linear ``scales`` (>0), ``opacities`` in (0, 1), ``rgb``."""
        eps = 1e-6
        opacities = opacities.clamp(eps, 1 - eps)
        return cls(
            means=means,
            quats=quats,
            log_scales=torch.log(scales.clamp_min(1e-12)),
            opacity_logits=torch.log(opacities) - torch.log1p(-opacities),
            sh=rgb_to_sh0(rgb).unsqueeze(-2),
        )

    # ------------------------------------------------------------------ activated views
    @property
    def scales(self) -> torch.Tensor:
        """Standard deviations ``(*B, N, 3)``, world units."""
        return torch.exp(self.log_scales)

    @property
    def opacities(self) -> torch.Tensor:
        """Opacities in (0, 1), ``(*B, N)``."""
        return torch.sigmoid(self.opacity_logits)

    @property
    def unit_quats(self) -> torch.Tensor:
        """Unit quaternions wxyz ``(*B, N, 4)``."""
        return torch.nn.functional.normalize(self.quats, dim=-1)

    @property
    def rgb(self) -> torch.Tensor:
        """View-independent colour ``(*B, N, 3)`` from the DC term, clamped to [0, 1]."""
        return sh0_to_rgb(self.sh[..., 0, :]).clamp(0.0, 1.0)

    @property
    def sh_degree(self) -> int:
        return round(math.sqrt(self.sh.shape[-2])) - 1

    # ------------------------------------------------------------------ shape
    @property
    def batch_shape(self) -> torch.Size:
        """Leading batch dimensions (empty for a single set)."""
        return self.means.shape[:-2]

    @property
    def shape(self) -> torch.Size:
        """``(*B, N)``."""
        return self.means.shape[:-1]

    @property
    def num_gaussians(self) -> int:
        return self.means.shape[-2]

    @property
    def device(self) -> torch.device:
        return self.means.device

    @property
    def dtype(self) -> torch.dtype:
        return self.means.dtype

    def tensors(self) -> dict[str, torch.Tensor]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def map(self, fn) -> "Gaussians":
        """Apply ``fn`` to every field tensor and return the new container."""
        return Gaussians(**{k: fn(v) for k, v in self.tensors().items()})

    def to(self, device=None, dtype: torch.dtype | None = None) -> "Gaussians":
        """Move to a device and/or cast floating fields to ``dtype``."""
        return self.map(lambda t: t.to(device=device, dtype=dtype))

    def detach(self) -> "Gaussians":
        return self.map(lambda t: t.detach())

    def clone(self) -> "Gaussians":
        return self.map(lambda t: t.clone())

    def __getitem__(self, index) -> "Gaussians":
        """Index the leading dimensions ``(*B, N)``: a mask or indices over splats, or a batch item."""
        return self.map(lambda t: t[index])

    def with_sh_degree(self, degree: int) -> "Gaussians":
        """Truncate or zero-pad the SH coefficients to ``degree``."""
        k = (degree + 1) ** 2
        sh = self.sh
        if sh.shape[-2] >= k:
            sh = sh[..., :k, :]
        else:
            pad = sh.new_zeros((*sh.shape[:-2], k - sh.shape[-2], 3))
            sh = torch.cat([sh, pad], dim=-2)
        return replace(self, sh=sh)

    def transformed(self, matrix: torch.Tensor) -> "Gaussians":
        """Apply a rigid 4×4 transform (rotation + translation, no scale) to means and rotations."""
        matrix = matrix.to(self.means)
        rot, trans = matrix[:3, :3], matrix[:3, 3]
        means = self.means @ rot.T + trans
        q_rot = rotation_matrix_to_quat(rot)
        quats = quat_multiply(q_rot.expand_as(self.quats), self.quats)
        return replace(self, means=means, quats=quats)

    @staticmethod
    def concat(items: Sequence["Gaussians"], dim: int = -1) -> "Gaussians":
        """Concatenate along the splat axis (``dim=-1`` of the shape ``(*B, N)``) or a batch axis."""
        if not items:
            raise ValueError("Gaussians.concat needs at least one item")
        nd = len(items[0].shape)
        d = dim % nd
        degree = max(g.sh_degree for g in items)
        items = [g.with_sh_degree(degree) for g in items]
        return Gaussians(**{
            name: torch.cat([getattr(g, name) for g in items], dim=d) for name in items[0].tensors()
        })

    @staticmethod
    def stack(items: Iterable["Gaussians"]) -> "Gaussians":
        """Stack sets of equal size into a new leading batch dimension."""
        items = list(items)
        return Gaussians(**{name: torch.stack([getattr(g, name) for g in items]) for name in items[0].tensors()})

    def __repr__(self) -> str:
        return (f"Gaussians(shape={tuple(self.shape)}, sh_degree={self.sh_degree}, "
                f"dtype={self.dtype}, device={self.device})")


def quat_multiply(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Hamilton product of wxyz quaternions ``(..., 4)``."""
    aw, ax, ay, az = a.unbind(-1)
    bw, bx, by, bz = b.unbind(-1)
    return torch.stack([
        aw * bw - ax * bx - ay * by - az * bz,
        aw * bx + ax * bw + ay * bz - az * by,
        aw * by - ax * bz + ay * bw + az * bx,
        aw * bz + ax * by - ay * bx + az * bw,
    ], dim=-1)


def quat_to_rotation_matrix(q: torch.Tensor) -> torch.Tensor:
    """wxyz quaternions ``(..., 4)`` (normalised here) → rotation matrices ``(..., 3, 3)``."""
    q = torch.nn.functional.normalize(q, dim=-1)
    w, x, y, z = q.unbind(-1)
    return torch.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
    ], dim=-1).reshape(*q.shape[:-1], 3, 3)


def rotation_matrix_to_quat(r: torch.Tensor) -> torch.Tensor:
    """Rotation matrix ``(3, 3)`` → wxyz unit quaternion ``(4,)`` (Shepperd's method)."""
    m = r.double()
    tr = m[0, 0] + m[1, 1] + m[2, 2]
    if tr > 0:
        s = torch.sqrt(tr + 1.0) * 2
        q = [0.25 * s, (m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s]
    elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
        s = torch.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2]) * 2
        q = [(m[2, 1] - m[1, 2]) / s, 0.25 * s, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s]
    elif m[1, 1] > m[2, 2]:
        s = torch.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2]) * 2
        q = [(m[0, 2] - m[2, 0]) / s, (m[0, 1] + m[1, 0]) / s, 0.25 * s, (m[1, 2] + m[2, 1]) / s]
    else:
        s = torch.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1]) * 2
        q = [(m[1, 0] - m[0, 1]) / s, (m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, 0.25 * s]
    return torch.stack(q).to(r.dtype)


def random_gaussians(
    n: int,
    *,
    radius: float = 0.5,
    scale_range: tuple[float, float] = (0.01, 0.05),
    sh_degree: int = 0,
    seed: int = 0,
    center: Sequence[float] = (0.0, 0.0, 0.0),
) -> Gaussians:
    """A reproducible random scene: ``n`` Gaussians in a ball of ``radius`` around ``center``.

    Used by tests, benchmarks and the example asset.
    """
    g = torch.Generator().manual_seed(seed)
    direction = torch.nn.functional.normalize(torch.randn(n, 3, generator=g), dim=-1)
    r = radius * torch.rand(n, 1, generator=g) ** (1 / 3)
    means = direction * r + torch.tensor(center, dtype=torch.float32)
    lo, hi = math.log(scale_range[0]), math.log(scale_range[1])
    log_scales = lo + (hi - lo) * torch.rand(n, 3, generator=g)
    quats = torch.nn.functional.normalize(torch.randn(n, 4, generator=g), dim=-1)
    opacity_logits = torch.randn(n, generator=g) * 1.5 + 1.0
    k = (sh_degree + 1) ** 2
    sh = torch.randn(n, k, 3, generator=g) * 0.1
    sh[:, 0, :] = rgb_to_sh0(torch.rand(n, 3, generator=g))
    return Gaussians(means, quats, log_scales, opacity_logits, sh)
