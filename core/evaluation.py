"""Evaluate a generator on held-out objects: ``splatgen eval``.

For every object (a folder with ``transforms.json`` + RGBA frames, or an object of a packed dataset:
``splatgen data pack``, which travels to a GPU machine in a fraction of the size): frame 0 is the input,
every other frame a target, all composited on the canonical background. The generator's samples are rendered from the
dataset's cameras expressed relative to the input camera, then compared with PSNR and SSIM:

* ``input_psnr`` / ``input_ssim`` — frame 0 (how well the visible side is kept);
* ``novel_psnr`` / ``novel_ssim`` — the other frames (the first sample for stochastic models);
* stochastic models with K samples also get ``best_of_k_novel_psnr`` (per object the best sample's
  mean novel PSNR), ``diversity_novel_psnr`` and ``diversity_input_psnr`` (mean PSNR between all
  pairs of samples: high = the samples agree, lower = they differ).

* ``consistency_psnr`` — generators whose samples carry the views they generated (the multi-view
  model: ``sample.info["views"]`` at ``sample.info["view_viewmats"]``): PSNR between those views and
  renders of the sample's own Gaussians at the same cameras, mean over the views and the K samples
  (high = the splats agree with the views they were decoded from; seed 003's 3D consistency).

Metrics are averaged per object, then over objects (dB).

Where the objects have surface samples (``surface.safetensors`` of ``splatgen data build``, or the
``surface`` arrays of a packed split; :func:`object_surface`), the shape is measured too
(:mod:`splatgen.core.geometry_metrics`: world units of the normalised frame, bounding-sphere radius
0.5): ``chamfer`` (with ``chamfer_accuracy`` / ``chamfer_completeness``), ``precision`` / ``recall``
/ ``fscore`` at ``summary["geometry"]["fscore_threshold"]`` and ``volume_iou``, of the first sample;
``best_of_k_chamfer`` (the smallest over the K samples), ``best_of_k_fscore`` and
``best_of_k_volume_iou`` (the largest; each picked on its own). The surface samples live in the
dataset's world frame and the Gaussians in the sample's object frame; :func:`world_to_sample` maps
one onto the other through the input camera. Stochastic models also get ``diversity_chamfer``, the
mean Chamfer distance between all pairs of samples (no surface needed): noise that changes pixels
but not the shape keeps it near zero while ``diversity_novel_psnr`` drops. Without surface samples
the geometry figures are left out.

:func:`evaluate_posterior` scores the latent diffusion model's VAR on its own posterior instead: the
latent encoded from the input view plus ``num_context`` other views of the object, decoded with the
input image's skips. It shows what the decoder can express when the latent is right, so the gap to
the samples measures the denoiser (a diagnostic: the context views are targets the encoder has seen).
"""

from __future__ import annotations

import itertools
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from . import framing
from . import geometry_metrics as gm
from .cameras import canonical_intrinsics, load_transforms, relative_viewmats
from .data.dataset import decode_view
from .errors import DatasetError, SplatgenError
from .gaussians import Gaussians
from .generator import GenerationSettings, Generator
from .metrics import ms_ssim, psnr, ssim
from .render import render


@dataclass
class EvalObject:
    """One object to evaluate: a folder of views, or entry ``index`` of a packed dataset's ``source``."""

    name: str
    folder: Path
    source: object | None = None  # splatgen.core.data.dataset's packed source of the split
    index: int = 0


def find_objects(root: str | os.PathLike, split: str | None = "test") -> list[EvalObject]:
    """Object folders to evaluate: a built dataset root (``dataset.json``: the objects of ``split``;
    ``split=None``: all), or any folder whose sub-folders (or itself) hold ``transforms.json``."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: no such folder")
    if (root / "transforms.json").is_file():
        return [EvalObject(root.name, root)]
    if (root / "index.json").is_file() and split is not None:  # packed: the objects of the split's shards
        from .data.dataset import MultiViewDataset

        source = MultiViewDataset(root, split=split, num_targets=1).source
        return [EvalObject(oid, root, source, i) for i, oid in enumerate(source.ids)]
    if (root / "dataset.json").is_file() and split is not None:
        from .data.build import load_index

        index = load_index(root)
        if split not in index["splits"]:
            raise DatasetError(f"{root}: no split {split!r} (has {', '.join(index['splits'])})")
        names = list(index["splits"][split])
    else:
        names = sorted(p.parent.name for p in root.glob("*/transforms.json"))
    objects = [EvalObject(n, root / n) for n in names if (root / n / "transforms.json").is_file()]
    if not objects:
        raise DatasetError(f"{root}: no object folders with transforms.json to evaluate")
    return objects


#: meta.json files are small; more than this is not one (read no further).
MAX_META_BYTES = 1 << 16


def object_category(obj: EvalObject) -> str | None:
    """The object's category from the ``meta.json`` the data builder writes beside its views (or the
    packed index's record of the object), if any."""
    if obj.source is not None:
        category = (obj.source.meta.get(obj.name) or {}).get("category")
        return str(category) if category else None
    try:
        with open(obj.folder / "meta.json", "rb") as f:
            meta = json.loads(f.read(MAX_META_BYTES))  # bounded: a device or huge file yields invalid JSON
    except (OSError, ValueError):
        return None
    category = meta.get("category") if isinstance(meta, dict) else None
    return str(category) if category else None


