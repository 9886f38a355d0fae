"""The browser viewer: a viser server with nerfview's viewer, showing one set of Gaussian splats.

>>> from splatgen.core.viewer import serve_splats
>>> handle = serve_splats(gaussians)          # loopback, a free port; returns at once
>>> print(handle.url)                         # open it in a browser
>>> handle.set_gaussians(other)               # show something else
>>> handle.stop()                             # server and every thread of ours end

``splatgen view FILE.ply`` and ``splatgen view --generate PHOTO`` (see
:mod:`splatgen.core.commands.view`) are built on :class:`ViewerServer`; the GUI's "Show in browser"
calls :func:`serve_splats`. The server is :mod:`.server` (who draws the pixels, threads), where it
listens :mod:`.address`,
camera → picture :mod:`.render_fn`, the generation controls :mod:`.generate_panel`.
"""

from .address import ViewerError, check_port, is_loopback
from .render_fn import MODES
from .server import RENDERERS, ViewerServer, browser_splat_arrays, framing_camera, serve_splats

__all__ = ["serve_splats", "ViewerServer", "ViewerError", "RENDERERS", "MODES", "is_loopback", "check_port",
           "browser_splat_arrays", "framing_camera"]
