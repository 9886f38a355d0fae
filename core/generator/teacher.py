"""The denoiser's condition, the teacher regressor whose features may join it, and its latent.

The condition is the VAR image encoder's 16×16 features of the input view; a denoiser built with
``teacher_channels`` > 0 also reads the frozen regressor's 16×16 features of the same view, appended
along channels (see :mod:`.denoiser`). Training (the latent pool, previews) and the generator (hence
evaluation) both assemble it here, so they agree on the order. The teacher is pinned by the sha256 of its weights file: features of another
regressor would mean nothing to the denoiser.

:func:`teacher_latent` puts the teacher's object into the VAR's latent space: the regressor's
Gaussians are rendered from two more cameras (:data:`TEACHER_VIEWS`, dataset-style orbit poses that
need no data) and the VAR's view encoder reads them beside the input view, as it reads real views in
training. Its posterior mean decodes about as well as the regressor itself, far better than the VAR
reading the input view alone (``scripts/experiments/teacher_latent.py``; figures in
benchmarks/README.md, "Teacher latent"). A denoiser built with ``teacher_latent`` reads it as the
last part of its condition (the shipped one does), and sampling may start from it (``strength`` < 1,
SDEdit: noised part of the way and denoised from there) instead of from pure noise.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch

from .. import framing
from ..cameras import canonical_intrinsics, orbit_viewmat, relative_viewmats
from ..errors import ModelError
from ..models.splatter_net import SplatterNet
from .model_folder import load_component

#: The teacher's extra views for :func:`teacher_latent`: (azimuth, elevation) in degrees of orbit
#: cameras like the dataset's, relative to an input camera at ``framing.INPUT_ELEVATION_DEG`` and
#: azimuth 0. Behind and to the side decoded best on val (benchmarks/README.md, "Teacher latent").
TEACHER_VIEWS = ((180.0, 15.0), (90.0, 15.0))


def weights_sha256(folder: str | Path) -> str:
    """sha256 (hex) over a model folder's ``*.safetensors`` files, in name order."""
    h = hashlib.sha256()
    files = sorted(Path(folder).glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(f"{folder}: no *.safetensors weights")
    for f in files:
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def load_teacher(path: Path, parts: dict, channels: int, sha256: str = "") -> SplatterNet:
    """The teacher regressor named by ``parts["teacher"]`` (a folder relative to the model folder
    ``path``): present, a regressor with ``channels`` feature channels, and with the weights of sha256
    ``sha256`` when that is given (the very regressor the denoiser was trained with)."""
    if "teacher" not in parts:
        raise ModelError(f"{path}: the denoiser was trained with a teacher regressor's features, but the manifest "
                         f"names no 'teacher' component")
    folder = (path / parts["teacher"]).resolve()
    if not folder.is_dir():
        raise ModelError(f"{path}: the denoiser needs its teacher regressor at {folder} (components.teacher); "
                         f"keep the regressor folder beside this one")
    teacher = load_component(SplatterNet, folder, "teacher regressor")
    if teacher.config.variational or teacher.config.channels[-1] != channels:
        raise ModelError(f"{folder}: not a regressor with {channels} feature channels, "
                         f"which the denoiser's teacher must be")
    if sha256 and weights_sha256(folder) != sha256:
        raise ModelError(f"{folder}: this regressor is not the one the denoiser was trained with (weights differ "
                         f"from sha256 {sha256[:12]}…); ship the two together")
    return teacher


def denoiser_condition(var_top: torch.Tensor, image: torch.Tensor, teacher: SplatterNet | None,
                       latent_var: SplatterNet | None = None) -> torch.Tensor:
    """``var_top`` ``(B, C_var, s, s)`` (the VAR's last image features) and, with a teacher, its features of
    ``image`` ``(B, 4, S, S)``, and with ``latent_var`` (the VAR, for a denoiser with ``teacher_latent``) the
    teacher's :func:`teacher_latent` → condition ``(B, C_var [+ C_teacher [+ C_lat]], s, s)``."""
    if teacher is None:
        return var_top
    features = teacher.encode_image(image)
    parts = [var_top, features[-1].to(var_top.dtype)]
    if latent_var is not None:
        parts.append(teacher_latent(latent_var, teacher, image, features).to(var_top.dtype))
    return torch.cat(parts, 1)


def teacher_view_poses(device=None) -> torch.Tensor:
    """World-to-camera ``(V, 4, 4)`` of :data:`TEACHER_VIEWS` in the input camera's frame (OpenCV)."""
    ref = orbit_viewmat(0.0, framing.INPUT_ELEVATION_DEG)
    views = torch.stack([orbit_viewmat(az, el) for az, el in TEACHER_VIEWS])
    return relative_viewmats(views, ref).float().to(device)


@torch.no_grad()
def teacher_latent(var: SplatterNet, teacher: SplatterNet, image: torch.Tensor,
                   features: list[torch.Tensor] | None = None) -> torch.Tensor:
    """The teacher's reconstruction of ``image`` ``(B, 4, S, S)`` as a VAR latent ``(B, C_lat, s, s)``:
    the VAR posterior mean from the input view plus the teacher's renders from :func:`teacher_view_poses`.
    ``features``: the teacher's image features of ``image``, if already computed."""
    from ..render import render

    size = image.shape[-1]
    features = teacher.encode_image(image) if features is None else features
    gaussians = teacher.decode(features).gaussians.to(dtype=torch.float32)
    poses = teacher_view_poses(image.device)
    b, v = image.shape[0], poses.shape[0]
    with torch.autocast(image.device.type, enabled=False):  # gsplat rasterises in float32
        out = render(gaussians, poses.expand(b, v, 4, 4), canonical_intrinsics(size).to(image.device), size, size,
                     background=framing.BACKGROUND)
    rendered = torch.cat([out.rgb, out.alpha], -1).permute(0, 1, 4, 2, 3).to(image.dtype)  # (B, V, 4, S, S)
    views = torch.cat([image[:, None], rendered], 1)
    eye = torch.eye(4, device=image.device)[None]
    viewmats = torch.cat([eye, poses]).expand(b, v + 1, 4, 4).to(image.dtype)
    mean, _ = var.encode_views(views, viewmats)
    return mean


__all__ = ["TEACHER_VIEWS", "denoiser_condition", "load_teacher", "teacher_latent", "teacher_view_poses",
           "weights_sha256"]