#: Surface files are 240 KB for the builder's 10,000 samples; more than this is not one (read no further).
MAX_SURFACE_BYTES = 64 << 20


def object_surface(obj: EvalObject) -> np.ndarray | None:
    """The object's surface samples ``(M, 3)`` float32 in the dataset's world frame (the normalised
    object frame: Y up, bounding sphere of radius 0.5 at the origin), or None when it has none: a
    folder without ``surface.safetensors``, or a packed object without them (an older pack, or a
    split packed without). A file that is there but broken is a :class:`DatasetError`."""
    if obj.source is not None:
        surface = getattr(obj.source, "surface", None)
        return None if surface is None else _check_surface(surface(obj.index), f"{obj.folder}: object {obj.name}")
    from .data.surface import FILE_NAME, load_surface

    path = obj.folder / FILE_NAME
    if not path.is_file():
        return None
    if path.stat().st_size > MAX_SURFACE_BYTES:
        raise DatasetError(f"{path}: {path.stat().st_size} bytes is too big for surface samples")
    try:
        points, _ = load_surface(path)
    except Exception as exc:  # noqa: BLE001 - safetensors raises several kinds; name the file
        raise DatasetError(f"{path}: unreadable surface samples ({' '.join(str(exc).split())[:200]})") from None
    return _check_surface(points, str(path))


def _check_surface(points, name: str) -> np.ndarray | None:
    if points is None:
        return None
    points = np.asarray(points)
    if points.ndim != 2 or points.shape[1] != 3 or not len(points) or not np.isfinite(points).all():
        raise DatasetError(f"{name}: surface samples must be finite (M, 3) points, got shape {points.shape}")
    return points.astype(np.float32)


def world_to_sample(dataset_input_viewmat: torch.Tensor, sample_input_viewmat: torch.Tensor) -> np.ndarray:
    """4×4 rigid map from the dataset's world frame to a sample's frame: world → the input camera
    (the dataset's frame-0 viewmat) → the sample's frame (the inverse of the camera it assigns the
    input, ``Sample.input_viewmat``; the identity for Gaussians predicted in the camera's frame)."""
    v_data = dataset_input_viewmat.detach().double().cpu()
    v_sample = sample_input_viewmat.detach().double().cpu()
    return (torch.linalg.inv(v_sample) @ v_data).numpy()


def splat_points(g: Gaussians) -> gm.WeightedPoints:
    """The Gaussians' centres weighted by their opacities (what the geometry metrics measure)."""
    return gm.WeightedPoints.of(g.means.detach().reshape(-1, 3).double().cpu().numpy(),
                                g.opacities.detach().reshape(-1).double().cpu().numpy())


def geometry_row(points: list[gm.WeightedPoints], surfaces: list[np.ndarray | None],
                 threshold: float = gm.FSCORE_THRESHOLD) -> dict:
    """The geometry figures of one object (module docstring) from its samples' weighted centres and
    the surface samples in each sample's frame (None: the object has none)."""
    out = {}
    if surfaces and surfaces[0] is not None:
        rows = [gm.surface_metrics(p, s, threshold) for p, s in zip(points, surfaces)]
        out.update(rows[0])
        if len(rows) > 1:
            out["best_of_k_chamfer"] = min(r["chamfer"] for r in rows)
            out["best_of_k_fscore"] = max(r["fscore"] for r in rows)
            out["best_of_k_volume_iou"] = max(r["volume_iou"] for r in rows)
    if len(points) > 1:
        out["diversity_chamfer"] = gm.pairwise_chamfer(points)
    return out


