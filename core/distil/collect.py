"""The teacher's quadruples over the distillation image set (issue #33, seed 002).

DD3G distils a multi-view diffusion model into a one-step generator with no 3D data: it runs the
teacher's deterministic DDIM ODE from a noise N for an input image II and keeps {N, cameras C, II,
output views OI}. Here the teacher is the multi-view generator (seed 003,
:class:`~splatgen.core.generator.multi_view.MultiViewGenerator`): for every image of an image set's
``distil`` split (:mod:`.images`) and ``noises_per_image`` seeds, its N-view latents are sampled
from ``teacher.noise(seed)`` (so ``splatgen generate --seed`` with the same settings reproduces an
item) with DDIM (η = 0: an ODE, the same noise always gives the same views), ``steps`` steps and
classifier-free guidance; the guidance values cycle over an image's seeds and are kept per item,
so the student can take the guidance as an input. The cameras are the teacher's orbit at the
elevation the photo-camera estimator reads from each image, as generation does. Items are batched
across images (one guidance value a batch).

Until the multi-view teacher is good enough to distil, the latent-diffusion generator (seed 001)
stands in, as #33 allows: its DDIM ODE from ``teacher.noise(seed)`` gives a latent, the VAR decodes it
into Gaussians, and their renders at the same orbit cameras (``num_views`` of them, view 0 the input
camera) are the views; ``latents`` is then the one latent ``(M, 1, C, s, s)``, and ``noise`` likewise.
The index records the teacher's kind; a student says which teacher it learnt from.

Shard ``quads-NNNNN.safetensors`` (M items, N views, latents C × s², S = 128):

* ``image`` ``(M,)`` int64 — the item's row ``id`` in the image set; ``seed`` ``(M,)`` int64;
  ``guidance`` and ``elevation`` (degrees) ``(M,)`` float32;
* ``noise`` and ``latents`` ``(M, N, C, s, s)`` float16 — the start and the teacher's clean latents;
* ``views`` ``(M, N, S, S, 4)`` uint8 — the autoencoder's decoding of the latents (RGB on the
  background, alpha): OI, what the student's renders must match;
* ``viewmats`` ``(M, N, 4, 4)`` float32 — the views' cameras in the input camera's frame (OpenCV).

``index.json`` names the teacher (the sha256 of its folder's files, its name and path), the image set
(the sha256 of its index, its path), the device kind, the settings and the shards written. A
collection stopped midway continues where it stopped: every shard is written whole (atomically)
before the index names it, and a later run with the same teacher and image set contents, device
kind and settings checks the shards listed and skips their items.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ..atomic import atomic_path, atomic_write
from ..errors import DatasetError, SplatgenError
from ..models import mv_autoencoder
from .images import ImageSet

FORMAT = 1
#: Items per shard: 128 × (8 views × 64 KiB + latents) ≈ 66 MiB.
SHARD_ITEMS = 128


def _sha256_folder(folder: Path) -> str:
    """sha256 over every file of a model folder (names and contents, read in chunks)."""
    h = hashlib.sha256()
    for f in sorted(x for x in folder.rglob("*") if x.is_file()):
        h.update(f.relative_to(folder).as_posix().encode() + b"\0")
        with open(f, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def plan_items(image_ids: list[int], noises_per_image: int, guidances: list[float], seed: int = 0
               ) -> list[tuple[int, int, float]]:
    """``(image id, seed, guidance)`` of every item, in order: image by image, ``noises_per_image``
    each; the item's seed is unique (``seed + id·noises + k``) and the guidance values cycle over the
    items in that order (so every value is used, whatever the number of noises per image)."""
    return [(i, seed + i * noises_per_image + k, float(guidances[(n * noises_per_image + k) % len(guidances)]))
            for n, i in enumerate(image_ids) for k in range(noises_per_image)]


def orbit_of(inputs: torch.Tensor, num_views: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Each input's elevation as generation reads it (the photo-camera estimate) ``(B,)`` degrees, and
    the orbit's ``num_views`` cameras at it in the input camera's frame ``(B, N, 4, 4)``."""
    from ..generator.base import GenerationSettings, with_camera
    from ..generator.multi_view import orbit_cameras

    elevations = [float(with_camera(GenerationSettings(), image)[0].elevation) for image in inputs]
    cams = [orbit_cameras(num_views, inputs.device, e)[0] for e in elevations]
    return torch.tensor(elevations, dtype=torch.float32), torch.stack(cams)


