"""OneStepNet: the one-step student of seed 002 (DD3G's PEPD): image + the teacher's noise → Gaussians in one pass.

DD3G distils a diffusion teacher's deterministic ODE map noise N → object into a generator that
takes the input image and N and gives the 3D Gaussians in one pass, so the same noise gives
(nearly) the teacher's object: a preview that predicts the slow result. Its student, PEPD, has two
phases, built here over the regressor's architecture (:mod:`.splatter_net`) so that the student
*starts as the regressor* (every new weight that reads N or the guidance starts at zero):

* **Pattern extraction**: the image encoder's 16×16 features ``F`` (the regressor's encoder) meet the
  random information: ``P = FiLM_w(F + noise_in(N))``, then a self-attention block over the 16×16
  tokens, added through a gate that starts at 0 (``P + gate · block(P)``). ``N`` is the teacher's
  starting noise laid out as ``noise_channels`` planes at the features' 16×16 (the latent diffusion
  teacher's ``(4, 16, 16)``; a multi-view teacher's ``(V, C, s, s)`` is flattened to ``V·C`` planes,
  and one whose ``s`` is not 16 is refused for now: its noise would need folding to 16×16); ``w`` is the
  teacher's guidance, an input so that the guidance slider still acts (FiLM from ``[w, log(1 + w)]``,
  its last layer at zero).
* **Progressive decoding**: the regressor's reconstructor (skips at full weight) gives per-pixel
  features ``h``; three heads then decode the Splatter-Image attributes in order, each reading ``h``
  and what the earlier heads decided: **positions** (depth, offset), then **shape** (log-scales,
  rotation) given the positions, then **appearance** (opacity, colour) given both. Each head's
  ``h`` weights are the regressor head's rows for its channels and its weights on the earlier
  outputs start at zero, so at initialisation the three heads together *are* the regressor's head.

Output: raw channels ``(B, 15·M, S, S)`` in :mod:`.splatter_image`'s layout and the Gaussians
``(B, S·S·M)`` in the input camera's frame, as :class:`~.splatter_net.SplatterNet` gives.
"""

from __future__ import annotations

import torch
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config
from torch import nn

from .splatter_image import CHANNELS_PER_GAUSSIAN, GROUPS, raw_to_gaussians
from .splatter_net import ImageEncoder, Reconstructor, SplatterOutput, _mid

#: The progressive decoding's stages: (name, the Splatter-Image groups it decodes), in order.
STAGES = (("positions", ("depth", "offset")), ("shape", ("log_scale", "rotation")),
          ("appearance", ("opacity", "colour")))


def _group_slices() -> dict[str, slice]:
    out, start = {}, 0
    for name, width in GROUPS:
        out[name] = slice(start, start + width)
        start += width
    return out


def stage_channels(stage: int) -> list[int]:
    """Indices, within one Gaussian's 15 raw channels, of the groups stage ``stage`` decodes (in order)."""
    sl = _group_slices()
    return [c for g in STAGES[stage][1] for c in range(sl[g].start, sl[g].stop)]


