"""Finding the objects a dataset is built from: SweetHome3D ``.sh3f`` catalogs and plain mesh folders.

A source path is one of

* a ``.sh3f`` file — a zip holding ``PluginFurnitureCatalog.properties`` (a Java properties file
  naming, per piece ``#N``: ``model``, ``name``, ``category``, ``creator``, ``width``/``depth``/
  ``height`` in cm and optionally ``modelRotation``), the OBJ/MTL/texture files, and a
  ``LICENSE.TXT``;
* a folder: every ``.sh3f`` below it, every folder holding an extracted catalog
  (``PluginFurnitureCatalog.properties``), and every loose mesh file (OBJ / GLB / GLTF / PLY / STL /
  OFF) outside those catalog folders.

:func:`discover` turns a source path into an ordered list of :class:`SourceObject`, each with a
stable, filesystem-safe ``object_id`` (``<library>__<model>``) and the metadata recorded with it in
the dataset (creator, licence, category, source file). Nothing is loaded or rendered here.
"""

from __future__ import annotations

import os
import posixpath
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from ..errors import DatasetError

#: File name of a SweetHome3D furniture catalog inside a library.
CATALOG_FILE = "PluginFurnitureCatalog.properties"
#: Loose mesh formats a folder source may hold (all read through trimesh).
MESH_EXTENSIONS = (".obj", ".glb", ".gltf", ".ply", ".stl", ".off")
#: File names (lower case, without extension) taken for licence texts.
_LICENSE_STEMS = ("license", "licence", "copying", "readme")


@dataclass
class SourceObject:
    """One object to render, and everything recorded about it.

    ``container`` is the ``.sh3f`` zip or the folder the model's files are read from, and
    ``model_path`` the model's path inside it (POSIX, relative, no leading slash).
    ``size_cm`` is the catalog's (width, depth, height) in cm — the model's extent along its x, z and
    y axes after ``model_rotation`` — or ``None`` when the source has no catalog.
    ``model_rotation`` is the catalog's 3×3 row-major rotation ``R`` (``x' = R @ x``) or ``None``.
    """

    object_id: str
    container: str
    model_path: str
    library: str
    name: str = ""
    category: str = "uncategorized"
    creator: str = "unknown"
    license: str = "unknown"
    license_text: str = ""
    license_url: str = ""
    license_files: list[str] = field(default_factory=list)
    catalog_id: str = ""
    size_cm: tuple[float, float, float] | None = None
    model_rotation: list[list[float]] | None = None

    @property
    def source_file(self) -> str:
        """Human-readable location of the model file (``archive.sh3f!/path/model.obj`` for zips)."""
        if self.container.lower().endswith(".sh3f") and os.path.isfile(self.container):
            return f"{self.container}!/{self.model_path}"
        return str(Path(self.container) / self.model_path)

    def meta(self) -> dict:
        """JSON-ready metadata recorded in the object's ``meta.json``."""
        return {
            "object_id": self.object_id,
            "name": self.name,
            "category": self.category,
            "creator": self.creator,
            "license": self.license,
            "license_text": self.license_text,
            "license_url": self.license_url,
            "license_files": list(self.license_files),
            "library": self.library,
            "catalog_id": self.catalog_id,
            "source_file": self.source_file,
            "size_cm": list(self.size_cm) if self.size_cm else None,
            "model_rotation": self.model_rotation,
        }


# ---------------------------------------------------------------------- containers
class Container:
    """Read-only access to the files of a library: a zip archive or a folder (POSIX names)."""

    def __init__(self, path: str | os.PathLike):
        self.path = str(path)
        self._zip: zipfile.ZipFile | None = None
        if os.path.isfile(self.path):
            try:
                self._zip = zipfile.ZipFile(self.path)
            except (zipfile.BadZipFile, OSError) as exc:
                raise DatasetError(f"{self.path}: not a readable .sh3f (zip) file ({exc})") from None
            self._names = [n for n in self._zip.namelist() if not n.endswith("/")]
        else:
            root = Path(self.path)
            self._names = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
        self._lower = {n.lower(): n for n in self._names}

    def names(self) -> list[str]:
        return list(self._names)

    def find(self, name: str) -> str | None:
        """The stored name matching ``name`` exactly, else case-insensitively, else ``None``."""
        name = name.lstrip("/")
        if name in self._lower.values():
            return name
        return self._lower.get(name.lower())

    def read(self, name: str) -> bytes:
        real = self.find(name)
        if real is None:
            raise FileNotFoundError(f"{name} (in {self.path})")
        if self._zip is not None:
            return self._zip.read(real)
        return (Path(self.path) / real).read_bytes()

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()
            self._zip = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# ---------------------------------------------------------------------- Java properties
_UNICODE_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")


