"""Mesh files: binary glTF (``.glb``) and Wavefront ``.obj``, both with vertex colours and metadata.

Both are written by trimesh (already a splatgen dependency) and atomically
(:mod:`splatgen.core.atomic`). Coordinates are metres in the axes :mod:`.placement` chose.

* ``.glb``: one mesh with normals and ``COLOR_0`` (glTF vertex colours are linear, so the display
  colours are converted from sRGB), one material: white, not metallic, fully rough, marked
  ``KHR_materials_unlit`` (the colours already hold the splats' lighting; a viewer without the
  extension shows the plain material). The metadata lies in ``asset.extras`` as JSON
  (``asset.generator`` is ``splatgen``).
* ``.obj``: positions with colour (``v x y z r g b``, display values in [0, 1], the extension MeshLab,
  Blender and trimesh read), normals and faces; the metadata is the comment header, one line of
  ``# key: value`` per setting and the whole record as JSON on the line ``# splatgen-metadata: {…}``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from ..atomic import atomic_path
from ..errors import SplatgenError

#: File formats written, by extension.
MESH_EXTENSIONS = (".glb", ".obj")
#: The OBJ comment line that holds the metadata as JSON.
OBJ_METADATA_PREFIX = "# splatgen-metadata: "


def srgb_to_linear(c: np.ndarray) -> np.ndarray:
    """sRGB-encoded values in [0, 1] → linear (IEC 61966-2-1)."""
    c = np.clip(c, 0.0, 1.0)
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def mesh_format(path: str | os.PathLike) -> str:
    """``"glb"`` or ``"obj"`` from the extension of ``path``; anything else is an error."""
    suffix = Path(path).suffix.lower()
    if suffix not in MESH_EXTENSIONS:
        raise SplatgenError(f"{path}: a mesh is written as {' or '.join(MESH_EXTENSIONS)}, not {suffix or 'no extension'!r}")
    return suffix[1:]


def _to_u8(rgb: np.ndarray) -> np.ndarray:
    rgba = np.concatenate([np.clip(rgb, 0, 1), np.ones((len(rgb), 1))], 1)
    return np.round(rgba * 255).astype(np.uint8)


def glb_bytes(vertices: np.ndarray, faces: np.ndarray, colours: np.ndarray, metadata: dict) -> bytes:
    """The ``.glb`` file of a mesh: ``vertices`` ``(V, 3)`` metres, ``faces`` ``(F, 3)``, display
    ``colours`` ``(V, 3)`` in [0, 1] (module docstring)."""
    import trimesh
    from trimesh.exchange.gltf import export_glb

    mesh = trimesh.Trimesh(vertices, faces, vertex_colors=_to_u8(srgb_to_linear(colours)), process=False)

    def finish(tree: dict) -> None:
        tree["asset"]["generator"] = "splatgen"
        tree["asset"]["extras"] = metadata
        tree["materials"] = [{"name": "splatgen_vertex_colour", "doubleSided": False,
                              "pbrMetallicRoughness": {"baseColorFactor": [1.0, 1.0, 1.0, 1.0],
                                                       "metallicFactor": 0.0, "roughnessFactor": 1.0},
                              "extensions": {"KHR_materials_unlit": {}}}]
        tree["extensionsUsed"] = sorted(set(tree.get("extensionsUsed", [])) | {"KHR_materials_unlit"})
        for m in tree["meshes"]:
            for primitive in m["primitives"]:
                primitive["material"] = 0

    scene = trimesh.Scene()
    scene.add_geometry(mesh, geom_name="splatgen_mesh", node_name="splatgen_mesh")
    return export_glb(scene, include_normals=True, tree_postprocessor=finish)


def obj_text(vertices: np.ndarray, faces: np.ndarray, colours: np.ndarray, metadata: dict) -> str:
    """The ``.obj`` file of a mesh (module docstring)."""
    import trimesh
    from trimesh.exchange.obj import export_obj

    mesh = trimesh.Trimesh(vertices, faces, vertex_colors=_to_u8(colours), process=False)
    body = export_obj(mesh, include_normals=True, include_color=True, include_texture=False, header=None)
    lines = ["# splatgen mesh export"]
    placement = metadata.get("placement", {})
    for key in ("units", "up_axis", "front_axis", "pivot", "size_m", "size_along", "bounds_min", "bounds_max"):
        if key in placement:
            lines.append(f"# {key}: {json.dumps(placement[key])}")
    lines.append(OBJ_METADATA_PREFIX + json.dumps(metadata, separators=(",", ":")))
    return "\n".join(lines) + "\n" + body


def write_mesh(path: str | os.PathLike, vertices: np.ndarray, faces: np.ndarray, colours: np.ndarray,
               metadata: dict) -> Path:
    """Write a ``.glb`` or ``.obj`` (by extension) atomically; returns the path."""
    kind = mesh_format(path)
    metadata = json.loads(json.dumps(metadata))   # plain JSON values only (fails here, not in the writer)
    data = glb_bytes(vertices, faces, colours, metadata) if kind == "glb" else \
        obj_text(vertices, faces, colours, metadata).encode("utf-8")
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(data)
    return Path(path)


def read_obj_metadata(path: str | os.PathLike) -> dict | None:
    """The metadata record of an ``.obj`` splatgen wrote (its comment header), or None."""
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if not line.startswith("#"):
                return None
            if line.startswith(OBJ_METADATA_PREFIX):
                return json.loads(line[len(OBJ_METADATA_PREFIX):])
    return None
