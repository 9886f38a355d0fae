"""What every source reader shares: the object record, read-only file containers, ids and licences.

A reader (one module per format in this package) turns a source path into
:class:`SourceObject` s and later loads one of them into parts for the renderer. The record says
which reader loads it (``reader``), where its files are (``container`` + ``model_path``), and what
the dataset keeps about it (category, creator, licence, source package).
"""

from __future__ import annotations

import os
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ...errors import DatasetError

#: File names (lower case, without extension) taken for licence texts.
LICENSE_STEMS = ("license", "licence", "copying", "readme")
#: Team colours for games whose engine (not data) defines them: 0 A.D.'s eight default player
#: colours (its ``simulation/data/settings/player_defaults.json``), RGB in [0, 1].
TEAM_COLOURS = tuple(tuple(c / 255.0 for c in rgb) for rgb in (
    (21, 55, 149), (150, 20, 20), (86, 180, 31), (231, 200, 5), (50, 170, 170), (160, 80, 200), (220, 115, 16),
    (64, 64, 64)))


@dataclass
class SourceObject:
    """One object to render, and everything recorded about it.

    ``container`` is the zip archive (``.sh3f``, 0 A.D.'s ``public.zip``) or the folder the
    model's files are read from, and ``model_path`` the model's path inside it (POSIX, relative, no
    leading slash). ``size_cm`` is the catalog's (width, depth, height) in cm — the model's extent
    along its x, z and y axes after ``model_rotation`` — or ``None`` when the source has no catalog.
    ``model_rotation`` is the catalog's 3×3 row-major rotation ``R`` (``x' = R @ x``) or ``None``.
    ``reader`` names the module of :mod:`splatgen.core.data.sources` that loads the model
    (``"mesh"``: trimesh, for OBJ/GLB/PLY/...); ``options`` is whatever else that reader needs,
    JSON-ready (an actor's resolved mesh, textures and props for 0 A.D.). ``source`` is where the
    object comes from: a Debian package name, or ``"folder"``.
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
    reader: str = "mesh"
    source: str = "folder"
    subcategory: str = ""
    options: dict = field(default_factory=dict)

    @property
    def source_file(self) -> str:
        """Human-readable location of the model file (``archive.zip!/path/model.obj`` for zips)."""
        if os.path.isfile(self.container):
            return f"{self.container}!/{self.model_path}"
        return str(Path(self.container) / self.model_path)

    def meta(self) -> dict:
        """JSON-ready metadata recorded in the object's ``meta.json``."""
        return {
            "object_id": self.object_id,
            "name": self.name,
            "category": self.category,
            "subcategory": self.subcategory,
            "creator": self.creator,
            "license": self.license,
            "license_text": self.license_text,
            "license_url": self.license_url,
            "license_files": list(self.license_files),
            "library": self.library,
            "source": self.source,
            "reader": self.reader,
            "catalog_id": self.catalog_id,
            "source_file": self.source_file,
            "size_cm": list(self.size_cm) if self.size_cm else None,
            "model_rotation": self.model_rotation,
        }


# ---------------------------------------------------------------------- containers
class Container:
    """Read-only access to the files of a library: a zip archive or a folder (POSIX names).

    A zip is read in place (members are read on demand; nothing is unpacked).
    """

    def __init__(self, path: str | os.PathLike):
        self.path = str(path)
        self._zip: zipfile.ZipFile | None = None
        if os.path.isfile(self.path):
            try:
                self._zip = zipfile.ZipFile(self.path)
            except (zipfile.BadZipFile, OSError) as exc:
                raise DatasetError(f"{self.path}: not a readable zip archive ({exc})") from None
            self._names = [n for n in self._zip.namelist() if not n.endswith("/")]
        else:
            root = Path(self.path)
            self._names = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
        self._exact = set(self._names)
        self._lower = {n.lower(): n for n in self._names}

    def names(self) -> list[str]:
        return list(self._names)

    def find(self, name: str) -> str | None:
        """The stored name matching ``name`` exactly, else case-insensitively, else ``None``."""
        name = name.lstrip("/")
        if name in self._exact:
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


# ---------------------------------------------------------------------- ids and licences
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_id(text: str) -> str:
    """A filesystem-safe fragment of an object id: letters, digits, ``. _ -`` only."""
    out = _UNSAFE.sub("_", text.strip()).strip("._")
    return out or "x"


