"""The desktop app end to end, under a virtual display (scripts/test.sh runs pytest in xvfb-run).

One window for the module (settings in a temporary file, never the user's): an example photo →
3-step samples with the shipped diffusion model → the viewport shows the object (framebuffer
grabbed) → mouse and keys move the camera → modes, background, tiles and the variance map →
resample occluded / painted region with undo and redo → Cancel within a step → exports that read
back → a bad file dropped gives a message and the app goes on.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

HAS_DISPLAY = bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
pytestmark = pytest.mark.skipif(not HAS_DISPLAY, reason="needs a display: run under xvfb-run (scripts/test.sh)")

if HAS_DISPLAY:
    from PyQt6.QtWidgets import QApplication

    if QApplication.instance() is None:
        from splatgen.app.main import configure_opengl

        configure_opengl()

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "assets" / "examples" / "armchair.png"
STEPS = 3


def _close_dialogs() -> None:
    from PyQt6.QtWidgets import QApplication, QMessageBox

    for w in QApplication.topLevelWidgets():
        if isinstance(w, QMessageBox) and w.isVisible():
            w.close()


def _wait(window, timeout=120.0) -> None:
    assert window.wait_idle(timeout), "the worker did not finish in time"
    for _ in range(3):
        QApplication.processEvents()


def _settle(qtbot, view) -> None:
    qtbot.waitUntil(lambda: not view.moving, timeout=3000)
    qtbot.wait(30)


def _object_fraction(img: np.ndarray, bg=(255, 255, 255)) -> float:
    return float((np.abs(img.astype(int) - np.array(bg)).max(-1) > 25).mean())


@contextlib.contextmanager
def qt_messages():
    """The messages Qt prints (warnings, "Ambiguous shortcut overload", …) while the block runs."""
    from PyQt6.QtCore import qInstallMessageHandler

    got: list[str] = []
    previous = qInstallMessageHandler(lambda mode, context, text: got.append(f"{mode.name}: {text}"))
    try:
        yield got
    finally:
        qInstallMessageHandler(previous)


@pytest.fixture(scope="module")
def window(qapp, tmp_path_factory):
    from splatgen.app.main_window import MainWindow
    from splatgen.app.settings import Settings

    folder = tmp_path_factory.mktemp("gui")
    path = folder / "settings.ini"
    with qt_messages() as construction_messages:
        w = MainWindow(Settings.from_file(path), autosave_dir=folder / "autosave")
        w.show()
        QApplication.processEvents()
    w.construction_messages = construction_messages
    w.autosave_root = folder / "autosave"
    w.settings_path = path
    w.resize(1000, 700)
    w.show()
    QApplication.processEvents()
    yield w
    _close_dialogs()
    _dispose(w)
    _release_gl_context()


def _dispose(window) -> None:
    """Close and delete a window now, while the display and its GL contexts still exist."""
    from PyQt6.QtCore import QEvent

    window.close()
    window.deleteLater()
    QApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete.value)
    QApplication.processEvents()


def _release_gl_context() -> None:
    """Leave no Qt (GLX) context current on this thread once the windows are gone: libglvnd refuses
    to make an EGL context current on a thread that has a GLX one, which would break later tests
    that render headless (EGL) from the main thread."""
    from PyQt6.QtGui import QOpenGLContext

    for _ in range(3):
        QApplication.processEvents()
    ctx = QOpenGLContext.currentContext()
    if ctx is not None:
        ctx.doneCurrent()


@pytest.fixture(scope="module")
def generated(window, qapp):
    """The example prepared and 3 samples generated (3 steps each)."""
    w = window
    w.open_image(str(EXAMPLE))
    _wait(w)
    assert w.prepared is not None and w.controls.info is not None
    w.controls.steps.setValue(STEPS)
    w.controls.num_samples.setValue(3)
    w.open_image(str(EXAMPLE))
    _wait(w)
    w.controls.seed.setValue(5)
    w.arrivals, w.progress_seen = [], []
    w.store.inserted.connect(lambda i, e: w.arrivals.append((len(w.store), w.runner.is_running("generate"),
                                                             w.viewport.sample is not None)))
    w.controls.progress.valueChanged.connect(lambda v: w.progress_seen.append((v, w.controls.progress.maximum())))
    w.progress_texts, set_progress = [], w.controls.set_progress
    w.controls.set_progress = lambda d, t, text="": (w.progress_texts.append(text), set_progress(d, t, text))
    t0 = time.perf_counter()
    w.generate()
    _wait(w)
    w.generate_seconds = time.perf_counter() - t0
    QApplication.processEvents()
    return w


def test_example_generates_and_the_viewport_shows_the_object(generated, qtbot):
    w = generated
    assert len(w.store) == 3 and [e.sample.seed for e in w.store.entries] == [5, 6, 7]
    assert w.input_panel.prepared.has_image() and w.input_panel.mask.has_image()
    # the first sample arrives while the others are still being generated, and is shown at once
    assert w.arrivals[0][1] is True
    assert w.gallery.current_entry() is w.store.entries[0]
    assert w.viewport.sample is w.store.entries[0].sample
    # one progress step per denoising step: the first sample alone, then a batch of two
    assert max(v for v, _ in w.progress_seen) == 2 * STEPS and (2 * STEPS, 2 * STEPS) in w.progress_seen
    assert "Generated 3 samples" in w.messages[-1]
    qtbot.wait(50)
    img = w.viewport.grab_array()
    h, wd = img.shape[:2]
    assert _object_fraction(img) > 0.01                                   # the object is drawn
    centre = img[h // 4: 3 * h // 4, wd // 4: 3 * wd // 4]
    assert _object_fraction(centre) > 4 * _object_fraction(img[: h // 8])  # where the object is
    lines = w.viewport.overlay_lines()
    assert "FPS" in lines[0] and "32,768 splats" in lines[0]
    # progress in words: which sample, which step; the gallery names the photo, the tooltip the seed
    assert f"sample 1 of 3 · step {STEPS}/{STEPS}" in w.progress_texts
    assert f"samples 2–3 of 3 · step {STEPS}/{STEPS}" in w.progress_texts
    item = w.gallery.item(0)
    assert item.text().splitlines() == ["armchair", "seed 5"] and "seed 5" in item.toolTip()
    # every sample is autosaved as it arrives
    saved = sorted(p.name for p in w.autosave_root.glob("*/*.ply"))
    from splatgen.app.tasks import Autosave

    tag = Autosave.settings_tag(w.store.entries[0].sample)
    assert saved == [f"armchair-seed{k}-{tag}.ply" for k in (5, 6, 7)]


def test_mouse_and_keys_move_the_camera(generated, qtbot):
    from PyQt6.QtCore import QPoint, QPointF, Qt
    from PyQt6.QtGui import QWheelEvent
    from PyQt6.QtTest import QTest

    w, vp = generated, generated.viewport
    vp.reset_camera()
    _settle(qtbot, vp)
    before = w.screenshot()
    az = vp.camera.azimuth
    c = QPoint(vp.width() // 2, vp.height() // 2)
    vp.frame_times.clear()
    QTest.mousePress(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, c)
    for dx in range(10, 130, 10):
        QTest.mouseMove(vp, c + QPoint(dx, 0))
        QApplication.processEvents()
    QTest.mouseRelease(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, c + QPoint(120, 0))
    assert vp.moving
    assert vp.camera.azimuth != pytest.approx(az)
    if vp.full_ms and vp.full_ms > 33:       # slow renderer: frames during the drag were smaller
        assert any(scale < 1 for _, scale in vp.frame_times)
    _settle(qtbot, vp)
    after = w.screenshot()
    assert vp.frame_times[-1][1] == 1.0                                   # full resolution again
    assert np.abs(after.astype(int) - before.astype(int)).max(-1).__gt__(40).mean() > 0.005
    # right drag pans, the wheel zooms
    target = vp.camera.target.copy()
    QTest.mousePress(vp, Qt.MouseButton.RightButton, Qt.KeyboardModifier.NoModifier, c)
    QTest.mouseMove(vp, c + QPoint(30, 20))
    QTest.mouseRelease(vp, Qt.MouseButton.RightButton, Qt.KeyboardModifier.NoModifier, c + QPoint(30, 20))
    assert np.linalg.norm(vp.camera.target - target) > 1e-3
    d = vp.camera.distance
    wheel = QWheelEvent(QPointF(c), QPointF(vp.mapToGlobal(c)), QPoint(0, 0), QPoint(0, 240), Qt.MouseButton.NoButton,
                        Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(vp, wheel)
    assert vp.camera.distance < d
    # keys: arrows orbit, F frames, R goes back to the input camera
    vp.setFocus()
    az = vp.camera.azimuth
    QTest.keyClick(vp, Qt.Key.Key_Left)
    assert vp.camera.azimuth != pytest.approx(az)
    w.acts["frame"].trigger()
    assert np.linalg.norm(vp.camera.target) < 0.3
    w.acts["reset"].trigger()
    np.testing.assert_allclose(vp.camera.viewmat(), vp.sample.input_viewmat.double().numpy(), atol=1e-5)
    _settle(qtbot, vp)
    np.testing.assert_allclose(w.screenshot(), before, atol=2)      # same camera, same picture


def test_orbit_follows_the_view_size_and_a_new_photo_starts_at_its_input_view(generated, qtbot):
    from PyQt6.QtCore import QPoint, Qt
    from PyQt6.QtTest import QTest

    from splatgen.app.orbit_camera import ORBIT_DEG_PER_VIEW

    w, vp = generated, generated.viewport
    vp.reset_camera()
    input_view = vp.camera.viewmat()
    el = vp.camera.elevation
    c = QPoint(vp.width() // 2, vp.height() // 4)
    QTest.mousePress(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, c)
    for dy in range(10, 170, 10):
        QTest.mouseMove(vp, c + QPoint(0, dy))
        QApplication.processEvents()
    QTest.mouseRelease(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, c + QPoint(0, 160))
    turned = vp.camera.elevation - el
    assert turned == pytest.approx(160 / min(vp.width(), vp.height()) * ORBIT_DEG_PER_VIEW, rel=0.05)
    assert vp.camera.elevation < 80                      # short of top-down (from the photo's estimated elevation)
    w.open_image(str(EXAMPLE.with_name("bar_stool.png")))
    _wait(w)
    np.testing.assert_allclose(vp.camera.viewmat(), input_view, atol=1e-6)   # back to the input view
    w.open_image(str(EXAMPLE))
    _wait(w)


def test_no_qt_messages_and_every_shortcut_fires(generated, qtbot):
    """Nothing on the terminal while the window is built; no key is bound twice (Qt then calls it
    an ambiguous overload and fires nothing); Ctrl+Z undoes, Ctrl+Shift+Z redoes."""
    from PyQt6.QtCore import Qt
    from PyQt6.QtGui import QAction
    from PyQt6.QtTest import QTest

    from splatgen.app.samples import RemoveCommand

    w = generated
    assert w.construction_messages == []
    bound: dict[str, str] = {}
    for a in w.findChildren(QAction):
        for k in a.shortcuts():
            key = k.toString()
            assert key not in bound, (key, bound.get(key), a.objectName())
            bound[key] = a.objectName()
    assert {"Ctrl+Z", "Ctrl+Shift+Z"} <= set(bound) and bound["Ctrl+Shift+Z"] == "redo"
    entry = w.store.entries[-1]
    w.undo_stack.push(RemoveCommand(w.store, [entry]))
    w.raise_()
    w.activateWindow()
    qtbot.waitUntil(w.isActiveWindow, timeout=3000)  # shortcuts go to the active window
    w.gallery.setFocus()
    ctrl, shift = Qt.KeyboardModifier.ControlModifier, Qt.KeyboardModifier.ShiftModifier
    with qt_messages() as messages:
        for key, mods, present in ((Qt.Key.Key_Z, ctrl, True), (Qt.Key.Key_Z, ctrl | shift, False),
                                   (Qt.Key.Key_Z, ctrl, True)):
            QTest.keyClick(w.gallery, key, mods)
            QApplication.processEvents()
            assert (w.store.index_of(entry) >= 0) is present, (key, mods)
    assert messages == []


def test_modes_and_background(generated, qtbot):
    w, vp = generated, generated.viewport
    rgb = vp.grab_array()
    w.set_mode("alpha")
    qtbot.wait(20)
    alpha = vp.grab_array()
    assert alpha[0, 0].max() < 10 and alpha.max() > 240                 # black around, white object
    w.set_mode("depth")
    qtbot.wait(20)
    depth = vp.grab_array()
    assert not np.array_equal(depth, rgb) and not np.array_equal(depth, alpha)
    w.set_mode("rgb")
    w.choose_background("#000000")
    qtbot.wait(20)
    dark = vp.grab_array()
    assert dark[0, 0].max() < 10 and _object_fraction(dark, (0, 0, 0)) > 0.01
    w.choose_background("#ffffff")
    assert w.settings.background == "#ffffff" and w.settings.mode == "rgb"


def test_observed_and_spread_modes_colour_the_splats(generated, qtbot):
    """Observed / invented: each splat green as far as the photo shows it, magenta where invented; spread:
    the ramp over the three samples of one Generate; RGB afterwards as before."""
    import torch

    from splatgen.app.value_colours import INVENTED, SEEN
    from splatgen.core.gaussians import SH_C0
    from splatgen.core.provenance import observed, spread

    w, vp = generated, generated.viewport
    entry = w.store.entries[0]
    w.gallery.show_entry(entry)
    rgb = vp.grab_array().astype(int)
    s = entry.sample
    w.set_mode("observed")
    qtbot.wait(30)
    shown = vp._shown()
    o = observed(s.gaussians, s.input_viewmat, s.K, s.image_size)[:, None]
    torch.testing.assert_close(shown.sh[:, 0] * SH_C0 + 0.5, o * SEEN + (1 - o) * INVENTED, atol=1e-4, rtol=0)
    front = vp.grab_array().astype(int)
    obj = np.abs(front - 255).sum(-1) > 30
    green = (np.abs(front - np.array([38, 204, 77])).sum(-1) < 150) & obj
    assert green.sum() > 0.4 * obj.sum()                     # from the photo's side, the photo's splats
    w.set_mode("spread")
    qtbot.wait(30)
    v = spread([e.sample.gaussians for e in w.store.entries[:3]])
    assert float(v.max()) > 0 and not np.array_equal(vp.grab_array(), front)
    w.set_mode("rgb")
    qtbot.wait(30)
    assert np.abs(vp.grab_array().astype(int) - rgb).mean() < 2


def test_tiles_and_variance_heatmap(generated, qtbot):
    w = generated
    w.acts["tiled"].setChecked(True)
    tiles = w.tiles
    qtbot.waitUntil(lambda: tiles.heat_values is not None, timeout=10000)
    assert len(tiles.entries) == 3 and tiles.show_heat()
    assert tiles.heat_vmax > 0 and tiles.heat_values.max() > 0
    img = tiles.grab_array()
    assert _object_fraction(img, (41, 41, 41)) > 0.2
    # select two samples in the gallery: the tiles show those two
    w.gallery.clearSelection()
    w.gallery.item(0).setSelected(True)
    w.gallery.item(2).setSelected(True)
    assert [s.seed for _, s in tiles.entries] == [5, 7]
    w.gallery.clearSelection()
    w.gallery.setCurrentRow(0)
    w.acts["tiled"].setChecked(False)
    assert w.view_stack.currentWidget() is w.viewport


def test_sixteen_tiles_match_direct_renders_and_order_by_disagreement(generated, qtbot):
    """16 small made-up samples selected in the gallery: each tile of the view holds its sample's own
    render from the shared camera; *Order by disagreement* puts the deliberately different one first,
    every label giving its seed and score; off again, the gallery's order comes back."""
    import dataclasses

    import torch

    from splatgen.app.samples import InputRecord, SampleEntry
    from splatgen.core.gaussians import random_gaussians
    from splatgen.core.generator.base import GenerationSettings, Sample, input_camera
    from splatgen.core.render import render

    w, tiles = generated, generated.tiles
    base = random_gaussians(300, seed=0)
    balls = [dataclasses.replace(base, sh=base.sh + 0.05 * torch.randn(base.sh.shape, generator=torch.Generator()
                                                                        .manual_seed(k))) for k in range(16)]
    balls[9] = random_gaussians(200, seed=7, radius=0.3, center=(0.15, 0.1, 0.0))     # the odd one
    vm, K = input_camera()
    entries = [SampleEntry(Sample(g, vm, K, 100 + k, GenerationSettings(seed=100 + k), "test"),
                           np.zeros((8, 8, 3), np.uint8), InputRecord(None, "balls"), "test", stochastic=False, run=999)
               for k, g in enumerate(balls)]
    for e in entries:
        w.store.insert(e)
    try:
        w.gallery.clearSelection()
        for e in entries:
            w.gallery.item_of(e).setSelected(True)
        w.acts["tiled"].setChecked(True)
        w.acts["overlay"].setChecked(False)               # the labels and FPS line off the pixels compared
        assert [s for _, s in tiles.entries] == [e.sample for e in entries]
        tiles.reset_camera()
        tiles.camera.orbit_degrees(35.0, 10.0)
        tiles.camera_moved(settle=False)
        qtbot.wait(30)
        img = tiles.grab_array().astype(np.float64) / 255.0
        assert len(tiles.rects) == 17                      # 16 samples and the variance map
        view = torch.from_numpy(tiles.camera.viewmat()).float()
        for e, (x, y, tw, th) in zip(entries, tiles.rects):
            own = render(e.sample.gaussians, view, torch.from_numpy(tiles.camera.intrinsics(tw, th)).float(), tw, th,
                         backend="gl", background=tiles.background).rgb[0].numpy()
            assert 10 * np.log10(1.0 / ((img[y:y + th, x:x + tw] - own) ** 2).mean()) >= 35, e.sample.seed
        w.acts["order"].setChecked(True)
        _wait(w)                                           # scored on the io worker
        labels = [label for label, _ in tiles.entries]
        assert tiles.entries[0][1] is entries[9].sample and labels[0].startswith("seed 109 · Δ ")
        assert sorted(int(label.split()[1]) for label in labels) == list(range(100, 116))
        scores = [float(label.split("Δ ")[1]) for label in labels]
        assert scores == sorted(scores, reverse=True) and scores[0] > 2 * scores[1]
        assert "most unusual first: seed 109" in w.messages[-1]
        w.acts["order"].setChecked(False)
        assert [s for _, s in tiles.entries] == [e.sample for e in entries]
    finally:
        w.acts["order"].setChecked(False)
        w.acts["overlay"].setChecked(True)
        for e in entries:
            w.store.remove(e)
        w.gallery.clearSelection()
        w.gallery.setCurrentRow(0)
        w.acts["tiled"].setChecked(False)
        tiles.reset_camera()


