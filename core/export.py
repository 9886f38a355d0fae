"""Exports of generated samples: splat files, cameras, turntable videos, contact sheets.

Every file is written atomically (:mod:`splatgen.core.atomic`: a temporary file in the target
folder, then a rename), so an interrupted export never leaves a half-written file under the final name.

* splat files, one per :data:`EXPORT_FORMATS` entry: ``.ply`` (INRIA 3DGS: SuperSplat, gsplat's
  viewer, …), ``.compressed.ply`` (PlayCanvas), ``.spz`` (Niantic, v4), ``.glb`` (glTF
  ``KHR_gaussian_splatting``), ``.splat`` (32 bytes a splat); see :mod:`splatgen.core.io`. Splats too
  transparent to ever show (opacity < 1/255) are left out of files. ``.ply`` and ``.glb`` also carry
  per splat whether the photo shows it and, for a set of samples, how far the samples disagree on it
  (:mod:`splatgen.core.provenance`).
* meshes: ``.mesh.glb`` and ``.obj`` with vertex colours, fused from depth renders of the sample
  (:mod:`splatgen.core.mesh`); the items written are faces.
* ``cameras.json`` — the input camera in the ``transforms.json`` convention, so any tool can render
  the input view of a sample.
* turntable — an orbit around one sample or a grid of several, rendered by the fastest renderer at
  hand (gsplat on CUDA, the OpenGL renderer headless otherwise) and streamed into MP4, WebM, GIF or
  a folder of PNG frames: :func:`save_turntable` is :func:`splatgen.core.turntable.save_turntable`,
  its settings a :class:`~splatgen.core.turntable.TurntableSettings`.
* contact sheet — PNG grid: one row per sample, one column per view (for comparing diversity).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from . import framing
from .atomic import atomic_path
from .cameras import canonical_intrinsics, orbit_viewmats, transforms_dict
from .gaussians import Gaussians
from .generator.base import Sample
from .images import to_uint8

log = logging.getLogger("splatgen.export")
from .render import render
from .turntable import TurntableSettings, save_turntable  # noqa: F401 - the export API's turntable

#: Splats below this opacity never change a pixel by a full 8-bit step; files leave them out.
MIN_EXPORT_OPACITY = 1.0 / 255.0


def visible_splats(gaussians: Gaussians) -> Gaussians:
    """The splats worth storing (opacity ≥ :data:`MIN_EXPORT_OPACITY`)."""
    return gaussians[gaussians.opacities >= MIN_EXPORT_OPACITY]


def model_licence(model: str) -> str:
    """Licence of the weights of a model named ``model``: for a shipped model, the SPDX id in the
    ``LICENSE`` beside the shipped weights (``assets/models/LICENSE``); else ``"unknown"``."""
    import json

    from .generator.model_folder import MANIFEST, models_dir, shipped_model_folders

    names = set()
    for name, folder in shipped_model_folders().items():
        try:
            names |= {name, json.loads((folder / MANIFEST).read_text()).get("name")}
        except (OSError, ValueError):
            continue
    if model in names:
        try:
            for line in (models_dir() / "LICENSE").read_text(encoding="utf-8").splitlines():
                if line.startswith("SPDX-License-Identifier:"):
                    return line.split(":", 1)[1].strip()
        except OSError:
            pass
    return "unknown"


def camera_metadata(sample: Sample) -> dict:
    """The photo's camera a sample was placed with, for a splat file's metadata:
    ``{"input_elevation_deg": "45", "input_fov_deg": "40"}`` (empty for a sample without the record)."""
    cam = (getattr(sample, "info", None) or {}).get("camera") or {}
    return {f"input_{k}": f"{float(cam[k]):g}" for k in ("elevation_deg", "fov_deg") if k in cam}


def _splat_writer(name: str):
    """A writer of :data:`EXPORT_FORMATS` for the splat format ``name`` of :data:`~.io.SPLAT_FORMATS`.
    For a :class:`Sample`, formats that keep per-splat values get ``splatgen_observed`` (what the photo
    shows, :func:`splatgen.core.provenance.observed`) and, given a sample set's ``spread``,
    ``splatgen_spread``."""
    def write(path: str | os.PathLike, sample: Sample | Gaussians, spread: torch.Tensor | None = None) -> int:
        from .io import SPLAT_FORMATS, save_splats

        is_sample = isinstance(sample, Sample)
        meta = {"model": sample.model, "licence": model_licence(sample.model), **camera_metadata(sample)} \
            if is_sample else None
        g = (sample.gaussians if is_sample else sample).to("cpu")
        keep = g.opacities >= MIN_EXPORT_OPACITY
        extras = {}
        if SPLAT_FORMATS[name].per_splat_extras:
            if is_sample and not sample.info.get("no_input_camera"):
                from .provenance import observed
                from .render import RenderError

                try:
                    extras["splatgen_observed"] = observed(g, sample.input_viewmat.cpu(), sample.K.cpu(),
                                                           sample.image_size)[keep]
                except RenderError as exc:  # too many splat/pixel pairs for the CPU renderer: the file without it
                    log.warning("splatgen: %s written without splatgen_observed (%s)", os.fspath(path), exc)
            if spread is not None:
                extras["splatgen_spread"] = spread.cpu()[keep]
        save_splats(path, g[keep], meta, format=name, extras=extras or None)
        return int(keep.sum())

    return write


def _mesh_writer(path: str | os.PathLike, sample: Sample | Gaussians, spread: torch.Tensor | None = None) -> int:
    """A writer of :data:`EXPORT_FORMATS` for a coloured mesh (``.obj``, or ``.glb`` without splats):
    :func:`splatgen.core.mesh.export_mesh` at its defaults (20k faces, pivot at the base, Y up)."""
    from .mesh import export_mesh

    meta = {"model": sample.model, "licence": model_licence(sample.model)} if isinstance(sample, Sample) else None
    g = (sample.gaussians if isinstance(sample, Sample) else sample).to("cpu")
    return export_mesh(g, path, metadata=meta).mesh.num_faces


#: What a sample can be exported as: format name → (file suffix, writer(path, sample) → items written).
#: ``--format``, the GUI's and the browser page's exports all come from here; another exporter is one line.
EXPORT_FORMATS: dict[str, tuple[str, Callable[..., int]]] = {
    "ply": (".ply", _splat_writer("ply")),
    "compressed-ply": (".compressed.ply", _splat_writer("compressed-ply")),
    "spz": (".spz", _splat_writer("spz")),
    "glb": (".glb", _splat_writer("glb")),
    "splat": (".splat", _splat_writer("splat")),
    "glb-mesh": (".mesh.glb", _mesh_writer),
    "obj": (".obj", _mesh_writer),
}


def export_format(path: str | os.PathLike) -> str | None:
    """The :data:`EXPORT_FORMATS` name whose suffix ``path`` ends in (the longest match, any case), or None."""
    lower = Path(path).name.lower()
    matches = [(len(suffix), name) for name, (suffix, _) in EXPORT_FORMATS.items()
               if lower.endswith(suffix) and len(lower) > len(suffix)]
    return max(matches)[1] if matches else None


def save_sample(path: str | os.PathLike, sample: Sample | Gaussians, format: str | None = None,
                spread: torch.Tensor | None = None) -> int:
    """Write a sample in ``format`` (an :data:`EXPORT_FORMATS` name; default: by ``path``'s suffix),
    atomically. Returns the number of splats (or other items) written.

    A :class:`Sample` records its model's name and that model's licence (:func:`model_licence`) where
    the format keeps metadata: ``.ply`` header comments, glTF ``asset.extras``, or a JSON sidecar
    ``NAME.json`` beside a ``.splat`` / ``.spz``."""
    from .errors import SplatFileError

    name = format or export_format(path)
    if name not in EXPORT_FORMATS:
        raise SplatFileError(f"{os.fspath(path)}: no export format for this file name "
                             f"(expected {', '.join(suffix for suffix, _ in EXPORT_FORMATS.values())})")
    return EXPORT_FORMATS[name][1](path, sample, spread=spread)


def write_image(path: str | os.PathLike, image: np.ndarray) -> None:
    """``(H, W, 3|4)`` uint8 → PNG (or any imageio format by extension), atomically."""
    import imageio.v3 as iio

    with atomic_path(path, keep_suffix=True) as tmp:
        iio.imwrite(tmp, np.ascontiguousarray(image))


def cameras_json(sample: Sample) -> dict:
    """The input camera of ``sample`` as a ``transforms.json`` dict (one frame: ``input.png``)."""
    return transforms_dict(sample.input_viewmat[None].cpu(), sample.K.cpu(), sample.image_size, sample.image_size,
                           file_paths=["input.png"], splatgen_model=sample.model, splatgen_seed=int(sample.seed),
                           splatgen_settings=sample.settings.as_dict())


def sheet_cameras(frames: int = 60, size: int = 256, elevation_deg: float = framing.INPUT_ELEVATION_DEG,
                      start_azimuth_deg: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """``frames`` orbit cameras ``(F, 4, 4)`` starting at the input view, and ``K`` for ``size``²."""
    az = [start_azimuth_deg + 360.0 * i / frames for i in range(frames)]
    return orbit_viewmats(az, elevation_deg, framing.CAMERA_DISTANCE), canonical_intrinsics(size)


def render_views(gaussians: Gaussians, viewmats: torch.Tensor, K: torch.Tensor, size: int,
                 background=framing.BACKGROUND, backend: str = "auto", batch: int = 16) -> np.ndarray:
    """Render ``(C, 4, 4)`` cameras → ``(C, size, size, 3)`` uint8 (fastest renderer by default)."""
    out = []
    with torch.no_grad():
        for i in range(0, len(viewmats), batch):
            vm = viewmats[i:i + batch].to(gaussians.device)
            rgb = render(gaussians, vm, K.to(gaussians.device), size, size, background=background, backend=backend).rgb
            out.append(to_uint8(rgb).cpu().numpy())
    return np.concatenate(out)


def contact_sheet(samples: Sequence[Sample | Gaussians], views: int = 6, size: int = 128,
                  background=framing.BACKGROUND, backend: str = "auto") -> np.ndarray:
    """``(N·size, views·size, 3)`` uint8: one row per sample, ``views`` azimuths from the input view."""
    vm, K = sheet_cameras(views, size)
    rows = [np.concatenate(list(render_views(s.gaussians if isinstance(s, Sample) else s, vm, K, size,
                                             background, backend)), axis=1) for s in samples]
    return np.concatenate(rows, axis=0)
