"""Image metrics (and losses) shared by training, evaluation and the parity checks (channels-last images in [0, 1])."""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F


@functools.lru_cache(maxsize=8)
def _gauss_window(size: int, sigma: float, device: str, dtype: torch.dtype) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(x ** 2) / (2 * sigma ** 2))
    g = (g / g.sum()).to(device=device, dtype=dtype)
    return g


def ssim(a: torch.Tensor, b: torch.Tensor, window: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Mean SSIM over the last three dims of ``(..., H, W, C)`` images → ``(...)``.

    Gaussian window (11, σ=1.5), C1 = 0.01², C2 = 0.03², valid region only (as Wang et al.).
    """
    lead = a.shape[:-3]
    h, w, c = a.shape[-3:]
    x = a.reshape(-1, h, w, c).permute(0, 3, 1, 2).reshape(-1, 1, h, w)
    y = b.reshape(-1, h, w, c).permute(0, 3, 1, 2).reshape(-1, 1, h, w)
    g = _gauss_window(window, sigma, str(a.device), a.dtype)

    def blur(t):
        t = F.conv2d(t, g.view(1, 1, 1, -1))
        return F.conv2d(t, g.view(1, 1, -1, 1))

    mx, my = blur(x), blur(y)
    sxx = blur(x * x) - mx * mx
    syy = blur(y * y) - my * my
    sxy = blur(x * y) - mx * my
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
    return s.reshape(-1, c, *s.shape[-2:]).mean(dim=(1, 2, 3)).reshape(lead)


def psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """PSNR in dB over the last three dims of ``(..., H, W, C)`` images in [0, 1] → ``(...)``."""
    mse = (a.float() - b.float()).square().mean(dim=(-3, -2, -1))
    return -10.0 * torch.log10(mse.clamp_min(1e-10))