def test_resample_occluded_with_undo_and_redo(generated, qtbot):
    w = generated
    w.gallery.setCurrentRow(0)
    entry = w.current_entry()
    old = entry.sample
    w.resample_occluded()
    _wait(w)
    new = entry.sample
    assert new is not old and new.seed != old.seed and new.info["region"] == "occluded"
    assert new.info["input_view_psnr"] > 30                       # the visible side stays
    assert w.viewport.sample is new and entry.resampled == 1
    # said plainly, and the progress label does not stay on the last step
    assert "dB" not in w.messages[-1] and "hidden side" in w.messages[-1]
    assert "step" not in w.controls.status.text() and "Done" in w.controls.status.text()
    assert w.gallery.item(0).text().splitlines()[1].endswith("↻1")
    w.undo_stack.undo()
    assert entry.sample is old and w.viewport.sample is old
    w.undo_stack.redo()
    assert entry.sample is new
    from splatgen.app.tasks import Autosave

    assert list(w.autosave_root.glob(f"*/armchair-seed{new.seed}-{Autosave.settings_tag(new)}-r1.ply"))


def test_resample_a_painted_region(generated, qtbot):
    from PyQt6.QtCore import QPoint, Qt
    from PyQt6.QtTest import QTest

    w, vp = generated, generated.viewport
    w.gallery.setCurrentRow(1)
    entry = w.current_entry()
    vp.reset_camera()
    w.acts["brush"].setChecked(True)
    assert vp.brush_mode and not w.acts["resample_brush"].isEnabled()
    c = QPoint(vp.width() // 2, vp.height() // 2)
    QTest.mousePress(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, c)
    for dy in range(0, 60, 8):
        QTest.mouseMove(vp, c + QPoint(0, dy))
    QTest.mouseRelease(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, c + QPoint(0, 56))
    req = vp.brush_request()
    assert req is not None and req[0].sum() > 100 and w.acts["resample_brush"].isEnabled()
    old, depth = entry.sample, w.undo_stack.count()
    w.resample_painted()
    _wait(w)
    assert entry.sample is not old and entry.sample.info["region"] == "mask"
    assert 0 < entry.sample.info["redrawn_splats"] < old.gaussians.num_gaussians
    assert w.undo_stack.count() == depth + 1 and not vp.has_brush
    w.acts["brush"].setChecked(False)
    assert not vp.brush_mode


def test_cancel_stops_within_one_step(generated, qtbot):
    w = generated
    n = len(w.store)
    w.controls.steps.setValue(400)
    w.controls.num_samples.setValue(1)
    stamps = []
    w.controls.progress.valueChanged.connect(lambda v: stamps.append(time.perf_counter()))
    w.generate()
    qtbot.waitUntil(lambda: w.controls.progress.value() >= 3, timeout=30000)
    # another image is prepared meanwhile: image work does not wait for the model
    w.open_image(str(EXAMPLE.with_name("bar_stool.png")))
    qtbot.waitUntil(lambda: w.input_path.endswith("bar_stool.png"), timeout=20000)
    assert w.runner.is_running("generate")
    step = max(b - a for a, b in zip(stamps[-3:], stamps[-2:]))
    t0 = time.perf_counter()
    w.controls.cancel.click()
    _wait(w)
    took = time.perf_counter() - t0
    assert took < 2 * step + 1.0, (took, step)
    assert len(w.store) == n and "Cancelled" in w.messages[-1]
    assert w.controls.generate.isEnabled() and not w.controls.cancel.isEnabled()
    w.controls.steps.setValue(STEPS)
    w.controls.num_samples.setValue(3)
    w.open_image(str(EXAMPLE))
    _wait(w)


def test_exports_read_back(generated, tmp_path):
    import imageio.v3 as iio

    from splatgen.core.export import visible_splats
    from splatgen.core.io import load_splats

    w = generated
    w.gallery.setCurrentRow(0)
    sample = w.current_entry().sample
    w.export_sample(str(tmp_path / "s.ply"))
    w.export_sample(str(tmp_path / "s.splat"))
    w.save_screenshot(str(tmp_path / "shot.png"))
    w.export_contact_sheet(str(tmp_path / "sheet.png"))
    w.export_turntable(str(tmp_path / "turn.mp4"), frames=6, size=64)
    _wait(w)
    assert not w.errors or w.errors[-1].title != "Export failed"
    ply = load_splats(tmp_path / "s.ply")
    assert ply.num_gaussians == visible_splats(sample.gaussians).num_gaussians > 1000
    assert load_splats(tmp_path / "s.splat").num_gaussians == ply.num_gaussians
    shot = iio.imread(tmp_path / "shot.png")
    assert shot.shape[:2] == w.viewport.grab_array().shape[:2] and _object_fraction(shot[..., :3]) > 0.01
    assert iio.imread(tmp_path / "sheet.png").shape == (3 * 128, 6 * 128, 3)
    assert any((tmp_path / f).is_file() and (tmp_path / f).stat().st_size > 0 for f in ("turn.mp4", "turn.gif"))
    assert any("Saved" in m for m in w.messages[-5:])


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


def test_turntable_dialog_tiles_the_selected_samples_and_a_cancel_leaves_nothing(generated, qtbot, tmp_path):
    import imageio_ffmpeg
    import torch

    from splatgen.app.render_export import NO_ALPHA_NOTE, TurntableDialog
    from splatgen.core.cameras import canonical_intrinsics, orbit_viewmat
    from splatgen.core.render import render

    w = generated
    w.gallery.clearSelection()
    entries = [w.gallery.entry(w.gallery.item(i)) for i in range(3)]
    for i in range(3):
        w.gallery.item(i).setSelected(True)
    w.acts["export_turntable"].trigger()
    d = w.exports.dialog
    assert isinstance(d, TurntableDialog) and d.isVisible()
    assert d.samples.currentText() == "The selected samples (3)"
    d.frames.setValue(6)
    d.seconds.setValue(1.5)
    assert d.fps.text() == "= 4 fps"
    d.elevation.setValue(30.0)
    d.set_size(192, 64)
    d.format_box.setCurrentIndex(d.format_box.findData(".mp4"))
    assert not d.transparent.isEnabled() and d.alpha_note.text() == NO_ALPHA_NOTE    # MP4: said, not offered
    d.path_edit.setText(str(tmp_path / "three"))
    assert d.path() == str(tmp_path / "three.mp4")
    d.export_button.click()
    _wait(w)
    assert not d.isVisible() and "Saved a turntable (6 frames, 192x64, 4 fps, 3 tiles)" in w.messages[-1]
    reader = imageio_ffmpeg.read_frames(str(tmp_path / "three.mp4"))
    next(reader)
    frames = [np.frombuffer(b, np.uint8).reshape(64, 192, 3) for b in reader]
    assert len(frames) == 6
    vm = orbit_viewmat(0.0, 30.0, 2.0)
    for k, e in enumerate(entries):                  # tile k: sample k at the orbit's first camera
        with torch.no_grad():
            ref = render(e.sample.gaussians, vm[None], canonical_intrinsics(64), 64, 64,
                         background=w.viewport.background).rgb[0]
        ref = (ref.clamp(0, 1) * 255 + 0.5).to(torch.uint8).numpy()
        got = frames[0][:, 64 * k:64 * (k + 1)]
        assert _psnr(got, ref) >= 28, k
        assert _psnr(frames[3][:, 64 * k:64 * (k + 1)], got) < _psnr(got, ref) - 3, k   # half-way: another side
    # a long one, cancelled once it has started: nothing is written, the dialog says so and stays
    w.acts["export_turntable"].trigger()
    d = w.exports.dialog
    assert d.frames.value() == 6 and d.chosen_size() == (192, 64)        # the last choices
    d.frames.setValue(400)
    d.seconds.setValue(20.0)
    d.set_size(384, 128)
    d.format_box.setCurrentIndex(d.format_box.findData(".webm"))
    assert d.transparent.isEnabled()
    d.transparent.setChecked(True)
    d.path_edit.setText(str(tmp_path / "long.webm"))
    d.export_button.click()
    qtbot.waitUntil(lambda: d.progress.value() > 0, timeout=30000)
    assert d.cancel_button.text() == "Cancel" and not d.export_button.isEnabled()
    d.cancel_button.click()
    _wait(w)
    assert d.isVisible() and "Cancelled" in d.message.text() and "Cancelled the turntable" in w.messages[-1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["three.mp4"]          # no file, no temporary file
    d.close()
    w.gallery.clearSelection()


def test_screenshot_dialog_renders_the_view_at_any_size_with_alpha(generated, qtbot, tmp_path):
    from PIL import Image

    from splatgen.app.render_export import ScreenshotDialog

    w = generated
    w.gallery.setCurrentRow(0)
    w.viewport.reset_camera()
    w.acts["screenshot"].trigger()
    d = w.exports.dialog
    assert isinstance(d, ScreenshotDialog) and d.preset.currentText().startswith("The view (")
    d.format_box.setCurrentIndex(d.format_box.findData(".jpg"))
    assert not d.transparent.isEnabled()                                  # JPEG keeps no alpha
    d.format_box.setCurrentIndex(d.format_box.findData(".png"))
    d.set_size(640, 360)
    d.transparent.setChecked(True)
    d.path_edit.setText(str(tmp_path / "shot.png"))
    d.export_button.click()
    _wait(w)
    assert not d.isVisible() and "640×360 screenshot, transparent" in w.messages[-1]
    im = Image.open(tmp_path / "shot.png")
    assert im.mode == "RGBA" and im.size == (640, 360)
    px = np.asarray(im)
    assert all(px[y, x, 3] == 0 for y in (0, -1) for x in (0, -1))        # nothing in the corners
    assert px[150:210, 290:350, 3].max() > 200 and 0.02 < (px[..., 3] > 0).mean() < 0.9   # the object


def test_bad_file_dropped_gives_a_message_and_the_app_goes_on(generated, qtbot, tmp_path):
    from PyQt6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
    from PyQt6.QtGui import QDragEnterEvent, QDropEvent

    w = generated
    bad = tmp_path / "not_an_image.png"
    bad.write_text("this is not a picture")
    prepared, errors = w.prepared, len(w.errors)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(bad))])
    pos = QPoint(w.viewport.width() // 2, w.viewport.height() // 2)
    enter = QDragEnterEvent(pos, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(w.viewport, enter)
    assert enter.isAccepted()
    drop = QDropEvent(QPointF(pos), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(w.viewport, drop)
    _wait(w)
    assert len(w.errors) == errors + 1 and w.errors[-1].title == "Cannot use this image"
    assert "not_an_image.png" in w.errors[-1].text and w.errors[-1].hint
    assert "Cannot use this image" in w.messages[-1]
    assert w.prepared is prepared                     # the previous input is still there
    _close_dialogs()
    # a missing model: a message saying what to do, then back to a working model
    w.generation.select_model("no_such_model")
    _wait(w)
    assert w.errors[-1].title == "Model missing or damaged" and "install" in w.errors[-1].hint
    _close_dialogs()
    w.controls.model.setCurrentIndex(w.controls.model.findData("regressor"))
    _wait(w)
    assert w.controls.info.key == "regressor" and not w.controls.num_samples.isEnabled()
    assert not w.controls.strength.isEnabled()
    n = len(w.store)
    w.generate()
    _wait(w)
    assert len(w.store) == n + 1 and not w.acts["resample"].isEnabled()   # deterministic: nothing to resample
    w.controls.model.setCurrentIndex(w.controls.model.findData("diffusion"))
    _wait(w)
    assert w.isVisible()


def test_an_image_dropped_on_any_widget_opens(generated):
    from PyQt6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
    from PyQt6.QtGui import QDragEnterEvent, QDropEvent

    w = generated
    sofa = EXAMPLE.with_name("sofa.png")
    seed = w.controls.seed.value()
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(sofa))])
    target = w.controls.seed                       # a text field: it must not swallow the drop
    enter = QDragEnterEvent(QPoint(5, 5), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(target, enter)
    QApplication.sendEvent(target, QDropEvent(QPointF(5, 5), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                                              Qt.KeyboardModifier.NoModifier))
    _wait(w)
    assert w.input_path == str(sofa) and w.controls.seed.value() == seed
    assert w.windowTitle().startswith("sofa.png")
    w.open_image(str(EXAMPLE))
    _wait(w)
    assert w.input_path == str(EXAMPLE)


def test_a_splat_file_dropped_opens_as_a_sample_to_orbit_and_export(generated, tmp_path):
    """A .spz (any splat format) dropped on the window is a gallery entry shown in the viewport; it
    exports in another format with the same splats; a photo opened afterwards is unaffected."""
    from PyQt6.QtCore import QMimeData, QPointF, Qt, QUrl
    from PyQt6.QtGui import QDropEvent

    from splatgen.core.io import load_splats, save_splats

    w = generated
    bear = load_splats(EXAMPLE.parent / "teddy_bear.ply")
    save_splats(tmp_path / "bear.spz", bear)
    before = len(w.store)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(tmp_path / "bear.spz"))])
    w.dropEvent(QDropEvent(QPointF(5, 5), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                           Qt.KeyboardModifier.NoModifier))
    _wait(w)
    assert len(w.store) == before + 1
    entry = w.gallery.current_entry()
    assert entry.source.path == str(tmp_path / "bear.spz") and not entry.stochastic
    assert w.viewport.sample is entry.sample and entry.sample.gaussians.num_gaussians == bear.num_gaussians
    assert "20,000 splats" in w.messages[-1]
    assert _object_fraction(w.viewport.grab_array()) > 0.01
    w.exports.export_sample(str(tmp_path / "again.ply"))
    _wait(w)
    from scipy.spatial import cKDTree

    again = load_splats(tmp_path / "again.ply").means.numpy()  # SPZ may reorder splats: compare as sets
    assert len(again) == bear.num_gaussians and cKDTree(bear.means.numpy()).query(again)[0].max() < 2e-3
    w.store.remove(entry)


