"""Loading textured meshes, normalising them to the canonical framing, and rasterising RGBA views.

Three steps, each usable alone:

1. :func:`load_parts` reads a model (OBJ/MTL/textures from a folder or a ``.sh3f`` zip, GLB/GLTF,
   PLY, STL, OFF) through trimesh into :class:`Part` s — flat triangle soups with per-corner
   normals, UVs and colours and one material each — and lists what went wrong on the way
   (missing textures, unreadable material libraries) as warnings. Broken input raises
   :class:`ModelError` with a one-line reason.
2. :func:`normalisation_matrix` computes the 4×4 that maps the model into the canonical world:
   catalog rotation applied, per-axis catalog size applied, bounding box centred on the origin,
   bounding sphere radius ``framing.OBJECT_RADIUS``; world Y is up.
3. :class:`MeshRenderer` rasterises the parts with OpenGL (moderngl; EGL, so llvmpipe works
   headless) for OpenCV cameras (``viewmats (C, 4, 4)`` world-to-camera, ``K (3, 3)``), so that a
   world point X lands at pixel ``u = fx·x/z + cx``, ``v = fy·y/z + cy`` with ``(x, y, z)`` the
   camera-space point and row 0 at the top, exactly as gsplat projects it. Antialiasing is 2×
   supersampling, averaged in premultiplied colour; output is straight (unpremultiplied) RGBA8.

Lighting is Lambertian and fixed in the world for all the cameras of a call (a key light, a weaker
fill and a sky/ground ambient term; :mod:`splatgen.core.data.lighting` holds the default rig and
the per-object variation the dataset builder uses), so a surface has the same colour in every view —
what a view-independent Gaussian colour can reproduce. Surfaces are two-sided (normals face the
camera). Colours are treated as display (sRGB) values throughout; no tone mapping.
"""

from __future__ import annotations

import io
import math
import os
import posixpath

import numpy as np

from .. import framing
# the default lights (world space, Y up) live with per-object lighting in lighting.py
from .lighting import AMBIENT, DEFAULT_LIGHTING, FILL_LIGHT, KEY_LIGHT, SKY, Lighting  # noqa: F401
from .parts import CREASE_ANGLE_DEG, LoadedModel, ModelError, Part, crease_normals  # noqa: F401
from .sources.common import Container
from ..render.foreign_context import foreign_context_released, release_current_egl

#: Largest texture side uploaded (textures are minified to a 256² render anyway).
MAX_TEXTURE_SIDE = 1024
#: Parts less opaque than this are dropped; more opaque than 1 - this are drawn opaque.
_ALPHA_EPS = 0.02
#: Texture alpha below which an opaque part's fragment is cut out (leaves, grilles).
ALPHA_CUTOFF = 0.5
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


# ---------------------------------------------------------------------- normalisation
def normalisation_matrix(
    parts: list[Part],
    rotation: list[list[float]] | np.ndarray | None = None,
    size_cm: tuple[float, float, float] | None = None,
) -> np.ndarray:
    """The ``(4, 4)`` float64 that maps model coordinates to the canonical world.

    ``rotation`` (3×3, ``x' = R x``) is applied first; then, when ``size_cm`` = (width, depth,
    height) is given, each axis is scaled so the box has the catalog's proportions (x = width,
    y = height, z = depth — SweetHome3D stretches models to their catalog size); then the box is
    centred at the origin and scaled uniformly so half its diagonal is ``framing.OBJECT_RADIUS``.
    Raises :class:`ModelError` for zero-size or non-finite bounds.
    """
    pts = np.concatenate([p.positions for p in parts]).astype(np.float64)
    R = np.eye(3) if rotation is None else np.asarray(rotation, dtype=np.float64).reshape(3, 3)
    q = pts @ R.T
    lo, hi = q.min(0), q.max(0)
    ext = hi - lo
    if not np.isfinite(ext).all():
        raise ModelError("non-finite bounds")
    if ext.max() <= 1e-9 * max(1.0, float(np.abs(q).max())):
        raise ModelError("zero-size bounds (all vertices at one point)")
    S = np.ones(3)
    if size_cm is not None:
        width, depth, height = size_cm
        target = np.array([width, height, depth], dtype=np.float64)
        ok = ext > 1e-6 * ext.max()  # a flat axis (a rug, a poster) keeps its thickness
        S[ok] = target[ok] / ext[ok]
        if (~ok).any():
            S[~ok] = math.exp(float(np.log(S[ok]).mean()))
    M = np.diag(S) @ R
    q2 = pts @ M.T
    lo, hi = q2.min(0), q2.max(0)
    centre = (lo + hi) / 2
    radius = 0.5 * float(np.linalg.norm(hi - lo))
    if not radius > 0:
        raise ModelError("zero-size bounds")
    k = framing.OBJECT_RADIUS / radius
    out = np.eye(4)
    out[:3, :3] = k * M
    out[:3, 3] = -k * centre
    return out


