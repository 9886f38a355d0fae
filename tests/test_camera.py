"""*Take photo*: a short video file written here with OpenCV stands in for the camera.

The preview shows its frames (read in a thread that is not the GUI's), the photo taken is one of
the video's frames exactly (decoded again by an independent ``VideoCapture``), it goes through the
usual preparation and reaches generation (the run history keeps it as the run's photo); a missing
camera index gives one line in the status bar and the action works again afterwards.
"""

from __future__ import annotations

import os
import threading

import numpy as np
import pytest

HAS_DISPLAY = bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
pytestmark = pytest.mark.skipif(not HAS_DISPLAY, reason="needs a display: run under xvfb-run (scripts/test.sh)")


def _write_video(path, frames: int = 12, size=(200, 150)) -> None:
    """A red disc moving across a light grey background (MJPG in AVI: OpenCV's own writer)."""
    import cv2

    w, h = size
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 24, (w, h))
    assert out.isOpened()
    for i in range(frames):
        f = np.full((h, w, 3), 215, np.uint8)
        cv2.circle(f, (70 + 5 * i, 75), 40, (40, 40, 210), -1)   # BGR: red
        out.write(f)
    out.release()


def _frames(path) -> list[np.ndarray]:
    import cv2

    cap = cv2.VideoCapture(str(path))
    got = []
    while True:
        ok, f = cap.read()
        if not ok:
            return got
        got.append(cv2.cvtColor(f, cv2.COLOR_BGR2RGB))


def test_take_photo_from_a_video_file_and_no_camera(qapp, qtbot, tmp_path, monkeypatch, shipped_regressor, capfd):
    import imageio.v3 as iio
    from PyQt6.QtWidgets import QApplication
    from test_gui import _dispose, _release_gl_context, _wait

    import splatgen.core.generator as generator_module
    from splatgen.app.main_window import MainWindow
    from splatgen.app.settings import Settings
    from splatgen.core.render.foreign_context import release_current_egl
    from splatgen.core.runs import Runs

    release_current_egl()                    # an earlier test's headless EGL context would block Qt's GLX one
    monkeypatch.setattr(generator_module, "load_generator", lambda model=None, device="auto": shipped_regressor)
    video = tmp_path / "camera.avi"
    _write_video(video)
    frames = _frames(video)
    assert len(frames) == 12
    settings = Settings.from_file(tmp_path / "settings.ini")
    settings.model = "regressor"
    w = MainWindow(settings, autosave_dir=tmp_path / "runs")
    try:
        w.show()
        _wait(w)
        # no camera at that index: one line, no dialog left open, the action still usable
        w.camera_source = 97
        capfd.readouterr()
        w.acts["take_photo"].trigger()
        dialog = w.captures.dialog
        qtbot.waitUntil(lambda: not dialog.isVisible(), timeout=10000)
        assert w.messages[-1].startswith("No camera 97 could be opened") and "\n" not in w.messages[-1]
        assert "WARN" not in capfd.readouterr().err and w.acts["take_photo"].isEnabled()
        # the video file as the camera
        w.camera_source = str(video)
        w.acts["take_photo"].trigger()
        dialog = w.captures.dialog
        qtbot.waitUntil(lambda: dialog.feed.frames >= 3 and dialog.view.has_image(), timeout=10000)
        assert dialog.feed.reader_thread not in (None, threading.main_thread().ident)
        assert dialog.take.isEnabled() and dialog.isVisible()
        taken = []
        dialog.taken.connect(taken.append)
        dialog.take.click()
        assert not dialog.isVisible() and len(taken) == 1
        assert any(np.array_equal(taken[0], f) for f in frames)      # one of the video's frames, whole
        _wait(w)
        assert w.prepared is not None and w.input_path.endswith(".png")
        np.testing.assert_array_equal(iio.imread(w.input_path), taken[0])
        assert w.prepared.mask_source == "grabcut" and w.prepared.mask.mean() > 0.05   # the disc cut out
        # …and it reaches generation, kept as the run's photo
        w.generate()
        _wait(w)
        assert len(w.store) == 1
        run = Runs(tmp_path / "runs").open(w.store.entries[0].run_id)
        np.testing.assert_array_equal(iio.imread(run.file(run.meta["photo"])), taken[0])
        capture_folder = w.captures.folder()
        QApplication.processEvents()
    finally:
        _dispose(w)
        _release_gl_context()
    assert not capture_folder.exists()                   # the window's captures go with it
