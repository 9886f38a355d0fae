"""A short soak: what a long session holds must not grow. A few generations through the desktop
app's Generate path with the gallery cleared after each, and a few rounds of page clients joining
and leaving the browser viewer on 127.0.0.1; each asserts the held objects (sample bytes kept by the
gallery and its undo history, live ``Sample`` objects, tab renderers, threads) are back where they
were, never wall-clock or resident-memory figures (benchmarks/soak.py measures those)."""

from __future__ import annotations

import gc
import os
import threading
import time
import warnings
from pathlib import Path

import pytest

from _page_client import PageClient

HAS_DISPLAY = bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
ROOT = Path(__file__).resolve().parent.parent


def live_samples() -> int:
    from splatgen.core.generator.base import Sample

    gc.collect()
    return sum(1 for o in gc.get_objects() if type(o) is Sample)


def thread_names() -> list[str]:
    return sorted(t.name for t in threading.enumerate() if t.is_alive())


@pytest.mark.skipif(not HAS_DISPLAY, reason="needs a display: run under xvfb-run (scripts/test.sh)")
def test_generations_with_the_gallery_cleared_hold_no_more_samples(qapp, tmp_path):
    from PyQt6.QtWidgets import QApplication
    from test_gui import _dispose, _release_gl_context, _wait

    from splatgen.app.main_window import MainWindow
    from splatgen.app.settings import Settings
    from splatgen.app.undo_history import sample_bytes

    settings = Settings.from_file(tmp_path / "settings.ini")
    settings.undo_limit_mb = 64
    base = live_samples()
    w = MainWindow(settings, autosave_dir=tmp_path / "autosave")
    try:
        w.show()
        w.open_image(str(ROOT / "assets" / "examples" / "armchair.png"))
        _wait(w)
        w.controls.steps.setValue(1)
        w.controls.num_samples.setValue(2)
        held = []
        for run in range(3):
            w.controls.seed.setValue(7)                # one seed every run: autosaves must not collide
            w.generate()
            _wait(w)
            assert len(w.store) == 2
            if run == 0:                               # one cleared run of two samples fits, two do not
                assert w.undo_stack.limit_bytes == 64 * 2**20     # the setting
                one = max(sample_bytes(e.sample, e.thumbnail) for e in w.store.entries)
                w.undo_stack.set_limit(3 * one)
            w.acts["tiled"].setChecked(run % 2 == 1)   # the tiled view holds samples too while shown
            QApplication.processEvents()
            w.acts["clear"].trigger()
            QApplication.processEvents()
            assert len(w.store) == 0
            held.append((w.undo_stack.total_bytes(), live_samples(), thread_names()))
        assert all(b <= w.undo_stack.limit_bytes for b, _, _ in held)
        assert held[-1] == held[1], held                # bytes, samples and threads: flat after run 2
        assert held[-1][1] - base <= 2                  # at most the one undoable clear's two samples
        assert any("oldest undo step" in m for m in w.messages)   # the drop is said in the status bar
        w.acts["undo"].trigger()                        # the last clear is still undoable
        assert len(w.store) == 2
        assert len(list((tmp_path / "autosave").glob("*/*.ply"))) == 6   # 3 runs × 2, none replaced
    finally:
        _dispose(w)
        _release_gl_context()


def _round(server, clients: int, moves: int = 4) -> int:
    """``clients`` pages join, move their cameras and leave, the last move unanswered (a frame in
    flight as the tab closes); returns the most tab renderers seen. Waits for the renderers to end."""
    pages = [PageClient(server) for _ in range(clients)]
    peak = server.renderer_count
    for k in range(moves):
        for i, p in enumerate(pages):
            p.move_camera((0.4 * k - 0.6, 0.2 * i, 2.6))
        time.sleep(0.05)
        peak = max(peak, server.renderer_count)
    for p in pages:
        p.move_camera((0.0, 0.5, 2.8))
        p.close()
    end = time.monotonic() + 10
    while (server.renderer_count or server.server.get_clients()
           or any(t.name == "splatgen-viewer-reap" for t in threading.enumerate())) and time.monotonic() < end:
        time.sleep(0.02)
    return peak


def test_viewer_clients_come_and_go_leaving_no_renderer_or_thread(capfd):
    from splatgen.core.io import load_splats
    from splatgen.core.viewer import serve_splats

    server = serve_splats(load_splats(ROOT / "assets" / "examples" / "teddy_bear.ply"), renderer="server")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            _round(server, 1)
            baseline, after = thread_names(), []
            for _ in range(3):
                assert _round(server, 4) == 4
                assert server.renderer_count == 0 and not server.viewer._renderers
                assert not server.server.get_clients()
                after.append(thread_names())
            pool_names = {f"splatgen-viewer-callback_{i}" for i in range(2)}
            for names in after:                     # no tab thread left, nothing new but the bounded pool's
                assert set(names) - set(baseline) <= pool_names and len(names) <= len(baseline) + 1, names
            pool = server.server._thread_executor
            assert pool._max_workers <= 2 and len(pool._threads) <= 2   # the callback pool is bounded
        closed = [str(c.message) for c in caught if "closed connection" in str(c.message)]
        assert not closed, closed                     # no "Queued a … on a closed connection"
    finally:
        server.stop()
    assert "Warning" not in capfd.readouterr().err
