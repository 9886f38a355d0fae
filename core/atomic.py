"""Writing a file atomically: into a temporary file beside it, then renamed over it.

Readers — and whatever is left after a crash or Ctrl-C — see either the old file or the whole new
one, never a part. A failure leaves no temporary file behind and keeps an older file at the path.
Every file splatgen writes (splat files, images, videos, JSON) goes through :func:`atomic_path` or
:func:`atomic_write`; the temporary file is ``.<name>.<random>.tmp`` in the target's folder (the
same file system, so the rename is atomic), created with mode 0o666 minus the umask like any new
file, and flushed to disk before the rename.
"""

from __future__ import annotations

import os
import secrets
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator

from .errors import SplatgenError


@contextmanager
def atomic_path(path: str | os.PathLike, *, keep_suffix: bool = False,
                error: type[SplatgenError] = SplatgenError) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` that becomes ``path`` when the block ends without error.

    The file exists (empty) when the block starts; write it by path. ``keep_suffix``: the temporary
    name ends in ``path``'s own extension too, for writers that choose the format by it (imageio,
    :func:`splatgen.core.io.save_splats`). Problems with the folder or the file raise ``error`` (a
    :class:`SplatgenError`) naming ``path``; errors of the block itself pass through.
    """
    path = Path(path)
    if path.is_dir():
        raise error(f"{path}: is a folder; give a file name")
    if not path.parent.is_dir():
        raise error(f"{path}: the folder {path.parent} does not exist")
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp" + (path.suffix if keep_suffix else ""))
    try:
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666))
    except OSError as exc:
        raise error(f"{path}: cannot write in {path.parent} ({exc.strerror or exc})") from None
    try:
        yield tmp
        with open(tmp, "rb+") as f:   # on disk before it takes the name
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        raise error(f"{path}: cannot write ({exc.strerror or exc})") from None
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write(path: str | os.PathLike, data: bytes | Iterable, *,
                 error: type[SplatgenError] = SplatgenError) -> None:
    """Write ``data`` — bytes, or an iterable of byte-like chunks (numpy arrays too) — to ``path``
    atomically (see :func:`atomic_path`, whose ``error`` it takes)."""
    chunks = [data] if isinstance(data, (bytes, bytearray, memoryview)) else data
    with atomic_path(path, error=error) as tmp:
        with open(tmp, "wb") as f:
            for chunk in chunks:
                f.write(chunk)
