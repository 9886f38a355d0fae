"""The GUI's parts that need no OpenGL: orbit camera, tile layout and variance map, settings,
worker thread (cancel, errors, partial results), error messages. Runs offscreen when no display."""

from __future__ import annotations

import math
import os
import threading
import time

import numpy as np
import pytest
import torch

if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from splatgen.app.orbit_camera import OrbitCamera  # noqa: E402
from splatgen.app.tiles import heat_colors, variance_map  # noqa: E402
from splatgen.core import framing  # noqa: E402
from splatgen.core.cameras import camera_centers, orbit_viewmat  # noqa: E402
from splatgen.core.generator import input_camera  # noqa: E402


# ---------------------------------------------------------------------- orbit camera
def test_default_camera_is_the_input_camera():
    cam = OrbitCamera()
    vm, _ = input_camera()
    np.testing.assert_allclose(cam.viewmat(), vm.double().numpy(), atol=1e-6)


def test_reset_recovers_any_orbit_camera():
    cam = OrbitCamera()
    for az, el, dist in [(0, 15, 2.0), (123.0, -20.0, 3.5), (300.0, 60.0, 1.2)]:
        target = orbit_viewmat(az, el, dist).double().numpy()
        cam.orbit(37, -12)
        cam.reset(target)
        np.testing.assert_allclose(cam.viewmat(), target, atol=1e-5)
    cam.reset(None)
    assert (cam.azimuth, cam.distance) == (0.0, framing.CAMERA_DISTANCE)


def test_orbit_turns_the_object_with_the_cursor_and_clamps_elevation():
    cam = OrbitCamera()
    front = np.array([0.0, 0.0, 0.4, 1.0])           # a point on the object's front (+Z)
    x0 = (cam.viewmat() @ front)[0]
    cam.orbit(50, 0)                                  # drag right
    assert (cam.viewmat() @ front)[0] > x0 + 0.05     # the front moved right in the image
    cam.orbit(0, 10_000)
    assert cam.elevation == pytest.approx(89.0)
    cam.orbit_degrees(0, -500)
    assert cam.elevation == pytest.approx(-89.0)
    assert 0.0 <= cam.azimuth < 360.0


def test_orbit_follows_the_view_size():
    """A drag across the view's shorter side turns the object by the same angle whatever the window
    size; a 160-px vertical drag in a 500-px-high view is a modest turn, not a top-down view."""
    from splatgen.app.orbit_camera import ORBIT_DEG_PER_VIEW

    assert 90.0 <= ORBIT_DEG_PER_VIEW <= 180.0
    for view_px in (300, 700, 1400):
        cam = OrbitCamera(elevation=0.0)
        cam.orbit(view_px / 2, 0, view_px)
        assert cam.azimuth == pytest.approx(360.0 - ORBIT_DEG_PER_VIEW / 2)   # the object turned right
        cam = OrbitCamera(elevation=0.0)
        cam.orbit(0, view_px / 4, view_px)
        assert cam.elevation == pytest.approx(ORBIT_DEG_PER_VIEW / 4)
    cam = OrbitCamera()
    start = cam.elevation
    cam.orbit(0, 160, 500)
    assert cam.elevation - start == pytest.approx(160 / 500 * ORBIT_DEG_PER_VIEW) and cam.elevation < 60


def test_progress_and_status_read_as_sentences():
    from splatgen.app.generation import resample_summary
    from splatgen.app.tasks import progress_text

    # 4 samples: the first alone, then a batch of three; 50 steps each
    sizes = [1, 3]
    assert progress_text(0, 100, sizes) == "sample 1 of 4 · step 0/50"
    assert progress_text(50, 100, sizes) == "sample 1 of 4 · step 50/50"
    assert progress_text(51, 100, sizes) == "samples 2–4 of 4 · step 1/50"
    assert progress_text(100, 100, sizes) == "samples 2–4 of 4 · step 50/50"
    assert progress_text(3, 3, [1]) == "step 3/3"
    for info in ({"input_view_psnr": 40.5}, {"input_view_psnr": 22.0}, {"redrawn_splats": 1234}, {}):
        text = resample_summary("the hidden side", info)
        assert "dB" not in text and "psnr" not in text.lower() and text.endswith(".")
    assert "unchanged" in resample_summary("the hidden side", {"input_view_psnr": 40.5})


