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


def fit_colour_transforms(render_rgb: torch.Tensor, render_alpha: torch.Tensor, photo_rgb: torch.Tensor,
                          photo_alpha: torch.Tensor, background: torch.Tensor,
                          ridge: float = RIDGE) -> tuple[torch.Tensor, torch.Tensor]:
    """``A`` ``(B, 3, 3)`` and ``b`` ``(B, 3)`` with ``A·render + α·b ≈ photo`` on the object's pixels,
    for ``B`` renders of one photo at once (no per-render step and no host round trip: on a GPU a
    request of 256 samples would otherwise wait on thousands of small launches and reads).

    Args: renders ``(B, S, S, 3)`` and photo ``(S, S, 3)``, RGB composited over ``background`` ``(3,)``,
    alphas ``(B, S, S[, 1])`` and ``(S, S[, 1])``, all in [0, 1]. The normal equations are summed over the
    object's pixels (the photo's mask as 0/1 weights) in float64; no object pixel gives the identity."""
    bsz = render_rgb.shape[0]
    ar = render_alpha.reshape(bsz, -1).double()                                           # (B, P)
    ap = photo_alpha.reshape(-1).double()                                                 # (P,)
    mask = (ap >= OBJECT_ALPHA).double()                                                  # (P,)
    bg = background.reshape(1, 3).to(ar)
    premult = render_rgb.reshape(bsz, -1, 3).double() - (1 - ar)[..., None] * bg          # (B, P, 3)
    target = photo_rgb.reshape(-1, 3).double() - (1 - ap)[:, None] * bg                   # (P, 3)
    x = torch.cat([premult, ar[..., None]], -1)                                           # (B, P, 4)
    xm = x * mask[None, :, None]
    eye, zero = torch.eye(3, dtype=torch.float64, device=ar.device), torch.zeros(3, dtype=torch.float64, device=ar.device)
    w0 = torch.cat([eye, zero[None]], 0)                                                  # (4, 3)
    # without object pixels the system is 0 = 0: a unit pull to the identity then gives w = w0
    lam = ridge * mask.sum() + (mask.sum() == 0).double()
    lhs = xm.transpose(1, 2) @ x + lam * torch.eye(4, dtype=torch.float64, device=ar.device)
    rhs = xm.transpose(1, 2) @ target + lam * w0
    w = torch.linalg.solve(lhs, rhs)                                                      # (B, 4, 3)
    return w[:, :3].transpose(1, 2).to(render_rgb), w[:, 3].to(render_rgb)


def fit_colour_transform(render_rgb: torch.Tensor, render_alpha: torch.Tensor, photo_rgb: torch.Tensor,
                         photo_alpha: torch.Tensor, background: torch.Tensor,
                         ridge: float = RIDGE) -> tuple[torch.Tensor, torch.Tensor]:
    """``A`` ``(3, 3)`` and ``b`` ``(3,)`` with ``A·render + α·b ≈ photo`` on the object's pixels.

    Args: renders and photo ``(S, S, 3)`` RGB composited over ``background`` ``(3,)``, alphas
    ``(S, S)`` or ``(S, S, 1)``, all in [0, 1]. Returns the identity when the photo has no object pixel."""
    a, b = fit_colour_transforms(render_rgb[None], render_alpha[None], photo_rgb, photo_alpha, background, ridge)
    return a[0], b[0]


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
    return {"matrix": [[round(v, 5) for v in row] for row in a.tolist()], "offset": [round(v, 5) for v in b.tolist()]}


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
        a, b = fit_colour_transforms(out.rgb[:, 0], out.alpha[:, 0], photo[:3].permute(1, 2, 0), photo[3], bg)
    # the records read the transforms on the host once, not 12 values a sample
    a_host, b_host = a.double().cpu(), b.double().cpu()
    return apply_colour_transform(g, a, b), [_record(a_host[i], b_host[i]) for i in range(len(a_host))]


def match_to_photo(camera_gaussians: Gaussians, photo: torch.Tensor, background) -> tuple[Gaussians, dict]:
    """One scene ``(N,)``: :func:`match_batch_to_photo` of a batch of one → (Gaussians ``(N,)``, record)."""
    matched, records = match_batch_to_photo(camera_gaussians[None], photo, background)
    return matched[0], records[0]


__all__ = ["fit_colour_transform", "fit_colour_transforms", "apply_colour_transform", "transform_image", "match_batch_to_photo", "match_to_photo", "RIDGE"]