def license_id(text: str) -> str:
    """Short SPDX-like licence id from a licence text or tag.

    ``CC0-1.0``, ``CC-BY-3.0`` (``-US`` for the US port), ``CC-BY-SA-3.0``, ``GPL-2.0-or-later``,
    ``GPL-3.0-or-later`` …; ``unknown`` when nothing is recognised.
    """
    t = " ".join(text.lower().split())
    if "public domain" in t or "zero" in t or "cc-0" in t or "cc0" in t:
        return "CC0-1.0"
    version = re.search(r"(\d\.\d)", t)
    if ("share alike" in t or "sharealike" in t or "share-alike" in t or "by-sa" in t or "by sa" in t):
        lic = "CC-BY-SA-" + (version.group(1) if version else "3.0")
        return lic + ("-US" if ("united states" in t or "/us/" in t) else "")
    if "attribution" in t or "cc-by" in t or "cc by" in t:
        lic = "CC-BY-" + (version.group(1) if version else "3.0")
        if "united states" in t or "/us/" in t:
            lic += "-US"
        return lic
    gpl = re.search(r"\b(?:gpl|gnu general public licen[cs]e)\b[^0-9]{0,20}(?:v(?:ersion)?\s*)?([23])?", t)
    if gpl:
        v = gpl.group(1) or "2"
        exact = "only" in t and "later" not in t
        return f"GPL-{v}.0" + ("-only" if exact else "-or-later")
    return "unknown"


def license_family(license: str) -> str:
    """The licence without its version, lower case: ``cc0``, ``cc-by``, ``cc-by-sa``, ``gpl``, ``unknown``."""
    lic = license.lower()
    if lic.startswith("cc0"):
        return "cc0"
    if lic == "public-domain":
        return "public-domain"
    if lic.startswith("cc-by-sa"):
        return "cc-by-sa"
    if lic.startswith("cc-by"):
        return "cc-by"
    if lic.startswith("gpl"):
        return "gpl"
    return re.sub(r"-\d.*$", "", lic) or "unknown"


#: Named sets for ``--licence``: families (any version) and exact ids. ``gpl3`` is every licence whose
#: material may go into a work under the GNU GPL version 3 (README, "Data sources and licences"): not
#: GPL-2.0-only, not an unversioned CC-BY-SA; ``permissive`` asks for attribution at most.
LICENCE_PRESETS = {
    "permissive": {"families": ("cc0", "public-domain", "cc-by"), "ids": ()},
    "gpl3": {"families": ("cc0", "public-domain", "cc-by"),
             "ids": ("cc-by-sa-3.0", "cc-by-sa-4.0", "gpl", "gpl-2.0-or-later", "gpl-3.0-or-later", "gpl-3.0-only")},
}


def licence_allowed(license: str, allowed: list[str] | None) -> bool:
    """Whether ``license`` passes a ``--licence`` filter of families (``cc-by``: every CC-BY version
    and port, never CC-BY-SA), exact ids (``GPL-2.0-or-later``, case-insensitive) or preset names
    (:data:`LICENCE_PRESETS`). ``allowed`` ``None`` or empty lets everything through; ``unknown``
    passes only when asked for by name.
    """
    if not allowed:
        return True
    families: set[str] = set()
    ids: set[str] = set()
    for a in allowed:
        a = a.strip().lower()
        if a in LICENCE_PRESETS:
            families.update(LICENCE_PRESETS[a]["families"])
            ids.update(LICENCE_PRESETS[a]["ids"])
        elif a:
            families.add(a)
            ids.add(a)
    return license.lower() in ids or license_family(license) in families


def first_url(text: str) -> str:
    m = re.search(r"https?://\S+", text)
    return m.group(0).rstrip(".,;)") if m else ""


def unique_id(base: str, used: set[str]) -> str:
    """``base``, or ``base-2``, ``base-3`` … whichever is not in ``used`` yet (then added to it)."""
    oid, k = base, 2
    while oid in used:
        oid, k = f"{base}-{k}", k + 1
    used.add(oid)
    return oid


