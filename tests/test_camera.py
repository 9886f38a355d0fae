"""Photos from outside the machine: *Take photo* (a camera) and uploads from a phone.

Camera: a short video file written here with OpenCV stands in for the camera. The preview shows its frames (read in a thread that is not the GUI's), the photo taken is one of
the video's frames exactly (decoded again by an independent ``VideoCapture``), it goes through the
usual preparation and reaches generation (the run history keeps it as the run's photo); a missing
camera index gives one line in the status bar and the action works again afterwards.

Phone: the upload page driven in Debian's headless Chromium (selenium): refused without the token,
an oversize file and a non-image refused with a reason, a good photo arrives in the queue (the
same bytes) and becomes the input when picked; the QR code on screen decodes to the address.
"""

from __future__ import annotations

import os
import threading

import numpy as np
import pytest
from _browser import headless_chromium

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


# ---------------------------------------------------------------------- photos from a phone
def test_phone_uploads_through_a_real_browser(qapp, qtbot, tmp_path, monkeypatch, shipped_regressor):
    import cv2
    import imageio.v3 as iio
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    from test_gui import _dispose, _release_gl_context, _wait

    import splatgen.core.generator as generator_module
    from splatgen.app.main_window import MainWindow
    from splatgen.app.settings import Settings
    from splatgen.app.splat_view import qimage_to_array
    from splatgen.core.render.foreign_context import release_current_egl

    release_current_egl()
    monkeypatch.setattr(generator_module, "load_generator", lambda model=None, device="auto": shipped_regressor)
    good = tmp_path / "mug.png"
    img = np.full((120, 160, 4), 0, np.uint8)
    img[30:90, 50:110] = (200, 60, 40, 255)
    iio.imwrite(good, img)
    big = tmp_path / "big.png"
    iio.imwrite(big, np.random.default_rng(0).integers(0, 255, (400, 400, 3), dtype=np.uint8))   # > 300 kB
    assert big.stat().st_size > 300_000
    fake = tmp_path / "fake.png"
    fake.write_text("not a picture at all")
    browser = headless_chromium(monkeypatch)
    w = MainWindow(Settings.from_file(tmp_path / "settings.ini"), autosave_dir=tmp_path / "runs")
    try:
        w.show()
        _wait(w)
        assert w.phone.server is None                                  # off by default
        w.acts["phone"].trigger()
        server = w.phone.start(max_bytes=300_000)
        url = server.url
        assert url.startswith("http://127.0.0.1:") and not server.lan and len(server.token) >= 20
        qr = qimage_to_array(w.phone.qr.pixmap().toImage())
        decoded, _, _ = cv2.QRCodeDetector().detectAndDecode(np.ascontiguousarray(qr[..., :3]))
        assert decoded == url                                          # the code on screen is the address

        def send(path) -> str:
            box = browser.find_element(By.ID, "status")
            browser.execute_script("arguments[0].textContent = ''", box)
            browser.find_element(By.ID, "photo").send_keys(str(path))
            WebDriverWait(browser, 10).until(lambda d: box.text and box.text != "Sending…")
            return box.text

        browser.get(url.split("?")[0])                                 # without the token: refused
        assert "not valid" in browser.find_element(By.TAG_NAME, "body").text
        assert not browser.find_elements(By.ID, "photo")
        browser.get(url)
        assert "too large" in send(big) and "not an image" in send(fake)
        answer = browser.execute_async_script(
            "const done = arguments[0]; fetch('upload', {method: 'POST', body: 'x'})"
            ".then(r => done(r.status)).catch(e => done(String(e)))")
        assert answer == 403                                           # an upload without the token
        qtbot.wait(50)
        assert w.phone.queue == []                                     # none of those arrived
        assert send(good).startswith("Sent")
        qtbot.waitUntil(lambda: len(w.phone.queue) == 1, timeout=5000)
        arrived = w.phone.queue[0]
        assert arrived.read_bytes() == good.read_bytes() and arrived.parent == w.captures.folder()
        w.phone.use(0)                                                 # the presenter picks it
        _wait(w)
        assert w.input_path == str(arrived) and w.prepared is not None and w.phone.queue == []
        w.phone.stop()
        import urllib.error
        import urllib.request

        with pytest.raises(urllib.error.URLError):
            urllib.request.urlopen(url, timeout=2)
    finally:
        browser.quit()
        _dispose(w)
        _release_gl_context()