def geometry_settings(threshold: float = gm.FSCORE_THRESHOLD) -> dict:
    """What the geometry figures mean, for the summary (see :mod:`splatgen.core.geometry_metrics`)."""
    return {"units": "world units of the normalised object frame (bounding-sphere radius 0.5)",
            "chamfer": "mean L2 nearest-neighbour distance, not squared; mean of both directions",
            "prediction": "splat centres weighted by opacity; present from opacity "
                          f"{gm.PRESENT_OPACITY}", "fscore_threshold": threshold,
            "voxel": gm.VOXEL, "present_opacity": gm.PRESENT_OPACITY}


#: Objects whose input view is about this grey or greyer give no saturation ratio (it would be noise).
MIN_OBJECT_SATURATION = 0.05


def saturation_ratio(rendered: torch.Tensor, image: torch.Tensor, alpha: torch.Tensor) -> float:
    """Mean HSV saturation of ``rendered`` over that of ``image`` (both ``(S, S, 3)`` in [0, 1]) on the
    object's pixels (``alpha`` ``(S, S, 1)`` of the image): 1 keeps the photo's colours, below 1
    washes them out. NaN for a grey object."""
    from .data.saturation import compare_renders

    a = alpha.expand(*alpha.shape[:-1], 1)
    to_u8 = lambda rgb: (torch.cat([rgb, a], -1).clamp(0, 1) * 255 + 0.5).to(torch.uint8).numpy()[None]  # noqa: E731
    c = compare_renders(to_u8(rendered), to_u8(image))
    return float(c["ratio"]) if c["flat"] >= MIN_OBJECT_SATURATION else float("nan")


def _read_view(path: Path) -> np.ndarray:
    """One view file → ``(S, S, 4)`` uint8 RGBA; a missing, unreadable or broken file is a :class:`DatasetError`."""
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read view ({exc.strerror or exc})") from None
    return decode_view(data, str(path))


def load_object(obj: EvalObject, background=framing.BACKGROUND) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """→ images ``(V, S, S, 3)`` on the background, alphas ``(V, S, S, 1)``, viewmats ``(V, 4, 4)``."""
    if obj.source is not None:
        viewmats, _ = obj.source.cameras(obj.index)
        if obj.source.size != framing.IMAGE_SIZE or len(viewmats) < 2:
            raise DatasetError(f"{obj.folder}: object {obj.name} has {len(viewmats)} views of "
                               f"{obj.source.size}², the models need 2 or more of {framing.IMAGE_SIZE}²")
        rgba = obj.source.views(obj.index, list(range(len(viewmats))))
        return _on_background(rgba, background) + (viewmats.float(),)
    cams = load_transforms(obj.folder)
    if len(cams) < 2:
        raise DatasetError(f"{obj.folder}: needs at least 2 frames (input + a target), has {len(cams)}")
    if cams.width != framing.IMAGE_SIZE or cams.height != framing.IMAGE_SIZE:
        raise DatasetError(f"{obj.folder}: frames are {cams.width}x{cams.height}, the models need "
                           f"{framing.IMAGE_SIZE}x{framing.IMAGE_SIZE}")
    rgba = np.stack([_read_view(obj.folder / f) for f in cams.file_paths])
    return _on_background(rgba, background) + (cams.viewmats.float(),)


def _on_background(rgba: np.ndarray, background) -> tuple[torch.Tensor, torch.Tensor]:
    """``(V, S, S, 4)`` uint8 straight RGBA → RGB composited on ``background``, alpha; both float in [0, 1]."""
    x = torch.from_numpy(rgba).float() / 255.0
    bg = torch.tensor(background, dtype=torch.float32)
    rgb, alpha = x[..., :3], x[..., 3:]
    return rgb * alpha + bg * (1 - alpha), alpha


