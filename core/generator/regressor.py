"""The deterministic Splatter-Image regressor as a generator: one sample, whatever the seed.

The baseline of the method and the teacher of the latent diffusion model (see :mod:`.teacher`).
Model folder: ``{"kind": "regressor", "components": {"net": "."}}`` (the network's folder).
"""

from __future__ import annotations

from dataclasses import fields

import torch

from ..errors import ModelError
from ..gaussians import Gaussians
from ..models.splatter_net import SplatterNet
from .base import Cancelled, GenerationSettings, Generator, check_image, with_camera
from .graphed import GraphedForward
from .model_folder import load_component


class RegressorGenerator(Generator):
    """The deterministic Splatter-Image regressor: one sample, whatever the seed."""

    kind = "regressor"
    stochastic = False

    def __init__(self, net: SplatterNet, name: str = "regressor", device: torch.device = torch.device("cpu")):
        self.name, self.device = name, device
        self.net = net.to(device).eval()
        self.defaults = GenerationSettings(guidance=1.0, skip_weight=1.0, steps=1, scheduler="none", strength=1.0)
        # off by default: the graphed pass has not yet matched the eager one on a GPU (tests/test_graphed_forward.py)
        self.use_cuda_graphs(False)

    @classmethod
    def from_folder(cls, path, manifest, device):
        parts = manifest.get("components") or {}
        net = load_component(SplatterNet, path / parts.get("net", "."), "regressor network")
        if net.config.variational:
            raise ModelError(f"{path}: manifest says regressor but the network is a VAR")
        return cls(net, name=str(manifest.get("name") or path.name), device=device)

    def use_cuda_graphs(self, enabled: bool = True) -> None:
        """On CUDA, run the network as a captured CUDA graph per input shape (one pass is otherwise
        bound by kernel launches). No effect on the CPU."""
        self.graphs = GraphedForward(self._gaussian_fields) \
            if enabled and self.device.type == "cuda" else None

    def _gaussian_fields(self, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        g = self.net(images).gaussians
        return tuple(getattr(g, f.name) for f in fields(g))

    @torch.no_grad()
    def camera_gaussians(self, images: torch.Tensor) -> Gaussians:
        """Prepared images ``(B, 4, S, S)`` → Gaussians ``(B, N)`` in the input camera's frame."""
        if self.graphs is None:
            return self.net(images).gaussians
        return Gaussians(*self.graphs(images))

    @torch.no_grad()
    def generate(self, image, settings=GenerationSettings(), *, progress=None, cancel=None, on_sample=None):
        image = check_image(image, self.net.config.image_size).to(self.device)
        if cancel is not None and cancel.is_set():
            raise Cancelled()
        s, camera = with_camera(self.resolve(settings), image)
        gaussians = self.camera_gaussians(image[None].float())
        if progress is not None:
            progress(1, 1)
        sample = self.make_sample(gaussians[0], settings.seed, s, camera=camera, photo=image)
        if on_sample is not None:
            on_sample(sample, 0)
        return [sample]
