"""Demo mode through a simulated 8-hour booth day (fake clock, a fast stand-in generator).

The examples' samples are made ahead once and cached on disk as runs; then 100 visitors hand over
a photo each (as a camera frame would arrive), their samples are generated through the app's real
path (preparation, worker thread, run history, gallery, tiles), somebody touches the screen, the
booth goes idle and the attract loop cycles the examples 3 times per visitor (300 cycles). Every
tenth visitor is forgotten at once; one generation fails and one hangs (the worker is restarted);
the attract loop resumes after both. Resident memory after warm-up grows ≤ 100 MB, and once the
demo ends no visitor photo — nor anything made from one — is left on disk.

Memory and time: a stand-in generator (1,024 small splats a sample, coloured from the photo) keeps the
day within seconds; everything around it is the app's own code.
"""

from __future__ import annotations

import gc
import hashlib
import os
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

HAS_DISPLAY = bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
pytestmark = pytest.mark.skipif(not HAS_DISPLAY, reason="needs a display: run under xvfb-run (scripts/test.sh)")

VISITORS = 100
CYCLES_PER_VISITOR = 3
SPLATS = 1024


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, s: float) -> None:
        self.now += s


class FastGenerator:
    """A stand-in for a generator: samples are small splat clouds coloured from the prepared input
    (so each visitor's differ), made in milliseconds; ``fail_next`` raises, ``hang_next`` blocks
    until ``release`` is set."""

    name, kind, stochastic, device, starts_from_teacher, max_batch = "fast stand-in", "test", True, "cpu", False, 4

    def __init__(self):
        from splatgen.core.generator import GenerationSettings

        self.defaults = GenerationSettings(guidance=2.0, skip_weight=1.0, steps=1, scheduler="ddim", seed=0,
                                           num_samples=1, strength=1.0)
        self.fail_next = self.hang_next = False
        self.hanging, self.release = threading.Event(), threading.Event()
        self.calls = 0

    def generate(self, image, settings, progress=None, cancel=None, on_sample=None):
        from splatgen.core.gaussians import Gaussians, rgb_to_sh0
        from splatgen.core.generator import input_camera
        from splatgen.core.generator.base import Sample

        self.calls += 1
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("injected failure")
        if self.hang_next:
            self.hang_next = False
            self.hanging.set()
            self.release.wait(60)
        vm, K = input_camera()
        out = []
        for i in range(int(settings.num_samples)):
            g = torch.Generator().manual_seed(int(settings.seed) + i)
            d = torch.randn(SPLATS, 3, generator=g)
            means = 0.35 * d / d.norm(dim=1, keepdim=True)
            px = torch.randint(0, image.shape[1], (SPLATS, 2), generator=g)
            rgb = image[:3, px[:, 0], px[:, 1]].T.clamp(0.02, 0.98)
            gs = Gaussians(means, torch.tensor([[1.0, 0, 0, 0]]).repeat(SPLATS, 1), torch.full((SPLATS, 3), -4.5),
                           torch.full((SPLATS,), 2.0), rgb_to_sh0(rgb)[:, None, :])
            s = Sample(gs, vm, K, int(settings.seed) + i, settings, self.name)
            out.append(s)
            if progress:
                progress(i + 1, int(settings.num_samples))
            if on_sample:
                on_sample(s, i)
        return out


def visitor_photo(i: int) -> np.ndarray:
    """A visitor's photo: a coloured object (an ellipse) on transparency, 160×160 RGBA."""
    rng = np.random.default_rng(i)
    yy, xx = np.mgrid[:160, :160]
    a, b = rng.uniform(30, 60, 2)
    inside = ((xx - 80) / a) ** 2 + ((yy - 80) / b) ** 2 <= 1
    img = np.zeros((160, 160, 4), np.uint8)
    img[..., :3] = rng.integers(30, 230, 3, dtype=np.uint8)
    img[..., :3] = np.clip(img[..., :3].astype(int) + (xx[..., None] % 20 > 10) * 20, 0, 255)
    img[..., 3] = inside * 255
    return img