def evaluate_object(gen: Generator, obj: EvalObject, settings: GenerationSettings,
                    fscore_threshold: float = gm.FSCORE_THRESHOLD, perceptual=None) -> dict:
    images, alphas, viewmats = load_object(obj)
    surface = object_surface(obj)
    dev = gen.device
    model_input = torch.cat([images[0], alphas[0]], -1).permute(2, 0, 1)
    samples = gen.generate(model_input, settings)
    s = framing.IMAGE_SIZE
    rel = relative_viewmats(viewmats, viewmats[0])  # input camera = identity
    renders = []
    for sample in samples:
        cams = rel.to(dev) @ sample.input_viewmat.to(dev)  # object frame → each dataset camera
        with torch.no_grad():
            renders.append(render(sample.gaussians, cams, sample.K, s, s).rgb.clamp(0, 1).cpu())
    r = torch.stack(renders)  # (K, V, S, S, 3)
    p, q = psnr(r, images.expand_as(r)), ssim(r, images.expand_as(r))  # (K, V)
    m = ms_ssim(r[0], images)  # (V,) of the first sample
    out = {"object": obj.name, "input_psnr": float(p[0, 0]), "input_ssim": float(q[0, 0]),
           "novel_psnr": float(p[0, 1:].mean()), "novel_ssim": float(q[0, 1:].mean()),
           "input_ms_ssim": float(m[0]), "novel_ms_ssim": float(m[1:].mean()),
           "input_saturation_ratio": saturation_ratio(r[0, 0], images[0], alphas[0])}
    if len(samples) > 1:
        out["best_of_k_novel_psnr"] = float(p[:, 1:].mean(1).max())
        pairs = list(itertools.combinations(range(len(samples)), 2))
        out["diversity_novel_psnr"] = float(np.mean([float(psnr(r[a, 1:], r[b, 1:]).mean()) for a, b in pairs]))
        out["diversity_input_psnr"] = float(np.mean([float(psnr(r[a, 0], r[b, 0])) for a, b in pairs]))
    if hasattr(gen, "refine") and getattr(gen, "teacher", None) is not None:
        out.update(teacher_agreement(gen, model_input, settings, r, images, rel, dev))
    consistency = [c for c in (view_consistency(sample) for sample in samples) if c is not None]
    if consistency:
        out["consistency_psnr"] = float(np.mean(consistency))
    surfaces = [None if surface is None else gm.rigid_apply(world_to_sample(viewmats[0], sample.input_viewmat), surface)
                for sample in samples]
    out.update(geometry_row([splat_points(sample.gaussians) for sample in samples], surfaces, fscore_threshold))
    if perceptual is not None:
        out.update(perceptual_row(perceptual, r[0, 1:], images[1:], object_category(obj)))
    return out


def teacher_agreement(gen, model_input: torch.Tensor, settings: GenerationSettings, renders: torch.Tensor,
                      images: torch.Tensor, rel: torch.Tensor, dev) -> dict:
    """A student (the one-step generator) against its teacher on the same seeds and guidance: the
    teacher's samples (``gen.refine``) rendered at the dataset's cameras, and the PSNR between the
    student's renders ``renders`` ``(K, V, S, S, 3)`` and the teacher's (input view and novel views;
    #33 asks ≥ 28 dB on novel views), with the teacher's own one-sample and best-of-k novel PSNR."""
    s = framing.IMAGE_SIZE
    teacher = []
    # the sampler the student learnt (its teacher_steps of DDIM), whatever eval's --steps says
    learnt = GenerationSettings(seed=settings.seed, num_samples=settings.num_samples, guidance=settings.guidance,
                                elevation=settings.elevation, fov=settings.fov, colour_match=settings.colour_match)
    for sample in gen.refine(model_input, learnt):
        cams = rel.to(dev) @ sample.input_viewmat.to(dev)
        with torch.no_grad():
            teacher.append(render(sample.gaussians, cams, sample.K, s, s).rgb.clamp(0, 1).cpu())
    t = torch.stack(teacher)                                                              # (K, V, S, S, 3)
    agree = psnr(renders, t)                                                              # (K, V)
    own = psnr(t, images.expand_as(t))
    row = {"teacher_agreement_input_psnr": float(agree[:, 0].mean()),
           "teacher_agreement_novel_psnr": float(agree[:, 1:].mean()),
           "teacher_novel_psnr": float(own[0, 1:].mean())}
    if len(t) > 1:
        row["teacher_best_of_k_novel_psnr"] = float(own[:, 1:].mean(1).max())
    return row


