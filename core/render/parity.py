"""Parity between renderers: the same random scenes through two backends, PSNR of every output.

``splatgen bench parity`` runs it (torch vs gsplat needs CUDA; torch vs gl runs anywhere with EGL);
the CI tests assert the torch/gl figure, the gsplat one is recorded under ``benchmarks/``.
"""

from __future__ import annotations

import torch

from .. import framing
from ..cameras import intrinsics_from_fov, orbit_viewmat
from ..gaussians import Gaussians, random_gaussians
from ..metrics import psnr
from . import backend_device, render

# (splats, width, height, SH degree)
DEFAULT_CASES = ((2000, 128, 128, 0), (16384, 128, 128, 0), (16384, 256, 192, 1), (65536, 512, 512, 3))


def parity_scene(n: int, sh_degree: int, seed: int) -> Gaussians:
    shrink = (n / 16384) ** (-1.0 / 3.0)
    return random_gaussians(n, radius=0.5, scale_range=(0.005 * shrink, 0.03 * shrink), sh_degree=sh_degree,
                            seed=seed)


def compare_backends(reference: str, other: str, cases=DEFAULT_CASES, cameras: int = 3, gradients: bool = True,
                     log=print) -> list[dict]:
    """PSNR (dB) of ``other`` against ``reference`` for rgb, alpha and depth (depth normalised by the
    far bound of the scene); with ``gradients``, the cosine similarity of d(loss)/d(params)."""
    rows = []
    for i, (n, w, h, deg) in enumerate(cases):
        scene = parity_scene(n, deg, seed=100 + i)
        vms = torch.stack([orbit_viewmat(35.0 + 120.0 * c, 10.0 + 15.0 * c) for c in range(cameras)])
        K = intrinsics_from_fov(framing.FOV_DEG, w, h)
        outs, grads = {}, {}
        for backend in (reference, other):
            dev = backend_device(backend)
            params = {k: v.to(dev).clone().requires_grad_(gradients and backend != "gl")
                      for k, v in scene.tensors().items()}
            out = render(Gaussians(**params), vms.to(dev), K.to(dev), w, h, backend=backend)
            outs[backend] = {k: getattr(out, k).detach().cpu() for k in ("rgb", "alpha", "depth")}
            if gradients and backend != "gl":
                weights = torch.linspace(0.5, 1.5, w, device=dev)  # any fixed, non-uniform loss
                (out.rgb * weights[:, None]).mean().add(out.alpha.mean()).backward()
                grads[backend] = torch.cat([p.grad.detach().cpu().flatten() for p in params.values()])
        a, b = outs[reference], outs[other]
        far = float(framing.CAMERA_DISTANCE + 1.0)
        row = {
            "reference": reference, "other": other, "gaussians": n, "width": w, "height": h, "sh_degree": deg,
            "psnr_rgb": psnr(a["rgb"], b["rgb"]).min().item(),
            "psnr_alpha": psnr(a["alpha"], b["alpha"]).min().item(),
            "psnr_depth": psnr(a["depth"] / far, b["depth"] / far).min().item(),
        }
        if len(grads) == 2:
            row["grad_cosine"] = torch.nn.functional.cosine_similarity(grads[reference], grads[other], dim=0).item()
        rows.append(row)
        log(" ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))
    return rows
