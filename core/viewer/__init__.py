"""The browser viewer: a viser server with nerfview's viewer, showing one set of Gaussian splats.

>>> from splatgen.core.viewer import serve_splats
>>> handle = serve_splats(gaussians)          # loopback, a free port; returns at once
>>> print(handle.url)                         # open it in a browser
>>> handle.set_gaussians(other)               # show something else
>>> handle.stop()                             # server and every thread of ours end

``splatgen view FILE.ply`` and ``splatgen view --generate PHOTO`` (see
:mod:`splatgen.core.commands.view`) are built on :class:`ViewerServer`; the GUI's "Show in browser"
calls :func:`serve_splats`. The server is :mod:`.server` (who draws the pixels, threads),
camera → picture :mod:`.render_fn`, the generation controls :mod:`.generate_panel`.
"""

from .render_fn import MODES
from .server import (RENDERERS, ViewerError, ViewerServer, browser_splat_arrays, check_port, framing_camera,
                     is_loopback, serve_splats)

__all__ = ["serve_splats", "ViewerServer", "ViewerError", "RENDERERS", "MODES", "is_loopback", "check_port",
           "browser_splat_arrays", "framing_camera"]
