"""Do the dataset's renders wash colours out? Mean HSV saturation of lit views against the albedo.

Splats trained on a dataset can only be as colourful as its views. This measures, per object, the
mean HSV saturation ``S = (max - min) / max`` of the opaque pixels of

- its views as the builder renders them (its own lights, :func:`~.lighting.sample_lighting`),
- the same views *flat*: :data:`FLAT_LIGHTING` (ambient 1, no key, fill or sky) returns each
  surface's albedo (texture × material × vertex colour) unchanged, a reference with the same
  pixels, texture filtering and antialiasing as the lit views, and
- the source textures themselves (their opaque texels; untextured parts count their colour once),
  which also includes texels the views never show.

``lit / flat`` isolates what lighting does (multiplying a colour by one grey factor keeps ``S``;
clipping a channel at 1, strongly tinted lights and 8-bit rounding of dark shades change it).
Pixels darker than :data:`MIN_VALUE` (whose hue 8 bits cannot hold) are left out of both.
"""

from __future__ import annotations

import numpy as np

from .lighting import Lighting

#: The albedo reference: everything lit by a white ambient of 1, nothing else.
FLAT_LIGHTING = Lighting(key_dir=(0.0, 1.0, 0.0), key_rgb=(0.0, 0.0, 0.0), fill_dir=(0.0, 1.0, 0.0),
                         fill_rgb=(0.0, 0.0, 0.0), ambient_rgb=(1.0, 1.0, 1.0), sky=0.0)
#: Pixels with max(R, G, B) below this (of 255) are not counted: their saturation is rounding noise.
MIN_VALUE = 12
#: Alpha (of 255) above which a pixel counts as opaque.
MIN_ALPHA = 127


def saturation(rgb: np.ndarray) -> np.ndarray:
    """HSV saturation ``(max - min) / max`` of ``(..., 3)`` uint8 or float colours; 0 where max is 0."""
    rgb = np.asarray(rgb, dtype=np.float32)
    hi, lo = rgb.max(-1), rgb.min(-1)
    return np.where(hi > 0, (hi - lo) / np.maximum(hi, 1e-12), 0.0)


def pixel_mask(rgba: np.ndarray) -> np.ndarray:
    """Pixels of ``(..., 4)`` uint8 RGBA that count: opaque and not too dark to have a hue."""
    return (rgba[..., 3] > MIN_ALPHA) & (rgba[..., :3].max(-1) >= MIN_VALUE)