def _no_egl_current() -> None:
    """An earlier test's headless EGL context, left current, would keep Qt's GLX one from being made current."""
    from splatgen.core.render.foreign_context import release_current_egl

    release_current_egl()


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_simulated_day_at_the_booth(qapp, qtbot, tmp_path, monkeypatch):
    from PyQt6.QtCore import Qt
    from PyQt6.QtTest import QTest
    from PyQt6.QtWidgets import QApplication
    from test_gui import _dispose, _release_gl_context, _wait

    import splatgen.core.generator as generator_module
    from splatgen.app.input_panel import example_images
    from splatgen.app.main_window import MainWindow
    from splatgen.app.settings import Settings
    from splatgen.core.runs import Runs

    _no_egl_current()
    fast = FastGenerator()
    monkeypatch.setattr(generator_module, "load_generator", lambda model=None, device="auto": fast)
    clock = FakeClock()
    settings = Settings.from_file(tmp_path / "settings.ini")
    settings.model = "diffusion"
    settings.demo_attract_after_s, settings.demo_cycle_s, settings.demo_watchdog_s = 30, 10, 60
    runs_root, cache, temp = tmp_path / "runs", tmp_path / "cache", tmp_path / "tmp"
    temp.mkdir()
    w = MainWindow(settings, autosave_dir=runs_root)
    try:
        w.show()
        _wait(w)
        w.controls.num_samples.setValue(1)
        demo = w.start_demo(clock=clock, temp_parent=temp, cache_dir=cache, auto_tick=False)
        QApplication.processEvents()
        assert w.isFullScreen() and not w.menuBar().isVisible() and demo.bar.isVisible()
        assert demo.bar.widgetForAction(w.acts["generate"]).font().pointSizeF() >= 18   # large controls
        # warm-up: the examples' samples are made ahead, once, and kept on disk
        examples = example_images()
        for _ in range(3 * len(examples)):
            demo.tick()
            _wait(w)
        assert demo.ready_examples() == [p.stem for p in examples]
        cached = Runs(cache).list()
        assert sorted(r.name for r in cached) == sorted(p.stem for p in examples)
        calls = fast.calls
        visitor_files: set[str] = set()               # hashes of every file made from a visitor's photo
        forgotten, rss, turned = 0, [], False
        for i in range(VISITORS):
            if i == 40:
                fast.fail_next = True
            if i == 70:
                fast.hang_next = True
            photo = visitor_photo(i)
            path = w.open_captured(photo, "visitor", generate=True)
            assert path.parent == demo.photos
            visitor_files.add(_sha(path))
            if i == 70:                               # hangs: the watchdog restarts the worker
                qtbot.waitUntil(fast.hanging.is_set, timeout=10000)
                demo.tick()                           # the timer's ticks see the job start…
                clock.advance(61)                     # …and then no sign of life for 61 s
                demo.tick()
                assert w.runner.restarts == 1 and demo.worker_restarts == 1
                _wait(w)
                assert demo.attract and "stopped answering" in w.errors[-1].title.lower() + w.messages[-1].lower()
                fast.release.set()
                continue
            _wait(w)
            if i == 40:                               # failed: straight back to the attract loop
                assert demo.attract and w.errors[-1].text.endswith("injected failure")
                continue
            mine = [e for e in w.store.entries if e.run_id]
            assert len(w.store) == 1 and len(mine) == 1 and len({e.run_id for e in mine}) == 1
            run = Runs(demo.temp / "runs").open(mine[0].run_id)
            visitor_files |= {_sha(run.folder / n) for n in os.listdir(run.folder) if n != "run.json"}
            # somebody touches the screen, then leaves: the tiles turn, the loop starts, cycles
            QTest.keyClick(w.tiles, Qt.Key.Key_Space)
            assert not demo.attract
            az = w.camera.azimuth
            clock.advance(5)
            demo.tick()
            turned = turned or w.camera.azimuth != az
            clock.advance(settings.demo_attract_after_s)
            demo.tick()
            assert demo.attract and w.tiles.entries and w.tiles.entries[0][0].split(" · ")[0] in \
                [p.stem.replace("_", " ") for p in examples]
            for _ in range(CYCLES_PER_VISITOR - 1):
                clock.advance(settings.demo_cycle_s)
                demo.tick()
            QApplication.processEvents()
            # any input: the last visitor's result again
            QTest.mouseClick(w.tiles, Qt.MouseButton.LeftButton)
            assert not demo.attract and [s for _, s in w.tiles.entries] == [e.sample for e in mine]
            if i % 10 == 9:                           # "forget this visitor": gone at once
                demo.forget_act.trigger()
                assert not run.folder.exists() and not path.exists() and len(w.store) == 0
                forgotten += 1
            if i == 10 or i == VISITORS - 1:
                gc.collect()
                rss.append(rss_mb())
        assert demo.attract_cycles >= CYCLES_PER_VISITOR * (VISITORS - 2)
        assert turned and fast.calls == calls + VISITORS        # the examples were never made again
        print(f"demo day: RSS after warm-up {rss[0]:.1f} MB, at the end {rss[-1]:.1f} MB, "
              f"{demo.attract_cycles} attract cycles, {w.runner.restarts} worker restart")
        assert rss[-1] - rss[0] <= 100, rss
        kept_runs = len(Runs(demo.temp / "runs").list())
        assert kept_runs == VISITORS - (40 < VISITORS) - forgotten   # the failed one made no run
        demo_temp = demo.temp
        QTest.keyClick(w.tiles, Qt.Key.Key_Escape)            # Esc leaves
        assert w.demo is None and not w.isFullScreen() and w.menuBar().isVisible()
    finally:
        fast.release.set()
        _dispose(w)
        _release_gl_context()
    # after the demo: no visitor photo, nor anything made from one, anywhere
    assert not demo_temp.exists() and not any(temp.iterdir())
    assert not runs_root.exists() or not Runs(runs_root).list()
    left = [p for p in tmp_path.rglob("*") if p.is_file() and _sha(p) in visitor_files]
    assert not left, left
    assert Settings.from_file(tmp_path / "settings.ini").recent_files() == []


