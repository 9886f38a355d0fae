"""glibc's heap, for a long session: give freed memory back to the system, cap the heap arenas.

Freed samples and browser frames are megabytes that the allocator otherwise keeps for the rest of
the process; on a C library without these calls each function is a no-op that returns ``False``.
"""

from __future__ import annotations

import ctypes
import ctypes.util

#: glibc's ``mallopt`` parameter for the most heap arenas (``M_ARENA_MAX``).
_M_ARENA_MAX = -8


def _libc():
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")


def release_heap() -> bool:
    """Return the freed heap at the top of glibc's arenas to the system (``malloc_trim(0)``)."""
    try:
        return bool(_libc().malloc_trim(0))
    except (OSError, AttributeError):
        return False


def limit_heap_arenas(n: int) -> bool:
    """Let glibc create at most ``n`` heap arenas from now on (``mallopt(M_ARENA_MAX, n)``; process-wide).
    Short-lived threads may otherwise get an arena each (up to 8 per core) whose freed blocks stay."""
    try:
        return bool(_libc().mallopt(_M_ARENA_MAX, int(n)))
    except (OSError, AttributeError):
        return False