@torch.no_grad()
def teacher_items(teacher, inputs: torch.Tensor, seeds: list[int], guidance: float, steps: int) -> dict:
    """The teacher's deterministic DDIM views for ``inputs`` ``(B, 4, S, S)`` (one seed each, one guidance):
    the shard fields of the module docstring, on the CPU."""
    from ..generator.multi_view import sample_views

    dev = teacher.device
    inputs = inputs.to(dev).float()
    elevations, viewmats = orbit_of(inputs, teacher.num_views)
    noise = torch.cat([teacher.noise(s) for s in seeds])
    z_in = mv_autoencoder.encode(teacher.autoencoder, inputs)
    z = sample_views(teacher.denoiser, z_in, viewmats, noise, steps=steps, guidance=guidance, scheduler="ddim")
    views = mv_autoencoder.decode(teacher.autoencoder, z).clamp(0, 1)  # (B, N, 4, S, S)
    return {"seed": torch.tensor(seeds, dtype=torch.int64), "guidance": torch.full((len(seeds),), guidance),
            "elevation": elevations,
            "noise": noise.half().cpu(), "latents": z.half().cpu(),
            "views": (views.permute(0, 1, 3, 4, 2) * 255.0).round().to(torch.uint8).cpu(),
            "viewmats": viewmats.float().cpu()}


@torch.no_grad()
def stand_in_items(teacher, inputs: torch.Tensor, seeds: list[int], guidance: float, steps: int,
                   num_views: int) -> dict:
    """:func:`teacher_items` for the latent-diffusion stand-in teacher: its deterministic DDIM sample of
    each input (one seed each), decoded to Gaussians in the input camera's frame and rendered at the
    orbit's ``num_views`` cameras on the canonical background (no colour matching: the student's
    generator matches its own samples to the photo, as the teacher's does)."""
    from .. import framing
    from ..cameras import canonical_intrinsics
    from ..generator.sampling import sample_latents
    from ..render import render

    dev = teacher.device
    inputs = inputs.to(dev).float()
    size = inputs.shape[-1]
    elevations, viewmats = orbit_of(inputs, num_views)                                   # (B, N, 4, 4)
    features, conditions = zip(*(teacher.encode(image) for image in inputs))
    features = [torch.cat([f[level] for f in features]) for level in range(len(features[0]))]
    noise = torch.cat([teacher.noise(s) for s in seeds])
    z = sample_latents(teacher.denoiser, torch.cat(conditions), steps=steps, guidance=guidance, scheduler="ddim",
                       noise=noise, strength=1.0)
    gaussians = teacher.var.decode(features, z, float(teacher.defaults.skip_weight)).gaussians
    K = canonical_intrinsics(size).to(dev)
    bg = torch.as_tensor(framing.BACKGROUND, dtype=torch.float32, device=dev)
    views = []
    for i in range(len(seeds)):
        out = render(gaussians[i], viewmats[i], K, size, size, background=bg)
        views.append(torch.cat([out.rgb, out.alpha], -1).clamp(0, 1))                   # (N, S, S, 4)
    return {"seed": torch.tensor(seeds, dtype=torch.int64), "guidance": torch.full((len(seeds),), guidance),
            "elevation": elevations,
            "noise": noise[:, None].half().cpu(), "latents": z[:, None].half().cpu(),
            "views": (torch.stack(views) * 255.0).round().to(torch.uint8).cpu(),
            "viewmats": viewmats.float().cpu()}