class OneStepNet(ModelMixin, ConfigMixin):
    """Image ``(B, 4, S, S)`` + noise ``(B, noise_channels, s, s)`` + guidance ``(B,)`` → Splatter Image."""

    @register_to_config
    def __init__(
        self,
        image_size: int = 128,
        in_channels: int = 4,
        channels: tuple[int, ...] = (32, 64, 128, 128),
        attention_head_dim: int = 32,
        gaussians_per_pixel: int = 2,
        noise_channels: int = 4,
        # what the noise is, so the generator draws it as the teacher does: ``torch.randn(noise_shape)``
        # from a CPU generator seeded with the sample's seed (the teacher's own ``noise(seed)``)
        noise_shape: tuple[int, ...] = (1, 4, 16, 16),
        # the teacher this student was distilled from (its kind and its folder's sha256), for the record
        teacher_kind: str = "",
        teacher_sha256: str = "",
        # the teacher's sampler the student learnt (DDIM, η = 0, so an ODE: one noise, one object)
        teacher_steps: int = 20,
        teacher_scheduler: str = "ddim",
        default_guidance: float = 2.0,
        trained_steps: int = 0,
    ):
        super().__init__()
        channels = tuple(channels)
        m = gaussians_per_pixel
        self.encoder = ImageEncoder(in_channels, channels, attention_head_dim)
        top = channels[-1]
        # pattern extraction: N and w enter at zero
        self.noise_in = nn.Conv2d(noise_channels, top, 3, padding=1)
        self.guidance_film = nn.Sequential(nn.Linear(2, 64), nn.SiLU(), nn.Linear(64, 2 * top))
        self.pattern = _mid(top, attention_head_dim)
        self.pattern_gate = nn.Parameter(torch.zeros(()))
        for layer in (self.noise_in, self.guidance_film[-1]):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)
        # progressive decoding: the reconstructor's trunk, then one head per stage
        self.reconstructor = Reconstructor(channels, attention_head_dim, m)
        width = channels[0]
        self.reconstructor.head = nn.Identity()  # the stage heads below replace it
        self.heads = nn.ModuleList()
        before = 0
        for k in range(len(STAGES)):
            n = len(stage_channels(k))
            self.heads.append(nn.Conv2d(width + m * before, m * n, 3, padding=1))
            before += n

    # ------------------------------------------------------------------ from the regressor
    @classmethod
    def from_regressor(cls, regressor, noise_shape: tuple[int, ...], **config) -> "OneStepNet":
        """A student that gives exactly ``regressor``'s output for any noise and guidance: its encoder
        and reconstructor copied, the regressor's head split into the three stage heads (their weights
        on the earlier stages' outputs at zero), every weight reading N or w at zero."""
        rc = regressor.config
        if rc.variational:
            raise ValueError("the student starts from the regressor, not a VAR")
        top = rc.image_size // 2 ** (len(rc.channels) - 1)
        if tuple(int(d) for d in noise_shape[-2:]) != (top, top):
            raise ValueError(f"the teacher's noise is {tuple(noise_shape)}: its planes must be {top}×{top}, the "
                             "image features' size, to be read by this student")
        noise_channels = 1
        for d in noise_shape[1:-2]:
            noise_channels *= int(d)
        net = cls(image_size=rc.image_size, in_channels=rc.in_channels, channels=tuple(rc.channels),
                  attention_head_dim=rc.attention_head_dim, gaussians_per_pixel=rc.gaussians_per_pixel,
                  noise_channels=noise_channels, noise_shape=tuple(int(d) for d in noise_shape), **config)
        net.encoder.load_state_dict(regressor.encoder.state_dict())
        trunk = {k: v for k, v in regressor.reconstructor.state_dict().items() if not k.startswith("head.")}
        net.reconstructor.load_state_dict(trunk)
        m, width = rc.gaussians_per_pixel, rc.channels[0]
        w = regressor.reconstructor.head.weight.detach().view(m, CHANNELS_PER_GAUSSIAN, width, 3, 3)
        b = regressor.reconstructor.head.bias.detach().view(m, CHANNELS_PER_GAUSSIAN)
        with torch.no_grad():
            for k, head in enumerate(net.heads):
                idx = stage_channels(k)
                head.weight.zero_()
                head.weight[:, :width] = w[:, idx].reshape(m * len(idx), width, 3, 3)
                head.bias.copy_(b[:, idx].reshape(-1))
        return net

    # ------------------------------------------------------------------ forward
    def pattern_code(self, top: torch.Tensor, noise: torch.Tensor, guidance: torch.Tensor) -> torch.Tensor:
        """Pattern extraction: image features ``(B, C, s, s)``, noise ``(B, noise_channels, s, s)``,
        guidance ``(B,)`` → the code the reconstructor decodes ``(B, C, s, s)``."""
        g = guidance.to(top.dtype).reshape(-1, 1)
        film = self.guidance_film(torch.cat([g, torch.log1p(g.clamp(min=0))], 1))        # (B, 2C)
        scale, shift = film[:, :, None, None].chunk(2, dim=1)
        p = (top + self.noise_in(noise.to(top.dtype))) * (1 + scale) + shift
        return p + self.pattern_gate * self.pattern(p)

    def decode_stages(self, h: torch.Tensor) -> torch.Tensor:
        """Progressive decoding: trunk features ``(B, width, S, S)`` → raw channels ``(B, 15·M, S, S)``."""
        b, _, hh, ww = h.shape
        m = self.config.gaussians_per_pixel
        raw = h.new_zeros(b, m, CHANNELS_PER_GAUSSIAN, hh, ww)
        decided = []
        for k, head in enumerate(self.heads):
            out = head(torch.cat([h, *decided], 1))                                      # (B, M·n_k, S, S)
            raw[:, :, stage_channels(k)] = out.view(b, m, -1, hh, ww)
            decided.append(out)
        return raw.view(b, m * CHANNELS_PER_GAUSSIAN, hh, ww)

    def forward(self, image: torch.Tensor, noise: torch.Tensor, guidance: torch.Tensor | float) -> SplatterOutput:
        """``image`` ``(B, 4, S, S)`` RGBA in [0, 1] (RGB on the background), ``noise`` the teacher's
        starting noise ``(B, *noise_shape[1:])`` (or already ``(B, noise_channels, s, s)``), ``guidance``
        ``(B,)`` or a scalar → raw channels and Gaussians in the input camera's frame."""
        b = image.shape[0]
        feats = self.encoder(image * 2.0 - 1.0)
        skips, top = feats[:-1], feats[-1]
        noise = noise.reshape(b, -1, *noise.shape[-2:])
        g = torch.as_tensor(guidance, dtype=top.dtype, device=top.device).expand(b) if not torch.is_tensor(guidance) \
            else guidance.to(device=top.device, dtype=top.dtype).expand(b)
        code = self.pattern_code(top, noise, g)
        h = self.reconstructor(code, skips, torch.ones((), dtype=top.dtype, device=top.device))
        raw = self.decode_stages(h)
        return SplatterOutput(raw=raw, gaussians=raw_to_gaussians(raw, self.config.gaussians_per_pixel))


__all__ = ["OneStepNet", "STAGES", "stage_channels"]