def tint_by_alpha(texture: np.ndarray, colour, mode: str) -> np.ndarray:
    """A team-colour texture made opaque: its alpha is a mask (0 = full team colour, 1 = none).

    ``texture`` ``(h, w, 4)`` uint8, ``colour`` RGB in [0, 1]. ``mode`` is how the game combines
    them: ``"multiply"`` ``rgb · mix(colour, 1, a)`` (0 A.D.'s model shader), ``"mix"``
    ``mix(colour, rgb, a)`` (Glest's ``GL_INTERPOLATE`` combiner).
    """
    rgb = texture[..., :3].astype(np.float32) / 255.0
    a = texture[..., 3:4].astype(np.float32) / 255.0
    c = np.asarray(colour, dtype=np.float32).reshape(1, 1, 3)
    if mode == "multiply":
        out_rgb = rgb * (c + (1.0 - c) * a)
    elif mode == "mix":
        out_rgb = c * (1.0 - a) + rgb * a
    else:
        raise ValueError(f"unknown tint mode {mode!r}")
    out = np.empty_like(texture)
    out[..., :3] = np.clip(out_rgb * 255.0 + 0.5, 0, 255).astype(np.uint8)
    out[..., 3] = 255
    return out


# ---------------------------------------------------------------------- Debian copyright files
#: DEP-5 licence short names → the ids used in the dataset (SPDX where there is one).
_DEP5_LICENCES = {
    "cc0": "CC0-1.0", "cc0-1.0": "CC0-1.0", "public-domain": "public-domain",
    "cc-by-3.0": "CC-BY-3.0", "cc-by-4.0": "CC-BY-4.0", "cc-by-sa-3.0": "CC-BY-SA-3.0",
    "cc-by-sa-4.0": "CC-BY-SA-4.0", "cc-by-sa": "CC-BY-SA", "cc-by": "CC-BY",
    "gpl": "GPL", "gpl-2": "GPL-2.0-only", "gpl-2+": "GPL-2.0-or-later", "gpl-3": "GPL-3.0-only",
    "gpl-3+": "GPL-3.0-or-later",
}


def dep5_licence(name: str) -> str:
    """A DEP-5 ``License:`` short name (``GPL-3+``, ``CC-BY-SA-3.0``) as a dataset licence id."""
    first = name.strip().split()[0] if name.strip() else "unknown"
    return _DEP5_LICENCES.get(first.lower(), first)


@dataclass
class Dep5:
    """A machine-readable Debian copyright file: ``(patterns, copyright, licence)`` stanzas.

    :meth:`lookup` applies DEP-5's rule: the last stanza whose ``Files:`` pattern matches wins
    (``*`` and ``?`` match any characters, ``/`` included).
    """

    stanzas: list[tuple[list[str], str, str]]

    @classmethod
    def parse(cls, text: str) -> "Dep5":
        stanzas = []
        for block in re.split(r"\n\s*\n", text):
            fields: dict[str, str] = {}
            key = None
            for line in block.splitlines():
                if line[:1] in (" ", "\t") and key:
                    fields[key] += "\n" + line.strip()
                elif ":" in line:
                    key, _, value = line.partition(":")
                    key = key.strip().lower()
                    fields[key] = value.strip()
            if "files" in fields:
                pats = fields["files"].split()
                who = " ".join(x.strip() for x in fields.get("copyright", "").splitlines() if x.strip())
                lic = fields.get("license", "").splitlines()[0] if fields.get("license") else ""
                stanzas.append((pats, who, lic))
        return cls(stanzas)

    def lookup(self, path: str) -> tuple[str, str] | None:
        """``(copyright, licence id)`` of ``path`` (relative to the source tree), or ``None``."""
        import fnmatch

        hit = None
        for pats, who, lic in self.stanzas:
            if any(fnmatch.fnmatchcase(path, p) for p in pats):
                hit = (who, dep5_licence(lic))
        return hit


def creator_from_copyright(text: str) -> str:
    """Names from a DEP-5 ``Copyright:`` value without years and e-mail addresses."""
    names = []
    for part in re.split(r"\s(?=\d{4})|;", text):
        part = re.sub(r"<[^>]*>|\(c\)|©|^\s*copyright\b", "", part, flags=re.IGNORECASE)
        part = re.sub(r"^[\d,\s\-–]+", "", part).strip(" ,")
        if part and part not in names:
            names.append(part)
    return ", ".join(names) or "unknown"