def test_gallery_labels_name_the_photo_and_the_tooltip_the_whole_seed():
    from types import SimpleNamespace

    from splatgen.app.samples import InputRecord, SampleEntry, SampleStore

    def entry(name, seed):
        settings = SimpleNamespace(guidance=3.0, skip_weight=1.0, steps=50, scheduler="ddim")
        sample = SimpleNamespace(seed=seed, settings=settings, info={}, gaussians=SimpleNamespace(num_gaussians=10))
        return SampleEntry(sample, np.zeros((4, 4, 3), np.uint8), InputRecord(None, name, f"/p/{name}.png"), "diffusion")

    a = entry("armchair", 2_147_483_001)
    assert a.label.splitlines() == ["armchair", "seed 2147483001"] and "seed 2147483001" in a.tooltip
    store = SampleStore()
    for e in (entry("armchair", 1), entry("stool", 2), entry("armchair", 3)):
        store.insert(e, store.group_end(e))
    assert [e.source.name for e in store.entries] == ["armchair", "armchair", "stool"]


def test_pan_keeps_the_point_under_the_cursor():
    cam = OrbitCamera()
    w, h = 400, 300
    K = cam.intrinsics(w, h)

    def project(p):
        c = cam.viewmat() @ np.append(p, 1.0)
        return np.array([K[0, 0] * c[0] / c[2] + K[0, 2], K[1, 1] * c[1] / c[2] + K[1, 2]])

    before = project(np.zeros(3))
    cam.pan(30, -20, w, h)
    np.testing.assert_allclose(project(np.zeros(3)) - before, [30, -20], atol=0.5)
    np.testing.assert_allclose(camera_centers(torch.tensor(cam.viewmat()))[None].numpy()[0] - cam.target,
                               cam.viewmat()[2, :3] * -cam.distance, atol=1e-6)


def test_zoom_and_frame():
    cam = OrbitCamera()
    d = cam.distance
    cam.zoom(2)
    assert cam.distance < d
    cam.zoom(-1000)
    assert cam.distance == pytest.approx(100.0)
    rng = np.random.default_rng(0)
    pts = rng.normal(size=(5000, 3)) * 0.1 + [1.0, 2.0, 3.0]
    cam.frame(pts)
    np.testing.assert_allclose(cam.target, [1, 2, 3], atol=0.02)
    assert 0.3 < cam.distance < 3.0
    # the field of view spans the shorter side
    K = cam.intrinsics(800, 400)
    assert K[1, 1] == pytest.approx(200 / math.tan(math.radians(cam.fov_deg) / 2))


# ---------------------------------------------------------------------- tiles
def test_the_tiled_views_grid_covers_the_view_without_overlap():
    from splatgen.core.turntable import tile_boxes

    for n in range(1, 66):
        rects = tile_boxes(n, 900, 600)
        assert len(rects) == n
        area = sum(w * h for _, _, w, h in rects)
        assert area <= 900 * 600
        for x, y, w, h in rects:
            assert x >= 0 and y >= 0 and x + w <= 900 and y + h <= 600
    assert tile_boxes(2, 1000, 400)[0][2] == 500      # side by side in a wide view
    assert tile_boxes(2, 400, 1000)[0][3] == 500      # stacked in a tall one
    assert tile_boxes(0, 10, 10) == []


def test_variance_map_and_colours():
    a = np.zeros((3, 4, 5, 3), np.float32)
    assert variance_map(a).shape == (4, 5) and variance_map(a).max() == 0
    a[0, 1, 2] = 1.0                                  # one sample differs at one pixel
    v = variance_map(a)
    assert v[1, 2] == pytest.approx(np.var([1.0, 0.0, 0.0]))
    assert v.sum() == pytest.approx(v[1, 2])
    rgb, vmax = heat_colors(v, vmax=v.max())
    assert rgb.shape == (4, 5, 3) and rgb.dtype == np.uint8
    assert rgb[1, 2].sum() > rgb[0, 0].sum()
    assert variance_map(a[:1]).max() == 0             # one sample: no variance


