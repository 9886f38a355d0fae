"""GLSL sources of the OpenGL splat renderer and the image-model constants they are compiled with.

The programs are files under ``shaders/`` (package data): ``project.vert`` (pass 1: EWA projection,
footprint and occlusion test, one point per splat, captured by transform feedback), ``splat.vert`` /
``splat.frag`` (pass 2: one alpha-blended quad per splat), ``hiz_base.frag`` / ``hiz_upper.frag``
(the transmittance pyramid of occlusion culling), ``resolve.frag`` (offscreen float images),
``display.frag`` (into a caller's framebuffer) and ``fullscreen.vert`` (the triangle the
full-screen passes draw). Compile-time constants reach them as ``#define`` lines that
:func:`source` puts after the ``#version`` line; each file names the ones it reads.
"""

from __future__ import annotations

from importlib import resources

#: α is clamped to this (gsplat's and the torch renderer's value; the original 3DGS used 0.99).
ALPHA_MAX = 0.999
#: Contributions with α below this are skipped (gsplat, 3DGS).
ALPHA_MIN = 1.0 / 255.0
#: px² added to every projected covariance (gsplat's low-pass filter).
BLUR = 0.3
#: Footprints reach at most this many standard deviations (gsplat).
EXTEND_MAX = 3.33
#: A splat is tested against at most HIZ_SPAN² pyramid texels (occlusion culling).
HIZ_SPAN = 8


def read(name: str) -> str:
    """The text of ``shaders/<name>`` as shipped."""
    return (resources.files(__package__) / "shaders" / name).read_text(encoding="utf-8")


def source(name: str, **defines) -> str:
    """``shaders/<name>`` with ``#define KEY value`` for each of ``defines`` after its ``#version`` line.

    Values are written as Python writes them (``repr`` for floats, ``int`` for booleans), e.g.
    ``source("splat.frag", ALPHA_MAX=ALPHA_MAX, WITH_DEPTH=True)``.
    """
    version, _, body = read(name).partition("\n")
    if not version.startswith("#version"):
        raise ValueError(f"shader {name} does not start with a #version line")
    lines = [f"#define {key} {int(v) if isinstance(v, bool) else repr(v)}" for key, v in defines.items()]
    return "\n".join([version, *lines, body])
