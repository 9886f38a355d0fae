"""A hostile page client against `splatgen view`: a real viser server on loopback and a client on a
real websocket sending what any client may send (values for disabled inputs, names with ``..``,
file names that are HTML). Nothing lands outside the viewer's folder; nothing renders as markup."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest

from _page_client import PageClient
from splatgen.core.io import load_splats
from splatgen.core.viewer import ViewerServer
from splatgen.core.viewer.page_safety import ConfinedFolder, UnsafePathError, confined_path, escape_markdown

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "assets" / "examples" / "teddy_bear.ply"
HOSTILE_NAMES = ["../../../x", "..", "/etc/x", "a/../../b", "..\\..\\x", "x\x00y", ".hidden", "", "../" * 40 + "x",
                 "\u2025/\u2025/x", "%2e%2e/x", "x" * 400]


def files_under(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*")}


@pytest.fixture(scope="module")
def bear():
    return load_splats(EXAMPLE)


def test_every_name_a_client_can_type_stays_in_the_folder(tmp_path):
    out = tmp_path / "out"
    folder = ConfinedFolder.at(out)
    for name in HOSTILE_NAMES:
        # the paths nerfview's render tab builds from its Name field (Save Trajectory, Dump Video)
        for p in (folder / "camera_paths" / f"{name}.json", folder / "videos" / f"traj_{name}.mp4",
                  folder / "camera_paths" / name):
            resolved = Path(p).resolve()
            assert out.resolve() in resolved.parents, (name, p)
            assert len(resolved.name) <= 130 and not resolved.name.startswith(".")
    # a symlink inside the folder that points out of it is refused, not followed
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    out.mkdir(exist_ok=True)
    os.symlink(outside, out / "camera_paths")
    with pytest.raises(UnsafePathError):
        folder / "camera_paths" / "a.json"
    with pytest.raises(UnsafePathError):
        confined_path(out, "camera_paths")


def test_a_client_that_names_a_trajectory_outside_the_folder_writes_only_inside(bear, tmp_path, capfd):
    out = tmp_path / "deep" / "er" / "out"
    server = ViewerServer(bear, renderer="server", output_dir=out)
    tab = server.viewer._rendering_tab_handles
    try:
        with PageClient(server) as page:
            for name in ("../../../escaped", "/tmp/escaped-abs"):
                page.set_value(tab["trajectory_name_text"], name)  # the field is a plain text box
                page.wait_for(lambda name=name: tab["trajectory_name_text"].value == name)
                page.click(tab["save_camera_path_button"])
                page.wait_for(lambda: len(list((out / "camera_paths").glob("*.json"))) == 1 + (name[0] == "/"))
            saved = {p.name for p in (out / "camera_paths").iterdir()}
            # Load Trajectory's dialog: its dropdown set to a file outside reads nothing outside
            secret = tmp_path / "deep" / "secret.json"
            secret.write_text('{"keyframes": [], "default_fov": 50, "default_transition_sec": 2}')
            capfd.readouterr()
            page.click(tab["load_camera_path_button"])
            page.set_value(page.widget("GuiDropdownMessage", "Camera Path"), "../../secret.json")
            page.click(page.widget("GuiButtonMessage", "Load"))
            note = page.wait_for(lambda: [n["props"] for n in page.of_type("NotificationShowMessage")
                                          if n["props"]["title"] == "That did not work"])[-1]
            assert str(tmp_path) not in note["body"]                   # no server paths told to a page
            assert tab["trajectory_name_text"].value == "/tmp/escaped-abs"   # nothing was loaded
            err = capfd.readouterr().err
            assert "Traceback" not in err and "a page action failed: FileNotFoundError" in err, err
            secret.unlink()
            # Dump Video (a disabled button: viser runs it anyway) builds its path from the same field
            page.set_value(tab["render_res_vec2"], (32, 24))
            page.set_value(tab["framerate_number"], 4.0)
            page.set_value(tab["transition_sec_number"], 0.5)
            page.wait_for(lambda: tab["transition_sec_number"].value == 0.5)
            for x in (0.0, 0.5):                   # two keyframes: a path of 0.5 s, two frames
                page.move_camera((x, 0.0, 3.0))
                page.click(tab["add_keyframe_button"])
            page.wait_for(lambda: tab["duration_number"].value == 0.5)
            page.set_value(tab["trajectory_name_text"], "../../../video")
            page.wait_for(lambda: tab["trajectory_name_text"].value == "../../../video")
            assert tab["dump_video_button"].disabled
            page.click(tab["dump_video_button"])
            video = out / "videos" / "traj_.._.._.._video.mp4"
            page.wait_for(lambda: video.exists() and video.stat().st_size > 0)
            # a camera_paths folder that is a symlink out of the output folder: refused, the client told
            for p in (out / "camera_paths").iterdir():
                p.unlink()
            (out / "camera_paths").rmdir()
            outside = tmp_path / "outside"
            outside.mkdir()
            os.symlink(outside, out / "camera_paths")
            page.set_value(tab["trajectory_name_text"], "fine")
            page.wait_for(lambda: tab["trajectory_name_text"].value == "fine")
            page.click(tab["save_camera_path_button"])
            page.wait_for(lambda: [n for n in page.of_type("NotificationShowMessage")
                                   if n["props"]["title"] == "Refused" and "outside" in n["props"]["body"]])
            assert not list(outside.iterdir())
    finally:
        server.stop()
    written = {p.relative_to(tmp_path) for p in files_under(tmp_path)}
    assert all(str(p).startswith("deep") or str(p) == "outside" for p in written), written
    assert saved == {"_.._.._escaped.json", "_tmp_escaped-abs.json"}


def test_file_names_and_errors_are_shown_as_text_never_as_markup(shipped_generator, example_image, tmp_path):
    """viser renders a Markdown's raw HTML unsanitised, and reads the image of any ``![](path)`` on
    the server to embed it: a file name holding either is shown as its characters."""
    import imageio.v3 as iio

    png = iio.imwrite("<bytes>", (example_image.permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8),
                      extension=".png")
    private = tmp_path / "private.png"
    private.write_bytes(png)
    evil = f'<img src=x onerror="alert(1)">[click](javascript:alert(2))**x**![i]({private})\n# big'
    server = ViewerServer(generator=shipped_generator, renderer="server")
    try:
        with PageClient(server) as page:   # both files through the upload button, as a page sends them
            panel = server.panel
            page.upload(panel.upload, evil + ".txt", b"not an image")
            page.wait_for(lambda: panel.last_error)
            shown_error = panel.status_md.content
            page.upload(panel.upload, evil + ".png", png)
            page.wait_for(lambda: panel.prepared is not None)
            shown_ok = panel.status_md.content
            sent = page.wait_for(lambda: [m["updates"]["_markdown"] for m in page.of_type("GuiUpdateMessage")
                                          if "Photo" in str(m["updates"].get("_markdown", ""))])
    finally:
        server.stop()
    for text in (shown_error, shown_ok, sent[-1]):  # the last: what the page received
        assert "<img" not in text and "](" not in text and "\n" not in text and "**x**" not in text
        assert "&lt;img" in text  # the characters are there, as text
        assert "data:image" not in text and "![" not in text      # the server read no file for it
    assert escape_markdown("a_b*c<d>&[e](f)") == r"a\_b\*c&lt;d&gt;&amp;\[e\]\(f\)"


def test_the_page_downloads_the_splats_shown_as_ply_and_splat(bear, tmp_path):
    from plyfile import PlyData

    from splatgen.core.io import read_splat

    server = ViewerServer(bear, renderer="server")
    try:
        assert not server.download_ply.disabled and not server.download_splat.disabled
        with PageClient(server) as page:
            page.click(server.download_ply)
            name, ply = page.download()
            page.click(server.download_splat)
            page.wait_for(lambda: len(page.of_type("FileTransferStartDownload")) == 2)
            name2, splat = page.download()
    finally:
        server.stop()
    assert name == "splats.ply" and name2 == "splats.splat"
    vertex = PlyData.read(io.BytesIO(ply))["vertex"]
    assert vertex.count == bear.num_gaussians
    np.testing.assert_allclose(np.stack([vertex["x"], vertex["y"], vertex["z"]], 1), bear.means.numpy() * [-1, -1, 1], atol=1e-6)  # the PLY frame
    assert len(splat) == 32 * bear.num_gaussians
    (tmp_path / "got.splat").write_bytes(splat)
    assert read_splat(tmp_path / "got.splat").num_gaussians == bear.num_gaussians


def test_values_no_page_would_send_leave_the_viewer_working(bear, capfd):
    """A value outside a dropdown's options, colours out of range: ignored or clamped, no traceback."""
    server = ViewerServer(bear, renderer="server")
    try:
        with PageClient(server) as page:
            capfd.readouterr()
            page.set_value(server.mode_dropdown, "<script>alert(1)</script>")
            page.set_value(server.background_rgb, (100000, -5, 3))
            page.wait_for(lambda: server.render_fn.background != (1.0, 1.0, 1.0))
            page.wait_for(lambda: server.mode_dropdown.value == "rgb")   # put back
            assert server.render_fn.mode == "rgb"
            assert server.render_fn.background == (1.0, 0.0, 3 / 255)
            page.click(server.download_splat)                           # still serving
            assert len(page.download()[1]) == 32 * bear.num_gaussians
    finally:
        server.stop()
    err = capfd.readouterr().err
    assert "Traceback" not in err, err