def _unescape(text: str) -> str:
    text = _UNICODE_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text)
    out, i = [], 0
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            nxt = text[i + 1]
            out.append({"t": "\t", "n": "\n", "r": "\r", "f": "\f"}.get(nxt, nxt))
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def parse_properties(data: bytes) -> dict[str, str]:
    """Parse a Java ``.properties`` file (ISO-8859-1, ``\\uXXXX`` escapes, ``\\`` line continuations).

    Keys and values are separated by the first unescaped ``=``, ``:`` or whitespace; ``#`` and
    ``!`` start comment lines. Later keys override earlier ones, as in Java.
    """
    text = data.decode("utf-8") if data.startswith(b"\xef\xbb\xbf") else data.decode("latin-1")
    text = text.lstrip("\ufeff")
    props: dict[str, str] = {}
    logical, pending = [], ""
    for raw in text.splitlines():
        line = raw.lstrip()
        if not pending and (not line or line[0] in "#!"):
            continue
        # an odd number of trailing backslashes continues the line
        stripped = line.rstrip("\r\n")
        n_bs = len(stripped) - len(stripped.rstrip("\\"))
        if n_bs % 2 == 1:
            pending += stripped[:-1]
            continue
        logical.append(pending + stripped)
        pending = ""
    if pending:
        logical.append(pending)
    for line in logical:
        i, key_end = 0, None
        while i < len(line):
            c = line[i]
            if c == "\\":
                i += 2
                continue
            if c in "=: \t\f":
                key_end = i
                break
            i += 1
        if key_end is None:
            props[_unescape(line)] = ""
            continue
        key = line[:key_end]
        rest = line[key_end:].lstrip(" \t\f")
        if rest[:1] in ("=", ":") and line[key_end] in " \t\f":
            rest = rest[1:].lstrip(" \t\f")
        elif line[key_end] in "=:":
            rest = line[key_end + 1:].lstrip(" \t\f")
        props[_unescape(key)] = _unescape(rest)
    return props


# ---------------------------------------------------------------------- ids and licences
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_id(text: str) -> str:
    """A filesystem-safe fragment of an object id: letters, digits, ``. _ -`` only."""
    out = _UNSAFE.sub("_", text.strip()).strip("._")
    return out or "x"


def license_id(text: str) -> str:
    """Short SPDX-like licence id from a licence text (``CC0-1.0``, ``CC-BY-3.0``, ``CC-BY-3.0-US``)."""
    t = " ".join(text.lower().split())
    if "public domain" in t or "zero" in t or "cc-0" in t or "cc0" in t:
        return "CC0-1.0"
    if "attribution" in t or "cc-by" in t or "cc by" in t:
        version = re.search(r"(\d\.\d)", t)
        lic = "CC-BY-" + (version.group(1) if version else "3.0")
        if "united states" in t or "/us/" in t:
            lic += "-US"
        return lic
    return "unknown"


def _first_url(text: str) -> str:
    m = re.search(r"https?://\S+", text)
    return m.group(0).rstrip(".,;)") if m else ""


def _float(value: str | None) -> float | None:
    try:
        v = float(value) if value is not None else None
    except ValueError:
        return None
    return v if v is not None and v > 0 and v == v and v != float("inf") else None


def _rotation(value: str | None) -> list[list[float]] | None:
    if not value:
        return None
    try:
        nums = [float(x) for x in value.split()]
    except ValueError:
        return None
    if len(nums) != 9:
        return None
    return [nums[0:3], nums[3:6], nums[6:9]]


# ---------------------------------------------------------------------- catalogs
def read_catalog(path: str | os.PathLike) -> tuple[list[SourceObject], list[tuple[str, str]]]:
    """Objects of one SweetHome3D library (a ``.sh3f`` file or an extracted catalog folder).

    Returns ``(objects, problems)``: ``problems`` are ``(object_id, reason)`` for catalog entries
    that cannot become objects (no model entry, model file missing from the archive).
    """
    with Container(path) as box:
        if box.find(CATALOG_FILE) is None:
            raise DatasetError(f"{path}: no {CATALOG_FILE} inside, not a SweetHome3D furniture library")
        props = parse_properties(box.read(CATALOG_FILE))
        names = box.names()
        lib_license_text = props.get("license", "")
        license_file, license_body = "", ""
        for n in names:
            if "/" not in n and PurePosixPath(n).stem.lower() in _LICENSE_STEMS:
                license_file = n
                license_body = box.read(n).decode("utf-8", "replace")
                break
        lic = license_id(lib_license_text or license_body)
        if lic == "unknown" and license_body:
            lic = license_id(license_body)
        lic_url = _first_url(license_body)
        library_path = Path(path)
        library = safe_id(library_path.stem if library_path.suffix.lower() == ".sh3f" else library_path.name).lower()

        by_dir: dict[str, list[str]] = {}
        for n in names:
            by_dir.setdefault(posixpath.dirname(n), []).append(n)
        indices = sorted({int(k.split("#", 1)[1]) for k in props
                          if k.startswith("model#") and k.split("#", 1)[1].isdigit()})
        objects, problems, used = [], [], set()
        for i in indices:
            get = lambda key, i=i: props.get(f"{key}#{i}")  # noqa: E731
            model = (get("model") or "").strip()
            stem = safe_id(PurePosixPath(model).stem) if model else f"entry{i}"
            oid = f"{library}__{stem}"
            k = 2
            while oid in used:  # two entries of one library sharing a model name
                oid, k = f"{library}__{stem}-{k}", k + 1
            used.add(oid)
            real = box.find(model) if model else None
            if real is None:
                problems.append((oid, f"model file {model or '(none)'} not found in {path}"))
                continue
            lic_files = [n for n in by_dir.get(posixpath.dirname(real), [])
                         if "licen" in n.lower() or "readme" in n.lower()]
            if license_file:
                lic_files.insert(0, license_file)
            w, d, h = _float(get("width")), _float(get("depth")), _float(get("height"))
            objects.append(SourceObject(
                object_id=oid,
                container=str(path),
                model_path=real,
                library=library,
                name=(get("name") or stem).strip(),
                category=(get("category") or "uncategorized").strip(),
                creator=(get("creator") or props.get("provider") or "unknown").strip(),
                license=lic,
                license_text=lib_license_text.strip() or " ".join(license_body.split())[:300],
                license_url=lic_url,
                license_files=lic_files,
                catalog_id=(get("id") or "").strip(),
                size_cm=(w, d, h) if None not in (w, d, h) else None,
                model_rotation=_rotation(get("modelRotation")),
            ))
    return objects, problems


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
