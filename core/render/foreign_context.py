"""Step a foreign GLX context aside while the headless (EGL) splat renderer works on this thread.

A thread has one current OpenGL context. When another toolkit's GLX context is current — Qt's under
X11 (xcb), after a ``QOpenGLWidget`` painted or a ``QOpenGLContext.makeCurrent`` — making the
renderer's EGL context current does not take effect through libglvnd, and its draws land nowhere
(black, empty images). :func:`foreign_glx_released` releases such a context for the duration of a
``with`` block and makes it current again afterwards, so the caller's GL state is as it left it.
Where there is no libGLX, or no GLX context is current, it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from contextlib import contextmanager


@functools.lru_cache(maxsize=1)
def _glx():
    """libGLX's current-context functions, or None when the library is not there."""
    name = ctypes.util.find_library("GLX") or "libGLX.so.0"
    try:
        lib = ctypes.CDLL(name)
    except OSError:
        return None
    for fn in ("glXGetCurrentContext", "glXGetCurrentDisplay", "glXGetCurrentDrawable",
               "glXGetCurrentReadDrawable"):
        getattr(lib, fn).restype = ctypes.c_void_p
        getattr(lib, fn).argtypes = []
    lib.glXMakeContextCurrent.restype = ctypes.c_int
    lib.glXMakeContextCurrent.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_void_p]
    return lib


@functools.lru_cache(maxsize=1)
def _egl():
    name = ctypes.util.find_library("EGL") or "libEGL.so.1"
    try:
        lib = ctypes.CDLL(name)
    except OSError:
        return None
    lib.eglGetCurrentDisplay.restype = ctypes.c_void_p
    lib.eglGetCurrentDisplay.argtypes = []
    lib.eglGetCurrentContext.restype = ctypes.c_void_p
    lib.eglGetCurrentContext.argtypes = []
    lib.eglMakeCurrent.restype = ctypes.c_uint
    lib.eglMakeCurrent.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
    return lib


def _release_current_egl() -> None:
    """Un-current whatever EGL context the block left current (creating a moderngl context makes it
    current); the GLX context cannot be made current again while it is."""
    lib = _egl()
    if lib is not None and lib.eglGetCurrentContext():
        lib.eglMakeCurrent(lib.eglGetCurrentDisplay(), None, None, None)


@contextmanager
def foreign_glx_released():
    """Release the GLX context current on this thread (if any) for the block; restore it after."""
    lib = _glx()
    ctx = lib.glXGetCurrentContext() if lib is not None else None
    if not ctx:
        yield
        return
    display = lib.glXGetCurrentDisplay()
    draw, read = lib.glXGetCurrentDrawable() or 0, lib.glXGetCurrentReadDrawable() or 0
    lib.glXMakeContextCurrent(display, 0, 0, None)
    try:
        yield
    finally:
        # With a GLX context current on entry no EGL one was, so un-currenting EGL restores that too.
        _release_current_egl()
        lib.glXMakeContextCurrent(display, draw, read, ctx)
