"""The browser viewer's server: viser + nerfview's viewer + our panel, showing one set of splats.

**Who draws the pixels.** Either the server renders every frame (gsplat with CUDA, else the OpenGL
renderer, else torch) and nerfview streams it to the browser as JPEG, or the browser draws the
splats itself from one upload (viser's ``scene.add_gaussian_splats``, 32 bytes a splat, nothing per
frame on the server). A browser with a GPU draws them at display rate and full resolution, which no
CPU server matches; a browser without one (the case whenever it runs on a machine whose OpenGL is a
software rasterizer) is several times smoother with server-side frames (benchmarks/README.md,
"Browser viewer"). Hence ``renderer="auto"`` (:func:`default_display`):

* CUDA → the server (gsplat);
* no CUDA, listening on loopback only (the default) and this machine's OpenGL is software
  (llvmpipe, SwiftShader…) → the server (OpenGL): the only browsers that can connect run here;
* otherwise (``--host`` serves other machines, or there is a hardware GPU here) → the browser.

Depth and alpha — which the browser cannot draw — always come from the server. The panel's
*Renderer* switch (``--renderer``) overrides the choice, e.g. when the page is reached through an SSH
tunnel from a laptop with a GPU (the connection then looks local). Server-side frames are drawn at
least :data:`~.render_fn.MIN_SERVER_ROWS` rows tall, and without CUDA the still frame's longest side
defaults to :data:`CPU_VIEWER_RES` rather than nerfview's 2048 (a frame of a fixed cost makes
nerfview's own sizing collapse; a 2048 still is slow on a CPU machine).

**Cameras.** nerfview's camera state is OpenCV camera-to-world (see :mod:`.render_fn`, the one place
that turns it into a ``viewmat`` and ``K``); the scene is shown Y-up, as splatgen's object frame is.

**What a page may do.** viser applies whatever a client sends (a value for a disabled input, a
dropdown value outside its options): every handler checks on the server. Files a client can name
(nerfview's render tab: trajectories, videos) stay inside ``output_dir``, user text is escaped
before it reaches the page's Markdown (:mod:`.page_safety`), and handler refusals become a
notification in that page. The *Download* buttons (:data:`DOWNLOADS`: ``.ply``, ``.compressed.ply``,
``.spz``, ``.glb``, ``.splat``) send the splats shown, written by :mod:`splatgen.core.io`; the file's
name is the shown file's or sample's, made safe (:func:`.page_safety.safe_name`), and its suffix comes
from that fixed table, never from the page.

**Threads and memory.** viser runs its web server on a thread and GUI callbacks on a pool, here
bounded to :data:`CALLBACK_THREADS` (viser's own may grow to 32 threads that never end); nerfview
adds one render thread per open browser tab (:mod:`.clients`: it ends when its tab closes, sends
nothing to a closed tab, and once no tab is left the freed frame buffers go back to the system; the
heap's arenas are capped at :data:`HEAP_ARENAS`); we
add one frame-renderer thread (:class:`.render_fn.FrameRenderer`), shared by every tab, and, with
generation, one worker (:class:`.generate_panel.GeneratePanel`). :meth:`ViewerServer.stop` ends all
of them and waits for them.
"""
from __future__ import annotations

import contextlib
import io
import math
import sys
import threading
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from .. import framing
from ..errors import SplatgenError
from ..gaussians import Gaussians, quat_to_rotation_matrix
from ..render import choose_backend
from .address import ViewerError, check_port, is_loopback, url_host
from .page_safety import ConfinedFolder, escape_markdown, safe_name
from .render_fn import MODES, FrameRenderer, FrameStats, SplatRenderFn

#: Who may draw the RGB view: ``auto`` (gsplat on the server with CUDA, else the browser).
RENDERERS = ("auto", "browser", "server")
#: Splats fainter than this never reach a pixel (the renderers skip α < 1/255) and are not sent to
#: the browser.
MIN_OPACITY = 1.0 / 255.0

