"""The cut-out the user can fix (core/cutout.py): on a cluttered synthetic photo the automatic
GrabCut fails, a box and a few strokes fix it; the input panel paints hints and the prepared input
follows; ``splatgen generate --mask`` uses the given mask."""

from __future__ import annotations

import os

import cv2
import imageio.v3 as iio
import numpy as np
import pytest
from PIL import Image

if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import splatgen.core.generator  # noqa: E402,F401 - the worker imports it on its first job; not what is timed here
from splatgen.core import cutout as cut  # noqa: E402
from splatgen.core.imageprep import prepare_image  # noqa: E402


def cluttered_photo(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The armchair example (its alpha is the truth) pasted on a textured, cluttered background:
    blobs and stripes, a fifth of them in the chair's own colours, plus noise. → (rgb (H, W, 3)
    uint8, truth (H, W) bool)."""
    from splatgen.app.input_panel import examples_dir

    rng = np.random.default_rng(seed)
    obj = np.asarray(Image.open(examples_dir() / "armchair.png").convert("RGBA"))
    h, w = obj.shape[:2]
    truth = obj[..., 3] >= 128
    colours = obj[..., :3][truth].reshape(-1, 3)
    bg = np.zeros((h, w, 3), np.uint8)
    bg[:] = rng.integers(0, 255, 3)
    for _ in range(24):
        c = colours[rng.integers(len(colours))] if rng.random() < 0.2 else rng.integers(0, 255, 3)
        c = tuple(int(v) for v in c)
        if rng.random() < 0.5:
            cv2.ellipse(bg, (int(rng.integers(w)), int(rng.integers(h))),
                        (int(rng.integers(10, 60)), int(rng.integers(10, 60))), float(rng.integers(180)), 0, 360, c, -1)
        else:
            x = int(rng.integers(w))
            cv2.line(bg, (x, 0), (x + int(rng.integers(-200, 200)), h), c, int(rng.integers(3, 10)))
    bg = np.clip(bg + rng.normal(0, 6, bg.shape), 0, 255).astype(np.uint8)
    a = obj[..., 3:4].astype(np.float32) / 255
    return (obj[..., :3] * a + bg * (1 - a) + 0.5).astype(np.uint8), truth


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    rgb, truth = cluttered_photo()
    path = tmp_path_factory.mktemp("cutout") / "cluttered.png"
    iio.imwrite(path, rgb)
    return path, rgb, truth


def object_box(truth: np.ndarray, margin: int = 8) -> tuple[float, float, float, float]:
    ys, xs = np.nonzero(truth)
    h, w = truth.shape
    return (xs.min() - margin) / w, (ys.min() - margin) / h, (xs.max() + margin) / w, (ys.max() + margin) / h


def user_stroke(truth: np.ndarray, mask: np.ndarray) -> cut.Stroke:
    """What a user paints next: a dab in the middle of the largest wrong region (missed object →
    object stroke, kept background → background stroke), as wide as the region allows."""
    best = None
    for fg, err in ((True, truth & ~mask), (False, mask & ~truth)):
        d = cv2.distanceTransform(np.pad(err, 1).astype(np.uint8), cv2.DIST_L2, 5)[1:-1, 1:-1]
        if best is None or d.max() > best[0]:
            best = (float(d.max()), fg, d)
    depth, fg, d = best
    y, x = np.unravel_index(d.argmax(), d.shape)
    h, w = mask.shape
    return cut.Stroke(fg, ((x / (w - 1), y / (h - 1)),), min(0.03, max(0.004, 0.5 * depth / max(h, w))))


def full_iou(work_mask: np.ndarray, truth: np.ndarray) -> float:
    h, w = truth.shape
    return cut.iou(cut.full_size_mask(work_mask, (w, h)) >= 128, truth)


def test_a_box_and_a_few_strokes_fix_what_automatic_grabcut_gets_wrong(scene):
    _, rgb, truth = scene
    work = cut.working_copy(rgb)
    t_work = cv2.resize(truth.astype(np.uint8), work.shape[1::-1], interpolation=cv2.INTER_NEAREST) > 0
    auto = full_iou(cut.automatic_mask(rgb), truth)
    assert auto < 0.9
    rect = object_box(truth)
    mask = cut.refine_cutout(work, None, [], rect)
    ious, strokes = [full_iou(mask, truth)], []
    for _ in range(5):
        if ious[-1] >= 0.9:
            break
        strokes.append(user_stroke(t_work, mask))
        mask = cut.refine_cutout(work, mask, strokes, rect)
        ious.append(full_iou(mask, truth))
    print(f"automatic IoU {auto:.3f}; box then strokes: {[round(v, 3) for v in ious]}")
    assert ious[-1] >= 0.9 and len(strokes) <= 5
    assert ious[-1] > ious[0]                     # the strokes, not the box alone, got it there


def test_hints_are_hard_labels_and_memory_follows_the_file(tmp_path):
    prev = np.zeros((40, 60), bool)
    prev[10:30, 20:40] = True
    s_fg = cut.Stroke(True, ((0.1, 0.1),), 0.05)
    s_bg = cut.Stroke(False, ((0.5, 0.5),), 0.05)
    labels = cut.hint_labels(prev.shape, prev, [s_fg, s_bg], rect=(0.0, 0.0, 0.8, 1.0))
    assert labels[4, 6] == cv2.GC_FGD and labels[20, 30] == cv2.GC_BGD
    assert labels[20, 22] == cv2.GC_PR_FGD and labels[35, 10] == cv2.GC_PR_BGD
    assert (labels[:, 50:] == cv2.GC_BGD).all()   # outside the box
    # painted pixels keep their label whatever GrabCut thinks
    rng = np.random.default_rng(0)
    work = rng.integers(0, 255, (40, 60, 3), dtype=np.uint8)
    out = cut.refine_cutout(work, prev, [s_fg, s_bg])
    assert out[4, 6] and not out[20, 30]

    photo = tmp_path / "p.png"
    iio.imwrite(photo, work)
    memory = cut.CutoutMemory()
    memory.set(photo, cut.Cutout(strokes=[s_fg], mask=out))
    assert memory.mask(photo) is out
    iio.imwrite(photo, work[:, ::-1].copy())         # the file changed: its old cut-out no longer applies
    os.utime(photo, ns=(os.stat(photo).st_atime_ns, os.stat(photo).st_mtime_ns + 10**9))
    assert memory.get(photo) is None


def test_prepare_image_uses_a_given_mask_and_refuses_a_wrong_one(scene):
    from splatgen.core.errors import ImageError

    path, rgb, truth = scene
    p = prepare_image(path, mask=truth)
    assert p.mask_source == "mask"
    seen = p.rgba[..., 3] >= 128
    ys, xs = np.nonzero(seen)
    assert max(np.ptp(xs), np.ptp(ys)) + 1 == pytest.approx(p.foreground_ratio * 128, abs=2)
    with pytest.raises(ImageError, match="photo's size"):
        prepare_image(path, mask=truth[:-1])
    with pytest.raises(ImageError, match="empty"):
        prepare_image(path, mask=np.zeros_like(truth))


def test_the_panel_paints_hints_and_the_prepared_input_follows(qtbot, scene):
    from PyQt6.QtCore import QEvent, QPointF, Qt
    from PyQt6.QtGui import QMouseEvent
    from PyQt6.QtWidgets import QApplication

    from splatgen.app import tasks
    from splatgen.app.input_panel import InputPanel
    from splatgen.app.worker import Runner

    path, rgb, truth = scene
    tasks.cutouts().set(path, None)
    panel = InputPanel(0.55)
    qtbot.addWidget(panel)
    panel.runner = Runner(panel)
    try:
        panel.resize(520, 700)
        panel.show()
        first = tasks.prepare(str(path), 0.55, True)(None)
        panel.show_prepared(first, str(path))
        assert first.mask_source == "grabcut"
        view = panel.original
        t = view.target_rect()

        def at(x, y):
            return QPointF(t.x() + x * t.width(), t.y() + y * t.height())

        def drag(points):
            kinds = [QEvent.Type.MouseButtonPress] + [QEvent.Type.MouseMove] * (len(points) - 2) \
                + [QEvent.Type.MouseButtonRelease]
            for kind, pt in zip(kinds, points):
                release = kind == QEvent.Type.MouseButtonRelease
                buttons = Qt.MouseButton.NoButton if release else Qt.MouseButton.LeftButton
                QApplication.sendEvent(view, QMouseEvent(kind, at(*pt), at(*pt), Qt.MouseButton.LeftButton, buttons,
                                                         Qt.KeyboardModifier.NoModifier))

        x0, y0, x1, y1 = object_box(truth)
        panel.set_brush("rect")
        with qtbot.waitSignal(panel.preparation_changed, timeout=3000):
            drag([(x0, y0), ((x0 + x1) / 2, (y0 + y1) / 2), (x1, y1)])
        boxed = panel.cutout()
        assert boxed is not None and boxed.rect == pytest.approx((x0, y0, x1, y1), abs=0.01)
        print(f"panel: box IoU {full_iou(boxed.mask, truth):.3f}")
        assert full_iou(boxed.mask, truth) > full_iou(cut.automatic_mask(rgb), truth) + 0.3
        second = tasks.prepare(str(path), 0.55, True)(None)
        assert second.mask_source == "mask"
        # the prepared input is the corrected mask, framed: the same as preparing with it directly
        h, w = truth.shape
        direct = prepare_image(path, foreground_ratio=0.55, mask=cut.full_size_mask(boxed.mask, (w, h)))
        np.testing.assert_array_equal(second.rgba, direct.rgba)
        assert cut.iou(second.mask >= 0.5, first.mask >= 0.5) < 0.9

        panel.set_brush("bg")                       # a background stroke across the top of the photo
        with qtbot.waitSignal(panel.preparation_changed, timeout=3000):
            drag([(x0, y0 + 0.02), ((x0 + x1) / 2, y0 + 0.02), (x1, y0 + 0.02)])
        stroked = panel.cutout()
        assert len(stroked.strokes) == 1 and not stroked.strokes[0].foreground
        assert not np.array_equal(stroked.mask, boxed.mask)
        panel.show_prepared(tasks.prepare(str(path), 0.55, True)(None), str(path))
        assert "fixed by hand" in panel.info.text()
        with qtbot.waitSignal(panel.preparation_changed, timeout=1000):
            panel.reset_cutout()
        assert tasks.prepare(str(path), 0.55, True)(None).mask_source == "grabcut"
    finally:
        panel.runner.shutdown()
        tasks.cutouts().set(path, None)


@pytest.fixture
def run_cli(run_splatgen):
    return lambda *args, cwd=None: run_splatgen(*args, cwd=cwd, timeout=600)


def test_generate_uses_the_given_mask(tmp_path, scene, run_cli):
    path, rgb, truth = scene
    mask_png = tmp_path / "mask.png"
    iio.imwrite(mask_png, truth.astype(np.uint8) * 255)
    r = run_cli("generate", path, "--mask", mask_png, "-m", "regressor", "--no-progress", "--out", tmp_path / "o")
    assert r.returncode == 0, r.stderr
    alpha = iio.imread(tmp_path / "o" / "cluttered" / "input.png")[..., 3]
    expected = prepare_image(path, mask=truth)
    np.testing.assert_array_equal(alpha, expected.rgba[..., 3])
    # independent check of the geometry: the truth cut from the framing window, area-resized with OpenCV
    pad = 1024
    x0, y0, x1, y1 = (round(v) + pad for v in expected.window_box)
    window = np.pad(truth.astype(np.float32), pad)[y0:y1, x0:x1]
    framed = cv2.resize(window, (128, 128), interpolation=cv2.INTER_AREA) >= 0.5
    print(f"input.png alpha vs the framed mask: IoU {cut.iou(alpha >= 128, framed):.3f}")
    assert cut.iou(alpha >= 128, framed) > 0.9
    assert cut.iou(alpha >= 128, prepare_image(path).rgba[..., 3] >= 128) < 0.5  # not the automatic cut-out

    two = run_cli("generate", path, path, "--mask", mask_png, "--out", tmp_path / "o2")
    assert two.returncode != 0 and "single photo" in two.stderr
    iio.imwrite(mask_png, truth[:-4].astype(np.uint8) * 255)
    wrong = run_cli("generate", path, "--mask", mask_png, "--out", tmp_path / "o3")
    assert wrong.returncode != 0 and "photo's size" in wrong.stderr