# ---------------------------------------------------------------------- settings
def test_settings_round_trip_in_a_private_file(tmp_path):
    from splatgen.app.settings import MAX_RECENT, Settings

    path = tmp_path / "gui.ini"
    s = Settings.from_file(path)
    images = []
    for i in range(MAX_RECENT + 2):
        p = tmp_path / f"img{i}.png"
        p.write_bytes(b"x")
        images.append(p)
        s.add_recent(p)
    s.set_generation("diffusion", {"guidance": 3.5, "steps": 7, "scheduler": "dpm", "seed": 42, "num_samples": 3,
                                   "skip_weight": 0.8, "strength": 0.6})
    s.foreground_ratio, s.remove_background, s.background, s.mode = 0.6, False, "#202020", "depth"
    s.sync()
    images[-1].unlink()                               # gone from disk: gone from the list
    again = Settings.from_file(path)
    recent = again.recent_files()
    assert recent[0] == str(images[-2].resolve()) and len(recent) <= MAX_RECENT
    assert again.generation("diffusion") == {"guidance": 3.5, "skip_weight": 0.8, "steps": 7, "scheduler": "dpm",
                                             "seed": 42, "num_samples": 3, "strength": 0.6}
    assert again.generation("regressor") == {}
    assert (again.foreground_ratio, again.remove_background, again.background, again.mode) == \
        (0.6, False, "#202020", "depth")
    assert path.is_file()


# ---------------------------------------------------------------------- worker
@pytest.fixture
def runner(qapp):
    from splatgen.app.worker import Runner

    r = Runner()
    yield r
    r.shutdown()


def test_worker_runs_jobs_in_order_off_the_ui_thread(qtbot, runner):
    from splatgen.app.worker import Job

    events = []

    def body(ctx):
        assert threading.current_thread() is not threading.main_thread()
        for i in range(3):
            ctx.progress(i + 1, 3, "step")
            ctx.partial(i)
        return "result"

    runner.submit(Job("a", body, on_progress=lambda d, t, _: events.append(("p", d, t)),
                      on_partial=lambda v: events.append(("part", v)), on_done=lambda r: events.append(("done", r))))
    runner.submit(Job("b", lambda ctx: 2, on_done=lambda r: events.append(("done b", r))))
    assert runner.wait_idle(10)
    assert events[-2:] == [("done", "result"), ("done b", 2)]
    assert [e for e in events if e[0] == "part"] == [("part", 0), ("part", 1), ("part", 2)]
    assert ("p", 3, 3) in events


def test_worker_cancel_errors_and_replace(qtbot, runner):
    from splatgen.app.worker import Job

    started = threading.Event()
    got = []

    def slow(ctx):
        started.set()
        for _ in range(500):
            ctx.check()
            time.sleep(0.01)
        return "finished"

    runner.submit(Job("gen", slow, on_done=got.append, on_cancelled=lambda: got.append("cancelled")))
    for i in range(3):   # only the newest queued "prep" survives
        runner.submit(Job("prep", lambda ctx, i=i: i, on_done=got.append), replace=True)
    runner.submit(Job("boom", lambda ctx: 1 / 0, on_error=lambda exc: got.append(type(exc).__name__)))
    assert started.wait(5)
    t0 = time.perf_counter()
    assert runner.cancel("gen")
    assert runner.wait_idle(10)
    assert time.perf_counter() - t0 < 2.0
    assert got == ["cancelled", 2, "ZeroDivisionError"]
    assert not runner.busy


# ---------------------------------------------------------------------- messages
def test_error_messages_say_what_to_do():
    from splatgen.app.errors import describe
    from splatgen.core.errors import ImageError
    from splatgen.core.generator import ModelError

    m = describe(ImageError("x.png: the image is fully transparent"), "Opening x.png")
    assert m.title == "Cannot use this image" and "transparent" in m.text and m.hint and not m.internal
    m = describe(ModelError("diffusion: missing config.json"), "Loading")
    assert "install" in m.hint
    m = describe(RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"), "Generating")
    assert m.title == "Out of GPU memory" and "fewer samples" in m.hint
    try:
        {}["boom"]
    except KeyError as exc:
        m = describe(exc, "Generating")
    assert m.internal and "KeyError" in m.text and "Traceback" in m.details


# ---------------------------------------------------------------------- viewport drawing (headless GL)
@pytest.fixture(scope="module")
def headless_ctx():
    moderngl = pytest.importorskip("moderngl")
    try:
        ctx = moderngl.create_context(standalone=True, backend="egl", require=330)
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"no headless OpenGL here: {exc}")
    yield ctx
    ctx.release()


