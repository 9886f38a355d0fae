"""The browser viewer (splatgen view, serve_splats): page served, render callback honours nerfview's
camera state, modes, the generation panel, clean shutdown with no stray threads, bad input."""

from __future__ import annotations

import math
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch

from splatgen.core.gaussians import Gaussians, rgb_to_sh0
from splatgen.core.io import load_splats
from splatgen.core.render import gl_backend
from splatgen.core.viewer import ViewerError, ViewerServer, is_loopback, serve_splats
from splatgen.core.viewer.render_fn import MIN_SERVER_ROWS, camera_intrinsics, camera_viewmat

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "assets" / "examples" / "teddy_bear.ply"
WHITE = np.array([255, 255, 255])

needs_gl = pytest.mark.skipif(not gl_backend.available(), reason="no headless OpenGL (EGL) here")


# ---------------------------------------------------------------------- helpers
def viser_camera_state(eye, target, up=(0.0, 1.0, 0.0), fov_deg=40.0, aspect=4 / 3):
    """The camera state nerfview builds for a browser camera at ``eye`` looking at ``target``.

    Independent of splatgen's camera code: the rotation follows viser's documented convention
    (``R[:, 0]`` right, ``R[:, 1]`` = -up, ``R[:, 2]`` look direction: OpenCV), goes through viser's
    quaternion type as the browser reports it, and nerfview's own ``get_camera_state`` builds c2w.
    """
    import nerfview
    import viser.transforms as vt

    eye, target, up = (np.asarray(v, np.float64) for v in (eye, target, up))
    forward = (target - eye) / np.linalg.norm(target - eye)
    right = np.cross(forward, up)
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    R = np.stack([right, down, forward], axis=1)

    class Camera:
        wxyz = vt.SO3.from_matrix(R).wxyz
        position = eye
        fov = math.radians(fov_deg)

    Camera.aspect = aspect

    class Client:
        camera = Camera

    return nerfview.Viewer.get_camera_state(None, Client)


def background_fraction(img: np.ndarray, region=None) -> float:
    if region is not None:
        img = img[region]
    return float(np.mean(np.all(np.abs(img.astype(int) - WHITE) <= 3, axis=-1)))


def centre(img: np.ndarray, frac: float = 0.2):
    h, w = img.shape[:2]
    return slice(int(h * (0.5 - frac / 2)), int(h * (0.5 + frac / 2))), slice(int(w * (0.5 - frac / 2)), int(w * (0.5 + frac / 2)))


def blob(position, rgb=(1.0, 0.0, 0.0), scale=0.08) -> Gaussians:
    """One opaque round Gaussian."""
    return Gaussians(means=torch.tensor([position], dtype=torch.float32), quats=torch.tensor([[1.0, 0, 0, 0]]),
                     log_scales=torch.full((1, 3), math.log(scale)), opacity_logits=torch.tensor([6.0]),
                     sh=rgb_to_sh0(torch.tensor([rgb]))[:, None, :])


def wait_threads_back(before: set, timeout: float = 10.0) -> set:
    """Threads alive now that were not before, after giving ending threads ``timeout`` to finish."""
    end = time.monotonic() + timeout
    while True:
        extra = {t for t in threading.enumerate() if t not in before and t.is_alive()}
        if not extra or time.monotonic() > end:
            return extra
        time.sleep(0.05)


def fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=20) as r:
        assert r.status == 200
        return r.read().decode("utf-8", "replace")


@pytest.fixture(scope="module")
def bear() -> Gaussians:
    return load_splats(EXAMPLE)


