"""The deterministic Splatter-Image regressor as a generator: one sample, whatever the seed.

The baseline of the method and the teacher of the latent diffusion model (see :mod:`.teacher`).
Model folder: ``{"kind": "regressor", "components": {"net": "."}}`` (the network's folder).
"""

from __future__ import annotations

import torch

from ..errors import ModelError
from ..models.splatter_net import SplatterNet
from .base import Cancelled, GenerationSettings, Generator, check_image, with_camera
from .model_folder import load_component


class RegressorGenerator(Generator):
    """The deterministic Splatter-Image regressor: one sample, whatever the seed."""

    kind = "regressor"
    stochastic = False

    def __init__(self, net: SplatterNet, name: str = "regressor", device: torch.device = torch.device("cpu")):
        self.name, self.device = name, device
        self.net = net.to(device).eval()
        self.defaults = GenerationSettings(guidance=1.0, skip_weight=1.0, steps=1, scheduler="none", strength=1.0)

    @classmethod
    def from_folder(cls, path, manifest, device):
        parts = manifest.get("components") or {}
        net = load_component(SplatterNet, path / parts.get("net", "."), "regressor network")
        if net.config.variational:
            raise ModelError(f"{path}: manifest says regressor but the network is a VAR")
        return cls(net, name=str(manifest.get("name") or path.name), device=device)

    @torch.no_grad()
    def generate(self, image, settings=GenerationSettings(), *, progress=None, cancel=None, on_sample=None):
        image = check_image(image, self.net.config.image_size).to(self.device)
        if cancel is not None and cancel.is_set():
            raise Cancelled()
        s, camera = with_camera(self.resolve(settings), image)
        out = self.net(image[None].float())
        if progress is not None:
            progress(1, 1)
        sample = self.make_sample(out.gaussians[0], settings.seed, s, camera=camera, photo=image)
        if on_sample is not None:
            on_sample(sample, 0)
        return [sample]