#: The page's downloads: file suffix → (button label, hint). Each suffix is a format of splatgen.core.io
#: or a mesh of splatgen.core.mesh.
DOWNLOADS = {
    ".ply": ("Download .ply", "The splats shown, as an INRIA 3DGS .ply file"),
    ".compressed.ply": ("Download .compressed.ply", "The splats shown, as a PlayCanvas compressed PLY "
                                                    "(SuperSplat's format; about 4x smaller)"),
    ".spz": ("Download .spz", "The splats shown, as a Niantic SPZ file (version 4; about 5x smaller)"),
    ".glb": ("Download .glb", "The splats shown, as glTF 2.0 with KHR_gaussian_splatting"),
    ".splat": ("Download .splat", "The splats shown, as a .splat file (32 bytes a splat)"),
    ".mesh.glb": ("Download mesh .glb", "A coloured mesh fused from the splats (20k faces, metres, Y up)"),
    ".obj": ("Download mesh .obj", "A coloured mesh fused from the splats, as OBJ with vertex colours"),
}
#: The downloads that are meshes (splatgen.core.mesh), not splat files.
MESH_DOWNLOADS = (".mesh.glb", ".obj")
#: Longest side of the still frames nerfview asks for when the server renders without CUDA (nerfview's
#: default, 2048, is slow with the GL renderer: benchmarks/README.md, "Browser viewer").
CPU_VIEWER_RES = 1280
#: Threads of the pool that runs the page's widget callbacks (each callback is short: generation has a
#: worker of its own).
CALLBACK_THREADS = 2
#: Heap arenas glibc may create (process-wide, from the first viewer on): short-lived tab threads
#: otherwise each get one and keep the frames they freed (benchmarks/README.md, "Soak").
HEAP_ARENAS = 4
#: Panel statistics are refreshed at most this often (seconds).
_INFO_INTERVAL = 0.25


def software_gl() -> bool:
    """Whether this machine's OpenGL is a software rasterizer (llvmpipe, softpipe, SwiftShader): then a
    browser on this machine has no GPU for WebGL either."""
    try:
        from ..render import gl_backend

        name = gl_backend.renderer_name().lower() if gl_backend.available() else ""
    except Exception:  # noqa: BLE001
        return True
    return not name or any(k in name for k in ("llvmpipe", "softpipe", "swiftshader", "software", "swrast"))


def default_display(backend: str, host: str) -> str:
    """Who draws the RGB view for ``renderer="auto"`` (the rule of the module docstring)."""
    if backend == "gsplat":
        return "server"
    if backend == "gl" and is_loopback(host) and software_gl():
        return "server"
    return "browser"


def browser_splat_arrays(gaussians: Gaussians) -> dict[str, np.ndarray]:
    """What viser's ``add_gaussian_splats`` takes: ``centers (M, 3)``, ``covariances (M, 3, 3)``
    (``R S² Rᵀ``), ``rgbs (M, 3)`` (the view-independent colour), ``opacities (M, 1)``; splats with
    opacity below :data:`MIN_OPACITY` are left out."""
    g = gaussians.detach().to("cpu", torch.float32)
    keep = g.opacities >= MIN_OPACITY
    R = quat_to_rotation_matrix(g.unit_quats[keep])
    s2 = g.scales[keep] ** 2
    cov = (R * s2[:, None, :]) @ R.transpose(-1, -2)
    return {"centers": g.means[keep].numpy(), "covariances": cov.numpy(), "rgbs": g.rgb[keep].numpy(),
            "opacities": g.opacities[keep][:, None].numpy()}


def framing_camera(means: torch.Tensor, fov_deg: float = framing.FOV_DEG, azimuth_deg: float = 30.0,
                   elevation_deg: float = 20.0) -> tuple[np.ndarray, np.ndarray]:
    """Browser camera (``position``, ``look_at``) that shows a point cloud ``(N, 3)`` whole, Y up."""
    from ..cameras import camera_centers, framing_viewmat

    pts = means.detach().reshape(-1, 3).to("cpu", torch.float64)
    if pts.shape[0] == 0:
        target = torch.zeros(3, dtype=torch.float64)
        vm = framing_viewmat(torch.tensor([[-0.5, -0.5, -0.5], [0.5, 0.5, 0.5]]), fov_deg, azimuth_deg, elevation_deg)
    else:
        if pts.shape[0] > 20:  # as framing_viewmat: the middle 98 % of a sample
            sample = pts[torch.randperm(pts.shape[0], generator=torch.Generator().manual_seed(0))[:100_000]]
            lo, hi = torch.quantile(sample, 0.01, dim=0), torch.quantile(sample, 0.99, dim=0)
        else:
            lo, hi = pts.min(0).values, pts.max(0).values
        target = (lo + hi) / 2
        vm = framing_viewmat(pts.float(), fov_deg, azimuth_deg, elevation_deg)
    return camera_centers(vm.double()).numpy(), target.numpy()


