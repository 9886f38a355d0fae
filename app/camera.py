"""*Take photo*: a live camera preview, and photos that exist only in memory becoming the input.

:class:`CameraFeed` reads frames with OpenCV's ``VideoCapture`` in a thread of its own (never the
GUI thread): a device index (``--camera-source 0``) or a video file (played at its frame rate and
looped, which is how tests drive it). The GUI is only told that a new frame is there and fetches
the latest one itself, so a slow GUI never queues frames. :class:`CameraDialog` shows the preview
and takes the photo; :class:`Captures` writes a taken frame as a PNG into the window's capture
folder (the demo's temporary folder in demo mode) and opens it like any photo, so it goes through
the usual preparation (cut-out, framing) and into the run history. No camera: the dialog closes
and one line in the status bar says so; the action stays usable.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from PyQt6.QtCore import QObject, Qt, pyqtSignal
from PyQt6.QtWidgets import QDialog, QHBoxLayout, QLabel, QPushButton, QVBoxLayout

from .input_panel import ImageLabel

log = logging.getLogger("splatgen.app")

#: The preview's longer side, pixels (the photo taken is the whole frame).
PREVIEW_SIDE = 640
#: Reads in a row that may fail before a camera counts as gone.
MAX_FAILED_READS = 50


def describe_source(source) -> str:
    return f"camera {source}" if isinstance(source, int) else f"video file {source}"


class CameraFeed(QObject):
    """Frames from ``source`` (an ``int`` device index or a video file path), read in a thread.

    Signals: ``opened(bool ok, str message)`` once the source opened (or could not: the message is
    one line saying why), ``frame_ready()`` when a newer frame is there (:meth:`latest`,
    :meth:`preview`), ``stopped(str message)`` if the source stops sending.
    """

    opened = pyqtSignal(bool, str)
    frame_ready = pyqtSignal()
    stopped = pyqtSignal(str)

    def __init__(self, source, parent=None):
        super().__init__(parent)
        self.source = source
        self.frames = 0
        self.reader_thread: int | None = None     # threading.get_ident() of the reads
        self._latest: np.ndarray | None = None
        self._preview: np.ndarray | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._pending = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="splatgen-camera", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 3.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def latest(self) -> np.ndarray | None:
        """The newest whole frame ``(H, W, 3)`` uint8 RGB (a copy), or None before the first."""
        with self._lock:
            return None if self._latest is None else self._latest.copy()

    def preview(self) -> np.ndarray | None:
        """The newest frame at most :data:`PREVIEW_SIDE` px a side; marks it as shown."""
        self._pending.clear()
        with self._lock:
            return self._preview

    def _open(self):
        import cv2
        import cv2.utils.logging as cvlog

        level = cvlog.getLogLevel()
        cvlog.setLogLevel(cvlog.LOG_LEVEL_SILENT)   # a missing camera is said in one line, not on stderr
        try:
            if isinstance(self.source, str) and not Path(self.source).is_file():
                return None
            cap = cv2.VideoCapture(self.source)
            return cap if cap.isOpened() else None
        finally:
            cvlog.setLogLevel(level)

    def _run(self) -> None:
        import cv2

        self.reader_thread = threading.get_ident()
        try:
            cap = self._open()
        except Exception as exc:  # noqa: BLE001 - reported in one line
            log.warning("camera: %s", exc)
            cap = None
        if cap is None:
            hint = ("connect one, or choose another with --camera-source INDEX|FILE" if isinstance(self.source, int)
                    else "check the path given to --camera-source")
            self.opened.emit(False, f"No {describe_source(self.source)} could be opened: {hint}.")
            return
        self.opened.emit(True, f"Showing {describe_source(self.source)}.")
        is_file = not isinstance(self.source, int)
        fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
        period = 1.0 / min(max(fps, 1.0), 60.0)
        failed = 0
        try:
            while not self._stop.is_set():
                t0 = time.monotonic()
                ok, bgr = cap.read()
                if not ok or bgr is None:
                    if is_file and self.frames:            # the end of a video: from the start again
                        cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
                        continue
                    failed += 1
                    if failed >= MAX_FAILED_READS:
                        self.stopped.emit(f"The {describe_source(self.source)} stopped sending pictures.")
                        return
                    time.sleep(0.02)
                    continue
                failed = 0
                rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
                h, w = rgb.shape[:2]
                s = min(1.0, PREVIEW_SIDE / max(h, w))
                small = rgb if s >= 1.0 else cv2.resize(rgb, (max(1, round(w * s)), max(1, round(h * s))),
                                                        interpolation=cv2.INTER_AREA)
                with self._lock:
                    self._latest, self._preview = rgb, np.ascontiguousarray(small)
                    self.frames += 1
                if not self._pending.is_set():          # one notice until the GUI has looked
                    self._pending.set()
                    self.frame_ready.emit()
                if is_file:
                    self._stop.wait(max(0.0, period - (time.monotonic() - t0)))
        finally:
            cap.release()


class CameraDialog(QDialog):
    """The live preview with *Take photo* and *Cancel*. ``taken(frame)`` carries the whole frame
    ``(H, W, 3)`` uint8 RGB; ``failed(str)`` the one-line reason the camera could not be used."""

    taken = pyqtSignal(object)
    failed = pyqtSignal(str)

    def __init__(self, source, parent=None):
        super().__init__(parent)
        self.setObjectName("cameraDialog")
        self.setWindowTitle("Take a photo")
        self.feed = CameraFeed(source, self)
        layout = QVBoxLayout(self)
        self.view = ImageLabel("Looking for the camera…", min_side=240)
        layout.addWidget(self.view, 1)
        self.message = QLabel(f"Opening the {describe_source(source)}…", objectName="cameraMessage")
        self.message.setTextFormat(Qt.TextFormat.PlainText)
        layout.addWidget(self.message)
        row = QHBoxLayout()
        self.take = QPushButton("Take photo", objectName="cameraTake")
        self.take.setEnabled(False)
        self.take.setDefault(True)
        self.cancel = QPushButton("Cancel", objectName="cameraCancel")
        row.addStretch(1)
        row.addWidget(self.cancel)
        row.addWidget(self.take)
        layout.addLayout(row)
        self.take.clicked.connect(self.take_photo)
        self.cancel.clicked.connect(self.reject)
        self.feed.opened.connect(self._opened)
        self.feed.frame_ready.connect(self._show_frame)
        self.feed.stopped.connect(self._failed)
        self.finished.connect(lambda _: self.feed.stop())
        self.resize(720, 600)

    def start(self) -> None:
        self.feed.start()
        self.open()

    def _opened(self, ok: bool, message: str) -> None:
        self.message.setText(message)
        if not ok:
            self._failed(message)

    def _failed(self, message: str) -> None:
        self.failed.emit(message)
        self.reject()

    def _show_frame(self) -> None:
        frame = self.feed.preview()
        if frame is not None:
            self.view.set_array(frame)
            self.take.setEnabled(True)

    def take_photo(self) -> None:
        frame = self.feed.latest()
        if frame is None:
            return
        self.feed.stop()
        self.taken.emit(frame)
        self.accept()


class Captures:
    """Photos held in memory (camera frames) for ``window``: written as PNG, then opened."""

    def __init__(self, window):
        self.window = window
        self._folder: Path | None = None
        self.dialog: CameraDialog | None = None

    def folder(self) -> Path:
        """The demo's temporary folder in demo mode, else one of the window's own, removed at :meth:`close`."""
        demo = self.window.demo
        if demo is not None and demo.photos is not None:
            return demo.photos
        if self._folder is None:
            self._folder = Path(tempfile.mkdtemp(prefix="splatgen-captures-"))
        return self._folder

    def open(self, rgb, name: str = "camera", *, generate: bool = False) -> Path:
        """Write ``rgb`` ``(H, W, 3|4)`` uint8 as ``<name>-<time>.png`` into :meth:`folder` and open it
        as the input (prepared like any photo; ``generate``: then generated). Returns its path."""
        from splatgen.core.export import write_image

        stamp = time.strftime("%Y%m%d-%H%M%S")
        folder = self.folder()
        path, n = folder / f"{name}-{stamp}.png", 2
        while path.exists():
            path, n = folder / f"{name}-{stamp}-{n}.png", n + 1
        write_image(path, np.ascontiguousarray(rgb, dtype=np.uint8))
        self.window.open_image(str(path), generate=generate)
        return path

    def take_photo(self) -> CameraDialog:
        """Open the camera dialog on the window's ``camera_source``; the photo taken becomes the input
        (and is generated at once in demo mode)."""
        w = self.window
        if self.dialog is not None and self.dialog.isVisible():
            return self.dialog
        source = 0 if w.camera_source is None else w.camera_source
        self.dialog = CameraDialog(source, w)
        self.dialog.taken.connect(lambda frame: self.open(frame, "camera", generate=w.demo is not None))
        self.dialog.failed.connect(lambda msg: w.status(msg, error=True))
        if w.demo is not None:
            self.dialog.resize(int(w.width() * 0.7), int(w.height() * 0.7))
        self.dialog.start()
        return self.dialog

    def close(self) -> None:
        if self.dialog is not None:
            self.dialog.feed.stop()
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None