def transform_parts(parts: list[Part], matrix: np.ndarray) -> list[Part]:
    """Parts moved by a ``(4, 4)`` affine ``matrix`` (normals by its inverse transpose)."""
    A, t = matrix[:3, :3], matrix[:3, 3]
    N = np.linalg.inv(A).T
    out = []
    for p in parts:
        n = p.normals.astype(np.float64) @ N.T
        n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)
        out.append(Part((p.positions.astype(np.float64) @ A.T + t).astype(np.float32), n.astype(np.float32),
                        p.uvs, p.colors, p.base_color, p.texture, p.blend, p.cutout, p.name))
    return out


# ---------------------------------------------------------------------- rasterising
_VERTEX_SHADER = """
#version 330
uniform mat4 u_clip_from_world;
in vec3 in_pos;
in vec3 in_nrm;
in vec2 in_uv;
in vec4 in_col;
out vec3 v_pos;
out vec3 v_nrm;
out vec2 v_uv;
out vec4 v_col;
void main() {
    v_pos = in_pos;
    v_nrm = in_nrm;
    v_uv = in_uv;
    v_col = in_col;
    gl_Position = u_clip_from_world * vec4(in_pos, 1.0);
}
"""

_FRAGMENT_SHADER = """
#version 330
uniform sampler2D u_tex;
uniform bool u_use_tex;
uniform bool u_cutout;
uniform bool u_blend;
uniform float u_cutoff;
uniform vec4 u_color;
uniform vec3 u_cam_pos;
uniform vec3 u_key_dir;
uniform vec3 u_key;
uniform vec3 u_fill_dir;
uniform vec3 u_fill;
uniform vec3 u_ambient;
uniform float u_sky;
in vec3 v_pos;
in vec3 v_nrm;
in vec2 v_uv;
in vec4 v_col;
out vec4 f_color;
void main() {
    vec4 base = v_col * u_color;
    if (u_use_tex) {
        // OBJ/GLTF v runs up from the image's bottom row; the texture is uploaded top row first
        base *= texture(u_tex, vec2(v_uv.x, 1.0 - v_uv.y));
    }
    if (!u_blend) {
        if (u_cutout && base.a < u_cutoff) discard;
        base.a = 1.0;
    } else if (base.a < 0.004) {
        discard;
    }
    vec3 n = normalize(v_nrm);
    if (dot(n, u_cam_pos - v_pos) < 0.0) n = -n;  // two-sided
    vec3 light = u_ambient + u_sky * n.y
               + u_key * max(dot(n, u_key_dir), 0.0)
               + u_fill * max(dot(n, u_fill_dir), 0.0);
    vec3 rgb = clamp(base.rgb * light, 0.0, 1.0);
    f_color = vec4(rgb * base.a, base.a);  // premultiplied, so averaging and blending are exact
}
"""


def gl_projection(K: np.ndarray, width: int, height: int,
                  near: float = framing.NEAR, far: float = framing.FAR) -> np.ndarray:
    """``(4, 4)`` clip-from-camera matrix for an OpenCV camera ``K (3, 3)`` (x right, y down, z fwd).

    Pixel ``(u, v)`` (``u = fx·x/z + cx``, +0.5-centred, row 0 at the top) maps to normalised
    device coordinates ``x_ndc = 2u/W - 1`` and ``y_ndc = 1 - 2v/H`` (OpenGL's y points up, so the
    image read back from OpenGL is flipped once, vertically). Depth: z = near → -1, z = far → +1.
    """
    fx, fy, cx, cy = float(K[0, 0]), float(K[1, 1]), float(K[0, 2]), float(K[1, 2])
    P = np.zeros((4, 4))
    P[0, 0] = 2 * fx / width
    P[0, 2] = 2 * cx / width - 1
    P[1, 1] = -2 * fy / height
    P[1, 2] = 1 - 2 * cy / height
    P[2, 2] = (far + near) / (far - near)
    P[2, 3] = -2 * far * near / (far - near)
    P[3, 2] = 1.0
    return P