def test_viewport_renderer_full_scaled_modes_and_empty(headless_ctx):
    from pathlib import Path

    from splatgen.app.viewport_renderer import ViewportRenderer, fit_scale
    from splatgen.core.io import load_splats

    ctx = headless_ctx
    g = load_splats(Path(__file__).resolve().parent.parent / "assets" / "examples" / "teddy_bear.ply")
    r = ViewportRenderer(ctx, "gl")
    assert r.backend == "gl" and r.num_splats == 0
    W, H = 160, 120
    fbo = ctx.framebuffer(color_attachments=[ctx.renderbuffer((W, H), 4)])

    def draw(**kw):
        cam = OrbitCamera(azimuth=30.0, elevation=20.0)
        r.draw(fbo, cam.viewmat(), cam.intrinsics(W, H), W, H, **kw)
        return np.frombuffer(fbo.read(components=3), np.uint8).reshape(H, W, 3)[::-1].astype(int)

    empty = draw(background=(0.0, 0.0, 1.0))                     # no scene: the background
    assert (empty == [0, 0, 255]).all()
    r.set_gaussians(g)
    assert r.num_splats == g.num_gaussians
    full = draw()
    assert (np.abs(full - 255).max(-1) > 25).mean() > 0.05        # the bear is there
    half = draw(scale=0.5)                                        # the moving-camera path, stretched
    assert np.abs(half - full).mean() < 12
    alpha, depth = draw(mode="alpha"), draw(mode="depth")
    assert alpha[0, 0].max() < 10 and alpha.max() > 240
    assert not np.array_equal(depth, full)
    # the renderer's offscreen (float32) image, up to the rounding of the viewport's 8-bit blending
    cam = OrbitCamera(azimuth=30.0, elevation=20.0)
    ref = (r.image(cam.viewmat(), cam.intrinsics(W, H), W, H) * 255 + 0.5).astype(int)
    assert np.abs(ref - full).mean() < 1.0 and np.abs(ref - full).max() <= 16
    assert fit_scale(10.0) == 1.0 and fit_scale(60.0) == 0.5 and fit_scale(1000.0) == 0.25
    r.release()
    fbo.release()


def test_viewport_renderer_draws_a_batch_in_its_tiles_and_only_there(headless_ctx):
    from splatgen.app.viewport_renderer import ViewportRenderer
    from splatgen.core.gaussians import random_gaussians
    from splatgen.core.render import batch_scenes

    ctx = headless_ctx
    scenes = [random_gaussians(200 + 100 * k, seed=k) for k in range(3)]
    r = ViewportRenderer(ctx, "gl")
    r.set_gaussians(batch_scenes(scenes))
    W, H = 130, 60
    tiles = [(0, 0, 40, 40), (42, 0, 40, 40), (84, 10, 40, 40)]
    fbo = ctx.framebuffer(color_attachments=[ctx.renderbuffer((W, H), 4)])
    cam = OrbitCamera(azimuth=50.0, elevation=10.0)
    K = cam.intrinsics(40, 40)

    def draw(scale):
        fbo.use()
        fbo.clear(0.0, 1.0, 0.0, 1.0)
        r.draw(fbo, cam.viewmat(), K, W, H, scale=scale, tiles=tiles)
        return np.frombuffer(fbo.read(components=3), np.uint8).reshape(H, W, 3)[::-1].astype(int)

    def centroid(img):
        """Where the object is: the mean pixel position weighted by how far each is from white."""
        wgt = (255 - img).sum(-1).astype(float)
        ys, xs = np.mgrid[: img.shape[0], : img.shape[1]]
        return np.array([(wgt * xs).sum(), (wgt * ys).sum()]) / wgt.sum()

    full, half = draw(1.0), draw(0.5)
    frame = r.image(cam.viewmat(), K, W, H, tiles=tiles)            # the batch offscreen: the same tiles
    for g, (x, y, w, h) in zip(scenes, tiles):
        one = ViewportRenderer(ctx, "gl")
        one.set_gaussians(g)
        alone = (one.image(cam.viewmat(), K, w, h) * 255 + 0.5).astype(int)
        one.release()
        assert np.abs(full[y:y + h, x:x + w] - alone).mean() < 1.0          # the 8-bit blending's rounding
        assert np.abs((frame[y:y + h, x:x + w] * 255 + 0.5).astype(int) - alone).max() <= 1
        assert np.abs(centroid(half[y:y + h, x:x + w]) - centroid(alone)).max() < 0.5   # moving: blurrier, in place
    for img in (full, half):
        assert (img[:, 40:42] == [0, 255, 0]).all() and (img[50:, :84] == [0, 255, 0]).all()   # left as it was
    r.release()
    fbo.release()


