"""SweetHome3D furniture libraries: ``.sh3f`` zips (Debian's ``sweethome3d-furniture``) and extracted catalogs.

A ``.sh3f`` file is a zip holding ``PluginFurnitureCatalog.properties`` (a Java properties file
naming, per piece ``#N``: ``model``, ``name``, ``category``, ``creator``, ``width``/``depth``/
``height`` in cm and optionally ``modelRotation``), the OBJ/MTL/texture files, and a
``LICENSE.TXT``. An extracted catalog is a folder holding the same files. Models are OBJ, loaded
by the ``mesh`` reader (trimesh); this module only reads the catalog.
"""

from __future__ import annotations

import os
import posixpath
import re
from pathlib import Path, PurePosixPath

from ...errors import DatasetError
from .common import LICENSE_STEMS, Container, SourceObject, first_url, license_id, safe_id

#: File name of a SweetHome3D furniture catalog inside a library.
CATALOG_FILE = "PluginFurnitureCatalog.properties"
#: The Debian package the libraries usually come from, and where it installs them.
PACKAGE = "sweethome3d-furniture"
INSTALLED = "usr/share/sweethome3d/furniture"


def locate(root: str | os.PathLike) -> Path | None:
    """The folder of ``.sh3f`` libraries below a file-system root, or ``None``."""
    p = Path(root) / INSTALLED
    return p if p.is_dir() and any(p.glob("*.sh3f")) else None


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
            if "/" not in n and PurePosixPath(n).stem.lower() in LICENSE_STEMS:
                license_file = n
                license_body = box.read(n).decode("utf-8", "replace")
                break
        lic = license_id(lib_license_text or license_body)
        if lic == "unknown" and license_body:
            lic = license_id(license_body)
        lic_url = first_url(license_body)
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
                source=PACKAGE,
            ))
    return objects, problems
