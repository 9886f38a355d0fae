"""Match a sample's colours to the photo: one affine colour transform fitted on the input view.

The networks lose part of a photo's saturation (and may tint it); since the photo is at hand at
generation time, the sample's render of the input view can be compared with it and the difference
removed from every splat. The transform is global (one 3×3 matrix ``A`` and offset ``b`` for the whole
sample), so it corrects a colour bias of the network without painting the photo onto the splats:
the hidden side gets the same correction as the seen side.

Fitting works on premultiplied colour, in which alpha compositing is linear: a render over
background ``bg`` is ``P + (1 − α)·bg`` with ``P = Σ wᵢ cᵢ``, so splat colours ``c' = A c + b`` give
``P' = A P + α b``. ``A, b`` minimise ``Σ |A Pₚ + αₚ b − Tₚ|²`` over the object's pixels ``p`` (``T``:
the photo's premultiplied colour), with a ridge pull towards the identity so that a nearly grey or
tiny object does not get a wild matrix. On the splats, ``c = 0.5 + C0·f_dc + (view-dependent SH
terms)`` and the transform is linear, so ``f_dc' = A f_dc + (A·0.5 + b − 0.5) / C0`` and every
higher SH coefficient ``f' = A f``: the render of the transformed splats is exactly ``A P + α b``
(up to the renderers' clamping of colours to [0, 1]).
"""

from __future__ import annotations

from dataclasses import replace

import torch

from .cameras import canonical_intrinsics
from .gaussians import SH_C0, Gaussians

#: Ridge weight towards the identity transform, per object pixel (dimensionless; colours in [0, 1]).
RIDGE = 0.05
#: Pixels of the photo with at least this alpha are the object's.
OBJECT_ALPHA = 0.5


def fit_colour_transform(render_rgb: torch.Tensor, render_alpha: torch.Tensor, photo_rgb: torch.Tensor,
                         photo_alpha: torch.Tensor, background: torch.Tensor,
                         ridge: float = RIDGE) -> tuple[torch.Tensor, torch.Tensor]:
    """``A`` ``(3, 3)`` and ``b`` ``(3,)`` with ``A·render + α·b ≈ photo`` on the object's pixels.

    Args: renders and photo ``(S, S, 3)`` RGB composited over ``background`` ``(3,)``, alphas
    ``(S, S)`` or ``(S, S, 1)``, all in [0, 1]. Returns the identity when the photo has no object pixel."""
    ar, ap = render_alpha.reshape(render_alpha.shape[:2]), photo_alpha.reshape(photo_alpha.shape[:2])
    mask = ap >= OBJECT_ALPHA
    eye, zero = torch.eye(3, dtype=torch.float64), torch.zeros(3, dtype=torch.float64)
    n = int(mask.sum())
    if n == 0:
        return eye.to(render_rgb), zero.to(render_rgb)
    bg = background.reshape(1, 3).double()
    premult = render_rgb[mask].double() - (1 - ar[mask].double())[:, None] * bg           # (n, 3)
    target = photo_rgb[mask].double() - (1 - ap[mask].double())[:, None] * bg             # (n, 3)
    x = torch.cat([premult, ar[mask].double()[:, None]], 1)                              # (n, 4)
    w0 = torch.cat([eye, zero[None]], 0)                                                 # (4, 3)
    lam = ridge * n
    w = torch.linalg.solve(x.T @ x + lam * torch.eye(4, dtype=torch.float64), x.T @ target + lam * w0)
    return w[:3].T.to(render_rgb), w[3].to(render_rgb)


def apply_colour_transform(g: Gaussians, a: torch.Tensor, b: torch.Tensor) -> Gaussians:
    """The Gaussians with colours ``A c + b`` (every SH coefficient transformed; see the module docstring).
    ``g`` ``(*B, N)`` with ``a`` ``(*B, 3, 3)`` and ``b`` ``(*B, 3)`` (one transform per scene), or one
    ``(3, 3)`` / ``(3,)`` for all."""
    a, b = a.to(g.sh), b.to(g.sh)
    lead = a.shape[:-2]                                                                   # () or B
    ones = [1] * (g.sh.dim() - 2 - len(lead))                # the dimensions a transform broadcasts over
    sh = g.sh @ a.reshape(*lead, *ones, 3, 3).transpose(-1, -2)                          # (..., K, 3)
    half = torch.full((3,), 0.5, dtype=a.dtype, device=a.device)
    shift = ((a @ half) + b - 0.5) / SH_C0                                                # (*B, 3)
    sh[..., 0, :] += shift.reshape(*lead, *ones, 3)
    return replace(g, sh=sh)


def transform_image(rgb: torch.Tensor, alpha: torch.Tensor, a: torch.Tensor, b: torch.Tensor,
                    background) -> torch.Tensor:
    """An image under the transform :func:`apply_colour_transform` gives splats: ``rgb`` ``(..., 3)`` over
    ``background``, ``alpha`` ``(..., 1)`` → ``A P + α b`` over the background (``P`` the premultiplied
    colour), clamped to [0, 1]: what the transformed splats render where the image is their render."""
    bg = torch.as_tensor(background, dtype=rgb.dtype, device=rgb.device)
    a, b = a.to(rgb), b.to(rgb)
    return ((rgb - (1 - alpha) * bg) @ a.T + alpha * b + (1 - alpha) * bg).clamp(0, 1)


def _record(a: torch.Tensor, b: torch.Tensor) -> dict:
    return {"matrix": [[round(float(v), 5) for v in row] for row in a], "offset": [round(float(v), 5) for v in b]}


def match_batch_to_photo(camera_gaussians: Gaussians, photo: torch.Tensor, background) -> tuple[Gaussians, list[dict]]:
    """Scenes ``(B, N)`` in the input camera's frame (samples of one photo) and the prepared photo
    ``(4, S, S)`` (RGB on ``background`` + alpha, [0, 1]) → the scenes, each with its own transform fitted
    on its render of the input view, and the transforms as JSON-ready records. One render call draws
    every scene at ``S``² (canonical intrinsics): a GPU would otherwise wait on B small launches."""
    from .render import choose_backend, render

    g = camera_gaussians
    size = photo.shape[-1]
    eye = torch.eye(4, device=g.means.device, dtype=g.means.dtype)[None]
    K = canonical_intrinsics(size).to(g.means)
    bg = torch.as_tensor(background, dtype=g.means.dtype, device=g.means.device)
    with torch.no_grad():
        out = render(g, eye, K, size, size, background=bg, backend=choose_backend(g.means.device))
        photo = photo.to(g.means)
        fits = [fit_colour_transform(out.rgb[i, 0], out.alpha[i, 0], photo[:3].permute(1, 2, 0), photo[3], bg)
                for i in range(g.batch_shape[0])]
    a = torch.stack([f[0] for f in fits])
    b = torch.stack([f[1] for f in fits])
    return apply_colour_transform(g, a, b), [_record(*f) for f in fits]


def match_to_photo(camera_gaussians: Gaussians, photo: torch.Tensor, background) -> tuple[Gaussians, dict]:
    """One scene ``(N,)``: :func:`match_batch_to_photo` of a batch of one → (Gaussians ``(N,)``, record)."""
    matched, records = match_batch_to_photo(camera_gaussians[None], photo, background)
    return matched[0], records[0]


__all__ = ["fit_colour_transform", "apply_colour_transform", "transform_image", "match_batch_to_photo", "match_to_photo", "RIDGE"]
