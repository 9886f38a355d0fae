"""Clean-up (core/cleanup.py, app/cleanup.py): faint splats, floaters and a crop box are flagged on
scenes built here with known answers; in the app the preview shows what would go, Apply removes it
as an undoable edit, and an export writes the cleaned splats (reopened by the file reader)."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
import torch

from splatgen.core.cleanup import (REMOVED_LOGIT, CleanupSettings, apply_keep, cleanup_mask, crop_mask,
                                   preview_gaussians)
from splatgen.core.gaussians import Gaussians, random_gaussians, rgb_to_sh0

SPHERE = 2000
SPHERE_RADIUS = 0.3


def _logit(p: float) -> float:
    return math.log(p) - math.log1p(-p)


def _splats(means, opacity) -> Gaussians:
    means = torch.as_tensor(np.asarray(means, np.float32))
    n = len(means)
    op = torch.as_tensor(np.broadcast_to(np.asarray(opacity, np.float32), (n,)).copy())
    return Gaussians(means=means, quats=torch.tensor([[1.0, 0, 0, 0]]).repeat(n, 1),
                     log_scales=torch.full((n, 3), math.log(0.01)),
                     opacity_logits=torch.log(op) - torch.log1p(-op),
                     sh=rgb_to_sh0(torch.tensor([[0.3, 0.5, 0.8]])).repeat(n, 1)[:, None, :].clone())


def _sphere(n=SPHERE, radius=SPHERE_RADIUS, seed=0, centre=(0.0, 0.0, 0.0)) -> np.ndarray:
    """``n`` points on a sphere (Fibonacci lattice, about 0.024 apart for the defaults)."""
    i = np.arange(n) + 0.5
    phi = np.arccos(1 - 2 * i / n)
    theta = math.pi * (1 + 5 ** 0.5) * i + seed
    pts = np.stack([np.cos(theta) * np.sin(phi), np.cos(phi), np.sin(theta) * np.sin(phi)], -1) * radius
    return pts + np.asarray(centre)


def _scene():
    """A sphere of opaque splats, 5 far floaters (two single, a cluster of three), 10 faint splats on
    the sphere and 4 invisible ones (below the export cut). Returns the set and the index groups."""
    floaters = [[0.9, 0.0, 0.0], [0.0, -0.8, 0.2], [0.6, 0.6, 0.0], [0.61, 0.6, 0.0], [0.6, 0.61, 0.01]]
    parts = [(_sphere(), 0.9), (np.array(floaters), 0.9), (_sphere(10, seed=1.3) * 0.98, 0.01),
             (_sphere(4, seed=2.1), 0.001)]
    g = Gaussians.concat([_splats(m, o) for m, o in parts])
    edges = np.cumsum([0] + [len(m) for m, _ in parts])
    groups = [np.arange(edges[i], edges[i + 1]) for i in range(len(parts))]
    return g, groups


def test_floaters_and_faint_splats_are_flagged_and_the_sphere_kept():
    g, (sphere, floaters, faint, invisible) = _scene()
    r = cleanup_mask(g)
    assert (r.total, r.invisible, r.faint, r.floaters, r.cropped) == (SPHERE + 19, 4, 10, 5, 0)
    assert r.kept == SPHERE and r.removed == 15 and r.visible == SPHERE + 15
    assert torch.equal(torch.nonzero(r.keep).reshape(-1), torch.from_numpy(sphere))
    assert r.components == 4                      # the sphere, two single floaters, one cluster
    assert "removes 15 of 2,015 splats (10 faint, 0 outside the box, 5 floaters)" in r.summary()
    # without the faint rule the faint splats on the sphere's surface belong to it and stay
    r0 = cleanup_mask(g, CleanupSettings(min_opacity=0.0))
    assert (r0.faint, r0.floaters, r0.kept) == (0, 5, SPHERE + 10)
    # floaters off: only the faint ones go
    assert cleanup_mask(g, CleanupSettings(floaters=False)).kept == SPHERE + 5


def test_a_second_piece_with_enough_mass_stays_and_strength_removes_it():
    """Two spheres apart: the small one (10 % of the mass) stays at the default strength (5 %) and
    goes when a piece needs 20 %; the heaviest piece always stays."""
    big, small = _sphere(), _sphere(200, 0.1, centre=(0.0, 0.0, 0.7))
    g = _splats(np.concatenate([big, small]), 0.8)
    assert cleanup_mask(g).kept == SPHERE + 200
    r = cleanup_mask(g, CleanupSettings(min_mass_fraction=0.2))
    assert (r.floaters, r.kept) == (200, SPHERE) and bool(r.keep[:SPHERE].all())
    assert cleanup_mask(g, CleanupSettings(min_mass_fraction=1.0)).kept == SPHERE
    # a link longer than the gap (0.3) joins them into one piece; one far shorter never does
    assert cleanup_mask(g, CleanupSettings(min_mass_fraction=1.0, link=0.31)).components == 1
    assert cleanup_mask(g, CleanupSettings(min_mass_fraction=1.0, link=0.08)).components == 2


def test_the_crop_box_keeps_exactly_the_splats_inside():
    g = random_gaussians(3000, radius=0.6, seed=4)
    g.opacity_logits[:] = 3.0
    lo, hi = (-0.2, -0.5, 0.0), (0.3, 0.1, 0.45)
    m = g.means.numpy()
    want = np.all((m >= lo) & (m <= hi), axis=1)
    assert 100 < want.sum() < 2900
    np.testing.assert_array_equal(crop_mask(g, lo, hi).numpy(), want)
    r = cleanup_mask(g, CleanupSettings(min_opacity=0.0, floaters=False, crop=(lo, hi)))
    np.testing.assert_array_equal(r.keep.numpy(), want)
    assert (r.cropped, r.kept) == (3000 - want.sum(), want.sum())
    # a splat exactly on the boundary is inside
    edge = _splats([[0.3, 0.1, 0.45], [0.3001, 0.1, 0.45]], 0.9)
    assert crop_mask(edge, lo, hi).tolist() == [True, False]


def test_apply_keep_compacts_or_keeps_the_slots_and_exports_write_the_kept(tmp_path):
    from splatgen.core.export import save_sample
    from splatgen.core.io import load_splats

    g, (sphere, *_) = _scene()
    r = cleanup_mask(g)
    compact = apply_keep(g, r.keep)
    assert compact.num_gaussians == SPHERE and torch.equal(compact.means, g.means[sphere])
    slots = apply_keep(g, r.keep, compact=False)
    assert slots.num_gaussians == g.num_gaussians and slots.means is g.means       # slots and tensors kept
    assert torch.equal(slots.opacity_logits[r.keep], g.opacity_logits[r.keep])
    assert bool((slots.opacity_logits[~r.keep] == REMOVED_LOGIT).all())
    assert g.opacities[~r.keep].max() > 0.5                                          # the input is unchanged
    for name, cleaned in (("compact", compact), ("slots", slots)):
        n = save_sample(tmp_path / f"{name}.ply", cleaned)
        back = load_splats(tmp_path / f"{name}.ply")
        assert n == back.num_gaussians == SPHERE
        torch.testing.assert_close(back.means, g.means[sphere])


def test_the_preview_tints_or_hides_what_goes():
    g, (sphere, floaters, faint, _) = _scene()
    keep = cleanup_mask(g).keep
    p = preview_gaussians(g, keep)
    assert p.num_gaussians == g.num_gaussians
    torch.testing.assert_close(p.rgb[floaters], torch.tensor([[1.0, 0.1, 0.6]]).expand(5, 3))
    assert torch.equal(p.sh[sphere], g.sh[sphere])
    assert p.opacities[faint].min() >= 0.35 - 1e-6                  # faint ones are shown, to be seen
    assert preview_gaussians(g, keep, hide=True).num_gaussians == SPHERE
    with pytest.raises(ValueError):
        cleanup_mask(Gaussians.stack([g, g]))


# ---------------------------------------------------------------------- the app
HAS_DISPLAY = bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


@pytest.fixture
def window(qapp, tmp_path):
    """A window (no generation) holding one sample: the scene above, as a splat file opens."""
    if not HAS_DISPLAY:
        pytest.skip("needs a display: run under xvfb-run (scripts/test.sh)")
    from PyQt6.QtCore import QEvent
    from PyQt6.QtGui import QOpenGLContext
    from PyQt6.QtWidgets import QApplication

    from splatgen.app.main_window import MainWindow
    from splatgen.app.settings import Settings
    from splatgen.core.generator.base import GenerationSettings, Sample, input_camera

    w = MainWindow(Settings.from_file(tmp_path / "settings.ini"), autosave_dir=None)
    w.resize(900, 640)
    w.show()
    g, groups = _scene()
    viewmat, K = input_camera()
    sample = Sample(g, viewmat, K, seed=0, settings=GenerationSettings(), model="a splat file")
    w._splats_opened(str(tmp_path / "scene.ply"), sample, np.zeros((8, 8, 3), np.uint8))
    QApplication.processEvents()
    w.groups = groups
    yield w
    w.close()
    w.deleteLater()
    QApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete.value)
    for _ in range(3):
        QApplication.processEvents()
    ctx = QOpenGLContext.currentContext()          # leave no GLX context current (headless EGL tests follow)
    if ctx is not None:
        ctx.doneCurrent()


def test_clean_up_previews_applies_undoes_redoes_and_exports(window, qtbot, tmp_path):
    from splatgen.core.io import load_splats

    w, vp = window, window.viewport
    entry = w.current_entry()
    original = entry.sample
    before = original.gaussians.clone()
    qtbot.waitUntil(lambda: vp.renderer is not None, timeout=3000)
    w.camera.distance *= 1.6                       # the floaters (out to 0.9) in the frame
    vp.camera_moved(settle=False)
    qtbot.waitUntil(lambda: not vp.moving, timeout=3000)
    assert w.acts["cleanup"].isEnabled() and w.acts["cleanup"] in w.menuBar().actions()[1].menu().actions()

    w.acts["cleanup"].trigger()
    assert w.cleanup.dock.isVisible() and w.cleanup.result.removed == 15
    assert "removes 15 of 2,015 splats" in w.cleanup.panel.summary.text()
    qtbot.wait(30)

    def pink(img):
        return (img[..., 0].astype(int) - img[..., 1] > 120) & (img[..., 2] > 80)

    tinted = vp.grab_array()
    w.cleanup.panel.hide_removed.setChecked(True)
    w.cleanup.refresh()
    hidden = vp.grab_array()
    vp.set_preview(None)
    plain = vp.grab_array()
    w.cleanup.panel.hide_removed.setChecked(False)
    w.cleanup.refresh()
    assert pink(tinted).sum() > 20 and not pink(plain).any() and not pink(hidden).any()
    changed = np.abs(tinted.astype(int) - plain).max(-1) > 40
    assert changed.sum() > 20 and (np.abs(hidden.astype(int) - plain).max(-1) > 40).sum() > 20
    # the crop box removes what is outside it; its wireframe is drawn over the view
    w.cleanup.panel.crop.setChecked(True)
    w.cleanup.panel.extents["xmax"].setValue(0.0)
    w.cleanup.refresh()
    assert w.cleanup.result.cropped > 900 and vp.preview_box is not None and len(vp.box_lines()) == 12
    w.cleanup.panel.crop.setChecked(False)
    w.cleanup.refresh()

    w.cleanup.panel.apply_button.click()
    assert w.wait_idle(10)
    qtbot.waitUntil(lambda: entry.sample is not original, timeout=3000)
    assert entry.sample.gaussians.num_gaussians == SPHERE         # a splat file: the removed ones are gone
    assert w.undo_stack.canUndo() and "Clean up (15 splats)" in w.acts["undo"].text()
    assert "Removed 15 splats" in w.messages[-1]
    w.export_sample(str(tmp_path / "clean.ply"))
    assert w.wait_idle(10)
    assert load_splats(tmp_path / "clean.ply").num_gaussians == SPHERE

    w.acts["undo"].trigger()
    assert entry.sample is original and vp.sample is original
    for name, t in before.tensors().items():
        assert torch.equal(getattr(entry.sample.gaussians, name), t), name
    w.acts["redo"].trigger()
    assert entry.sample.gaussians.num_gaussians == SPHERE and vp.sample is entry.sample
    # a generator's sample keeps its slots (resampling merges slot by slot); what goes turns transparent
    from dataclasses import replace

    from splatgen.app.samples import SampleEntry
    from splatgen.core.export import visible_splats
    from splatgen.core.generator.base import GenerationSettings

    drawn = replace(original, settings=GenerationSettings(guidance=3.0, skip_weight=1.0, steps=4, scheduler="ddim"))
    gen = SampleEntry(drawn, entry.thumbnail, entry.source, "diffusion", stochastic=True)
    w.store.insert(gen)
    w.gallery.show_entry(gen)
    w.cleanup.refresh()
    w.cleanup.apply()
    assert w.wait_idle(10)
    qtbot.waitUntil(lambda: gen.sample is not drawn, timeout=3000)
    assert gen.sample.gaussians.num_gaussians == original.gaussians.num_gaussians
    assert visible_splats(gen.sample.gaussians).num_gaussians == SPHERE
    w.cleanup.refresh()
    assert w.cleanup.result.removed == 0 and not w.cleanup.panel.apply_button.isEnabled()
    w.cleanup.close()
    assert vp.preview is None