def test_show_in_browser(generated):
    w = generated
    w.gallery.setCurrentRow(0)
    w.show_in_browser()
    _wait(w, 60)
    try:
        assert w.browser is not None and w.browser.url.startswith("http://127.0.0.1:")
        assert "Browser viewer at" in w.messages[-1]
        e = w.current_entry()
        name, content = w.browser.download_bytes(".ply")     # what the page's Download .ply sends
        assert name == f"armchair-seed{e.sample.seed}.ply" and content.startswith(b"ply\n")
    finally:
        if w.browser is not None:
            w.browser.stop()
            w.browser = None


def test_uncaught_exceptions_become_a_dialog_not_a_traceback(generated, capsys):
    from splatgen.app import errors

    saved = sys.excepthook, __import__("threading").excepthook
    try:
        errors.install_excepthook(lambda: generated)
        shown = len(errors._shown)
        try:
            raise RuntimeError("something broke")
        except RuntimeError:
            sys.excepthook(*sys.exc_info())
        assert len(errors._shown) == shown + 1 and errors._shown[-1].internal
        assert "Traceback" not in capsys.readouterr().err
    finally:
        sys.excepthook, __import__("threading").excepthook = saved
        _close_dialogs()


def test_file_names_that_look_like_html_are_shown_as_written(generated, tmp_path):
    """Qt reads text that looks like HTML as rich text: a photo's name never is."""
    import shutil

    from PyQt6.QtCore import Qt
    from PyQt6.QtWidgets import QMessageBox

    w = generated
    name = "<h1>big<b>&amp<img src='x.png'>"          # (no '/' in a file name)
    photo = tmp_path / f"{name}.png"
    shutil.copy(EXAMPLE, photo)
    w.open_image(str(photo))
    _wait(w)
    assert w.input_path == str(photo)
    info = w.input_panel.info
    assert "&lt;h1&gt;big&lt;b&gt;&amp;amp" in info.text() and "<h1>" not in info.text()
    assert "&lt;h1&gt;" in info.toolTip() and "<h1>" not in info.toolTip()
    bad = tmp_path / f"{name}-bad.png"
    bad.write_text("not a picture")
    w.open_image(str(bad))
    _wait(w)
    boxes = [b for b in QApplication.topLevelWidgets() if isinstance(b, QMessageBox) and b.isVisible()]
    assert boxes and all(b.textFormat() == Qt.TextFormat.PlainText for b in boxes) and name in boxes[-1].text()
    _close_dialogs()
    w.open_image(str(EXAMPLE))
    _wait(w)


