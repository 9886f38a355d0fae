"""Who should draw the viewer's pixels without CUDA: measurements behind :mod:`splatgen.core.viewer`.

``python -m splatgen.core.viewer.benchmark [--browser chromium-headless-shell] [--out-dir benchmarks]``
writes ``benchmarks/viewer-<cpuN|gpu>-<date>.json`` with

* ``server_gl``: the OpenGL renderer (as the viewer uses it) per frame at typical viewer sizes, plus
  the JPEG encoding viser applies to each streamed frame, for the shipped example (20k splats) and
  a generated sample (32k);
* ``browser_upload``: what showing splats in the browser costs the server — preparing and sending
  the splats once (``add_gaussian_splats``; 32 bytes a splat), nothing per frame;
* ``orbit`` (with ``--browser``): a headless Chromium on this machine (software WebGL, SwiftShader)
  opens the page while the server orbits its camera at 30 Hz; recorded are the page's frame rate
  (``requestAnimationFrame``) and, when the server renders, the frames it streams per second, their
  size and render time — for the browser drawing the splats and for the server drawing them.
  The machine's load average is recorded with each run (the reference machine is shared).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request

import numpy as np
import torch

#: What the numbers decided (kept with them in the JSON; the reasoning is in splatgen.core.viewer's docstring).
DECISION = ("renderer='auto': CUDA -> server (gsplat). No CUDA: loopback-only and software OpenGL here (a browser "
            "here renders WebGL in software too: in-browser splats orbited at 1.8-3.4 frames/s vs 12-16 streamed "
            "server frames/s) -> server (OpenGL); otherwise (serving other machines, or a hardware GPU here) -> "
            "the browser (add_gaussian_splats: sent once, no server work per frame, display rate on the "
            "client's GPU). Depth/alpha always server-side; the panel's Renderer switch / --renderer overrides.")
SIZES = ((320, 240), (640, 480), (960, 720), (1280, 960), (2048, 1536))
_RAF_JS = ("new Promise(r=>{{let n=0;const t0=performance.now();function f(){{n++;"
           "if(performance.now()-t0<{ms})requestAnimationFrame(f);else r(n/((performance.now()-t0)/1000));}}"
           "requestAnimationFrame(f);}})")


def _scenes(generated: bool) -> dict:
    from ..benchmarks import example_splat_file
    from ..io import load_splats

    scenes = {"example_teddy_bear": load_splats(example_splat_file())}
    if generated:
        from ..generator import GenerationSettings, load_generator
        from ..generator.benchmark import example_input

        gen = load_generator(device="cpu")
        sample = gen.generate(example_input(), GenerationSettings(seed=0, num_samples=1))[0]
        scenes["generated_sample"] = sample.gaussians
    return scenes


def bench_server_gl(scenes: dict, sizes=SIZES, repeat: int = 8) -> dict:
    from viser._image_encoding import cv2_imencode_with_fallback

    from ..render.gl_backend import VIEW_MIN_TRANSMITTANCE, GLSplatRenderer
    from ..viewer import framing_camera
    from ..cameras import intrinsics_from_fov, look_at as look_at_fn

    out = {}
    r = GLSplatRenderer(min_transmittance=VIEW_MIN_TRANSMITTANCE, display_8bit=True)   # as the server's
    try:
        for name, g in scenes.items():
            r.set_gaussians(g)
            position, look_at = framing_camera(g.means)
            rows = []
            for w, h in sizes:
                K = intrinsics_from_fov(40.0, w, h, fov_axis="y").numpy()
                render_ms, jpeg_ms = [], []
                for i in range(repeat + 2):  # orbiting: a new camera (and splat order) every frame
                    a = math.radians(7.0 * i)
                    off = position - look_at
                    rot = np.array([[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]])
                    vm = look_at_fn(torch.from_numpy(look_at + rot @ off), torch.from_numpy(look_at)).numpy()
                    t0 = time.perf_counter()
                    img = r.render_rgb8(vm, K, w, h)
                    t1 = time.perf_counter()
                    cv2_imencode_with_fallback("jpeg", img, jpeg_quality=40, channel_ordering="rgb")
                    t2 = time.perf_counter()
                    if i >= 2:
                        render_ms.append((t1 - t0) * 1e3)
                        jpeg_ms.append((t2 - t1) * 1e3)
                rm, jm = float(np.median(render_ms)), float(np.median(jpeg_ms))
                rows.append({"width": w, "height": h, "render_ms": round(rm, 1), "jpeg_ms": round(jm, 1),
                             "frames_per_s": round(1000.0 / (rm + jm), 1)})
                print(f"  server GL  {name:20s} {w:5d}x{h:<5d} render {rm:6.1f} ms  jpeg {jm:4.1f} ms")
            out[name] = {"splats": g.num_gaussians, "frames": rows}
    finally:
        r.release()
    return out


def bench_browser_upload(scenes: dict) -> dict:
    from ..viewer import ViewerServer, browser_splat_arrays

    out = {}
    with ViewerServer(renderer="browser") as server:
        for name, g in scenes.items():
            t0 = time.perf_counter()
            arrays = browser_splat_arrays(g)
            t1 = time.perf_counter()
            server.server.scene.add_gaussian_splats("/bench", **arrays)
            t2 = time.perf_counter()
            m = arrays["centers"].shape[0]
            out[name] = {"splats": g.num_gaussians, "sent": m, "bytes": 32 * m,
                         "prepare_ms": round((t1 - t0) * 1e3, 1), "add_gaussian_splats_ms": round((t2 - t1) * 1e3, 1),
                         "per_frame_server_ms": 0.0}
            print(f"  browser    {name:20s} once: prepare {out[name]['prepare_ms']} ms, add_gaussian_splats "
                  f"{out[name]['add_gaussian_splats_ms']} ms, {32 * m / 1e6:.2f} MB; per frame: 0")
    return out


# ----------------------------------------------------------------------------- headless browser
class _CDP:
    def __init__(self, ws):
        self.ws, self.i = ws, 0

    async def call(self, method, **params):
        self.i += 1
        await self.ws.send(json.dumps({"id": self.i, "method": method, "params": params}))
        while True:
            msg = json.loads(await self.ws.recv())
            if msg.get("id") == self.i:
                return msg

    async def js(self, expr: str, promise: bool = False):
        r = await self.call("Runtime.evaluate", expression=expr, returnByValue=True, awaitPromise=promise)
        return r.get("result", {}).get("result", {}).get("value")


def _launch(browser: str, url: str, size, port: int):
    p = subprocess.Popen([browser, f"--remote-debugging-port={port}", "--no-sandbox", "--use-angle=swiftshader",
                          "--enable-unsafe-swiftshader", "--ignore-gpu-blocklist", f"--window-size={size[0]},{size[1]}",
                          url], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    for _ in range(200):
        try:
            tabs = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/json", timeout=1).read())
            pages = [t for t in tabs if t.get("type") == "page"]
            if pages:
                return p, pages[0]["webSocketDebuggerUrl"]
        except Exception:  # noqa: BLE001 - still starting
            pass
        time.sleep(0.1)
    _kill(p)
    raise RuntimeError(f"{browser} did not start")


def _kill(p) -> None:
    try:
        os.killpg(p.pid, signal.SIGTERM)  # the browser and its GPU / renderer processes
    except ProcessLookupError:
        pass
    p.wait()


def bench_orbit(browser: str, gaussians, display: str, size, seconds: float = 6.0, port: int = 9333) -> dict:
    import websockets

    from ..viewer import ViewerServer

    frames = []
    res = {"display": display, "window": list(size), "loadavg_1min_before": round(os.getloadavg()[0], 2)}
    server = ViewerServer(gaussians, renderer=display)
    base = server.render_fn.on_frame

    def on_frame(s):
        frames.append((time.perf_counter(), s.width, s.height, s.ms))
        base(s)

    server.render_fn.on_frame = on_frame
    proc, ws_url = _launch(browser, server.url, size, port)

    async def main():
        async with websockets.connect(ws_url, max_size=2**26) as ws:
            cdp = _CDP(ws)
            t0 = time.time()
            while not server.server.get_clients() and time.time() - t0 < 60:
                await asyncio.sleep(0.2)
            await asyncio.sleep(5.0)  # page settled, splats uploaded, first still drawn
            client = next(iter(server.server.get_clients().values()))
            res["static_page_fps"] = round(await cdp.js(_RAF_JS.format(ms=3000), True), 2)
            look = np.array(client.camera.look_at)
            radius = float(np.linalg.norm(np.array(client.camera.position) - look))
            stop = threading.Event()

            def orbit():
                k = 0
                while not stop.is_set():
                    a = 2 * math.pi * k / 180
                    with client.atomic():
                        client.camera.position = tuple(look + radius * np.array([math.sin(a) * 0.94, 0.34,
                                                                                 math.cos(a) * 0.94]))
                        client.camera.look_at = tuple(look)
                    k += 1
                    time.sleep(1 / 30)

            n0 = len(frames)
            th = threading.Thread(target=orbit)
            c0 = time.process_time()
            ta = time.perf_counter()
            th.start()
            fps = await cdp.js(_RAF_JS.format(ms=int(seconds * 1000)), True)
            tb = time.perf_counter()
            c1 = time.process_time()
            stop.set()
            th.join()
            fr = [f for f in frames[n0:] if ta <= f[0] <= tb]
            res["orbit_page_fps"] = round(fps, 2)
            res["orbit_server_cpu_s_per_s"] = round((c1 - c0) / (tb - ta), 2)
            res["orbit_server_frames_per_s"] = round(len(fr) / (tb - ta), 2)
            if fr:
                res["orbit_server_frame_size"] = [int(np.median([f[1] for f in fr])), int(np.median([f[2] for f in fr]))]
                res["orbit_server_render_ms"] = round(float(np.median([f[3] for f in fr])), 1)

    try:
        asyncio.run(main())
    finally:
        _kill(proc)
        server.stop()
    print(f"  orbit      {display:8s} window {size[0]}x{size[1]}: {res}")
    return res


def bench_callback(scenes: dict, backend: str, sizes=SIZES, repeat: int = 20) -> dict:
    """The nerfview render callback end to end (camera state → viewmat/K → backend → uint8 picture) on
    ``backend``, orbiting; plus a check that it draws the object where the camera looks."""
    from types import SimpleNamespace

    from ..cameras import look_at as look_at_fn
    from ..viewer import framing_camera
    from .render_fn import FrameRenderer, SplatRenderFn

    out = {}
    renderer = FrameRenderer(backend)
    try:
        fn = SplatRenderFn(renderer, display="server")
        for name, g in scenes.items():
            fn.set_gaussians(g)
            position, target = framing_camera(g.means)

            def state(angle_deg: float, away: bool = False, aspect: float = 4 / 3):
                a = math.radians(angle_deg)
                rot = np.array([[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]])
                eye = target + rot @ (position - target)
                look = eye + (eye - target) if away else target
                c2w = torch.linalg.inv(look_at_fn(torch.from_numpy(eye), torch.from_numpy(look)).double()).numpy()
                return SimpleNamespace(fov=math.radians(40.0), aspect=aspect, c2w=c2w)

            white = np.array([255, 255, 255])
            img = fn(state(0.0), (320, 240))
            h, w = img.shape[:2]
            mid = img[h * 2 // 5:h * 3 // 5, w * 2 // 5:w * 3 // 5].astype(int)
            check = {"centre_covered": float(np.mean(np.any(np.abs(mid - white) > 3, axis=-1))),
                     "looking_away_background": float(np.mean(np.all(np.abs(fn(state(0.0, True), (320, 240)).astype(int)
                                                                          - white) <= 3, axis=-1)))}
            rows = []
            for mode in ("rgb", "depth", "alpha"):
                fn.mode = mode
                for W, H in sizes:
                    times = []
                    for i in range(repeat + 3):
                        t0 = time.perf_counter()
                        fn(state(7.0 * i, aspect=W / H), (W, H))
                        if i >= 3:
                            times.append((time.perf_counter() - t0) * 1e3)
                    ms = float(np.median(times))
                    rows.append({"mode": mode, "width": W, "height": H, "callback_ms": round(ms, 2),
                                 "render_ms": round(renderer.last_frame_ms, 2), "frames_per_s": round(1000 / ms, 1)})
                    print(f"  callback {backend:6s} {name:20s} {mode:5s} {W:5d}x{H:<5d} {ms:7.2f} ms")
            fn.mode = "rgb"
            out[name] = {"splats": g.num_gaussians, "check": check, "frames": rows}
    finally:
        renderer.close()
    return out


def main(argv=None) -> int:
    from ..benchmarks import machine_info, write_result

    p = argparse.ArgumentParser(prog="python -m splatgen.core.viewer.benchmark", description=__doc__.split("\n\n")[0])
    p.add_argument("--browser", help="headless Chromium to orbit the page with (e.g. chromium-headless-shell)")
    p.add_argument("--windows", nargs="+", default=["800x600", "1280x720"], help="browser window sizes")
    p.add_argument("--no-generated", action="store_true", help="skip the generated sample (no model load)")
    p.add_argument("--callback-only", choices=("gsplat", "gl", "torch"),
                   help="only time the render callback on this backend (the GPU machine: gsplat)")
    p.add_argument("--out-dir", default="benchmarks")
    argv = sys.argv[1:] if argv is None else list(argv)
    args = p.parse_args(argv)
    machine = machine_info()
    machine["loadavg_1_5_15_at_start"] = [round(x, 2) for x in os.getloadavg()]
    scenes = _scenes(not args.no_generated)
    if args.callback_only:
        result = {"command": "python -m splatgen.core.viewer.benchmark " + " ".join(argv), "machine": machine,
                  "callback": bench_callback(scenes, args.callback_only)}
        path = write_result(f"viewer-callback-{args.callback_only}", result, args.out_dir)
        print(f"wrote {path}")
        return 0
    result = {"command": "python -m splatgen.core.viewer.benchmark " + " ".join(argv), "machine": machine,
              "decision": DECISION, "server_gl": bench_server_gl(scenes), "browser_upload": bench_browser_upload(scenes)}
    if args.browser:
        result["browser"] = subprocess.run([args.browser, "--version"], capture_output=True, text=True).stdout.strip()
        runs = []
        for win in args.windows:
            size = tuple(int(v) for v in win.lower().split("x"))
            for display in ("browser", "server"):
                runs.append(bench_orbit(args.browser, scenes["example_teddy_bear"], display, size))
                time.sleep(2.0)
        result["orbit"] = runs
    path = write_result("viewer", result, args.out_dir)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
