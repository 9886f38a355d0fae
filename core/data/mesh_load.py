"""Loading textured meshes through trimesh: OBJ/MTL/textures from a folder or a ``.sh3f`` zip,
GLB/GLTF, PLY, STL, OFF → :class:`~splatgen.core.data.parts.Part` s.

:func:`load_parts` reads a model into flat triangle soups with per-corner normals, UVs and colours
and one material each, and lists what went wrong on the way (missing textures, unreadable
material libraries) as warnings. Broken input raises :class:`ModelError` with a one-line reason.
Texture paths as found in the wild (absolute paths from the author's disk, backslashes, the
wrong case) are looked up by base name under the model's folder. The game readers in
:mod:`splatgen.core.data.sources` decode their textures with :func:`texture_from_bytes`.
"""

from __future__ import annotations

import io
import os
import posixpath

import numpy as np

from .parts import LoadedModel, ModelError, Part, crease_normals
from .sources.common import Container

#: Largest texture side uploaded (textures are minified to a 256² render anyway).
MAX_TEXTURE_SIDE = 1024
#: Parts less opaque than this are dropped; more opaque than 1 - this are drawn opaque.
_ALPHA_EPS = 0.02
_DEFAULT_COLOR = (0.8, 0.8, 0.8, 1.0)


# ---------------------------------------------------------------------- asset resolution
class _Resolver:
    """trimesh resolver over a :class:`Container`, rooted at the model's folder.

    MTL files in the wild name textures by absolute paths from the author's disk
    (``C:/Documents and Settings/...``), with backslashes, or in the wrong case; a name that is not
    found as given is looked up by its base name anywhere under the model's folder. Misses are
    recorded so the caller can log them, and so are the names that were found (``found``, as
    asked for), so that the caller can tell a texture that was read but could not be decoded.
    """

    def __init__(self, box: Container, base: str, _shared: "_Resolver | None" = None):
        self.box = box
        self.base = base.strip("/")
        # a namespaced resolver records into its parent's lists
        self.missing: list[str] = _shared.missing if _shared else []
        self.by_basename: list[str] = _shared.by_basename if _shared else []
        self.found: list[str] = _shared.found if _shared else []
        prefix = (self.base + "/") if self.base else ""
        self._under = [n for n in box.names() if n.startswith(prefix)]

    def get(self, name: str) -> bytes:
        clean = name.strip().strip('"').replace("\\", "/")
        direct = posixpath.normpath(posixpath.join(self.base, clean.lstrip("/"))) if clean else ""
        if direct and not direct.startswith("..") and not os.path.isabs(clean) and ":" not in clean:
            hit = self.box.find(direct)
            if hit is not None:
                data = self.box.read(hit)
                self.found.append(name)
                return data
        leaf = posixpath.basename(clean).lower()
        for n in self._under:
            if posixpath.basename(n).lower() == leaf:
                data = self.box.read(n)
                self.by_basename.append(f"{name} -> {posixpath.basename(n)}")
                self.found.append(name)
                return data
        self.missing.append(clean)
        raise FileNotFoundError(name)

    # the parts of trimesh's Resolver interface its loaders use
    def __getitem__(self, key: str) -> bytes:
        return self.get(key)

    def namespaced(self, namespace: str) -> "_Resolver":
        return _Resolver(self.box, posixpath.join(self.base, namespace), _shared=self)

    def keys(self):
        return iter(self._under)

    def write(self, name, data):  # noqa: ARG002 - read-only
        raise OSError("read-only resolver")


# ---------------------------------------------------------------------- loading
def _material_alpha(mat) -> float:
    """Opacity of a material: OBJ ``d`` (or ``1 - Tr``), a PBR base colour alpha, else 1."""
    kw = getattr(mat, "kwargs", None) or {}
    for key, invert in (("d", False), ("tr", True)):
        if key in kw:
            try:
                v = float(kw[key][0] if isinstance(kw[key], (list, tuple)) else kw[key])
            except (TypeError, ValueError, IndexError):
                continue
            v = 1.0 - v if invert else v
            return float(min(max(v, 0.0), 1.0))
    factor = getattr(mat, "baseColorFactor", None)
    if factor is not None:
        f = np.asarray(factor, dtype=np.float64).reshape(-1)
        if f.size == 4:
            return float(f[3] / 255.0 if f.max() > 1.0 else f[3])
    return 1.0