def test_generated_views_strip_shows_a_multi_view_samples_views_and_turns_the_camera(window, qtbot, tmp_path):
    """A tiny multi-view generator's sample (as in test_multiview.py): the strip under the viewport shows
    its N views composited over the background, labelled with their azimuths; clicking view k turns the
    camera to its camera; a sample without views hides the strip and disables *Generated views*."""
    from dataclasses import replace

    from PyQt6.QtCore import Qt
    from PyQt6.QtGui import QImage
    from test_multiview import write_model_folder

    from splatgen.app.samples import InputRecord, SampleEntry
    from splatgen.core.generator import GenerationSettings, load_generator

    w, strip = window, window.generated_views
    gen = load_generator(write_model_folder(tmp_path / "model"), device="cpu")
    image = torch_rand_image()
    sample = gen.generate(image, GenerationSettings(num_samples=1, seed=7))[0]
    views, vms = sample.info["views"].numpy(), sample.info["view_viewmats"].numpy()
    n = len(views)
    plain = replace(sample, info={})                    # what the regressor's samples look like: no views
    thumb = np.zeros((32, 32, 3), np.uint8)
    entries = [SampleEntry(s, thumb, InputRecord(image, "mv-test"), "multi-view", run=w.generation.new_run())
               for s in (sample, plain)]
    old_background = w.settings.background
    try:
        w.choose_background("#3366cc")
        for e in entries:
            w.store.insert(e)
        w.gallery.show_entry(entries[0])
        QApplication.processEvents()
        assert w.acts["views"].isEnabled() and w.acts["views"].isChecked()
        assert strip.isVisible() and len(strip.buttons) == n == 3
        bg = np.array([0x33, 0x66, 0xcc]) / 255.0
        expected = views[:, :3] * views[:, 3:] + bg[None, :, None, None] * (1 - views[:, 3:])
        expected = expected.transpose(0, 2, 3, 1) * 255.0
        for k, b in enumerate(strip.buttons):
            assert b.isVisible() and b.text() == f"{360 * k / n:.0f}°"
            size = views.shape[-1]
            img = b.icon().pixmap(size, size).toImage().convertToFormat(QImage.Format.Format_RGB888)
            assert (img.width(), img.height()) == (size, size)
            got = np.frombuffer(img.constBits().asstring(img.sizeInBytes()), np.uint8)
            got = got.reshape(size, img.bytesPerLine())[:, : size * 3].reshape(size, size, 3)
            assert np.abs(got - expected[k]).mean() < 2.0, k
        for k in (2, 1, 0):
            qtbot.mouseClick(strip.buttons[k], Qt.MouseButton.LeftButton)
            d = (w.camera.azimuth - 360.0 * k / n + 180.0) % 360.0 - 180.0
            assert abs(d) < 1e-3, (k, w.camera.azimuth)
            np.testing.assert_allclose(w.camera.viewmat(), vms[k], atol=1e-4)   # the view's own camera
        w.acts["views"].setChecked(False)                # the toggle hides it and is remembered
        assert not strip.isVisible() and not w.settings.generated_views
        w.acts["views"].setChecked(True)
        assert strip.isVisible() and w.settings.generated_views
        w.gallery.show_entry(entries[1])                 # no views: hidden, toggle disabled
        QApplication.processEvents()
        assert not strip.isVisible() and not w.acts["views"].isEnabled() and not strip.buttons
    finally:
        for e in entries:
            w.store.remove(e)
        w.choose_background(old_background)
        QApplication.processEvents()