def view_consistency(sample) -> float | None:
    """PSNR (dB, mean over the views) between a sample's generated views (``info["views"]`` ``(N, 4, S, S)``
    RGBA, RGB on the background) and renders of its Gaussians at their cameras (``info["view_viewmats"]``
    ``(N, 4, 4)``, object frame → camera, at the sample's intrinsics); None for a sample without views.
    A sample whose colours were matched to the photo (``info["colour_match"]``) is compared with its
    views under the same colour transform, so the figure does not depend on ``--no-colour-match``."""
    views, viewmats = sample.info.get("views"), sample.info.get("view_viewmats")
    if views is None or viewmats is None:
        return None
    s = views.shape[-1]
    with torch.no_grad():
        rendered = render(sample.gaussians, viewmats.to(sample.K.device), sample.K, s, s).rgb.clamp(0, 1)
    rgb, alpha = views[:, :3].permute(0, 2, 3, 1).float().cpu(), views[:, 3:].permute(0, 2, 3, 1).float().cpu()
    match = sample.info.get("colour_match")
    if match:  # the splats' colours were matched to the photo: the views get the same transform
        from .colour_match import transform_image

        rgb = transform_image(rgb, alpha, torch.tensor(match["matrix"]), torch.tensor(match["offset"]),
                              framing.BACKGROUND)
    return float(psnr(rendered.cpu(), rgb).mean())


def perceptual_row(perceptual, generated: torch.Tensor, real: torch.Tensor, category: str | None) -> dict:
    """With ``perceptual`` = (:class:`~splatgen.core.perceptual.CategoryNet`, its config): the features
    of the generated and the real novel views ``(V, S, S, 3)`` (kept under ``"_features"`` for the
    KID over all objects) and, for an object of a category the classifier knows, the share of generated
    novel views it assigns to that category (``novel_category_accuracy``; the real views' beside it)."""
    from .perceptual import features

    net, config = perceptual
    fg, fr = features(net, generated), features(net, real)
    row = {"_features": (fg, fr)}
    if category in config["categories"]:
        k = config["categories"].index(category)
        with torch.no_grad():
            row["novel_category_accuracy"] = float((net.head(fg).argmax(1) == k).float().mean())
            row["real_category_accuracy"] = float((net.head(fr).argmax(1) == k).float().mean())
    return row


@torch.no_grad()
def evaluate_posterior_object(gen: Generator, obj: EvalObject, num_context: int, seed: int,
                              skip_weight: float | None = None, fscore_threshold: float = gm.FSCORE_THRESHOLD) -> dict:
    """The VAR's reconstruction from its posterior mean (input view + ``num_context`` other frames,
    picked at random with ``seed`` and the object's name), rendered from every frame."""
    var = gen.var
    images, alphas, viewmats = load_object(obj)
    if not 0 <= num_context <= len(images) - 2:
        raise DatasetError(f"{obj.folder}: {len(images)} frames leave no target for {num_context} context views")
    dev = gen.device
    rng = np.random.default_rng([seed, *obj.name.encode()])
    idx = [0, *sorted(rng.choice(np.arange(1, len(images)), num_context, replace=False).tolist())]
    rel = relative_viewmats(viewmats, viewmats[0]).to(dev)  # input camera = identity
    rgba = torch.cat([images, alphas], -1).permute(0, 3, 1, 2).to(dev)  # (V, 4, S, S)
    mean, _ = var.encode_views(rgba[idx][None], rel[idx][None])
    w = var.config.default_skip_weight if skip_weight is None else skip_weight
    g = var.decode(var.encode_image(rgba[:1]), mean, w).gaussians[0]
    s = framing.IMAGE_SIZE
    r = render(g, rel, canonical_intrinsics(s).to(dev).expand(len(rel), 3, 3), s, s).rgb.clamp(0, 1).cpu()
    p, q = psnr(r, images), ssim(r, images)  # (V,)
    unseen = [v for v in range(1, len(images)) if v not in idx]
    row = {"object": obj.name, "input_psnr": float(p[0]), "input_ssim": float(q[0]),
           "novel_psnr": float(p[unseen].mean()), "novel_ssim": float(q[unseen].mean())}
    if num_context:
        row["context_psnr"] = float(p[idx[1:]].mean())
    surface = object_surface(obj)  # the decoded Gaussians live in the input camera's frame
    if surface is not None:
        to_camera = world_to_sample(viewmats[0], torch.eye(4))
        row.update(geometry_row([splat_points(g)], [gm.rigid_apply(to_camera, surface)], fscore_threshold))
    return row