def _material_color(mat) -> np.ndarray:
    """Diffuse RGBA in [0, 1] (alpha = opacity)."""
    rgb = None
    diffuse = getattr(mat, "diffuse", None)
    factor = getattr(mat, "baseColorFactor", None)
    for c in (diffuse, factor):
        if c is not None:
            arr = np.asarray(c, dtype=np.float64).reshape(-1)
            if arr.size >= 3:
                rgb = arr[:3] / 255.0 if (arr.dtype.kind in "ui" or arr.max() > 1.0) else arr[:3]
                break
    if rgb is None:
        rgb = np.array(_DEFAULT_COLOR[:3])
    return np.array([*np.clip(rgb, 0, 1), _material_alpha(mat)], dtype=np.float32)


def texture_from_bytes(data: bytes, name: str = "<texture>") -> np.ndarray:
    """An encoded texture (a file of a game archive) → ``(h, w, 4)`` uint8 RGBA, opened through
    :func:`splatgen.core.image_loading.open_image` (raster texture formats only)."""
    from ..image_loading import TEXTURE_FORMATS, open_image

    with open_image(data, name=name, formats=TEXTURE_FORMATS) as image:
        return _to_rgba_array(image)


def _to_rgba_array(image) -> np.ndarray:
    """A PIL image → ``(h, w, 4)`` uint8 RGBA, at most ``MAX_TEXTURE_SIDE`` per side."""
    from PIL import Image

    from ..image_loading import TEXTURE_FORMATS

    if image.format is not None and image.format not in TEXTURE_FORMATS:  # opened by trimesh, say
        raise ValueError(f"{image.format} is not a texture format splatgen reads")
    image.load()  # PIL opens lazily: decoding errors show up here
    if image.mode not in ("RGB", "RGBA"):
        has_alpha = image.mode in ("LA", "PA", "La") or "transparency" in image.info
        if image.mode in ("I;16", "I", "F"):
            image = image.convert("L")
        image = image.convert("RGBA" if has_alpha else "RGB")
    if max(image.size) > MAX_TEXTURE_SIDE:
        scale = MAX_TEXTURE_SIDE / max(image.size)
        image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))),
                             Image.BILINEAR)
    return np.asarray(image.convert("RGBA"), dtype=np.uint8)