def mean_saturation(rgba: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean saturation of the pixels of ``rgba (..., 4)`` uint8 that count (or of ``mask``); NaN if none."""
    m = pixel_mask(rgba) if mask is None else mask
    return float(saturation(rgba[..., :3][m]).mean()) if m.any() else float("nan")


def texture_saturation(parts) -> float:
    """Mean saturation of the source colours of ``parts``: opaque texels of each distinct texture
    (times its material colour), and the material colour of untextured parts, each counted once."""
    values, seen = [], set()
    for p in parts:
        base = np.asarray(p.base_color, dtype=np.float32)[:3]
        if p.texture is None or p.uvs is None:
            values.append(saturation(base[None])[0:1])
            continue
        if id(p.texture) in seen:
            continue
        seen.add(id(p.texture))
        tex = np.asarray(p.texture)
        if tex.dtype != np.uint8:
            tex = (np.clip(tex, 0, 1) * 255).astype(np.uint8)
        tex = tex[:: max(1, tex.shape[0] // 256), :: max(1, tex.shape[1] // 256)]  # ≤ ~256² texels a texture
        rgb = tex[..., :3].astype(np.float32) * base
        keep = (tex[..., 3] > MIN_ALPHA) if tex.shape[-1] == 4 else np.ones(tex.shape[:2], bool)
        keep &= rgb.max(-1) >= MIN_VALUE
        if keep.any():
            values.append(saturation(rgb[keep]))
    return float(np.concatenate(values).mean()) if values else float("nan")


def compare_renders(lit: np.ndarray, flat: np.ndarray) -> dict:
    """Saturation of lit against flat views of one object, ``(V, H, W, 4)`` uint8 each, on the
    pixels that count in both: ``{"lit", "flat", "ratio", "pixels"}``."""
    m = pixel_mask(lit) & pixel_mask(flat)
    s_lit, s_flat = mean_saturation(lit, m), mean_saturation(flat, m)
    return {"lit": s_lit, "flat": s_flat, "ratio": s_lit / s_flat if s_flat > 0 else float("nan"),
            "pixels": int(m.sum())}


def measure_object(obj, seed: int = 0, views: int = 8, size: int = 128, lighting: Lighting | None = None) -> dict:
    """Load and normalise a :class:`~.sources.SourceObject`, render ``views`` of its cameras lit as
    the builder lights it (or by ``lighting``) and flat; :func:`compare_renders` plus ``"texture"``."""
    from .. import cameras, framing
    from .build import _container, _renderer, sample_cameras
    from .lighting import sample_lighting
    from .mesh_render import normalisation_matrix, transform_parts
    from .sources import load_model

    model = load_model(obj, _container(obj.container))
    parts = transform_parts(model.parts, normalisation_matrix(model.parts, obj.model_rotation, obj.size_cm))
    az, el = sample_cameras(views, seed, obj.object_id)
    vm = cameras.orbit_viewmats(az.tolist(), el.tolist(), framing.CAMERA_DISTANCE).numpy()
    K = cameras.canonical_intrinsics(size).numpy()
    r = _renderer(2)
    lit = r.render(parts, vm, K, size, size, lighting=lighting or sample_lighting(seed, obj.object_id))
    flat = r.render(parts, vm, K, size, size, lighting=FLAT_LIGHTING)
    return compare_renders(lit, flat) | {"texture": texture_saturation(parts)}


def survey(sources: list, per_source: int = 12, seed: int = 0, views: int = 8, size: int = 128,
           lighting: Lighting | None = None) -> dict:
    """:func:`measure_object` on ``per_source`` objects spread evenly over each source path.

    Returns ``{"sources": {source: {"objects", "lit", "flat", "texture", "ratio"}}, "all": {...},
    "objects": [{"id", "source", ...}]}``: means over objects (pixel-weighted for lit / flat)."""
    from .sources import discover

    rows = []
    for src in sources:
        objs, _ = discover(src)
        idx = dict.fromkeys(np.linspace(0, len(objs) - 1, min(per_source, len(objs))).round().astype(int))
        for i in idx:
            o = objs[i]
            try:
                rows.append({"id": o.object_id, "source": o.source} | measure_object(o, seed, views, size, lighting))
            except Exception as exc:  # noqa: BLE001 - an object that does not load is not measured
                rows.append({"id": o.object_id, "source": o.source, "error": f"{type(exc).__name__}: {exc}"[:120]})

    def summary(rs: list[dict]) -> dict:
        rs = [r for r in rs if "error" not in r and r["pixels"] > 0]
        if not rs:
            return {"objects": 0}
        w = np.array([r["pixels"] for r in rs], float)
        lit = float(np.average([r["lit"] for r in rs], weights=w))
        flat = float(np.average([r["flat"] for r in rs], weights=w))
        tex = [r["texture"] for r in rs if np.isfinite(r["texture"])]
        return {"objects": len(rs), "lit": round(lit, 4), "flat": round(flat, 4),
                "ratio": round(lit / flat, 4) if flat > 0 else None,
                "texture": round(float(np.mean(tex)), 4) if tex else None}

    by_source = {}
    for r in rows:
        by_source.setdefault(r["source"], []).append(r)
    return {"sources": {k: summary(v) for k, v in by_source.items()}, "all": summary(rows), "objects": rows}


__all__ = ["FLAT_LIGHTING", "saturation", "mean_saturation", "texture_saturation", "compare_renders",
           "measure_object", "survey"]