class ViewerServer:
    """A running viewer: viser server + nerfview viewer + our panel; non-blocking (threads).

    Args:
        gaussians: what to show first (``None``: nothing until :meth:`set_gaussians`).
        host: address to listen on; loopback by default. Anything else prints a warning (the page has
            no password: whoever reaches the port sees the splats and, with ``generator``, runs it).
        port: TCP port; 0 picks a free one. A port in use raises :class:`ViewerError`.
        renderer: ``"auto"``, ``"browser"`` or ``"server"`` (see the module docstring).
        background: RGB in [0, 1] behind the splats.
        generator: a loaded generator: adds the generation controls (:class:`.GeneratePanel`).
        title: label of the GUI panel.
        output_dir: where nerfview's own render tab saves camera paths and videos (only when asked);
            nothing a page names is written outside it.
        verbose: let viser print its connection messages.
    """

    def __init__(self, gaussians: Gaussians | None = None, *, host: str = "127.0.0.1", port: int = 0,
                 renderer: str = "auto", background: Sequence[float] = framing.BACKGROUND, generator=None,
                 title: str = "splatgen", output_dir: str | Path | None = None, verbose: bool = False):
        if renderer not in RENDERERS:
            raise ViewerError(f"unknown renderer {renderer!r}; choose one of {', '.join(RENDERERS)}")
        bg = tuple(float(x) for x in background)
        if len(bg) != 3 or not all(math.isfinite(x) and 0.0 <= x <= 1.0 for x in bg):
            raise ViewerError(f"background must be three values in [0, 1], got {background!r}")
        self.host = host
        self._verbose = verbose
        self._stopped = False
        self._done = threading.Event()
        self._stop_lock = threading.Lock()
        self.panel = None
        self.viewer = None
        self.frame_renderer = None
        self.render_fn = None
        self.server = None
        self._gaussians: Gaussians | None = None
        self._scene_version = 0
        self._browser_version = -1
        self._browser_count = 0
        self._splat_node = None
        self._framed = False
        self._last_info = 0.0
        self._render_error: str | None = None
        #: Base name of downloaded files (made a safe basename when sent).
        self.download_name = "splats"

        check_port(host, port)
        if not is_loopback(host):
            print(f"splatgen view: warning: listening on {host or 'all interfaces'}, not only on this machine: "
                  "anyone who can reach this port can open the viewer (there is no password)"
                  + (" and run the generator" if generator is not None else ""), file=sys.stderr)
        import viser

        from ..heap import limit_heap_arenas
        from .clients import bound_callback_pool

        limit_heap_arenas(HEAP_ARENAS)  # tab threads come and go: their freed frames must not pile up per thread
        self._verbose = verbose
        with self._quiet():  # viser prints a banner with the URL: ours is .url
            self.server = viser.ViserServer(host=host, port=int(port), label=title, verbose=verbose)
        try:
            self.port = int(self.server.get_port())
            if port and self.port != int(port):  # viser moved on to the next port: ours was taken meanwhile
                raise ViewerError(f"port {port} on {host} is already in use; pick another with --port "
                                  f"(--port 0 picks a free one)")
            self.url = f"http://{url_host(host)}:{self.port}/"
            bound_callback_pool(self.server, CALLBACK_THREADS)
            self._setup(renderer, bg, generator, title, output_dir)
            if gaussians is not None:
                self.set_gaussians(gaussians)
        except BaseException:
            self.stop()
            raise

    # ------------------------------------------------------------------ set-up
    def _setup(self, renderer: str, bg, generator, title: str, output_dir) -> None:
        from .clients import TabViewer

        backend = choose_backend()
        try:
            self.frame_renderer = FrameRenderer(backend)
        except Exception as exc:  # noqa: BLE001 - e.g. EGL went away: the torch reference always works
            print(f"splatgen view: the {backend} renderer is unavailable ({exc}); using the torch renderer",
                  file=sys.stderr)
            backend = "torch"
            self.frame_renderer = FrameRenderer(backend)
        self.server_backend = backend
        display = default_display(backend, self.host) if renderer == "auto" else renderer
        self.render_fn = SplatRenderFn(self.frame_renderer, display=display, background=bg,
                                       on_frame=self._on_frame, on_error=self._on_render_error)
        self.server.scene.set_up_direction("+y")
        # nerfview's render tab joins client-typed names onto this folder: confined to it
        self.output_dir = ConfinedFolder.at(Path(output_dir) if output_dir else Path.cwd() / "splatgen-view")
        self.viewer = TabViewer(self.server, self.render_fn, output_dir=self.output_dir, mode="rendering")
        self.server.gui.set_panel_label(title)
        slider = getattr(self.viewer, "_rendering_tab_handles", {}).get("viewer_res_slider")
        if slider is not None and backend != "gsplat":  # nerfview's 2048 stills are slow without CUDA
            slider.value = CPU_VIEWER_RES
        self._build_panel(bg)
        # before any splats: the canonical object placement (generated samples land there)
        r = framing.OBJECT_RADIUS
        self._set_camera(*framing_camera(torch.tensor([[-r, -r, -r], [r, r, r]]) / math.sqrt(3)))
        if generator is not None:
            from .generate_panel import GeneratePanel

            self.panel = GeneratePanel(self.server, generator, self.set_gaussians, order=-1.0)
        self._guard_callbacks()

    def _guard_callbacks(self) -> None:
        """Every widget handler (nerfview's render tab and the dialogs it opens, our panels) runs with
        values a client chose, on viser's one callback pool: each is run through :func:`_guarded`
        there, so a refusal or failure becomes a notification in that client's page and at most one
        line on the terminal, never a traceback."""
        pool = getattr(self.server, "_thread_executor", None)
        if pool is None or getattr(pool, "_splatgen_guarded", False):
            return
        submit = pool.submit

        def guarded_submit(fn, /, *args, **kwargs):
            return submit(_guarded(fn) if args and _is_gui_event(args[0]) else fn, *args, **kwargs)

        pool.submit = guarded_submit
        pool._splatgen_guarded = True

    def _build_panel(self, bg) -> None:
        gui = self.server.gui
        names = {"gsplat": "server (gsplat, CUDA)", "gl": "server (OpenGL)", "torch": "server (torch)"}
        self._display_labels = {"browser": "browser", "server": names[self.server_backend]}
        with gui.add_folder("Splats", order=-2.0):
            self.info_md = gui.add_markdown("No splats yet.")
            self.mode_dropdown = gui.add_dropdown("Show", MODES, initial_value="rgb",
                                                  hint="rgb, expected depth (white near, black far) or alpha")
            labels = tuple(self._display_labels.values())
            self.renderer_dropdown = gui.add_dropdown(
                "Renderer", labels, initial_value=self._display_labels[self.render_fn.display],
                hint="Who draws the RGB view: the browser (no server work per frame) or the server.")
            self.background_rgb = gui.add_rgb("Background", tuple(int(round(255 * x)) for x in bg))
            self.download_buttons = {suffix: gui.add_button(label, disabled=True, hint=hint)
                                     for suffix, (label, hint) in DOWNLOADS.items()}
            self.download_ply, self.download_splat = self.download_buttons[".ply"], self.download_buttons[".splat"]

        @self.mode_dropdown.on_update
        def _(_event) -> None:
            mode = str(self.mode_dropdown.value)
            self.set_mode(mode if mode in MODES else self.render_fn.mode)  # a client may send any value

        @self.renderer_dropdown.on_update
        def _(_event) -> None:
            value = str(self.renderer_dropdown.value)
            self.set_renderer("browser" if value == "browser" else "server")

        @self.background_rgb.on_update
        def _(_event) -> None:
            self.set_background(tuple(min(max(float(v) / 255.0, 0.0), 1.0) if math.isfinite(float(v)) else 1.0
                                      for v in self.background_rgb.value))  # whatever a client sent

        for suffix, button in self.download_buttons.items():
            button.on_click(lambda event, suffix=suffix: self.send_download(event.client, suffix))

    # ------------------------------------------------------------------ public API
    @property
    def stopped(self) -> bool:
        return self._stopped

    @property
    def num_gaussians(self) -> int:
        return 0 if self._gaussians is None else self._gaussians.num_gaussians

    @property
    def gaussians(self) -> Gaussians | None:
        return self._gaussians

    @property
    def renderer_count(self) -> int:
        """Per-tab render threads alive (open tabs, and closed ones still ending)."""
        return 0 if self.viewer is None else self.viewer.renderer_count

    @property
    def display(self) -> str:
        """``"browser"`` or ``"server"``: who draws the RGB view now."""
        return self.render_fn.display

    def set_gaussians(self, gaussians: Gaussians, *, reframe: bool | None = None) -> None:
        """Show ``gaussians`` ``(N,)`` in every open page. ``reframe``: move the camera to frame them
        (default: only the first time)."""
        if self._stopped:
            raise ViewerError("the viewer has been stopped")
        if not isinstance(gaussians, Gaussians) or len(gaussians.shape) != 1:
            raise ViewerError("set_gaussians takes one set of Gaussians of shape (N,)")
        g = gaussians.detach()
        self._gaussians = g
        self._scene_version += 1
        self.render_fn.set_gaussians(g)
        self._sync_browser_splats()
        if reframe or (reframe is None and not self._framed):
            self._frame(g)
        self._update_info(force=True)
        for button in self.download_buttons.values():
            button.disabled = False
        self._rerender()

    def set_mode(self, mode: str) -> None:
        """Show ``"rgb"``, ``"depth"`` or ``"alpha"``."""
        if mode not in MODES:
            raise ViewerError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
        self.render_fn.mode = mode
        if self.mode_dropdown.value != mode:
            self.mode_dropdown.value = mode
        self._sync_browser_splats()
        self._update_info(force=True)
        self._rerender()

    def set_renderer(self, display: str) -> None:
        """``"browser"`` or ``"server"`` draws the RGB view."""
        if display not in ("browser", "server"):
            raise ViewerError(f"renderer must be 'browser' or 'server', got {display!r}")
        self.render_fn.display = display
        label = self._display_labels[display]
        if self.renderer_dropdown.value != label:
            self.renderer_dropdown.value = label
        self._sync_browser_splats()
        self._update_info(force=True)
        self._rerender()

    def download_bytes(self, suffix: str) -> tuple[str, bytes]:
        """The splats shown as a file: ``(file name, content)``, ``suffix`` one of :data:`DOWNLOADS`
        (splatgen's own writers; splats below :data:`MIN_OPACITY` left out, as in every export)."""
        import tempfile

        from ..io import SPLAT_EXTENSIONS, save_splats

        if suffix not in DOWNLOADS:
            raise ViewerError(f"no download as {str(suffix)[:20]!r}; one of {', '.join(DOWNLOADS)}")
        g = self._gaussians
        if g is None:
            raise ViewerError("no splats to download yet")
        with tempfile.TemporaryDirectory(prefix="splatgen-download-") as tmp:
            path = Path(tmp) / f"splats{suffix}"
            shown = g.detach().to("cpu")[g.opacities.detach().cpu() >= MIN_OPACITY]
            if suffix in MESH_DOWNLOADS:
                from ..mesh import export_mesh

                export_mesh(shown, path)
            else:
                save_splats(path, shown, format=SPLAT_EXTENSIONS[suffix])
            content = path.read_bytes()
        return safe_name(self.download_name, "splats") + suffix, content

    def send_download(self, client, suffix: str) -> None:
        """Send the splats shown to ``client`` (a viser client handle) as a file download."""
        try:
            name, content = self.download_bytes(suffix)
        except (ViewerError, SplatgenError) as exc:   # e.g. no splats left to write
            if client is not None:
                client.add_notification("Nothing to download", str(exc), auto_close_seconds=5.0)
            return
        if client is not None:
            client.send_file_download(name, content, save_immediately=True)

    def set_background(self, rgb: Sequence[float]) -> None:
        self.render_fn.background = tuple(float(x) for x in rgb)
        self._rerender()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until :meth:`stop` (from another thread); ``True`` when stopped. Ctrl-C interrupts it."""
        end = None if timeout is None else time.monotonic() + timeout
        while not self._done.is_set():
            left = 0.5 if end is None else min(0.5, end - time.monotonic())
            if left <= 0:
                break
            self._done.wait(left)
        return self._done.is_set()

    def stop(self) -> None:
        """Shut everything down and wait for our threads: generation worker, nerfview's render threads,
        viser's server and callback pool, the frame renderer. Safe to call twice."""
        with self._stop_lock:
            if self._stopped:
                return
            self._stopped = True
        try:
            if self.panel is not None:
                self.panel.close()
            if self.render_fn is not None:
                self.render_fn.close()
            self._join_nerfview_threads()
            if self.server is not None:
                with self._quiet():  # "(viser) Server stopped"
                    self.server.stop()
                self._join_nerfview_threads()
                pool = getattr(self.server, "_thread_executor", None)  # viser's callback pool
                if pool is not None and threading.current_thread() not in getattr(pool, "_threads", ()):
                    pool.shutdown(wait=True)
            if self.frame_renderer is not None:
                self.frame_renderer.close()
        finally:
            self._done.set()

    def __enter__(self) -> "ViewerServer":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "stopped" if self._stopped else self.url
        return f"ViewerServer({state}, {self.num_gaussians} splats, {self.display})"

    # ------------------------------------------------------------------ internals
    def _quiet(self):
        """Hide what viser prints (unless ``verbose``); it prints to stdout through rich."""
        if self._verbose:
            return contextlib.nullcontext()
        return contextlib.redirect_stdout(io.StringIO())

    def _join_nerfview_threads(self, timeout: float = 5.0) -> None:
        """The per-tab render threads (:mod:`.clients`): stop them and wait for them."""
        if self.viewer is not None:
            self.viewer.end_tabs(timeout)

    def _sync_browser_splats(self) -> None:
        """Keep viser's splat node in step: present and visible only while the browser draws RGB."""
        want = self.render_fn.display == "browser" and self.render_fn.mode == "rgb" and self._gaussians is not None
        if want and self._browser_version != self._scene_version:
            arrays = browser_splat_arrays(self._gaussians)
            self._browser_count = arrays["centers"].shape[0]
            self._splat_node = self.server.scene.add_gaussian_splats("/splats", **arrays)
            self._browser_version = self._scene_version
        if self._splat_node is not None and self._splat_node.visible != want:
            self._splat_node.visible = want

    def _frame(self, g: Gaussians) -> None:
        self._set_camera(*framing_camera(g.means))
        self._framed = True

    def _set_camera(self, position, look_at) -> None:
        """The camera new tabs start with (and "reset view" returns to); open tabs move there too."""
        cam = self.server.initial_camera
        cam.up = (0.0, 1.0, 0.0)
        cam.fov = math.radians(framing.FOV_DEG)
        cam.position = tuple(position)
        cam.look_at = tuple(look_at)
        for client in self.server.get_clients().values():
            try:
                with client.atomic():
                    client.camera.position = tuple(position)
                    client.camera.look_at = tuple(look_at)
            except Exception:  # noqa: BLE001 - a tab closing meanwhile
                pass

    def _rerender(self) -> None:
        if self.viewer is None or self._stopped:
            return
        try:
            self.viewer.rerender(None)
        except Exception:  # noqa: BLE001 - a tab connecting or closing meanwhile
            pass

    def _on_frame(self, stats: FrameStats) -> None:
        self._render_error = None
        self._update_info()

    def _on_render_error(self, message: str) -> None:
        self._render_error = message
        self._update_info(force=True)

    def _update_info(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_info < _INFO_INTERVAL:
            return
        self._last_info = now
        n = self.num_gaussians
        if n == 0:
            text = "No splats yet."
        else:
            text = f"**{n:,} splat{'s' * (n != 1)}**"
            s = self.render_fn.stats
            if not self.render_fn.server_side():
                text += f" · {self._browser_count:,} drawn by the browser"
            else:
                text += f" · drawn by {self._display_labels['server']}"
                if s.frames:
                    text += (f"<br/>last frame {s.width}×{s.height}: {s.ms:.0f} ms · "
                             f"{s.visible:,} splats in view")
        if self._render_error:
            text += f"<br/>**{escape_markdown(self._render_error)}**"
        try:
            self.info_md.content = text
        except Exception:  # noqa: BLE001 - shutting down
            pass


def _is_gui_event(arg) -> bool:
    import viser

    return isinstance(arg, viser.GuiEvent)


def _guarded(cb):
    """``cb(event)`` for a widget event: a :class:`SplatgenError` (a refusal) becomes a notification
    in the client's page; any other failure too, plus one line on stderr."""
    def run(event, *args, **kwargs):
        try:
            return cb(event, *args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - a page's action never prints a traceback
            refused = isinstance(exc, SplatgenError)
            if not refused:
                print(f"splatgen view: a page action failed: {type(exc).__name__}: {exc}", file=sys.stderr)
            client = getattr(event, "client", None)
            if client is not None:  # (no server paths in what a page is told)
                text = (f"{exc.strerror}: {Path(exc.filename).name}" if isinstance(exc, OSError) and exc.filename
                        else str(exc) or type(exc).__name__)
                try:
                    client.add_notification("Refused" if refused else "That did not work", text,
                                            color="red", auto_close_seconds=10.0)
                except Exception:  # noqa: BLE001 - the page went away
                    pass
            return None
    return run


def serve_splats(gaussians: Gaussians, host: str = "127.0.0.1", port: int = 0, **kwargs) -> ViewerServer:
    """Serve ``gaussians`` in the browser viewer; returns at once with the running :class:`ViewerServer`
    (``.url``, ``.set_gaussians(g)``, ``.stop()``). ``kwargs`` go to :class:`ViewerServer`."""
    return ViewerServer(gaussians, host=host, port=port, **kwargs)