def torch_rand_image():
    """A (4, 128, 128) RGBA input for the tiny generator."""
    import torch

    return torch.rand(4, 128, 128, generator=torch.Generator().manual_seed(0))


def test_settings_are_remembered_by_the_next_window(generated, qtbot):
    from splatgen.app.main_window import MainWindow
    from splatgen.app.settings import Settings

    w = generated
    w.controls.guidance.setValue(2.75)
    assert w.controls.strength.isEnabled()  # the shipped diffusion model has a teacher to start from
    w.controls.strength.setValue(0.6)
    assert w.controls.settings().strength == pytest.approx(0.6)
    assert w.controls.settings().colour_match is True        # on by default
    w.controls.colour_match.setChecked(False)
    assert w.controls.settings().colour_match is False
    w.settings.set_generation("diffusion", w.controls.values())
    w.settings.sync()
    again = MainWindow(Settings.from_file(w.settings_path), autosave_dir=None)
    try:
        _wait(again)
        assert again.controls.info.key == "diffusion"
        assert again.controls.guidance.value() == pytest.approx(2.75)
        assert again.controls.strength.value() == pytest.approx(0.6)
        assert not again.controls.colour_match.isChecked()
        assert again.controls.values() == w.controls.values()
        assert str(EXAMPLE.resolve()) in again.settings.recent_files()
        assert [a.text() for a in again.recent_menu.actions()][0] == EXAMPLE.name
    finally:
        _dispose(again)