# ---------------------------------------------------------------------- camera conventions
def test_camera_state_becomes_the_opencv_viewmat_and_vertical_fov_intrinsics():
    eye, target = np.array([0.3, 0.8, 2.5]), np.array([0.1, 0.0, 0.0])
    state = viser_camera_state(eye, target, fov_deg=50.0, aspect=16 / 9)
    vm = camera_viewmat(state).double()
    # the eye maps to the camera origin, the target straight ahead (+z), world up to image up (-y)
    assert torch.allclose(vm[:3, :3] @ torch.tensor(eye) + vm[:3, 3], torch.zeros(3, dtype=torch.float64), atol=1e-5)
    t_cam = vm[:3, :3] @ torch.tensor(target) + vm[:3, 3]
    assert abs(t_cam[0]) < 1e-5 and abs(t_cam[1]) < 1e-5 and t_cam[2] > 0
    assert (vm[:3, :3] @ torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64))[1] < 0
    K = camera_intrinsics(state, 320, 180)
    assert torch.allclose(K, torch.as_tensor(state.get_K((320, 180)), dtype=K.dtype), atol=1e-4)  # nerfview's own K


# ---------------------------------------------------------------------- serving and the render callback
@needs_gl
def test_page_is_served_and_frames_follow_the_camera(bear):
    before = set(threading.enumerate())
    handle = serve_splats(bear, renderer="server")
    try:
        assert handle.url.startswith("http://127.0.0.1:") and handle.port > 0
        assert "<html" in fetch(handle.url).lower()
        looking = viser_camera_state((0.8, 0.6, 2.4), (0.0, 0.0, 0.0))
        img = handle.render_fn(looking, (320, 240))
        assert img.shape == (240, 320, 3) and img.dtype == np.uint8
        assert background_fraction(img, centre(img)) < 0.2, "object expected at the image centre"
        assert background_fraction(img) > 0.3, "background expected around the object"
        away = viser_camera_state((0.8, 0.6, 2.4), (1.6, 1.2, 4.8))  # same place, looking away
        assert background_fraction(handle.render_fn(away, (320, 240))) == 1.0

        handle.set_mode("alpha")
        a = handle.render_fn(looking, (320, 240))
        assert a[centre(a)].mean() > 200 and a[:10, :10].max() == 0
        handle.set_mode("depth")
        d = handle.render_fn(looking, (320, 240))
        assert background_fraction(d, centre(d)) < 0.2 and background_fraction(d) > 0.3
        assert "20,000 splats" in handle.info_md.content and "in view" in handle.info_md.content
    finally:
        handle.stop()
    assert handle.stopped
    assert not wait_threads_back(before)


@needs_gl
def test_image_axes_follow_the_browser_camera():
    """A red blob right of the look-at point and a green one above it land right / top in the image."""
    g = Gaussians.concat([blob((0.5, 0.0, 0.0), (1, 0, 0)), blob((0.0, 0.5, 0.0), (0, 1, 0))])
    with ViewerServer(g, renderer="server") as handle:
        img = handle.render_fn(viser_camera_state((0.0, 0.0, 3.0), (0.0, 0.0, 0.0)), (320, 240)).astype(int)
    red = (img[..., 0] > 200) & (img[..., 1] < 80)
    green = (img[..., 1] > 200) & (img[..., 0] < 80)
    ys, xs = np.nonzero(red)
    assert red.sum() > 20 and xs.mean() > 200 and abs(ys.mean() - 120) < 10
    ys, xs = np.nonzero(green)
    assert green.sum() > 20 and ys.mean() < 80 and abs(xs.mean() - 160) < 10


@pytest.mark.parametrize("backend", ["torch", pytest.param("gl", marks=needs_gl), pytest.param(
    "gsplat", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="gsplat needs a CUDA device"))])
