"""All training views of a split held as one uint8 tensor (on the GPU when there is one), sampled there.

At 128² a whole split (~750 objects × 24 views) is ~1.2 GB of RGBA bytes: small next to a GPU's
memory, so batches are drawn by indexing on the device and no loader process can become the bottleneck.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from .. import framing
from ..cameras import canonical_intrinsics, relative_viewmats
from ..errors import DatasetError


@dataclass
class ViewBatch:
    """A training batch; every camera is expressed in the input view's camera frame.

    ``input`` ``(B, 4, S, S)`` RGBA in [0, 1], RGB composited on the background (model input);
    ``rgb`` ``(B, V, S, S, 3)`` and ``alpha`` ``(B, V, S, S, 1)`` the views to reconstruct, view 0 being
    the input view itself; ``viewmats`` ``(B, V, 4, 4)`` (view 0 is the identity); ``Ks`` ``(B, V, 3, 3)``.
    """

    input: torch.Tensor
    rgb: torch.Tensor
    alpha: torch.Tensor
    viewmats: torch.Tensor
    Ks: torch.Tensor
    objects: torch.Tensor


class ViewBank:
    """``images`` ``(O, V, S, S, 4)`` uint8 RGBA (straight alpha) and ``viewmats`` ``(O, V, 4, 4)`` OpenCV."""

    def __init__(self, images: torch.Tensor, viewmats: torch.Tensor, device="cpu",
                 background=framing.BACKGROUND, names: list[str] | None = None):
        if images.dim() != 5 or images.shape[-1] != 4 or images.dtype != torch.uint8:
            raise DatasetError(f"view bank images must be (O, V, S, S, 4) uint8, got {tuple(images.shape)} "
                               f"{images.dtype}")
        if images.shape[2] != framing.IMAGE_SIZE or images.shape[3] != framing.IMAGE_SIZE:
            raise DatasetError(f"dataset views are {images.shape[3]}x{images.shape[2]} pixels, the models need "
                               f"{framing.IMAGE_SIZE}x{framing.IMAGE_SIZE}: rebuild with --size {framing.IMAGE_SIZE}")
        if images.shape[0] == 0 or images.shape[1] < 2:
            raise DatasetError("the dataset needs at least one object with at least two views")
        self.images = images.to(device)
        self.viewmats = viewmats.to(device=device, dtype=torch.float32)
        self.background = torch.tensor(background, device=device, dtype=torch.float32)
        self.K = canonical_intrinsics(images.shape[2]).to(device)
        self.names = names or [str(i) for i in range(images.shape[0])]

    @property
    def num_objects(self) -> int:
        return self.images.shape[0]

    @property
    def views_per_object(self) -> int:
        return self.images.shape[1]

    def decode(self, rgba_u8: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """uint8 RGBA ``(..., S, S, 4)`` → (RGB on the background ``(..., S, S, 3)``, alpha ``(..., S, S, 1)``)."""
        x = rgba_u8.float() / 255.0
        rgb, alpha = x[..., :3], x[..., 3:]
        return rgb * alpha + self.background * (1 - alpha), alpha

    def batch(self, objects: torch.Tensor, input_views: torch.Tensor, target_views: torch.Tensor) -> ViewBatch:
        """Assemble a batch: ``objects`` ``(B,)``, ``input_views`` ``(B,)``, ``target_views`` ``(B, T)``."""
        views = torch.cat([input_views[:, None], target_views], 1)  # (B, 1+T)
        rgb, alpha = self.decode(self.images[objects[:, None], views])
        vms = self.viewmats[objects[:, None], views]  # (B, 1+T, 4, 4)
        rel = relative_viewmats(vms, vms[:, :1])
        inp = torch.cat([rgb[:, 0], alpha[:, 0]], -1).permute(0, 3, 1, 2).contiguous()
        Ks = self.K.expand(*views.shape, 3, 3)
        return ViewBatch(inp, rgb, alpha, rel, Ks, objects)

    def sample(self, batch_size: int, num_targets: int, generator: torch.Generator,
               mirror_prob: float = 0.0) -> ViewBatch:
        """Random objects, a random input view each, and ``num_targets`` other views of the same object;
        each item is mirrored (see :func:`mirror`) with probability ``mirror_prob``."""
        dev = self.images.device
        o, v = self.num_objects, self.views_per_object
        objects = torch.randint(0, o, (batch_size,), generator=generator, device=dev)
        # a random permutation per item: first entry is the input view, the next ones the targets
        perm = torch.argsort(torch.rand(batch_size, v, generator=generator, device=dev), dim=1)
        batch = self.batch(objects, perm[:, 0], perm[:, 1:1 + num_targets])
        if mirror_prob > 0:
            batch = mirror(batch, torch.rand(batch_size, generator=generator, device=dev) < mirror_prob)
        return batch


#: Reflection x → -x of the input camera's frame (its own inverse).
_MIRROR = torch.diag(torch.tensor([-1.0, 1.0, 1.0, 1.0]))


def mirror(batch: ViewBatch, which: torch.Tensor) -> ViewBatch:
    """Mirror the items ``which`` ``(B,)`` bool left-right: a new, equally valid training object.

    The object is reflected through the input camera's y-z plane. Every view of the reflection is
    the original view flipped horizontally (the canonical principal point is the image centre), seen
    from the reflected camera ``S·V·S`` with ``S = diag(-1, 1, 1, 1)`` — still a rotation, and the
    identity for the input view. Doubles the shapes a small dataset shows the models.
    """
    w = which.reshape(-1)  # no early exit on "none chosen": reading it back would stall the GPU
    S = _MIRROR.to(batch.viewmats)

    def pick(flipped: torch.Tensor, original: torch.Tensor) -> torch.Tensor:
        return torch.where(w.reshape(-1, *([1] * (original.dim() - 1))), flipped, original)

    return ViewBatch(
        input=pick(batch.input.flip(-1), batch.input),            # (B, 4, S, S): width is the last axis
        rgb=pick(batch.rgb.flip(-2), batch.rgb),                  # (B, V, S, S, 3): width is axis -2
        alpha=pick(batch.alpha.flip(-2), batch.alpha),
        viewmats=pick(S @ batch.viewmats @ S, batch.viewmats),
        Ks=batch.Ks,
        objects=batch.objects,
    )


def loading_rate(bank: ViewBank, seconds: float) -> str:
    """``"loaded in 3.2 s, 40,000 views/s"``: how fast a split reached the training device."""
    views = bank.num_objects * bank.views_per_object
    return f"loaded in {seconds:.1f} s, {views / max(seconds, 1e-9):,.0f} views/s"


def load_view_bank(path, device="cpu", split: str = "train", cache_dir=None, rank: int = 0,
                   world_size: int = 1) -> ViewBank:
    """Load a dataset split into a :class:`ViewBank` (see :func:`splatgen.core.data.dataset.load_split_arrays`).

    With ``world_size`` > 1 the bank holds rank ``rank``'s shard only: objects ``rank, rank + world_size,
    …`` (so each GPU of a distributed run keeps 1/world_size of the views, and the ranks together
    see every object once).

    With ``cache_dir`` (or ``SPLATGEN_VIEW_CACHE`` set), the decoded arrays are kept there as ``.npy``
    files (no pickle) keyed by the dataset's index and split, so a later run on the same machine maps
    them instead of decoding every image again (the GPU machine keeps /tmp between the calls of one lease).
    """
    import os

    cache_dir = cache_dir or os.environ.get("SPLATGEN_VIEW_CACHE")
    if cache_dir:
        images, viewmats, names = _cached_split_arrays(Path(path), split, Path(cache_dir))
    else:
        from ..data.dataset import load_split_arrays

        images, viewmats, names = load_split_arrays(path, split=split)
    if world_size > 1:
        if len(names) < world_size:
            from ..errors import SplatgenError

            raise SplatgenError(f"{path}: {len(names)} objects cannot be shared among {world_size} ranks")
        images, viewmats, names = images[rank::world_size], viewmats[rank::world_size], list(names)[rank::world_size]
    return ViewBank(torch.as_tensor(images), torch.as_tensor(viewmats), device=device, names=names)


def _cached_split_arrays(root: Path, split: str, cache_dir: Path):
    import hashlib
    import json
    import os

    import numpy as np

    from ..data.dataset import load_split_arrays

    index = next((root / n for n in ("index.json", "dataset.json") if (root / n).is_file()), None)
    if index is None:  # not a dataset: let the loader say what is wrong
        return load_split_arrays(root, split=split)
    key = hashlib.sha256(index.read_bytes() + split.encode()).hexdigest()[:16]
    base = cache_dir / f"views-{key}"
    files = [base.with_suffix(s) for s in (".images.npy", ".viewmats.npy", ".names.json")]
    if all(f.is_file() for f in files):
        return np.load(files[0]), np.load(files[1]), json.loads(files[2].read_text())
    images, viewmats, names = load_split_arrays(root, split=split)
    cache_dir.mkdir(parents=True, exist_ok=True)
    # each file written under a temporary name and renamed, so a run stopped midway leaves no half cache
    for f, value in zip(files, (images, viewmats, names)):
        tmp = f.with_name(f.name + ".partial")
        with open(tmp, "wb") as handle:
            if isinstance(value, list):
                handle.write(json.dumps(value).encode())
            else:
                np.save(handle, value, allow_pickle=False)
        os.replace(tmp, f)
    return images, viewmats, names