# ---------------------------------------------------------------------- autosave and the undo bound
def test_two_samples_of_one_seed_give_two_autosaves(generated_samples, tmp_path):
    """Seed 3 at 4 steps, seed 3 at 6 steps, and the same sample twice: four files in the run, none replaced."""
    import dataclasses

    import plyfile

    from splatgen.app.tasks import Autosave

    a = generated_samples[0]
    b = dataclasses.replace(a, settings=dataclasses.replace(a.settings, steps=6),
                            gaussians=a.gaussians.detach().clone() if hasattr(a.gaussians, "clone") else a.gaussians)
    b.gaussians.means[0] += 0.25                      # a different object under the same seed
    auto = Autosave(tmp_path)
    run = auto.start("chair", "diffusion", a.settings)
    paths = [auto.save(a, "chair", run=run), auto.save(b, "chair", run=run), auto.save(a, "chair", run=run),
             auto.save(a, "chair", resampled=1, run=run)]
    assert auto.finish(run) is not None
    assert all(p is not None for p in paths) and len({p.name for p in paths}) == 4
    assert all(p.name.startswith("chair-seed3-") for p in paths), [p.name for p in paths]
    assert sorted(p.name for p in auto.folder.glob("*.ply")) == sorted(p.name for p in paths)
    xyz = [np.stack([plyfile.PlyData.read(str(auto.folder / p.name))["vertex"][k] for k in "xyz"], 1)
           for p in paths]
    assert all(x.shape[0] > 1000 for x in xyz)        # each file is a whole sample (independent reader)
    assert np.array_equal(xyz[0], xyz[2])             # the same sample twice: the same splats, two files
    assert xyz[0].shape != xyz[1].shape or not np.array_equal(xyz[0], xyz[1])   # the other one's own


def _entry(sample):
    import copy

    from splatgen.app.samples import InputRecord, SampleEntry

    s = copy.deepcopy(sample)                        # only the store and the history hold it
    return SampleEntry(s, np.zeros((112, 112, 3), np.uint8), InputRecord(None, "chair"), "diffusion")


def test_undo_history_keeps_its_memory_bound_and_frees_what_it_drops(qapp, generated_samples):
    import gc
    import weakref

    from splatgen.app.samples import RemoveCommand, SampleStore
    from splatgen.app.undo_history import UndoHistory, sample_bytes

    store = SampleStore()
    entries = [_entry(generated_samples[i % 2]) for i in range(4)]
    for e in entries:
        store.insert(e)
    one = sample_bytes(entries[0].sample, entries[0].thumbnail)
    assert one > 32768 * 14 * 4                       # at least the splats' float32 fields
    history = UndoHistory(store, limit_bytes=int(1.5 * one))
    drops = []
    history.dropped.connect(lambda n, freed: drops.append((n, freed)))
    refs = [weakref.ref(e.sample) for e in entries]
    assert history.total_bytes() == 4 * one and history.held_bytes() == 0
    history.push(RemoveCommand(store, [entries[0]]))  # within the bound: undoable
    assert history.held_bytes() == one and history.count() == 1 and not drops
    history.push(RemoveCommand(store, [entries[1]]))  # two would pass it: the oldest goes
    assert history.count() == 1 and drops == [(1, one)] and history.held_bytes() == one
    del entries[:2]
    gc.collect()
    assert refs[0]() is None and refs[1]() is not None  # really freed, not just forgotten
    history.undo()                                    # the newer removal is still undoable
    assert len(store) == 3 and history.held_bytes() == 0
    # clearing more than the bound holds: done, not undoable, the memory freed
    clear = RemoveCommand(store, list(store.entries))
    history.push(clear)
    assert len(store) == 0 and not history.holds(clear) and history.count() == 0
    del clear, entries[:], e
    gc.collect()
    assert all(r() is None for r in refs) and history.total_bytes() == 0
