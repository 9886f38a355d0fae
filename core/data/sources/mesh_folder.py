"""Folders of loose meshes (OBJ / GLB / GLTF / PLY / STL / OFF), and the mixed folders of today's builds.

A folder source holds every ``.sh3f`` below it, every folder holding an extracted SweetHome3D
catalog (``PluginFurnitureCatalog.properties``), and every loose mesh file outside those catalog
folders. The category of a loose mesh is its folder relative to the source root. All of them are
loaded with trimesh (:func:`load`).
"""

from __future__ import annotations

import os
from pathlib import Path

from ...errors import DatasetError
from .common import Container, SourceObject, safe_id
from .sweethome3d import CATALOG_FILE, read_catalog

#: Loose mesh formats a folder source may hold (all read through trimesh).
MESH_EXTENSIONS = (".obj", ".glb", ".gltf", ".ply", ".stl", ".off")
#: Name of this reader in :attr:`SourceObject.reader`.
READER = "mesh"


def _mesh_objects(root: Path, files: list[Path]) -> list[SourceObject]:
    library = safe_id(root.name).lower()
    objects, used = [], set()
    for f in files:
        rel = f.relative_to(root)
        parts = [safe_id(p) for p in rel.with_suffix("").parts]
        oid = f"{library}__" + "__".join(parts)
        if oid in used:  # chair.obj next to chair.ply
            oid = f"{oid}-{f.suffix.lower().lstrip('.')}"
        used.add(oid)
        category = rel.parent.as_posix() if rel.parent != Path(".") else "uncategorized"
        objects.append(SourceObject(
            object_id=oid, container=str(root), model_path=rel.as_posix(), library=library,
            name=f.stem, category=category,
        ))
    return objects


def discover(path: str | os.PathLike) -> tuple[list[SourceObject], list[tuple[str, str]]]:
    """All objects under a source path, in a deterministic order.

    Returns ``(objects, problems)`` as :func:`read_catalog`. Raises :class:`DatasetError` when the
    path does not exist or holds nothing usable.
    """
    path = Path(path)
    if not path.exists():
        raise DatasetError(f"{path}: source does not exist")
    objects: list[SourceObject] = []
    problems: list[tuple[str, str]] = []
    if path.is_file():
        if path.suffix.lower() == ".sh3f":
            return read_catalog(path)
        if path.suffix.lower() in MESH_EXTENSIONS:
            return _mesh_objects(path.parent, [path]), []
        raise DatasetError(f"{path}: not a .sh3f library, a mesh file or a folder")

    catalogs: list[Path] = []
    loose: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(path):
        dirnames.sort()
        d = Path(dirpath)
        if CATALOG_FILE in filenames:
            catalogs.append(d)
            dirnames[:] = []  # an extracted catalog's models belong to the catalog
            continue
        for name in sorted(filenames):
            p = d / name
            if name.lower().endswith(".sh3f"):
                catalogs.append(p)
            elif p.suffix.lower() in MESH_EXTENSIONS:
                loose.append(p)
    for c in sorted(catalogs):
        try:
            objs, probs = read_catalog(c)
        except DatasetError as exc:
            problems.append((safe_id(c.stem).lower(), str(exc)))
            continue
        objects += objs
        problems += probs
    objects += _mesh_objects(path, loose)
    if not objects and not problems:
        raise DatasetError(f"{path}: no .sh3f libraries or mesh files ({', '.join(MESH_EXTENSIONS)}) found")
    return objects, problems


def load(obj: SourceObject, box: Container):
    """The model of ``obj`` (a mesh file inside ``box``) as :class:`~splatgen.core.data.parts.LoadedModel`."""
    from ..mesh_load import load_parts

    return load_parts(box, obj.model_path)
