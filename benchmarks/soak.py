"""Soak measurement of issue #38's targets, outside the suite (a few minutes on 2 cores).

* GUI: ``--gui-runs`` generations through the desktop app's Generate action (1 sample, ``--steps``
  denoising steps, the cheapest settings), "Clear gallery" every 10; resident memory (VmRSS) after
  each run, compared with run 10 (the target is judged after each clear, the gallery empty as at run
  10; the largest figure of any run, with up to 9 samples shown, is recorded too). Run once per undo
  bound in ``--undo-mb``.
* Viewer: ``--rounds`` rounds of ``--clients`` page clients (tests/_page_client.py, a real websocket
  speaking viser's protocol) joining a server-rendered viewer on 127.0.0.1, moving their cameras and
  leaving; RSS and thread count after each round against the single-client baseline.

Run under a display (the GUI needs one):
``xvfb-run -a nice -n 10 .venv/bin/python benchmarks/soak.py --out benchmarks/soak-cpu2-DATE.json``.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def gui_soak(runs: int, steps: int, undo_mb: float, clear_every: int = 10) -> dict:
    from PyQt6.QtWidgets import QApplication

    from splatgen.app.main import configure_opengl

    if QApplication.instance() is None:
        configure_opengl()
    app = QApplication.instance() or QApplication([])
    from splatgen.app.main_window import MainWindow
    from splatgen.app.settings import Settings

    tmp = Path(tempfile.mkdtemp(prefix="splatgen-soak-"))
    settings = Settings.from_file(tmp / "settings.ini")
    settings.undo_limit_mb = undo_mb
    w = MainWindow(settings, autosave_dir=tmp / "autosave")
    w.show()
    w.open_image(str(ROOT / "assets" / "examples" / "armchair.png"))
    w.wait_idle(300)
    app.processEvents()
    w.controls.steps.setValue(steps)
    w.controls.num_samples.setValue(1)
    rows, t0 = [], time.perf_counter()
    for run in range(1, runs + 1):
        w.controls.seed.setValue(7)             # one seed throughout: autosaves must still not collide
        w.generate()
        assert w.wait_idle(300), "generation did not finish"
        app.processEvents()
        if run % clear_every == 0:
            w.acts["clear"].trigger()
            app.processEvents()
        gc.collect()
        rows.append({"run": run, "rss_mb": round(rss_mb(), 1), "gallery": len(w.store),
                     "held_mb": round(w.undo_stack.total_bytes() / 2**20, 2), "undo_steps": w.undo_stack.count(),
                     "threads": threading.active_count()})
    seconds = time.perf_counter() - t0
    autosaves = len(list((tmp / "autosave").glob("*/*.ply")))
    w.close()
    w.deleteLater()
    app.processEvents()
    ref = rows[clear_every - 1]["rss_mb"]
    after = [r["rss_mb"] for r in rows[clear_every - 1:]]
    cleared = [r["rss_mb"] - ref for r in rows[clear_every - 1::clear_every]]   # the gallery empty, as at run 10
    return {"runs": runs, "steps": steps, "undo_limit_mb": undo_mb, "clear_every": clear_every,
            "seconds": round(seconds, 1), "autosaved_files": autosaves,
            "rss_run10_mb": ref, "rss_final_mb": rows[-1]["rss_mb"],
            "rss_at_clears_over_run10_mb": [round(x, 1) for x in cleared],
            "rss_max_at_clears_over_run10_mb": round(max(cleared), 1),
            "rss_max_any_run_over_run10_mb": round(max(after) - ref, 1),
            "rss_final_over_run10_mb": round(after[-1] - ref, 1),
            "target_mb": 64, "met": max(cleared) <= 64, "rows": rows}


def viewer_soak(rounds: int, clients: int, moves: int = 6) -> dict:
    from _page_client import PageClient

    from splatgen.core.io import load_splats
    from splatgen.core.viewer import serve_splats

    server = serve_splats(load_splats(ROOT / "assets" / "examples" / "teddy_bear.ply"), renderer="server")

    def renderers() -> int:   # a server without renderer_count (before issue #38): nerfview's tab threads alive
        if hasattr(server, "renderer_count"):
            return server.renderer_count
        from nerfview._renderer import Renderer

        return sum(1 for t in threading.enumerate() if isinstance(t, Renderer) and t.is_alive())

    def one_round(n: int) -> int:
        pages = [PageClient(server) for _ in range(n)]
        peak = renderers()
        for k in range(moves):
            for i, p in enumerate(pages):
                p.move_camera((0.3 * k - 0.9, 0.15 * i, 2.6))
            time.sleep(0.12)
            peak = max(peak, renderers())
        for p in pages:
            p.close()
        end = time.monotonic() + 15
        while (renderers() or server.server.get_clients()
               or any(t.name == "splatgen-viewer-reap" for t in threading.enumerate())) and time.monotonic() < end:
            time.sleep(0.02)
        time.sleep(0.3)
        gc.collect()
        return peak

    try:
        for _ in range(2):
            one_round(1)
        base_rss, base_threads = rss_mb(), threading.active_count()
        rows = []
        for r in range(1, rounds + 1):
            peak = one_round(clients)
            rows.append({"round": r, "peak_renderers": peak, "renderers_after": renderers(),
                         "rss_over_baseline_mb": round(rss_mb() - base_rss, 1),
                         "threads_over_baseline": threading.active_count() - base_threads})
    finally:
        server.stop()
    worst_mb = max(r["rss_over_baseline_mb"] for r in rows)
    worst_threads = max(abs(r["threads_over_baseline"]) for r in rows)
    return {"rounds": rounds, "clients": clients, "baseline_rss_mb": round(base_rss, 1),
            "baseline_threads": base_threads, "rss_max_over_baseline_mb": worst_mb,
            "rss_final_over_baseline_mb": rows[-1]["rss_over_baseline_mb"],
            "threads_max_over_baseline": worst_threads, "target_mb": 32, "target_threads": 2,
            "met": worst_mb <= 32 and worst_threads <= 2, "rows": rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gui-runs", type=int, default=100)
    ap.add_argument("--steps", type=int, default=1)
    ap.add_argument("--undo-mb", type=float, nargs="+", default=[48.0])
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--skip-gui", action="store_true")
    ap.add_argument("--skip-viewer", action="store_true")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    out = {"what": "soak (issue #38)", "date": time.strftime("%Y-%m-%d"), "commit": commit,
           "machine": {"cores": len(os.sched_getaffinity(0)), "platform": platform.platform(),
                       "python": platform.python_version()},
           "command": " ".join(sys.argv)}
    if not args.skip_viewer:   # first: a fresh process, before the GUI's allocations
        out["viewer"] = viewer_soak(args.rounds, args.clients)
        v = out["viewer"]
        print(f"viewer: {args.rounds} rounds of {args.clients}: RSS ≤ +{v['rss_max_over_baseline_mb']} MB, "
              f"threads ±{v['threads_max_over_baseline']} of the 1-client baseline; met={v['met']}", flush=True)
    if not args.skip_gui:
        out["gui"] = []
        for mb in args.undo_mb:
            g = gui_soak(args.gui_runs, args.steps, mb)
            out["gui"].append(g)
            print(f"gui (undo {mb:g} MB): {g['runs']} runs in {g['seconds']} s, RSS after each clear ≤ "
                  f"+{g['rss_max_at_clears_over_run10_mb']} MB over run 10 (any run ≤ +{g['rss_max_any_run_over_run10_mb']}, "
                  f"final +{g['rss_final_over_run10_mb']}); {g['autosaved_files']} autosaves; met={g['met']}", flush=True)
    text = json.dumps(out, indent=1)
    if args.out:
        args.out.write_text(text + "\n")
    else:
        print(text)


if __name__ == "__main__":
    main()