def test_frame_renderer_gives_colour_as_bytes(backend):
    """The server's colour frames come as uint8 (outputs ("rgb8",)): the float picture rounded (torch,
    gsplat: converted on their device), or within a few 8-bit steps of it (OpenGL accumulates viewer
    frames in 8 bits)."""
    from splatgen.core.viewer.render_fn import FrameRenderer

    g = Gaussians.concat([blob((0.3, 0.0, 0.0), (1, 0, 0), scale=0.2), blob((-0.2, 0.1, 0.2), (0, 0, 1), scale=0.3)])
    state = viser_camera_state((0.0, 0.0, 3.0), (0.0, 0.0, 0.0))
    vm, K = camera_viewmat(state).numpy(), camera_intrinsics(state, 64, 48).numpy()
    renderer = FrameRenderer(backend)
    try:
        renderer.set_gaussians(g)
        rgb8 = renderer.render(vm, K, 64, 48, outputs=("rgb8",), background=(1.0, 1.0, 1.0))["rgb8"]
        rgb = renderer.render(vm, K, 64, 48, outputs=("rgb",), background=(1.0, 1.0, 1.0))["rgb"]
    finally:
        renderer.close()
    assert rgb8.shape == (48, 64, 3) and rgb8.dtype == np.uint8
    expected = np.clip(rgb, 0, 1) * 255
    assert (expected[..., 1] < 128).mean() > 0.05   # the blobs are in view
    assert np.abs(rgb8 - expected).max() <= (8 if backend == "gl" else 0.5 + 1e-3)


@needs_gl
def test_browser_display_sends_the_splats_and_streams_only_flat_frames(bear):
    with serve_splats(bear, renderer="browser") as handle:
        assert handle.display == "browser"
        assert handle._splat_node is not None and handle._splat_node.visible
        state = viser_camera_state((0.8, 0.6, 2.4), (0.0, 0.0, 0.0))
        flat = handle.render_fn(state, (640, 480))
        assert flat.shape[0] < 480 and background_fraction(flat) == 1.0  # the browser draws the splats
        handle.set_mode("alpha")  # the browser cannot: the server does
        assert not handle._splat_node.visible
        a = handle.render_fn(state, (320, 240))
        assert a.shape == (240, 320, 3) and a[centre(a)].mean() > 200
        handle.set_mode("rgb")
        handle.set_renderer("server")
        assert not handle._splat_node.visible
        assert background_fraction(handle.render_fn(state, (320, 240)), centre(np.zeros((240, 320)))) < 0.2


@needs_gl
def test_small_moving_frames_are_drawn_at_a_useful_size(bear):
    with serve_splats(bear, renderer="server") as handle:
        img = handle.render_fn(viser_camera_state((0.8, 0.6, 2.4), (0, 0, 0)), (40, 30))
    assert img.shape[0] == MIN_SERVER_ROWS and img.shape[1] == 320


def test_set_gaussians_swaps_the_scene_and_stop_is_idempotent(bear):
    handle = serve_splats(bear)
    try:
        handle.set_gaussians(blob((0.0, 0.0, 0.0)))
        assert handle.num_gaussians == 1 and "1 splat" in handle.info_md.content
    finally:
        handle.stop()
        handle.stop()
    with pytest.raises(ViewerError):
        handle.set_gaussians(bear)


# ---------------------------------------------------------------------- the generation panel
@pytest.fixture(scope="module")
def generator(shipped_generator):
    return shipped_generator


