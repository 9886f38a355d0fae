"""Image metrics (and losses) shared by training, evaluation and the parity checks (channels-last images in [0, 1])."""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F


@functools.lru_cache(maxsize=16)
def _blur_matrix(n: int, size: int, sigma: float, device: str, dtype: torch.dtype) -> torch.Tensor:
    """``(n, n - size + 1)`` matrix whose product with a row of ``n`` samples is its 'valid' Gaussian blur.

    Why a matrix: the blur as a 1-channel convolution runs on slow generic cuDNN kernels, while
    the same banded product is one batched matmul."""
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(x ** 2) / (2 * sigma ** 2))
    g = g / g.sum()
    m = torch.zeros(n, n - size + 1, dtype=torch.float64)
    for j in range(n - size + 1):
        m[j:j + size, j] = g
    return m.to(device=device, dtype=dtype)


def ssim(a: torch.Tensor, b: torch.Tensor, window: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Mean SSIM over the last three dims of ``(..., H, W, C)`` images → ``(...)``.

    Gaussian window (11, σ=1.5), C1 = 0.01², C2 = 0.03², valid region only (as Wang et al.). The five
    local moments are blurred together, rows then columns, as two batched matmuls in float32 (the
    variances are differences of nearly equal moments: TF32 or bf16 would swamp C2; training keeps
    float32 matmuls exact, see ``setup_run``).
    """
    lead = a.shape[:-3]
    h, w, c = a.shape[-3:]
    x = a.float().reshape(-1, h, w, c).permute(0, 3, 1, 2).reshape(-1, h, w)
    y = b.float().reshape(-1, h, w, c).permute(0, 3, 1, 2).reshape(-1, h, w)
    rows = _blur_matrix(w, window, sigma, str(a.device), torch.float32)
    cols = _blur_matrix(h, window, sigma, str(a.device), torch.float32).T
    moments = torch.stack([x, y, x * x, y * y, x * y])               # (5, N, H, W)
    mx, my, exx, eyy, exy = cols @ (moments @ rows)                  # (5, N, H', W')
    sxx, syy, sxy = exx - mx * mx, eyy - my * my, exy - mx * my
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
    return s.reshape(-1, c, *s.shape[-2:]).mean(dim=(1, 2, 3)).reshape(lead)


#: MS-SSIM's scale weights for 128² views: the first three of Wang et al.'s five (five scales of an
#: 11-pixel window need 161 pixels or more).
MS_SSIM_BETAS = (0.0448, 0.2856, 0.3001)


def ms_ssim(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Multi-scale SSIM (torchmetrics) over the last three dims of ``(..., H, W, C)`` images in [0, 1] →
    ``(...)``: a perceptual figure that needs no learned weights, unlike LPIPS."""
    from torchmetrics.functional.image import multiscale_structural_similarity_index_measure

    lead = a.shape[:-3]
    h, w, c = a.shape[-3:]
    x = a.float().reshape(-1, h, w, c).permute(0, 3, 1, 2)
    y = b.float().reshape(-1, h, w, c).permute(0, 3, 1, 2)
    out = multiscale_structural_similarity_index_measure(x, y, data_range=1.0, betas=MS_SSIM_BETAS,
                                                          normalize="relu", reduction="none")
    return out.reshape(lead)


def psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """PSNR in dB over the last three dims of ``(..., H, W, C)`` images in [0, 1] → ``(...)``."""
    mse = (a.float() - b.float()).square().mean(dim=(-3, -2, -1))
    return -10.0 * torch.log10(mse.clamp_min(1e-10))