def test_photo_camera_sliders_preview_record_and_are_remembered_per_photo(generated, qtbot):
    """The elevation starts at the estimate (auto); moving its slider redraws the guide on the model
    input, leaves auto, and the next sample records that elevation, its input camera there (R goes
    back to it); another photo starts at its own estimate, the first keeps its setting; Auto returns."""
    from splatgen.core import photo_camera

    w = generated
    panel = w.input_panel
    assert panel.elevation_auto and panel.camera_setting() == (None, 40.0)
    estimate = photo_camera.estimate_elevation(w.prepared.image)
    assert panel.camera_values()[0] == pytest.approx(estimate.elevation_deg, abs=0.05)
    before = panel.prepared._pixmap.toImage()
    panel.elevation_slider.setValue(35)
    assert not panel.elevation_auto and panel.camera_setting() == (35.0, 40.0)
    assert not panel.elevation_auto_button.isChecked()
    assert panel.prepared._pixmap.toImage() != before  # the guide moved
    panel.fov_slider.setValue(60)
    assert panel.camera_setting() == (35.0, 60.0)
    n = len(w.store)
    w.controls.num_samples.setValue(1)
    w.generate()
    _wait(w)
    sample = w.store.entries[-1].sample
    assert len(w.store) == n + 1
    assert sample.info["camera"]["elevation_deg"] == 35.0 and sample.info["camera"]["elevation_source"] == "set"
    assert sample.settings.fov == 60.0 and any("40° field of view" in t for t in sample.info["notices"])
    w.gallery.show_entry(w.store.entries[-1])
    w.viewport.reset_camera()
    assert w.viewport.camera.elevation == pytest.approx(35.0, abs=1e-3)
    # per photo: another one starts in auto, coming back restores 35° / 60°
    w.open_image(str(EXAMPLE.with_name("bar_stool.png")))
    _wait(w)
    assert panel.elevation_auto and panel.camera_setting() == (None, 40.0)
    w.open_image(str(EXAMPLE))
    _wait(w)
    assert panel.camera_setting() == (35.0, 60.0)
    guide_on = panel.prepared._pixmap.toImage()
    panel.camera_guide.setChecked(False)
    assert panel.prepared._pixmap.toImage() != guide_on
    panel.camera_guide.setChecked(True)
    panel.elevation_auto_button.click()
    panel.fov_reset.click()
    assert panel.elevation_auto and panel.camera_setting() == (None, 40.0)
    assert panel.camera_values()[0] == pytest.approx(estimate.elevation_deg, abs=0.05)
    w.controls.num_samples.setValue(3)