def collect(teacher_folder: str | os.PathLike, image_set: str | os.PathLike, out: str | os.PathLike, *,
            noises_per_image: int = 2, guidances: tuple[float, ...] = (2.0,), steps: int = 30, batch_size: int = 32,
            shard_items: int = SHARD_ITEMS, max_items: int | None = None, seed: int = 0, device="auto",
            progress=None, num_views: int = 8) -> dict:
    """Write (or continue) a collection (module docstring) into ``out``; returns its index.
    ``max_items``: stop after that many more items (a call's share of a long collection);
    ``num_views``: the stand-in teacher's rendered views (the multi-view teacher has its own count)."""
    from ..generator import load_generator

    if noises_per_image < 1 or steps < 1 or batch_size < 1 or shard_items < 1 or not guidances:
        raise SplatgenError("noises per image, steps, batch size and shard size must be at least 1, with a guidance")
    if any(not (0.0 <= g <= 20.0) for g in guidances):
        raise SplatgenError(f"guidance values must be between 0 and 20, got {list(guidances)}")
    teacher_folder, image_set, out = Path(teacher_folder), Path(image_set), Path(out)
    teacher = load_generator(teacher_folder, device=device)
    if teacher.kind not in ("multi-view", "latent-diffusion"):
        raise SplatgenError(f"{teacher_folder}: the one-step student's teacher is the multi-view model "
                            f"(kind 'multi-view'; 'latent-diffusion' stands in for it), not {teacher.kind!r}")
    stand_in = teacher.kind == "latent-diffusion"
    if num_views < 2:
        raise SplatgenError(f"the stand-in teacher's views must be 2 or more, got {num_views}")
    images = ImageSet(image_set, split="distil")
    if len(images) == 0:
        raise DatasetError(f"{image_set}: no image in its distil split")
    size = int(teacher.var.config.image_size if stand_in else teacher.autoencoder.config.sample_size)
    if images.rgba.shape[1] != size:
        raise DatasetError(f"{image_set}: {images.rgba.shape[1]}² images, the teacher takes {size}²")
    ids = [int(r["id"]) for r in images.rows]
    if not 0 <= seed or seed + (max(ids) + 1) * noises_per_image >= 2 ** 63:
        raise SplatgenError(f"the seeds must stay in [0, 2^63): --seed {seed} does not fit")
    # what identifies a collection: the teacher's and the image set's contents and the settings (not
    # the paths, so the folders may move), and the device kind (CPU and GPU kernels round differently)
    key = {"format": FORMAT, "teacher_sha256": _sha256_folder(teacher_folder),
           "image_set_sha256": hashlib.sha256((image_set / "index.json").read_bytes()).hexdigest(),
           "teacher_kind": teacher.kind, "device": teacher.device.type,
           "num_views": int(num_views) if stand_in else teacher.num_views, "scheduler": "ddim", "eta": 0.0,
           "steps": int(steps), "noises_per_image": int(noises_per_image),
           "guidances": [float(g) for g in guidances], "seed": int(seed), "shard_items": int(shard_items)}
    index_path = out / "index.json"
    shards = _resumable_shards(out, key) if index_path.is_file() else []
    if not index_path.is_file() and out.exists() and any(not f.name.startswith(".") for f in out.iterdir()):
        raise DatasetError(f"{out}: not empty and not a collection")
    out.mkdir(parents=True, exist_ok=True)
    items = plan_items(ids, noises_per_image, list(guidances), seed)
    header = {**key, "teacher": {"folder": str(teacher_folder.resolve()), "name": teacher.name},
              "noise_shape": list(teacher.noise(0).shape),  # what the student's generator must draw per seed
              "image_set": {"folder": str(image_set.resolve())}, "planned_items": len(items)}

    def write_index(done: int) -> None:
        atomic_write(index_path, (json.dumps({**header, "shards": shards, "items": done}, indent=1) + "\n").encode(),
                     error=DatasetError)

    row_of = {i: k for k, i in enumerate(ids)}
    done = sum(sh["items"] for sh in shards)
    write_index(done)
    stop = len(items) if max_items is None else min(len(items), done + int(max_items))
    while done < stop:
        chunk = items[done:min(done + shard_items, stop)]
        parts = []
        for g in dict.fromkeys(it[2] for it in chunk):  # one guidance value a batch, the shard keeps the order
            group = [it for it in chunk if it[2] == g]
            for b in range(0, len(group), batch_size):
                sub = group[b:b + batch_size]
                inputs, seeds = images.inputs([row_of[i] for i, _, _ in sub]), [s for _, s, _ in sub]
                part = stand_in_items(teacher, inputs, seeds, g, steps, num_views) if stand_in else \
                    teacher_items(teacher, inputs, seeds, g, steps)
                part["image"] = torch.tensor([i for i, _, _ in sub], dtype=torch.int64)
                parts.append(part)
        fields = {k: torch.cat([p[k] for p in parts]) for k in parts[0]}
        order = torch.argsort(fields["seed"])  # the plan's order (seeds increase along it)
        fields = {k: v[order].contiguous() for k, v in fields.items()}
        name = f"quads-{len(shards):05d}.safetensors"
        with atomic_path(out / name, error=DatasetError) as tmp:
            save_file(fields, str(tmp))
        shards.append({"file": name, "items": len(chunk)})
        done += len(chunk)
        write_index(done)
        if progress is not None:
            progress(done, stop)
    return json.loads(index_path.read_text())


