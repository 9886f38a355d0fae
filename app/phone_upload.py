"""Photos from a visitor's phone: an upload-only web page, a QR code to reach it, a queue of photos.

:class:`UploadServer` serves one page and one upload endpoint (stdlib ``http.server``, a thread
per request), nothing else: ``GET /?t=TOKEN`` is the page (a file input that opens the phone's
camera), ``POST /upload?t=TOKEN`` takes one photo as the request body. The token is random
(``secrets``), compared in constant time, and every request without it is refused (403). It
listens on loopback unless the presenter explicitly allows the local network. An upload is checked
like every other way in: its size from ``Content-Length`` before anything is read (413 beyond
:data:`MAX_UPLOAD_BYTES`), then its header and pixels by :func:`splatgen.core.image_loading.load_image`
(formats, pixel count; 415 with the reason otherwise); a good one is written under a name of the
server's own into the capture folder and handed on.

:class:`PhoneUploads` is the window's side: off by default; *File → Photos from a phone…* starts
the server and shows the *Phone* dock with the address as a QR code (PyPI ``segno``) and the queue
of photos that arrived; the presenter picks which to use (double-click or *Use*).
"""

from __future__ import annotations

import hmac
import json
import logging
import secrets
import socket
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from PyQt6.QtCore import QObject, QSize, Qt, pyqtSignal
from PyQt6.QtGui import QPixmap
from PyQt6.QtWidgets import (QCheckBox, QDockWidget, QHBoxLayout, QLabel, QListWidget, QListWidgetItem, QPushButton,
                             QVBoxLayout, QWidget)

log = logging.getLogger("splatgen.app")

#: The largest upload taken, bytes (a phone's full-size JPEG is 2–12 MB).
MAX_UPLOAD_BYTES = 25 * 2**20
#: The largest photo taken, pixels (as the app's own image loading).
MAX_UPLOAD_PIXELS = 64_000_000
_SUFFIX = {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp", "GIF": ".gif", "BMP": ".bmp", "TIFF": ".tif",
           "AVIF": ".avif"}

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>splatgen: send a photo</title>
<style>body{font-family:sans-serif;margin:2em;font-size:1.3em}button,input{font-size:1em}
#status{margin-top:1em;font-weight:bold}</style></head>
<body><h1>Send a photo</h1>
<p>Take a photo of one object (or choose one) and send it to the screen.</p>
<input id="photo" type="file" accept="image/*" capture="environment">
<div id="status" role="status"></div>
<script>
const input = document.getElementById("photo"), status = document.getElementById("status");
input.addEventListener("change", async () => {
  const file = input.files[0];
  if (!file) return;
  status.textContent = "Sending…";
  try {
    const r = await fetch("upload" + location.search, {method: "POST", body: file,
                          headers: {"Content-Type": "application/octet-stream"}});
    const answer = await r.json();
    status.textContent = answer.message;
    status.dataset.ok = r.ok ? "yes" : "no";
  } catch (e) {
    status.textContent = "Could not send the photo: " + e;
    status.dataset.ok = "no";
  }
  input.value = "";
});
</script></body></html>
"""


def lan_address() -> str:
    """This machine's address on the local network (from its host name), else 127.0.0.1."""
    try:
        for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET):
            addr = info[4][0]
            if not addr.startswith("127."):
                return addr
    except OSError:
        pass
    return "127.0.0.1"