def evaluate_posterior(gen: Generator, objects: list[EvalObject], num_context: int, seed: int = 0,
                       skip_weight: float | None = None, progress: bool = True,
                       fscore_threshold: float = gm.FSCORE_THRESHOLD) -> dict:
    """:func:`evaluate_posterior_object` over ``objects`` (novel = frames the encoder did not see)."""
    if getattr(gen, "var", None) is None:
        raise SplatgenError(f"the posterior evaluation needs the latent diffusion model (its VAR); {gen.name!r} is "
                            f"a {gen.kind} model")
    _check_threshold(fscore_threshold)
    summary = _summarise(gen, objects, lambda obj: evaluate_posterior_object(gen, obj, num_context, seed, skip_weight,
                                                                             fscore_threshold), progress)
    if "chamfer" in summary:
        summary["geometry"] = geometry_settings(fscore_threshold)
    summary.update(kind="var-posterior", num_context=num_context, seed=seed,
                   skip_weight=gen.var.config.default_skip_weight if skip_weight is None else skip_weight)
    return summary


def evaluate(gen: Generator, objects: list[EvalObject], settings: GenerationSettings, progress: bool = True,
             fscore_threshold: float = gm.FSCORE_THRESHOLD, perceptual=None) -> dict:
    """Run :func:`evaluate_object` over ``objects``; returns the summary dict (see module docstring).
    ``perceptual`` (a loaded :func:`splatgen.core.perceptual.load_model`) adds ``kid_novel``: the KID
    between the generated and the real novel views of all objects, and the category accuracies."""
    _check_threshold(fscore_threshold)
    feats = []

    def score(obj):
        row = evaluate_object(gen, obj, settings, fscore_threshold, perceptual)
        if "_features" in row:
            feats.append(row.pop("_features"))
        return row

    summary = _summarise(gen, objects, score, progress)
    if feats:
        from .perceptual import kid

        summary["kid_novel"] = kid(torch.cat([g for g, _ in feats]), torch.cat([r for _, r in feats]))
    if "chamfer" in summary:
        summary["geometry"] = geometry_settings(fscore_threshold)
    if gen.stochastic:
        summary["k"] = int(settings.num_samples)
    summary["settings"] = gen.resolve(settings).as_dict()
    return summary


def _check_threshold(threshold: float) -> None:
    if not (isinstance(threshold, (int, float)) and math.isfinite(threshold) and threshold > 0):
        raise SplatgenError(f"the F-score threshold must be a positive distance, got {threshold}")


def _mean(values: list[float]) -> float | None:
    """Mean over the objects that give the figure (NaN marks one that cannot, e.g. the saturation ratio
    of a grey object); None when none does."""
    kept = [v for v in values if not math.isnan(v)]
    return float(np.mean(kept)) if kept else None


def _summarise(gen: Generator, objects: list[EvalObject], score, progress: bool) -> dict:
    """Per-object rows from ``score(obj)``, their means over objects, and what was evaluated."""
    t0 = time.time()
    rows = []
    it = objects
    if progress:
        from tqdm import tqdm

        it = tqdm(objects, desc="evaluating", unit="obj")
    for obj in it:
        t = time.time()
        rows.append(score(obj))
        rows[-1]["seconds"] = round(time.time() - t, 3)  # per object: shows warm-up costs on a fresh machine
    keys = list(dict.fromkeys(k for r in rows for k in r if k not in ("object", "seconds")))  # every row's figures
    for row in rows:  # a figure only some objects give (geometry: those with surface samples) is NaN for the rest
        row.update({k: math.nan for k in keys if k not in row})

    def means(group: list[dict]) -> dict:
        out = {"objects": len(group), **{k: _mean([r[k] for r in group]) for k in keys}}
        if "chamfer" in keys:  # how many of them have surface samples
            out["geometry_objects"] = sum(not math.isnan(r["chamfer"]) for r in group)
        return out

    summary = means(rows)
    categories = [object_category(obj) for obj in objects]
    if any(categories):
        for row, category in zip(rows, categories):
            row["category"] = category or "unknown"
        summary["per_category"] = {c: means([r for r in rows if r["category"] == c])
                                   for c in sorted({r["category"] for r in rows})}
    for row in rows:  # strict JSON has no NaN: a figure an object cannot give is null
        row.update({k: None for k, v in row.items() if isinstance(v, float) and math.isnan(v)})
    summary.update(model=getattr(gen, "name", ""), model_path=str(getattr(gen, "path", "")), kind=gen.kind,
                   device=str(gen.device), seconds=round(time.time() - t0, 1), per_object=rows)
    return summary
