"""Bounds that the compressed-format readers (SPZ, compressed PLY, glTF) check before allocating.

A header can claim any number of splats; these readers refuse a claim above :data:`MAX_SPLATS` or one
the file's own size cannot back, *before* any buffer of that size exists, so a hostile or broken file
fails with a :class:`~splatgen.core.errors.SplatFileError` instead of exhausting memory. Whole-file
reads are capped at :data:`MAX_FILE_BYTES` and checked with ``stat`` first (no FIFO or device is
ever opened, see :func:`splatgen.core.io.ply.check_regular_file`).
"""

from __future__ import annotations

import os

from splatgen.core.errors import SplatFileError
from splatgen.core.io.ply import check_regular_file

__all__ = ["MAX_SPLATS", "MAX_FILE_BYTES", "check_splat_count", "read_bounded"]

#: Most splats any compressed reader accepts (2^25 ≈ 33.5 million: well above a large captured scene,
#: well below what fills this machine's memory once decoded to float32).
MAX_SPLATS = 1 << 25

#: Largest SPZ / glTF file read into memory whole.
MAX_FILE_BYTES = 4 << 30


def check_splat_count(count: int, name: str, what: str = "splats") -> int:
    """``count`` if it is a plausible number of splats, else :class:`SplatFileError` naming ``name``."""
    if count < 0 or count > MAX_SPLATS:
        raise SplatFileError(f"{name}: the file claims {count:,} {what}; at most {MAX_SPLATS:,} are read "
                             "(a corrupt or hostile header)")
    return count


def read_bounded(path, limit: int = MAX_FILE_BYTES) -> bytes:
    """The whole content of the regular file ``path`` (at most ``limit`` bytes), or :class:`SplatFileError`."""
    name = check_regular_file(path)
    try:
        with open(name, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size > limit:
                raise SplatFileError(f"{name}: {size:,} bytes is larger than the {limit:,} bytes read")
            data = f.read(size)                 # read(n) allocates n bytes up front: the file's size, no more
            changed = len(data) != size or f.read(1)
    except OSError as e:
        raise SplatFileError(f"{name}: cannot read ({e.strerror or e})") from None
    except MemoryError:
        raise SplatFileError(f"{name}: too large to load into memory") from None
    if changed:
        raise SplatFileError(f"{name}: changed size while being read")
    return data
