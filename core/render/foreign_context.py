"""Step a foreign GL context aside while the headless (EGL) splat renderer works on this thread.

A thread has one current OpenGL context. When another toolkit's GLX context is current — Qt's under
X11 (xcb), after a ``QOpenGLWidget`` painted or a ``QOpenGLContext.makeCurrent`` — making the
renderer's EGL context current does not take effect through libglvnd, and its draws land nowhere
(black, empty images); with a foreign EGL context (Qt on Wayland), creating the renderer's context
replaces it. :func:`foreign_context_released` releases such a context for the duration of a
``with`` block and makes it current again afterwards, so the caller's GL state is as it left it.
Where no context is current (or libGLX / libEGL are missing) it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
from contextlib import contextmanager

log = logging.getLogger(__name__)


@functools.lru_cache(maxsize=1)
def _glx():
    """libGLX's current-context functions, or None when the library is not there."""
    name = ctypes.util.find_library("GLX") or "libGLX.so.0"
    try:
        lib = ctypes.CDLL(name)
        lib.glXMakeContextCurrent  # noqa: B018 - a libGL without GLVND may lack it: then no GLX handling
    except (OSError, AttributeError):
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
        lib.eglGetCurrentSurface  # noqa: B018
    except (OSError, AttributeError):
        return None
    lib.eglGetCurrentDisplay.restype = ctypes.c_void_p
    lib.eglGetCurrentDisplay.argtypes = []
    lib.eglGetCurrentContext.restype = ctypes.c_void_p
    lib.eglGetCurrentContext.argtypes = []
    lib.eglMakeCurrent.restype = ctypes.c_uint
    lib.eglMakeCurrent.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
    lib.eglGetCurrentSurface.restype = ctypes.c_void_p
    lib.eglGetCurrentSurface.argtypes = [ctypes.c_int]
    return lib


_EGL_DRAW, _EGL_READ = 0x3059, 0x305A


def release_current_egl() -> None:
    """Un-current whatever EGL context the block left current (creating a moderngl context makes it
    current); the GLX context cannot be made current again while it is."""
    lib = _egl()
    if lib is not None and lib.eglGetCurrentContext():
        lib.eglMakeCurrent(lib.eglGetCurrentDisplay(), None, None, None)


@contextmanager
def foreign_context_released():
    """Release the GL context current on this thread (GLX, or EGL as Qt uses on Wayland or with
    ``xcb_egl``) for the block and make it current again after it; nothing to do when none is."""
    glx = _glx()
    if glx is not None and glx.glXGetCurrentContext():
        with _glx_released(glx):
            yield
        return
    egl = _egl()
    if egl is not None and egl.eglGetCurrentContext():
        with _egl_released(egl):
            yield
        return
    yield


@contextmanager
def _glx_released(lib):
    ctx, display = lib.glXGetCurrentContext(), lib.glXGetCurrentDisplay()
    draw, read = lib.glXGetCurrentDrawable() or 0, lib.glXGetCurrentReadDrawable() or 0
    lib.glXMakeContextCurrent(display, 0, 0, None)
    try:
        yield
    finally:
        # With a GLX context current on entry no EGL one was, so un-currenting EGL restores that too.
        release_current_egl()
        if not lib.glXMakeContextCurrent(display, draw, read, ctx):
            log.warning("could not make the caller's GLX context current again")


@contextmanager
def _egl_released(lib):
    ctx, display = lib.eglGetCurrentContext(), lib.eglGetCurrentDisplay()
    draw, read = lib.eglGetCurrentSurface(_EGL_DRAW), lib.eglGetCurrentSurface(_EGL_READ)
    lib.eglMakeCurrent(display, None, None, None)
    try:
        yield
    finally:
        if not lib.eglMakeCurrent(display, draw, read, ctx):
            log.warning("could not make the caller's EGL context current again")