def _geometry_part(geom, transform: np.ndarray, name: str, warnings: list[str],
                   from_obj: bool = False) -> Part | None:
    """One trimesh geometry (with its scene transform) → a :class:`Part`, or ``None`` if empty.

    ``from_obj``: the geometry came from an OBJ, whose textures trimesh tags with their MTL name
    (``image.info["file_path"]``); an untagged image there is trimesh's grey stand-in for a
    material it did not find (no MTL, or a ``usemtl`` the MTL lacks), drawn as untextured default.
    """
    import trimesh

    if not isinstance(geom, trimesh.Trimesh) or len(geom.faces) == 0 or len(geom.vertices) == 0:
        return None
    all_faces = np.asarray(geom.faces, dtype=np.int64)
    verts = np.asarray(geom.vertices, dtype=np.float64)
    # keep triangles whose indices are in range and whose vertices are finite
    finite = np.isfinite(verts).all(1)
    in_range = (all_faces >= 0).all(1) & (all_faces < len(verts)).all(1)
    kept = np.nonzero(in_range)[0]
    kept = kept[finite[all_faces[kept]].all(1)]
    if len(kept) == 0:
        return None
    faces = all_faces[kept]
    corners = faces.reshape(-1)
    pos = verts[corners] @ transform[:3, :3].T + transform[:3, 3]

    # normals: the file's when it has them (trimesh caches them only then), else crease-smoothed
    normals = None
    if "vertex_normals" in geom._cache.cache:  # noqa: SLF001 - the only way to know they came from the file
        vn = np.asarray(geom.vertex_normals, dtype=np.float64)
        if vn.shape == verts.shape:
            normal_mat = np.linalg.inv(transform[:3, :3]).T
            normals = vn[corners] @ normal_mat.T
            bad = ~np.isfinite(normals).all(1) | (np.linalg.norm(normals, axis=1) < 1e-12)
            if bad.mean() > 0.01:
                normals = None
            else:
                normals[bad] = (0.0, 1.0, 0.0)
                normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    if normals is None:
        normals = crease_normals(pos)

    visual = geom.visual
    uvs, texture, colors = None, None, None
    base = np.array(_DEFAULT_COLOR, dtype=np.float32)
    cutout = True
    blend = False
    kind = getattr(visual, "kind", None)
    if kind == "texture" or hasattr(visual, "material"):
        mat = getattr(visual, "material", None)
        stand_in = getattr(mat, "image", None)
        if from_obj and stand_in is not None and "file_path" not in getattr(stand_in, "info", {}):
            mat = None
        if mat is not None:
            base = _material_color(mat)
            image = getattr(mat, "image", None)
            if image is None:
                image = getattr(mat, "baseColorTexture", None)
            uv = getattr(visual, "uv", None)
            if image is not None and uv is not None and len(uv) == len(verts):
                try:
                    texture = _to_rgba_array(image)
                    uvs = np.asarray(uv, dtype=np.float64)[corners]
                    if not np.isfinite(uvs).all():
                        uvs = np.nan_to_num(uvs)
                except Exception as exc:  # noqa: BLE001 - a broken texture must not drop the object
                    path = getattr(image, "info", {}).get("file_path", "?")
                    warnings.append(f"texture {path} unreadable ({type(exc).__name__}), drawn untextured")
                    texture = None
            elif image is not None:
                warnings.append(f"part {name}: texture without UVs, drawn untextured")
            mode = getattr(mat, "alphaMode", None)
            if mode == "BLEND":
                blend = True
            elif mode == "OPAQUE":
                cutout = False
            if texture is not None:
                # SweetHome3D (and most viewers) show the texture as is; Kd is the exporter's default
                base[:3] = 1.0
    elif kind in ("vertex", "face"):
        if kind == "vertex":
            vc = np.asarray(visual.vertex_colors, dtype=np.float32)[:, :4] / 255.0
            colors = vc[corners]
        else:
            fc = np.asarray(visual.face_colors, dtype=np.float32)[:, :4] / 255.0
            colors = np.repeat(fc[kept], 3, axis=0)
    if colors is None:
        colors = np.ones((len(pos), 4), dtype=np.float32)
    if base[3] < _ALPHA_EPS or (colors[:, 3].max() < _ALPHA_EPS):
        return None  # invisible material (helper geometry)
    if base[3] < 1.0 - _ALPHA_EPS or colors[:, 3].min() < 1.0 - _ALPHA_EPS:
        blend = True
    if texture is not None and not blend and cutout and texture[..., 3].min() >= 250:
        cutout = False
    return Part(pos.astype(np.float32), normals.astype(np.float32),
                None if uvs is None else uvs.astype(np.float32), colors.astype(np.float32),
                base.astype(np.float32), texture, blend, cutout, name)


def _undecodable_textures(scene, found: list[str], warnings: list[str]) -> None:
    """OBJ: warn about textures that were read but not decoded (trimesh drops those silently)."""
    loaded = set()
    for geom in scene.geometry.values():
        image = getattr(getattr(getattr(geom, "visual", None), "material", None), "image", None)
        if image is not None:
            loaded.add(getattr(image, "info", {}).get("file_path"))
    for name in dict.fromkeys(found):
        if not name.strip().lower().endswith(".mtl") and name not in loaded:
            warnings.append(f"texture {name.strip()} unreadable (not a decodable image), drawn untextured")


