"""Finding the objects a dataset is built from, and loading each: one reader module a format.

==================  ==========================  =============================================
module              reads                       Debian package
==================  ==========================  =============================================
``sweethome3d``     ``.sh3f`` catalogs (OBJ)    ``sweethome3d-furniture``
``mesh_folder``     folders of OBJ/GLB/PLY/...  (any folder; also folders of ``.sh3f``)
``zeroad``          actors: PMD + DDS in a zip  ``0ad-data``
``megaglest``       G3D v4 units, tileset objs  ``megaglest-data``
``supertuxkart``    SPM library objects, karts  ``supertuxkart-data``
``flightgear``      AC3D models, AI aircraft    ``flightgear-data-models``, ``-ai``
==================  ==========================  =============================================

A reader module has ``READER`` (its name, recorded in :attr:`SourceObject.reader`),
``discover(path) -> (objects, problems)`` and ``load(obj, box) -> LoadedModel``; the package
readers also have ``detect(path) -> bool`` (does ``path`` look like that package's data?).
:func:`discover` picks the reader from the path; :func:`load_model` loads an object with the reader
that found it. ``problems`` are ``(object_id, reason)`` for entries that cannot become objects.
Nothing is rendered here.
"""

from __future__ import annotations

import os
from pathlib import Path

from ...errors import DatasetError
from . import flightgear, megaglest, mesh_folder, supertuxkart, sweethome3d, zeroad
from .common import (Container, SourceObject, license_family, license_id, licence_allowed, safe_id,
                     unique_id)
from .mesh_folder import MESH_EXTENSIONS
from .sweethome3d import CATALOG_FILE, parse_properties, read_catalog

#: Readers of whole packages, tried in this order by :func:`discover`; the folder reader is the fallback.
PACKAGE_READERS: tuple = (zeroad, megaglest, supertuxkart, flightgear)
#: Every reader by its ``READER`` name.
READERS = {m.READER: m for m in (mesh_folder, *PACKAGE_READERS)}


def reader_for(path: str | os.PathLike):
    """The reader module for a source path: the first package reader that recognises it, else the folder one."""
    path = Path(path)
    for reader in PACKAGE_READERS:
        if reader.detect(path):
            return reader
    return mesh_folder


def discover(path: str | os.PathLike) -> tuple[list[SourceObject], list[tuple[str, str]]]:
    """All objects under a source path, in a deterministic order, with the reader that fits it.

    Returns ``(objects, problems)``. Raises :class:`DatasetError` when the path does not exist or
    holds nothing usable.
    """
    if not Path(path).exists():
        raise DatasetError(f"{path}: source does not exist")
    return reader_for(path).discover(path)


#: Installed packages :func:`installed_sources` looks for: (package, module with ``locate(root)``).
INSTALLABLE = (("0ad-data", zeroad), ("megaglest-data", megaglest), ("supertuxkart-data", supertuxkart),
               ("flightgear-data-models + -ai", flightgear), ("sweethome3d-furniture", sweethome3d))


def installed_sources(roots: list[str | os.PathLike] = ("/",), count: bool = True) -> list[dict]:
    """The known packages found below each file-system root (``/``, or trees unpacked with
    ``dpkg-deb -x``): ``{"package", "reader", "path", "objects", "problems", "licences"}`` each,
    ``objects`` and ``problems`` counted by running discovery when ``count`` (a few seconds a package)."""
    import collections

    found = []
    for root in roots:
        for package, module in INSTALLABLE:
            path = module.locate(root)
            if path is None:
                continue
            row = {"package": package, "reader": reader_for(path).READER, "path": str(path),
                   "objects": None, "problems": None, "licences": {}}
            if count:
                try:
                    objs, probs = discover(path)
                    row.update(objects=len(objs), problems=len(probs),
                               licences=dict(collections.Counter(o.license for o in objs).most_common()))
                except DatasetError as exc:
                    row.update(objects=0, problems=1, error=str(exc))
            found.append(row)
    return found


def load_model(obj: SourceObject, box: Container):
    """Load ``obj`` (its files in ``box``, opened on ``obj.container``) with the reader that found it."""
    try:
        reader = READERS[obj.reader]
    except KeyError:
        raise DatasetError(f"{obj.object_id}: unknown reader {obj.reader!r}") from None
    return reader.load(obj, box)


__all__ = ["installed_sources", "INSTALLABLE", "CATALOG_FILE", "MESH_EXTENSIONS", "Container", "SourceObject", "discover", "load_model",
           "license_family", "license_id", "licence_allowed", "parse_properties", "read_catalog",
           "reader_for", "safe_id", "unique_id", "READERS", "PACKAGE_READERS"]