@pytest.fixture(scope="module")
def photo_png(example_image) -> bytes:
    import imageio.v3 as iio

    rgba = (example_image.permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
    return iio.imwrite("<bytes>", rgba, extension=".png")


def test_generation_panel_generates_picks_resamples_and_cancels(generator, photo_png):
    before = set(threading.enumerate())
    server = ViewerServer(generator=generator, renderer="server")
    try:
        panel = server.panel
        # a bad upload: one clear line in the panel, nothing raised
        assert not panel.handle_upload("notes.txt", b"not an image")
        assert panel.last_error and "notes.txt" in panel.last_error and panel.prepared is None
        # what the upload button does with a real photo
        assert panel.handle_upload("bear.png", photo_png)
        assert panel.prepared is not None and panel.last_error is None and not panel.generate_button.disabled

        assert not panel.strength.disabled and panel.settings().strength == generator.defaults.strength
        panel.steps.value, panel.num_samples.value, panel.seed.value, panel.strength.value = 2, 2, 7, 0.5
        panel.generate()
        assert panel.busy and panel.cancel_button.visible and panel.progress.visible
        assert panel.wait(120) and panel.last_error is None, panel.status
        assert not panel.progress.visible and not panel.cancel_button.visible
        assert [e.sample.seed for e in panel.entries] == [7, 8]
        assert all(e.sample.settings.strength == 0.5 for e in panel.entries)
        assert torch.equal(server.gaussians.means, panel.entries[0].sample.gaussians.means)
        assert server.num_gaussians == panel.entries[0].sample.gaussians.num_gaussians

        panel.sample_picker.value = panel.entries[1].label  # pick sample 2 in the dropdown
        assert panel.current == 1 and torch.equal(server.gaussians.means, panel.entries[1].sample.gaussians.means)

        panel.resample()
        assert panel.wait(120) and panel.last_error is None, panel.status
        assert len(panel.entries) == 3 and panel.current == 2 and "resampled" in panel.entries[2].label
        assert torch.equal(server.gaussians.means, panel.entries[2].sample.gaussians.means)

        # a long job: the server keeps serving pages and frames, and Cancel stops it within a step
        panel.steps.value = 200
        panel.generate()
        time.sleep(0.3)
        assert "<html" in fetch(server.url).lower()
        frame = server.render_fn(viser_camera_state((0.0, 0.5, 2.5), (0, 0, 0)), (160, 120))
        assert frame.shape == (MIN_SERVER_ROWS, 320, 3)
        assert panel.busy
        panel.cancel()
        assert panel.wait(30) and panel.status == "Cancelled." and len(panel.entries) == 3
    finally:
        server.stop()
    assert not wait_threads_back(before)


# ---------------------------------------------------------------------- hosts, ports, bad input
def test_port_in_use_is_a_clear_error(bear):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        before = set(threading.enumerate())
        with pytest.raises(ViewerError, match=f"port {port} .*already in use"):
            serve_splats(bear, port=port)
        assert not wait_threads_back(before)


def test_loopback_by_default_and_a_warning_for_other_hosts(bear, capsys):
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5")
    with serve_splats(bear) as handle:
        assert handle.host == "127.0.0.1"
    assert "warning" not in capsys.readouterr().err
    with serve_splats(bear, host="0.0.0.0") as handle:
        assert "<html" in fetch(handle.url).lower()
    assert "warning: listening on 0.0.0.0" in capsys.readouterr().err


def run_cli(capsys, *args) -> tuple[int, str]:
    """``splatgen view ...`` in this process (the same entry point as the installed command)."""
    from splatgen.core.cli import main

    capsys.readouterr()
    code = main(["view", *map(str, args)])
    return code, capsys.readouterr().err


def assert_one_error_line(result, *needles):
    code, err = result
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("splatgen view: error:"), err
    assert "Traceback" not in err
    for n in needles:
        assert n in lines[0], lines[0]


def test_cli_bad_files_and_busy_port(tmp_path, capsys):
    assert_one_error_line(run_cli(capsys, tmp_path / "missing.ply"), "missing.ply")
    bad = tmp_path / "bad.ply"
    bad.write_bytes(b"ply\nformat ascii 1.0\nelement vertex nonsense\nend_header\n")
    assert_one_error_line(run_cli(capsys, bad), "bad.ply")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        before = set(threading.enumerate())
        assert_one_error_line(run_cli(capsys, EXAMPLE, "--port", port), f"port {port}", "in use")
        assert not wait_threads_back(before)
    assert_one_error_line(run_cli(capsys), "splat file")
    assert_one_error_line(run_cli(capsys, "--generate", tmp_path / "missing.png"), "missing.png")


def _tabs_that_close_mid_frame(port: int, tabs: int = 3) -> None:
    """Browser tabs on ``port`` that move their camera and close while their frame is drawn."""
    import msgspec
    import viser
    import websockets.sync.client
    from viser import _messages

    for _ in range(tabs):
        ws = websockets.sync.client.connect(f"ws://127.0.0.1:{port}", subprotocols=[f"viser-v{viser.__version__}"],
                                            max_size=None)
        for k in range(4):
            ws.send(msgspec.msgpack.encode(_messages.ViewerCameraMessage(
                wxyz=(1.0, 0.0, 0.0, 0.0), position=(0.3 * k, 0.2, 3.0), fov=0.8, near=0.01, far=100.0,
                image_height=480, image_width=640, look_at=(0.0, 0.0, 0.0),
                up_direction=(0.0, 1.0, 0.0)).as_serializable_dict()))
            time.sleep(0.15)
        ws.close()
    time.sleep(0.5)


def test_cli_serves_until_ctrl_c(tmp_path):
    exe = Path(sys.executable).with_name("splatgen")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "splatgen.core.cli"]
    # Ctrl-C as in a terminal: a runner started in the background may pass SIGINT on as ignored
    proc = subprocess.Popen(cmd + ["view", str(EXAMPLE), "--port", "0"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    err: list[str] = []
    drain = threading.Thread(target=lambda: err.extend(proc.stderr), daemon=True)  # a full pipe would block it
    drain.start()
    try:
        line = proc.stdout.readline()
        threading.Thread(target=lambda: proc.stdout.read(), daemon=True).start()
        assert "serving" in line and "20,000 splats" in line, line + "".join(err)
        url = line.split(" at ")[1].split()[0]
        assert url.startswith("http://127.0.0.1:")
        assert "<html" in fetch(url).lower()
        _tabs_that_close_mid_frame(int(url.rsplit(":", 1)[1].strip("/")))
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            raise AssertionError("still running 30 s after Ctrl-C; stderr:\n" + "".join(err)[-3000:]) from None
        drain.join(10)
        text = "".join(err)
        assert code == 0 and "stopping" in text and "Traceback" not in text, text
        assert "Warning" not in text, text          # no "Queued a … on a closed connection" from a closed tab
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_ctrl_c_ends_the_process_even_when_a_thread_does_not_stop():
    """The shutdown watchdog of `splatgen view`: a non-daemon thread that never ends cannot keep the
    process alive past the time it allows."""
    code = ("import threading, time\n"
            "from splatgen.core.commands.view import exit_if_stuck\n"
            "threading.Thread(target=time.sleep, args=(600,)).start()\n"
            "exit_if_stuck(1.0)\n")
    t0 = time.monotonic()
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "did not stop within 1 s" in r.stderr, r.stderr
    assert time.monotonic() - t0 < 30


def test_the_page_downloads_results_in_a_real_browser(bear, tmp_path, monkeypatch):
    """Debian's headless Chromium opens the page, clicks each download button, and the files it saves
    reopen with splatgen's readers (a mesh with trimesh) holding what the page shows."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from _browser import headless_chromium
    from splatgen.core.viewer import ViewerServer
    from splatgen.core.viewer.server import DOWNLOADS, MESH_DOWNLOADS

    downloads = tmp_path / "downloads"
    downloads.mkdir()
    browser = headless_chromium(monkeypatch, downloads)
    server = ViewerServer(bear, renderer="server")
    server.download_name = "bear"
    try:
        browser.get(server.url)
        for i, (suffix, (label, _)) in enumerate(DOWNLOADS.items()):
            if suffix == ".mesh.glb":  # the same mesh as .obj; one mesh keeps the test short
                continue
            (button,) = WebDriverWait(browser, 30).until(
                lambda b: b.find_elements(By.XPATH, f"//button[normalize-space(.)='{label}']"))
            WebDriverWait(browser, 10).until(lambda b: button.is_enabled())
            button.click()
            WebDriverWait(browser, 60).until(lambda b: (downloads / f"bear{suffix}").is_file())
    finally:
        browser.quit()
        server.stop()
    for suffix in DOWNLOADS:
        path = downloads / f"bear{suffix}"
        if suffix == ".mesh.glb":
            continue
        if suffix in MESH_DOWNLOADS:
            import trimesh

            assert len(trimesh.load(path, force="mesh").faces) > 1000
        else:
            assert load_splats(path).num_gaussians == bear.num_gaussians, suffix