def _apply_map_d(scene, resolver: _Resolver, warnings: list[str]) -> None:
    """OBJ ``map_d`` (an opacity texture): fold it into the diffuse texture's alpha channel."""
    from PIL import Image

    from ..image_loading import TEXTURE_FORMATS, open_image

    for geom in scene.geometry.values():
        mat = getattr(getattr(geom, "visual", None), "material", None)
        kw = getattr(mat, "kwargs", None) or {}
        if "map_d" not in kw or getattr(mat, "_splatgen_map_d", False):
            continue
        mat._splatgen_map_d = True
        name = " ".join(kw["map_d"]) if isinstance(kw["map_d"], (list, tuple)) else str(kw["map_d"])
        try:
            mask = open_image(resolver.get(name), name=name, formats=TEXTURE_FORMATS)
            mask.load()
        except Exception:  # noqa: BLE001
            warnings.append(f"opacity texture {name} missing, ignored")
            continue
        a = mask.getchannel("A") if mask.mode in ("RGBA", "LA", "PA") else mask.convert("L")
        img = mat.image.convert("RGBA") if mat.image is not None else Image.new("RGBA", a.size, (255,) * 4)
        a = a.resize(img.size, Image.BILINEAR)
        old = np.asarray(img.getchannel("A"), dtype=np.float32)
        new = np.asarray(a, dtype=np.float32)
        img.putalpha(Image.fromarray((old * new / 255.0).astype(np.uint8)))
        img.info["file_path"] = getattr(mat.image, "info", {}).get("file_path", name) if mat.image is not None else name
        mat.image = img


def load_parts(container: str | Container, model_path: str) -> LoadedModel:
    """Load ``model_path`` (POSIX path inside ``container``, a ``.sh3f`` zip or a folder) into parts.

    Scene-graph transforms (GLB/GLTF nodes) are applied; each geometry becomes one :class:`Part`.
    Raises :class:`ModelError` when the file cannot be parsed or holds no triangles.
    """
    import logging

    import trimesh

    logging.getLogger("trimesh").setLevel(logging.ERROR)
    box = container if isinstance(container, Container) else Container(container)
    try:
        ext = posixpath.splitext(model_path)[1].lower().lstrip(".")
        try:
            data = box.read(model_path)
        except OSError as exc:
            raise ModelError(f"cannot read {model_path}: {exc}") from None
        if len(data) == 0:
            raise ModelError("empty file")
        resolver = _Resolver(box, posixpath.dirname(model_path))
        kwargs = {"process": False}
        if ext == "obj":
            kwargs.update(group_material=True, skip_materials=False)
        try:
            scene = trimesh.load_scene(io.BytesIO(data), file_type=ext, resolver=resolver, **kwargs)
        except Exception as exc:  # noqa: BLE001 - any parser failure is a reason to skip
            msg = " ".join(str(exc).split())[:160]
            raise ModelError(f"unreadable {ext.upper()} ({type(exc).__name__}: {msg})") from None
        warnings: list[str] = []
        for miss in dict.fromkeys(resolver.missing):
            kind = "material library" if miss.lower().endswith(".mtl") else "texture"
            warnings.append(f"missing {kind} {miss}")
        if ext == "obj":
            _undecodable_textures(scene, resolver.found, warnings)
            _apply_map_d(scene, resolver, warnings)
        for hit in dict.fromkeys(resolver.by_basename):
            warnings.append(f"asset found by file name only: {hit}")
        parts = []
        for node in scene.graph.nodes_geometry:
            transform, geom_name = scene.graph[node]
            geom = scene.geometry.get(geom_name)
            if geom is None:
                continue
            part = _geometry_part(geom, np.asarray(transform, dtype=np.float64), str(geom_name), warnings,
                                  from_obj=ext == "obj")
            if part is not None:
                parts.append(part)
        # the resolver records texture misses while parts are built too (none today); keep unique
        warnings = list(dict.fromkeys(warnings))
        if not parts:
            raise ModelError("no triangles (empty geometry, point cloud or only invisible materials)")
        return LoadedModel(parts, warnings)
    finally:
        if not isinstance(container, Container):
            box.close()


__all__ = ["load_parts", "texture_from_bytes", "MAX_TEXTURE_SIDE"]