class MeshRenderer:
    """An offscreen OpenGL rasteriser for :class:`Part` s; one per process (it owns a GL context).

    ``supersample`` renders at that many times the resolution and box-filters down (2 → 4 samples
    a pixel), in premultiplied colour.
    """

    def __init__(self, supersample: int = 2):
        import moderngl

        self._mgl = moderngl
        # Another GL context current on this thread (Qt's, the splat renderer's) is stepped aside
        # while ours works; ours is made current only for the duration of each call.
        with foreign_context_released():
            try:
                self.ctx = moderngl.create_context(standalone=True, backend="egl")
            except Exception:  # noqa: BLE001 - fall back to the platform default (GLX, WGL, CGL)
                self.ctx = moderngl.create_context(standalone=True)
            self._setup(supersample)
            release_current_egl()

    def _setup(self, supersample: int) -> None:
        self.prog = self.ctx.program(vertex_shader=_VERTEX_SHADER, fragment_shader=_FRAGMENT_SHADER)
        self.supersample = int(supersample)
        self._fbo = None
        self._fbo_size = None
        self._white = self.ctx.texture((1, 1), 4, bytes([255, 255, 255, 255]))
        self._set_lighting(DEFAULT_LIGHTING)
        self.prog["u_cutoff"].value = ALPHA_CUTOFF
        self.prog["u_tex"].value = 0

    def _set_lighting(self, lighting: Lighting) -> None:
        self.prog["u_key_dir"].value = tuple(lighting.key_dir)
        self.prog["u_key"].value = tuple(lighting.key_rgb)
        self.prog["u_fill_dir"].value = tuple(lighting.fill_dir)
        self.prog["u_fill"].value = tuple(lighting.fill_rgb)
        self.prog["u_ambient"].value = tuple(lighting.ambient_rgb)
        self.prog["u_sky"].value = float(lighting.sky)

    def _framebuffer(self, w: int, h: int):
        if self._fbo_size != (w, h):
            if self._fbo is not None:
                self._fbo.release()
            self._fbo = self.ctx.framebuffer(
                color_attachments=[self.ctx.renderbuffer((w, h), 4)],
                depth_attachment=self.ctx.depth_renderbuffer((w, h)),
            )
            self._fbo_size = (w, h)
        return self._fbo

    def render(self, parts: list[Part], viewmats: np.ndarray, K: np.ndarray,
               width: int, height: int, lighting: Lighting | None = None) -> np.ndarray:
        """Render ``parts`` (world coordinates) for each camera under ``lighting`` (fixed in the
        world for all the cameras; default :data:`~splatgen.core.data.lighting.DEFAULT_LIGHTING`).

        ``viewmats (C, 4, 4)`` OpenCV world-to-camera, ``K (3, 3)`` pixel intrinsics for a
        ``width``×``height`` image. Returns ``(C, height, width, 4)`` uint8 straight RGBA, row 0 at
        the top; alpha 0 where nothing was drawn (RGB 0 there).
        """
        with foreign_context_released(), self.ctx:
            self._set_lighting(lighting or DEFAULT_LIGHTING)
            return self._render(parts, viewmats, K, width, height)

    def _render(self, parts: list[Part], viewmats: np.ndarray, K: np.ndarray,
                width: int, height: int) -> np.ndarray:
        mgl, ctx, prog = self._mgl, self.ctx, self.prog
        s = self.supersample
        W, H = width * s, height * s
        Ks = np.asarray(K, dtype=np.float64).copy()
        Ks[:2] *= s  # +0.5-centred pixels: scaling the continuous image coordinates is exact
        P = gl_projection(Ks, W, H)
        fbo = self._framebuffer(W, H)
        resources, draws = [], []
        try:
            textures: dict[int, object] = {}
            for p in parts:
                n = len(p.positions)
                uv = p.uvs if p.uvs is not None else np.zeros((n, 2), np.float32)
                data = np.concatenate([p.positions, p.normals, uv, p.colors], axis=1).astype("f4")
                vbo = ctx.buffer(data.tobytes())
                vao = ctx.vertex_array(prog, [(vbo, "3f 3f 2f 4f", "in_pos", "in_nrm", "in_uv", "in_col")])
                resources += [vao, vbo]
                tex = None
                if p.texture is not None and p.uvs is not None:
                    key = id(p.texture)
                    if key not in textures:
                        img = np.ascontiguousarray(p.texture)
                        t = ctx.texture((img.shape[1], img.shape[0]), 4, img.tobytes())
                        t.build_mipmaps()
                        t.filter = (mgl.LINEAR_MIPMAP_LINEAR, mgl.LINEAR)
                        t.repeat_x = t.repeat_y = True
                        textures[key] = t
                        resources.append(t)
                    tex = textures[key]
                centroid = p.positions.mean(0) if n else np.zeros(3)
                draws.append((p, vao, tex, centroid))
            out = np.empty((len(viewmats), H, W, 4), dtype=np.uint8)
            fbo.use()
            ctx.viewport = (0, 0, W, H)
            for ci, vm in enumerate(np.asarray(viewmats, dtype=np.float64)):
                clip = P @ vm
                cam_pos = -vm[:3, :3].T @ vm[:3, 3]
                prog["u_clip_from_world"].write(clip.T.astype("f4").tobytes())  # GLSL is column-major
                prog["u_cam_pos"].value = tuple(cam_pos)
                fbo.clear(0.0, 0.0, 0.0, 0.0, depth=1.0)
                ctx.enable(mgl.DEPTH_TEST)
                ctx.disable(mgl.CULL_FACE)
                ctx.disable(mgl.BLEND)
                fbo.depth_mask = True
                for p, vao, tex, _ in draws:
                    if not p.blend:
                        self._draw(p, vao, tex)
                # semi-transparent parts: over the opaque ones, far to near, without writing depth
                transparent = [d for d in draws if d[0].blend]
                if transparent:
                    ctx.enable(mgl.BLEND)
                    ctx.blend_func = mgl.ONE, mgl.ONE_MINUS_SRC_ALPHA
                    fbo.depth_mask = False
                    transparent.sort(key=lambda d: -float(np.linalg.norm(d[3] - cam_pos)))
                    for p, vao, tex, _ in transparent:
                        self._draw(p, vao, tex)
                    fbo.depth_mask = True
                    ctx.disable(mgl.BLEND)
                buf = fbo.read(components=4, dtype="f1")
                out[ci] = np.frombuffer(buf, dtype=np.uint8).reshape(H, W, 4)[::-1]
        finally:
            for r in resources:
                r.release()
        return _downsample(out, s)

    def _draw(self, p: Part, vao, tex) -> None:
        prog = self.prog
        prog["u_color"].value = tuple(float(c) for c in p.base_color)
        prog["u_use_tex"].value = tex is not None
        prog["u_cutout"].value = bool(p.cutout)
        prog["u_blend"].value = bool(p.blend)
        (tex or self._white).use(0)
        vao.render(self._mgl.TRIANGLES)

    def release(self) -> None:
        with foreign_context_released():
            self.ctx.release()


def _downsample(premult: np.ndarray, s: int) -> np.ndarray:
    """``(C, sH, sW, 4)`` premultiplied uint8 → ``(C, H, W, 4)`` straight uint8 by s×s box filter."""
    acc = np.zeros((premult.shape[0], premult.shape[1] // s, premult.shape[2] // s, 4), dtype=np.uint16)
    for dy in range(s):  # integer sums of strided views: far faster than a float mean over axes
        for dx in range(s):
            acc += premult[:, dy::s, dx::s]
    alpha = acc[..., 3:4].astype(np.float32)
    rgb = acc[..., :3].astype(np.float32) * (255.0 / np.maximum(alpha, 1.0))
    out = np.empty(acc.shape, dtype=np.uint8)
    out[..., :3] = np.clip(rgb + 0.5, 0, 255).astype(np.uint8)
    out[..., 3:4] = (alpha / (s * s) + 0.5).astype(np.uint8)
    return out