def test_entry_points():
    out = subprocess.run([sys.executable, str(ROOT / "main.py"), "--help"], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0 and "--generate" in out.stdout and "IMAGE" in out.stdout.upper()
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    out = subprocess.run([sys.executable, "-m", "splatgen.app.main", str(EXAMPLE)], capture_output=True, text=True,
                         timeout=60, env=env)
    assert out.returncode == 2 and "no display" in out.stderr and "Traceback" not in out.stderr


_NO_GL_SCRIPT = r"""
import json, sys, time
from pathlib import Path
from splatgen.app.main import make_application
app = make_application()
from splatgen.app.main_window import MainWindow
from splatgen.app.settings import Settings
tmp = Path(sys.argv[1])
settings = Settings.from_file(tmp / "settings.ini")
settings.model = "regressor"                      # the quickest to load and run: one pass
w = MainWindow(settings, autosave_dir=tmp / "autosave")
w.resize(900, 640)
w.show()
end = time.monotonic() + 20
while w.viewport.gl_error is None and time.monotonic() < end:
    app.processEvents()
    time.sleep(0.02)
status_after_fail = w.statusBar().currentMessage()
w.open_image(sys.argv[2])
w.wait_idle(120)
w.controls.steps.setValue(1)
w.controls.num_samples.setValue(1)
w.generate()
w.wait_idle(300)
app.processEvents()
w.export_sample(str(tmp / "out.ply"))
w.wait_idle(60)
app.processEvents()
img = w.viewport.grab().toImage()
label = w.viewport.findChild(type(w.device_label), "viewMessage")
pixels = [img.pixel(x, y) & 0xFFFFFF for x in range(0, img.width(), 4) for y in range(0, img.height(), 4)]
print(json.dumps({"status": status_after_fail, "error": w.viewport.gl_error, "messages": w.messages,
                  "label": label.text() if label else None, "label_visible": bool(label and label.isVisible()),
                  "dark": sum(p == 0x282828 for p in pixels) / len(pixels),
                  "light": sum(((p >> 16) & 255) > 200 for p in pixels) / len(pixels), "gallery": len(w.store)}))
w.close()
"""


def test_a_display_without_opengl_says_why_and_the_app_works(tmp_path):
    """Qt cannot create any OpenGL context (the XCB platform without GLX or EGL): the viewport says
    why in itself and in the status bar; opening, generating, the gallery and exports still work."""
    import json

    import plyfile

    env = dict(os.environ, QT_XCB_GL_INTEGRATION="none")
    proc = subprocess.run([sys.executable, "-c", _NO_GL_SCRIPT, str(tmp_path), str(EXAMPLE)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "could not create an OpenGL context" in got["error"]
    assert got["status"] == got["error"]                          # the status bar says it
    assert got["label_visible"] and got["label"] == got["error"]  # and the view itself
    assert got["dark"] > 0.5 and got["light"] > 0.002             # drawn: the panel, its text
    assert got["gallery"] == 1 and any("Generated 1 sample" in m for m in got["messages"])
    vertices = plyfile.PlyData.read(str(tmp_path / "out.ply"))["vertex"]
    assert vertices.count > 1000
