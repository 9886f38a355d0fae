"""The browser viewer's tabs: nerfview's viewer with per-tab renderers that end and free cleanly.

nerfview starts one render thread per open tab (``nerfview._renderer.Renderer``) and, when the tab
closes, only clears its ``running`` flag; a frame in flight then still sends its picture to the
closed connection (viser warns: "Queued a … on a closed connection"), and a camera message that
arrives late looks the renderer up by a key that is gone. :class:`TabViewer` is nerfview's
``Viewer`` with three changes:

* each tab's renderer (:class:`TabRenderer`) sends nothing once its tab has closed (the send is
  dropped, and one racing the close is a sanctioned dead write: no warning);
* a departed tab's renderer is waited for off the event loop, and once no tab is left the process
  gives freed heap back to the system (glibc ``malloc_trim``): eight tabs' frames are tens of MB
  of JPEG and pixel buffers that the allocator would otherwise keep for the rest of the session;
* :attr:`TabViewer.renderer_count` says how many tab renderers exist (tests, soak runs).

Also here: :func:`bound_callback_pool` (viser's widget-callback pool, bounded) and
:func:`splatgen.core.heap.limit_heap_arenas` (what short-lived tab threads may leave in the heap).
"""

from __future__ import annotations

import threading
import time

import nerfview
from nerfview._renderer import Renderer, RenderTask

from ..heap import release_heap

#: How long a departed tab's renderer may take to end (it polls every 0.2 s, plus one frame).
_END_TIMEOUT_S = 10.0


def bound_callback_pool(server, threads: int) -> None:
    """Swap viser's callback pool (32 threads at most; idle ones never end) for one of ``threads``,
    before any page connects (the server's GUI and scene APIs share it; each client's takes it from
    the server when it connects)."""
    from concurrent.futures import ThreadPoolExecutor

    old = getattr(server, "_thread_executor", None)
    if old is None:
        return
    pool = ThreadPoolExecutor(max_workers=int(threads), thread_name_prefix="splatgen-viewer-callback")
    server._thread_executor = pool
    for api in (getattr(server, "gui", None), getattr(server, "scene", None)):
        if getattr(api, "_thread_executor", None) is old:
            api._thread_executor = pool
    old.shutdown(wait=False)


class _LiveScene:
    """A tab's scene API for its renderer: the background-image send is dropped once the tab is gone."""

    def __init__(self, client, renderer: "TabRenderer"):
        self._client, self._renderer = client, renderer

    def set_background_image(self, *args, **kwargs) -> None:
        conn = getattr(self._client, "_websock_connection", None)
        buffer = conn.get_message_buffer() if conn is not None else None
        if not self._renderer.running or (buffer is not None and buffer.done):
            return
        if buffer is None:
            self._client.scene.set_background_image(*args, **kwargs)
            return
        with buffer.sanctioned_dead_writes():   # the tab may close between the check and the send
            self._client.scene.set_background_image(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._client.scene, name)


class _LiveClient:
    """The viser client handle as a tab renderer sees it: all of it, with :class:`_LiveScene`."""

    def __init__(self, client, renderer: "TabRenderer"):
        self._client = client
        self.scene = _LiveScene(client, renderer)

    def __getattr__(self, name):
        return getattr(self._client, name)


class TabRenderer(Renderer):
    """nerfview's per-tab render thread, quiet once its tab has closed."""

    def __init__(self, viewer, client, lock):
        super().__init__(viewer=viewer, client=client, lock=lock)
        self.client = _LiveClient(client, self)
        self.name = f"splatgen-viewer-tab-{client.client_id}"


class TabViewer(nerfview.Viewer):
    """``nerfview.Viewer`` whose tab renderers end cleanly (module docstring)."""

    def __init__(self, *args, **kwargs):
        self._tabs_lock = threading.Lock()
        self._departed: list[TabRenderer] = []
        super().__init__(*args, **kwargs)

    @property
    def renderer_count(self) -> int:
        """Tab renderers alive: those of open tabs and those of closed tabs still ending."""
        with self._tabs_lock:
            self._departed = [r for r in self._departed if r.is_alive()]
            return len(self._renderers) + len(self._departed)

    def rerender(self, _=None) -> None:
        clients = self.server.get_clients()
        for client_id, client in clients.items():
            renderer = self._renderers.get(client_id)   # a tab connecting or closing meanwhile
            if renderer is not None:
                renderer.submit(RenderTask("rerender", self.get_camera_state(client)))

    def _connect_client(self, client) -> None:
        client_id = client.client_id
        renderer = TabRenderer(self, client, self.lock)
        with self._tabs_lock:
            self._renderers[client_id] = renderer
        renderer.start()

        @client.camera.on_update
        def _(_camera) -> None:
            r = self._renderers.get(client_id)
            if r is None or not r.running:
                return
            self._last_move_time = time.time()
            with self.server.atomic():
                r.submit(RenderTask("move", self.get_camera_state(client)))

    def _disconnect_client(self, client) -> None:
        with self._tabs_lock:
            renderer = self._renderers.pop(client.client_id, None)
            if renderer is None:
                return
            renderer.running = False
            self._departed.append(renderer)
        # wait for it off viser's event loop, then give the freed frames back once no tab is left
        threading.Thread(target=self._reap, args=(renderer,), name="splatgen-viewer-reap", daemon=True).start()

    def _reap(self, renderer: TabRenderer) -> None:
        renderer.join(_END_TIMEOUT_S)
        with self._tabs_lock:
            self._departed = [r for r in self._departed if r.is_alive()]
            idle = not self._renderers and not self._departed
        if idle:
            release_heap()

    def end_tabs(self, timeout: float = 5.0) -> None:
        """Stop every tab renderer and wait for them (server shutdown)."""
        with self._tabs_lock:
            ours = list(self._renderers.values()) + self._departed
        for r in ours:
            r.running = False
        end = time.monotonic() + timeout
        for r in ours:
            if r is not threading.current_thread() and r.is_alive():
                r.join(max(0.0, end - time.monotonic()))
