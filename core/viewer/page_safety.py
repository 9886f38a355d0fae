"""What a page client may name or make the page show: file names kept in one folder, text escaped.

viser trusts its clients: a client can set any input's value (disabled or not, a dropdown's value
outside its options) and "click" any button. So everything a page sends is checked on the server:

* **Files.** Every file a client can name goes through :func:`confined_path`: each name becomes a
  safe basename (:func:`safe_name`), and the resolved path must lie inside the folder (a symlink
  out of it is refused). nerfview's render tab builds its paths (trajectory JSON, videos) by joining
  names onto the ``output_dir`` it is given; :class:`ConfinedFolder` is that folder with ``/`` going
  through :func:`confined_path`, so nerfview's own handlers cannot leave it.
* **Text.** Every user string shown in the page's Markdown (a file name, an error message that
  quotes one) goes through :func:`escape_markdown`: it renders as the same characters, never as
  markup. This matters twice over: viser renders a Markdown's raw HTML unsanitised, and its server
  reads the file of any ``![alt](path)`` image to embed it in the page.
"""

from __future__ import annotations

import html
import os
import re
import string
import unicodedata
from pathlib import Path

from ..errors import SplatgenError

#: Longest basename :func:`safe_name` keeps, characters (file systems allow 255 bytes).
MAX_NAME = 120
_UNSAFE = re.compile(r"[^A-Za-z0-9._\-]+")


class UnsafePathError(SplatgenError, ValueError):
    """A name that would leave its folder (through a symlink) or names nothing."""


def safe_name(name: object, default: str = "untitled") -> str:
    """``name`` as one harmless basename: characters other than letters, digits, ``.``, ``_``, ``-``
    (separators, ``..``, NUL, control and non-ASCII characters included) become ``_``; leading dots
    are dropped (no hidden files, no ``..``); at most :data:`MAX_NAME` characters; ``default`` when
    nothing is left."""
    text = unicodedata.normalize("NFKC", str(name))
    text = _UNSAFE.sub("_", text).lstrip(".")
    text = text[:MAX_NAME].rstrip(". ")
    return text if text.strip("_") else default


def confined_path(folder: str | os.PathLike, *names: object) -> Path:
    """``folder / n1 / n2 …`` with each name made a :func:`safe_name`; raises
    :class:`UnsafePathError` unless the resolved result lies inside the resolved ``folder``."""
    root = Path(folder).resolve()
    safe = [safe_name(n) for n in names]
    path = root.joinpath(*safe)
    resolved = path.resolve()
    if resolved != root and root not in resolved.parents:  # (the message quotes only the safe names)
        raise UnsafePathError(f"{'/'.join(safe)} leads outside the viewer's folder (through a link)")
    return path


class ConfinedFolder(type(Path())):
    """A folder path whose ``/`` and :meth:`joinpath` go through :func:`confined_path`, rooted at
    the first folder made (``ConfinedFolder("out") / "camera_paths" / "../../x.json"`` →
    ``out/camera_paths/x.json``); what it gives is a :class:`ConfinedFolder` too."""

    _confined_to: Path | None = None

    @classmethod
    def at(cls, folder: str | os.PathLike) -> "ConfinedFolder":
        made = cls(Path(folder).resolve())
        made._confined_to = Path(made)
        return made

    def _rel(self) -> tuple[str, ...]:
        root = self._confined_to if self._confined_to is not None else Path(self)
        return Path(self).relative_to(root).parts if Path(self) != root else ()

    def joinpath(self, *names) -> "ConfinedFolder":
        root = self._confined_to if self._confined_to is not None else Path(self)
        made = type(self)(confined_path(root, *self._rel(), *names))
        made._confined_to = root
        return made

    def __truediv__(self, name) -> "ConfinedFolder":
        return self.joinpath(name)

    def __rtruediv__(self, other):
        raise TypeError("a ConfinedFolder cannot be joined onto another path")


#: Characters that Markdown (CommonMark) or HTML give a meaning to.
_MD_PUNCT = set(string.punctuation)


def escape_markdown(text: object) -> str:
    """``text`` for viser's Markdown: shown as the same characters, never as markup. HTML's
    ``& < > " '`` become entities, other ASCII punctuation is backslash-escaped, line breaks and
    control characters become spaces (no new block, no heading)."""
    out = []
    for ch in str(text):
        if ch in "&<>\"'":
            out.append(html.escape(ch, quote=True))
        elif ch in _MD_PUNCT:
            out.append("\\" + ch)
        elif unicodedata.category(ch)[0] == "C" or ch in "\u2028\u2029":
            out.append(" ")
        else:
            out.append(ch)
    return "".join(out)


__all__ = ["ConfinedFolder", "UnsafePathError", "confined_path", "escape_markdown", "safe_name", "MAX_NAME"]