class UploadServer:
    """The upload-only page (module docstring). ``folder``: where photos are written;
    ``on_photo(path)``: called (in a server thread) with each good photo; ``lan``: listen on every
    interface and give the local network address in :attr:`url` (else loopback only)."""

    def __init__(self, folder, on_photo, *, lan: bool = False, port: int = 0, max_bytes: int = MAX_UPLOAD_BYTES,
                 max_pixels: int = MAX_UPLOAD_PIXELS):
        self.folder = Path(folder)
        self.on_photo = on_photo
        self.lan = bool(lan)
        self.max_bytes, self.max_pixels = int(max_bytes), int(max_pixels)
        self.token = secrets.token_urlsafe(18)
        self.received = 0
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            server_version = "splatgen-upload"

            def log_message(self, fmt, *args):   # the app's log, not stderr
                log.info("upload page: %s %s", self.address_string(), fmt % args)

            def do_GET(self):  # noqa: N802 - http.server's name
                path, ok = server._check(self)
                if not ok:
                    return
                if path not in ("/", "/index.html"):
                    return server._answer(self, HTTPStatus.NOT_FOUND, "Nothing here.")
                body = PAGE.encode()
                self.send_response(HTTPStatus.OK)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                server._common_headers(self, len(body))
                self.wfile.write(body)

            def do_POST(self):  # noqa: N802
                path, ok = server._check(self)
                if not ok:
                    return
                if path != "/upload":
                    return server._answer(self, HTTPStatus.NOT_FOUND, "Nothing here.")
                server._upload(self)

        self.httpd = ThreadingHTTPServer(("0.0.0.0" if self.lan else "127.0.0.1", int(port)), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = lan_address() if self.lan else "127.0.0.1"
        return f"http://{host}:{self.port}/?t={self.token}"

    def start(self) -> None:
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="splatgen-upload", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        if self._thread is not None:
            self._thread.join(5)

    # ------------------------------------------------------------------ requests
    def _common_headers(self, handler, length: int) -> None:
        handler.send_header("Content-Length", str(length))
        handler.send_header("Cache-Control", "no-store")
        handler.send_header("X-Content-Type-Options", "nosniff")
        handler.send_header("Referrer-Policy", "no-referrer")
        handler.send_header("Content-Security-Policy", "default-src 'none'; script-src 'unsafe-inline'; "
                                                       "style-src 'unsafe-inline'; connect-src 'self'")
        handler.end_headers()

    def _answer(self, handler, status: HTTPStatus, message: str, *, close: bool = False) -> None:
        body = json.dumps({"ok": status == HTTPStatus.OK, "message": message}).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        if close:
            handler.send_header("Connection", "close")
            handler.close_connection = True
        self._common_headers(handler, len(body))
        handler.wfile.write(body)

    def _check(self, handler) -> tuple[str, bool]:
        """The request's path, and whether it carries the token (answered 403 if not)."""
        parts = urlsplit(handler.path)
        given = (parse_qs(parts.query).get("t") or [""])[0]
        if not hmac.compare_digest(given.encode(), self.token.encode()):
            length = int(handler.headers.get("Content-Length") or 0)
            self._answer(handler, HTTPStatus.FORBIDDEN, "This link is not valid: scan the code on the screen again.",
                         close=length > 0)            # a body never read: the connection cannot go on
            return parts.path, False
        return parts.path, True

    def _upload(self, handler) -> None:
        from splatgen.core.atomic import atomic_write
        from splatgen.core.errors import ImageError
        from splatgen.core.image_loading import load_image, open_image

        try:
            length = int(handler.headers.get("Content-Length", ""))
        except ValueError:
            return self._answer(handler, HTTPStatus.LENGTH_REQUIRED, "The photo's size was not given.", close=True)
        if length <= 0:
            return self._answer(handler, HTTPStatus.BAD_REQUEST, "The photo is empty.", close=length < 0)
        if length > self.max_bytes:
            return self._answer(handler, HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                                f"The photo is too large ({length / 2**20:.1f} MB; at most "
                                f"{self.max_bytes / 2**20:.0f} MB).", close=True)
        data = handler.rfile.read(length)
        if len(data) != length:
            return self._answer(handler, HTTPStatus.BAD_REQUEST, "The photo arrived incomplete.", close=True)
        try:
            with open_image(data, name="the photo", max_pixels=self.max_pixels) as im:
                fmt = im.format
            load_image(data, max_pixels=self.max_pixels, name="the photo")   # every pixel decodes
        except ImageError as exc:
            return self._answer(handler, HTTPStatus.UNSUPPORTED_MEDIA_TYPE, str(exc))
        with self._lock:
            self.received += 1
            n = self.received
        path = self.folder / f"phone-{time.strftime('%H%M%S')}-{n:03d}{_SUFFIX.get(fmt, '.img')}"
        try:
            atomic_write(path, data)
        except Exception as exc:  # noqa: BLE001
            log.warning("upload not kept: %s", exc)
            return self._answer(handler, HTTPStatus.INTERNAL_SERVER_ERROR, "The photo could not be kept.")
        self._answer(handler, HTTPStatus.OK, "Sent! It is on the screen's list now.")
        self.on_photo(path)


class _Relay(QObject):
    arrived = pyqtSignal(str)


class PhoneUploads:
    """The window's phone uploads: the server (off until :meth:`start`), the *Phone* dock with the
    QR code and the queue. ``queue``: paths of the photos that arrived and are not used yet."""

    def __init__(self, window):
        self.window = window
        self.server: UploadServer | None = None
        self.queue: list[Path] = []
        self._relay = _Relay()
        self._relay.arrived.connect(lambda p: self._arrived(Path(p)))
        self.dock = QDockWidget("Phone", window)
        self.dock.setObjectName("phoneDock")
        panel = QWidget(objectName="phonePanel")
        lay = QVBoxLayout(panel)
        self.lan = QCheckBox("Allow phones on the local network", objectName="phoneLan")
        self.lan.setToolTip("Off: only this computer can open the page. On: any device on this network that "
                            "has the link (with its random token) can send a photo")
        self.lan.toggled.connect(lambda _: self.start() if self.server is not None else None)
        lay.addWidget(self.lan)
        self.qr = QLabel(objectName="phoneQr")
        self.qr.setAlignment(Qt.AlignmentFlag.AlignCenter)
        lay.addWidget(self.qr)
        self.address = QLabel("", objectName="phoneAddress")
        self.address.setTextFormat(Qt.TextFormat.PlainText)
        self.address.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.address.setWordWrap(True)
        lay.addWidget(self.address)
        self.list = QListWidget(objectName="phoneQueue")
        self.list.setIconSize(QSize(64, 64))
        self.list.itemDoubleClicked.connect(lambda item: self.use(self.list.row(item)))
        lay.addWidget(self.list, 1)
        row = QHBoxLayout()
        self.use_button = QPushButton("Use", objectName="phoneUse")
        self.use_button.clicked.connect(lambda: self.use(self.list.currentRow()))
        self.drop_button = QPushButton("Remove", objectName="phoneRemove")
        self.drop_button.clicked.connect(lambda: self.remove(self.list.currentRow()))
        row.addWidget(self.use_button)
        row.addWidget(self.drop_button)
        lay.addLayout(row)
        self.dock.setWidget(panel)
        window.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.dock)
        self.dock.hide()

    def start(self, *, port: int = 0, max_bytes: int = MAX_UPLOAD_BYTES) -> UploadServer:
        """(Re)start the server (on the local network if that box is ticked) and show the dock."""
        self.stop()
        folder = self.window.captures.folder()
        self.server = UploadServer(folder, lambda p: self._relay.arrived.emit(str(p)), lan=self.lan.isChecked(),
                                   port=port, max_bytes=max_bytes)
        self.server.start()
        url = self.server.url
        self.address.setText(url)
        self.qr.setPixmap(qr_pixmap(url))
        self.dock.show()
        where = "the local network" if self.server.lan else "this computer only"
        self.window.status(f"Phone uploads on ({where}): scan the code in the Phone panel.")
        return self.server

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None
            self.address.setText("")
            self.qr.clear()

    def _arrived(self, path: Path) -> None:
        from .input_panel import example_icon

        self.queue.append(path)
        item = QListWidgetItem(example_icon(path), f"Photo {len(self.queue)} · {time.strftime('%H:%M:%S')}")
        self.list.addItem(item)
        self.window.status(f"A photo arrived from a phone ({len(self.queue)} waiting in the Phone panel).")

    def use(self, row: int) -> None:
        """Open queued photo ``row`` as the input (generated at once in demo mode)."""
        if 0 <= row < len(self.queue):
            path = self.queue.pop(row)
            self.list.takeItem(row)
            self.window.open_image(str(path), generate=self.window.demo is not None)

    def remove(self, row: int) -> None:
        if 0 <= row < len(self.queue):
            self.queue.pop(row).unlink(missing_ok=True)
            self.list.takeItem(row)

    def close(self) -> None:
        self.stop()
        for p in self.queue:
            p.unlink(missing_ok=True)
        self.queue.clear()
        self.list.clear()


def qr_pixmap(text: str, scale: int = 6) -> QPixmap:
    """``text`` as a QR code (segno), as a pixmap."""
    import io

    import segno

    buf = io.BytesIO()
    segno.make(text, error="m").save(buf, kind="png", scale=scale, border=2)
    pm = QPixmap()
    pm.loadFromData(buf.getvalue(), "PNG")
    return pm
