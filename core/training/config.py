"""What a training run is told: one dataclass for every model's loop, with the defaults in one place.

``splatgen train`` fills it from its options (whose defaults are read from here); the benchmarks and
tests build it directly. Each field is named like its command-line option (``--batch-size`` →
``batch_size``); its comment says what it means and to which models it applies.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import SplatgenError

MODELS = ("regressor", "var", "diffusion", "mv-autoencoder", "mv-denoiser", "mv-decoder", "mv-distill",
          "teacher-guided", "one-step")


#: Allowed values of the numeric settings: (lowest, highest, whether the lowest itself is allowed);
#: None is open. Checked for every run, so a bad value is one clear error before anything starts.
RANGES = {
    "max_minutes": (0, None, False), "max_steps": (0, None, True), "checkpoint_minutes": (0, None, False),
    "seed": (0, None, True), "batch_size": (1, None, True), "num_targets": (1, None, True),
    "num_context": (0, None, True), "lr": (0, 1, False), "lr_final": (0, 1, True), "warmup": (0, None, True), "grad_clip": (0, None, False),
    "ema_decay": (0, 1, True), "log_every": (1, None, True), "gaussians_per_pixel": (1, 16, True),
    "ssim_weight": (0, None, True), "alpha_weight": (0, None, True), "kl_weight": (0, None, True),
    "render_items": (0, None, True), "render_weight": (0, None, True), "cond_dropout": (0, 1, True),
    "num_views": (2, 32, True), "lora_rank": (1, 256, True), "consistency_weight": (0, None, True),
    "depth_weight": (0, None, True), "loss_scale": (1, 4, True), "zoom_weight": (0, None, True),
    "chain_prob": (0, 1, True),
}


@dataclass
class TrainConfig:
    model: str                                   # regressor | var | diffusion
    data: Path                                   # a built (`splatgen data build`) or packed dataset
    out: Path                                    # run folder: checkpoint/, log.jsonl, samples_*.png
    resume: bool = False                         # continue exactly from out/checkpoint if it exists
    init_from: str | None = None                 # start from a model folder's weights
    export: str | None = None                    # write the EMA weights (fp16) there at the end
    max_minutes: float | None = None             # stop with a checkpoint after this long
    max_steps: int | None = None                 # stop at this global step
    checkpoint_minutes: float = 5.0
    device: str = "auto"                         # auto | cpu | cuda
    seed: int = 0
    compile: bool = False                        # torch.compile the network (CUDA; compiles once per machine)
    batch_size: int = 16
    num_targets: int = 3                         # novel views rendered per object and step
    num_context: int = 2                         # var / diffusion: target views the VAR encoder also sees
    lr: float = 2e-4
    warmup: int = 300                            # linear learning-rate warm-up, steps
    lr_final: float | None = None                # cosine decay of lr to this over the run's budget (None: constant)
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    log_every: int = 50
    mirror: float = 0.5                          # probability of mirroring an object left-right
    gaussians_per_pixel: int = 2
    ssim_weight: float = 0.2
    alpha_weight: float = 0.1
    loss_scale: int = 1                          # regressor / var: also render the loss at this multiple of the views' size
    zoom_weight: float = 0.5                     # regressor / var: weight of that zoomed term (loss_scale > 1)
    kl_weight: float = 1e-4                      # var: β of the KL term
    decoder_only: bool = False                   # var: train the reconstructor only (encoders frozen)
    var: str | None = None                       # diffusion: the VAR model folder whose latents to model;
                                                 # teacher-guided, --noisy-source posterior: the VAR whose objects are noised
    teacher: str | None = None                   # diffusion: a frozen regressor whose features join the condition;
                                                 # teacher-guided: the frozen regressor whose objects are noised
    teacher_latent: bool = False                 # diffusion: the condition also carries the teacher's object
    render_items: int = 0                        # diffusion: items per step decoded and rendered (2D loss)
    render_weight: float = 1.0                   # diffusion: weight of that render loss
    cond_dropout: float = 0.1                    # diffusion: condition dropout for classifier-free guidance
    latent_pool: int = 16384                     # diffusion: VAR encodings kept; 0 encodes every batch afresh
    pool_reuse: int = 4                          # diffusion: each encoding is drawn this often on average
    denoiser_channels: list[int] = field(default_factory=lambda: [64, 128, 128])  # a new denoiser's UNet widths
    denoiser_layers: int = 1                     # a new denoiser's ResNet layers per level
    # multi-view model (seed 003, mv-*: see splatgen.core.training.multiview)
    num_views: int = 8                           # mv-*: orbit views per object generated / decoded together
    autoencoder: str | None = None               # mv-denoiser/decoder/distill: the trained autoencoder folder
    denoiser: str | None = None                  # mv-distill: the trained multi-view denoiser folder
    decoder: str | None = None                   # mv-distill: the trained Gaussian decoder folder (frozen)
    lora_rank: int = 8                           # mv-distill: rank of the LoRA adapters on the denoiser
    consistency_weight: float = 1.0              # mv-distill: weight of the 3D loss against the diffusion loss
    depth_weight: float = 0.5                    # mv-distill: weight of its depth term
    mv_channels: list[int] = field(default_factory=list)  # mv-*: a new network's block widths ([]: its default)
    splat_channels: list[int] = field(default_factory=lambda: [32, 64, 128, 128])  # teacher-guided: a new UNet's widths
    splat_backbone: str = "unet"                 # teacher-guided, a new denoiser: "unet", or "teacher" (the regressor's
                                                 # architecture, starting from its weights)
    chain_prob: float = 0.0                      # teacher-guided: share of steps trained through the sampler's own chain
    noisy_source: str = "teacher"                # teacher-guided: what is noised, "teacher" (its object) or "posterior"
                                                 # (the --var VAR's from the input and --num-context target views)

    def __post_init__(self):
        self.data, self.out = Path(self.data), Path(self.out)
        if self.model not in MODELS:
            raise SplatgenError(f"unknown model {self.model!r}: one of {', '.join(MODELS)}")
        for name, (low, high, low_ok) in RANGES.items():
            value = getattr(self, name)
            if value is None:
                continue
            if not (math.isfinite(value) and (value >= low if low_ok else value > low)
                    and (high is None or value <= high)):
                bound = (f"{'at least' if low_ok else 'above'} {low:g}" + (f" and at most {high:g}" if high is not None
                                                                          else ""))
                raise SplatgenError(f"--{name.replace('_', '-')} must be {bound}, got {value:g}")
        if not 0.0 <= self.mirror <= 1.0:
            raise SplatgenError(f"--mirror is a probability between 0 and 1, got {self.mirror}")
        if self.latent_pool < 0 or self.pool_reuse < 1:
            raise SplatgenError("--latent-pool must be 0 or more and --pool-reuse at least 1")
        if any(c < 32 or c % 32 for c in self.denoiser_channels) or len(self.denoiser_channels) < 2 \
                or self.denoiser_layers < 1:
            raise SplatgenError("--denoiser-channels takes two or more multiples of 32 (the UNet's group norm) and "
                                "--denoiser-layers 1 or more")
        if self.mv_channels and (len(self.mv_channels) < 2 or any(c < 8 or c % 8 for c in self.mv_channels)):
            raise SplatgenError("--mv-channels takes two or more multiples of 8 (the networks' group norms)")
        if len(self.splat_channels) < 2 or any(c < 8 or c % 8 for c in self.splat_channels):
            raise SplatgenError("--splat-channels takes two or more multiples of 8")
        if self.splat_backbone not in ("unet", "teacher"):
            raise SplatgenError(f"--splat-backbone is 'unet' or 'teacher', got {self.splat_backbone!r}")
        if self.noisy_source not in ("teacher", "posterior"):
            raise SplatgenError(f"--noisy-source is 'teacher' or 'posterior', got {self.noisy_source!r}")
        if self.max_minutes is None and self.max_steps is None:
            self.max_steps = 100_000
        if self.lr_final is not None and self.lr_final > self.lr:
            raise SplatgenError(f"--lr-final ({self.lr_final:g}) is where the learning rate decays to: at most --lr "
                                f"({self.lr:g})")

    @classmethod
    def field_names(cls) -> set[str]:
        return {f.name for f in dataclasses.fields(cls)}

    @classmethod
    def default(cls, name: str):
        """The default of field ``name`` (what the command line shows and uses)."""
        f = next(f for f in dataclasses.fields(cls) if f.name == name)
        return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default

    def to_json(self) -> dict:
        """Plain JSON values (paths as strings), as kept in every checkpoint's ``trainer.json``."""
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(self).items()}