def test_kept_visitors_join_the_history_and_f11_toggles_full_screen(qapp, tmp_path, monkeypatch):
    from PyQt6.QtWidgets import QApplication
    from test_gui import _dispose, _release_gl_context, _wait

    import splatgen.core.generator as generator_module
    from splatgen.app.main_window import MainWindow
    from splatgen.app.settings import Settings
    from splatgen.core.runs import Runs

    _no_egl_current()
    fast = FastGenerator()
    monkeypatch.setattr(generator_module, "load_generator", lambda model=None, device="auto": fast)
    settings = Settings.from_file(tmp_path / "settings.ini")
    w = MainWindow(settings, autosave_dir=tmp_path / "runs")
    try:
        w.show()
        _wait(w)
        w.acts["fullscreen"].trigger()
        QApplication.processEvents()
        assert w.isFullScreen()
        w.acts["fullscreen"].trigger()
        QApplication.processEvents()
        assert not w.isFullScreen()
        w.controls.num_samples.setValue(1)
        demo = w.start_demo(clock=FakeClock(), temp_parent=tmp_path, cache_dir=None, auto_tick=False)
        demo.keep_act.setChecked(True)                  # the presenter keeps the visitors' runs
        photo = visitor_photo(1)
        w.open_captured(photo, "visitor", generate=True)
        _wait(w)
        run_id = w.store.entries[0].run_id
        w.acts["fullscreen"].trigger()                  # F11 works in the demo too
        QApplication.processEvents()
        assert not w.isFullScreen()
        w.stop_demo()
        assert settings.demo_keep_visitors and not demo.temp.exists()
        kept = Runs(tmp_path / "runs").open(run_id)     # moved into the history, whole
        import imageio.v3 as iio

        np.testing.assert_array_equal(iio.imread(kept.file(kept.meta["photo"])), photo)
        assert len(kept.samples()) == 1 and kept.load_sample(kept.samples()[0]).gaussians.num_gaussians == SPLATS
    finally:
        _dispose(w)
        _release_gl_context()