def test_generation_settings_a_page_could_never_show_are_refused(shipped_generator, example_image, capfd):
    import imageio.v3 as iio

    png = iio.imwrite("<bytes>", (example_image.permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8),
                      extension=".png")
    server = ViewerServer(generator=shipped_generator, renderer="server")
    try:
        panel = server.panel
        assert panel.handle_upload("bear.png", png)
        with PageClient(server) as page:
            capfd.readouterr()
            for widget, value, words in ((panel.steps, 10**9, "Steps"), (panel.guidance, float("nan"), "Guidance"),
                                         (panel.num_samples, 10**6, "Samples"), (panel.seed, -5, "Seed"),
                                         (panel.scheduler, "rm -rf", "Scheduler")):
                page.set_value(widget, value)
                page.wait_for(lambda widget=widget, value=value: str(widget.value) == str(value))
                page.click(panel.generate_button)
                page.wait_for(lambda words=words: panel.last_error and words in panel.last_error)
                assert not panel.busy and not panel.entries
                page.set_value(widget, {"Steps": 2, "Guidance": 3.0, "Samples": 1, "Seed": 0,
                                        "Scheduler": panel._schedulers[0]}[words])
                page.wait_for(lambda widget=widget: str(widget.value) != str(value))
    finally:
        server.stop()
    assert "Traceback" not in capfd.readouterr().err