def _resumable_shards(out: Path, key: dict) -> list[dict]:
    """The shards of the collection in ``out`` that a run with ``key`` continues (each checked to be
    there with its item count); a :class:`DatasetError` for another collection or a damaged one."""
    from safetensors import safe_open

    try:
        old = json.loads((out / "index.json").read_text())
        shards = old["shards"]
        if not isinstance(old, dict) or not isinstance(shards, list):
            raise ValueError("no shard list")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DatasetError(f"{out / 'index.json'}: unreadable ({exc})") from None
    old.setdefault("teacher_kind", "multi-view")  # written before the stand-in teacher existed
    if {k: old.get(k) for k in key} != key:
        raise DatasetError(f"{out}: holds a collection with another teacher, image set, device or settings; "
                           "collect into a new folder")
    for k, shard in enumerate(shards):
        name = f"quads-{k:05d}.safetensors"
        if not isinstance(shard, dict) or shard.get("file") != name or not isinstance(shard.get("items"), int):
            raise DatasetError(f"{out}: its index lists a bad shard entry {shard!r}")
        try:
            with safe_open(str(out / name), "pt") as f:
                rows = f.get_slice("seed").get_shape()[0]
        except Exception as exc:  # noqa: BLE001 - a missing or damaged file, named
            raise DatasetError(f"{out / name}: missing or unreadable ({exc}); collect into a new folder") from None
        if rows != shard["items"]:
            raise DatasetError(f"{out / name}: holds {rows} items, its index says {shard['items']}")
    return shards


def load_quads(folder: str | os.PathLike, device="cpu") -> dict:
    """Every shard of a collection, concatenated: the fields of the module docstring on ``device``."""
    folder = Path(folder)
    try:
        index = json.loads((folder / "index.json").read_text())
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{folder}: not a collection ({exc})") from None
    if not isinstance(index, dict) or index.get("format") != FORMAT:
        raise DatasetError(f"{folder}: not a collection of format {FORMAT}")
    parts = []
    for k, shard in enumerate(index.get("shards") or []):
        name = f"quads-{k:05d}.safetensors"  # the names are the writer's own, never read from the index
        if not isinstance(shard, dict) or shard.get("file") != name or not (folder / name).is_file():
            raise DatasetError(f"{folder}: shard {name} is missing or its index entry is not {name!r}")
        try:
            parts.append(load_file(str(folder / name)))
        except Exception as exc:  # noqa: BLE001 - a damaged file, named
            raise DatasetError(f"{folder / name}: unreadable shard ({exc})") from None
    if not parts:
        raise DatasetError(f"{folder}: the collection has no shard yet")
    return {k: torch.cat([p[k] for p in parts]).to(device) for k in parts[0]}


__all__ = ["collect", "load_quads", "plan_items", "stand_in_items", "teacher_items", "SHARD_ITEMS"]
