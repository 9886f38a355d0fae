"""The run history: every generation kept as a run folder (splatgen.core.runs), and the app's History panel.

Core: a writer killed half-way (SIGKILL, in a forked process) leaves no broken entry and the runs
before it intact; hostile run folders (names that climb out, links, a bad index) are not listed and
make nothing write or delete outside the root. GUI: three runs made through the app's Generate, the
app restarted on the same folder lists them, two are compared in the tiles under one camera, one
is deleted, and the other two read back bit for bit with an independent reader (plyfile).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import signal
import zipfile
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "assets" / "examples"
HAS_DISPLAY = bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _ply_xyz(path) -> np.ndarray:
    import plyfile

    v = plyfile.PlyData.read(str(path))["vertex"]
    return np.stack([v["x"], v["y"], v["z"]], 1)


def _write_and_die(root: str, sample, samples_before_death: int) -> None:
    """Child process: start a run, write some samples, then die as a crash does (no clean-up)."""
    import torch

    from splatgen.core.runs import Runs

    torch.set_num_threads(1)  # a forked child must not wait on the parent's OpenMP pool
    run = Runs(root).create(name="doomed", generator="diffusion", settings=sample.settings,
                            photo=str(EXAMPLES / "sofa.png"))
    for i in range(samples_before_death):
        run.add_sample(sample, index=i)
    os.kill(os.getpid(), signal.SIGKILL)


def _killed_run(root: Path, sample, samples: int) -> None:
    ctx = multiprocessing.get_context("fork")
    p = ctx.Process(target=_write_and_die, args=(str(root), sample, samples))
    p.start()
    p.join(60)
    assert p.exitcode == -signal.SIGKILL


def test_a_run_killed_half_way_leaves_no_broken_entry(generated_samples, tmp_path):
    from splatgen.core.runs import Runs, record_run

    root = tmp_path / "runs"
    a, b = generated_samples
    kept = record_run(root, name="armchair", generator="diffusion", settings=a.settings, samples=[a, b],
                      photo=EXAMPLES / "armchair.png", thumbnails=False)
    before = {p.name: p.read_bytes() for p in kept.folder.iterdir()}
    _killed_run(root, a, samples=1)       # died after its first sample
    _killed_run(root, a, samples=0)       # died before any
    assert len([p for p in root.iterdir() if p.name.endswith(".partial")]) == 2   # what the crashes left
    runs = Runs(root).list()
    assert [r.name for r in runs] == ["doomed", "armchair"] and not any(root.glob(".*.partial"))
    doomed = Runs(root).open(runs[0].id)
    assert runs[0].status == "interrupted" and len(doomed.samples()) == 1       # its whole sample is kept
    np.testing.assert_array_equal(_ply_xyz(doomed.file(doomed.samples()[0]["file"])),   # stored in the PLY frame
                                  a.gaussians.means.numpy() * [-1, -1, 1])
    assert {p.name: p.read_bytes() for p in kept.folder.iterdir()} == before    # the earlier run untouched
    # every listed run opens, and its samples load
    for info in runs:
        run = Runs(root).open(info.id)
        assert all(run.load_sample(r).gaussians.num_gaussians == 32768 for r in run.samples())


def test_hostile_run_folders_are_not_listed_and_nothing_leaves_the_root(generated_samples, tmp_path):
    from splatgen.core.runs import RunError, Runs, record_run

    root, outside = tmp_path / "runs", tmp_path / "outside"
    outside.mkdir()
    secret = outside / "secret.txt"
    secret.write_text("keep me")
    a = generated_samples[0]
    good = record_run(root, name="good", generator="diffusion", settings=a.settings, samples=[a], thumbnails=False)
    meta = json.loads((good.folder / "run.json").read_text())

    def plant(run_id: str, change) -> Path:
        folder = root / run_id
        shutil.copytree(good.folder, folder)
        m = json.loads(json.dumps(meta))
        m["id"] = run_id
        change(folder, m)
        (folder / "run.json").write_text(json.dumps(m))
        return folder

    plant("20000101-000000-aaaaaa", lambda f, m: m["samples"][0].update(file="../../outside/secret.txt"))
    plant("20000101-000000-bbbbbb", lambda f, m: (os.unlink(f / m["samples"][0]["file"]),
                                                 os.symlink(secret, f / m["samples"][0]["file"])))
    plant("20000101-000000-cccccc", lambda f, m: m.update(id="20990101-000000-ffffff"))     # not its own name
    plant("20000101-000000-dddddd", lambda f, m: m["samples"][0].update(bytes=12))          # a truncated sample
    (root / "20000101-000000-eeeeee").symlink_to(outside, target_is_directory=True)        # a link as a run
    (root / "20000101-000000-eeeeee" / "run.json").write_text(json.dumps({**meta, "id": "20000101-000000-eeeeee"}))
    (root / ".20000101-000000-999999.partial").symlink_to(outside, target_is_directory=True)
    runs = Runs(root)
    assert [r.id for r in runs.list()] == [good.id]
    with pytest.raises(RunError):
        runs.open("../outside")
    assert not runs.delete("../outside") and runs.delete("20000101-000000-eeeeee")   # only the link goes
    assert secret.read_text() == "keep me" and (outside / "run.json").exists()
    assert runs.delete("20000101-000000-bbbbbb") and secret.read_text() == "keep me"
    # the zip holds the run's own files only, under its id
    runs.export_zip(good.id, tmp_path / "good.zip")
    with zipfile.ZipFile(tmp_path / "good.zip") as z:
        names = z.namelist()
        assert all(n.startswith(f"{good.id}/") for n in names) and f"{good.id}/run.json" in names
        ply = [n for n in names if n.endswith(".ply")]
        assert len(ply) == 1 and z.read(ply[0]) == (good.folder / ply[0].split("/")[1]).read_bytes()
    # an unreadable index is rebuilt from the folders
    (root / "index.sqlite").write_bytes(b"not a database" * 100)
    assert [r.id for r in Runs(root).list()] == [good.id]


# ---------------------------------------------------------------------- the app
pytestmark_gui = pytest.mark.skipif(not HAS_DISPLAY, reason="needs a display: run under xvfb-run (scripts/test.sh)")


def _window(root: Path, settings_path: Path):
    from PyQt6.QtWidgets import QApplication

    from splatgen.core.render.foreign_context import release_current_egl

    release_current_egl()                     # an earlier test's headless EGL context would block Qt's GLX one

    from splatgen.app.main_window import MainWindow
    from splatgen.app.settings import Settings

    settings = Settings.from_file(settings_path)
    settings.model = "regressor"              # one fast pass per photo
    w = MainWindow(settings, autosave_dir=root)
    w.resize(900, 640)
    w.show()
    QApplication.processEvents()
    return w


@pytestmark_gui
def test_history_three_runs_restart_compare_delete(qapp, qtbot, tmp_path):
    import imageio.v3 as iio
    from test_gui import _dispose, _release_gl_context, _wait

    from splatgen.core.runs import Runs

    root, settings_path = tmp_path / "runs", tmp_path / "settings.ini"
    photos = [EXAMPLES / f"{n}.png" for n in ("armchair", "bar_stool", "sofa")]
    w = _window(root, settings_path)
    try:
        _wait(w)
        made = []
        for photo in photos:
            w.open_image(str(photo), generate=True)
            _wait(w)
            made.append((w.prepared.rgba.copy(), w.store.entries[-1].sample))
        assert len(w.store) == 3 and len({e.run_id for e in w.store.entries}) == 3
    finally:
        _dispose(w)
    # the folders, read by independent readers: the photo as it was, the prepared input, the samples
    infos = Runs(root).list()
    assert [i.name for i in infos] == ["sofa", "bar_stool", "armchair"]
    for info, photo, (rgba, sample) in zip(infos[::-1], photos, made):
        meta = json.loads((info.folder / "run.json").read_text())
        assert meta["status"] == "done" and meta["generator"] == "regressor" and meta["settings"]["num_samples"] == 1
        assert (info.folder / meta["photo"]).read_bytes() == photo.read_bytes()
        np.testing.assert_array_equal(iio.imread(info.folder / "input.png"), rgba)
        assert iio.imread(info.folder / "mask.png").shape == rgba.shape[:2]
        rec = meta["samples"][0]
        assert rec["seed"] == sample.seed and meta["timings"]["generate_s"] > 0
        np.testing.assert_array_equal(_ply_xyz(info.folder / rec["file"]), sample.gaussians.means.numpy() * [-1, -1, 1])

    w = _window(root, settings_path)               # the app again: the history comes from disk
    try:
        _wait(w)
        w.acts["history"].trigger()
        _wait(w)
        panel = w.history.panel
        assert panel.run_ids() == [i.id for i in infos] and not panel.list.item(0).icon().isNull()
        assert panel.list.item(0).text().startswith("sofa\n") and "3 runs in" in panel.where.text()
        # two runs side by side, in the tiles, under the one camera
        panel.select([infos[0].id, infos[2].id])
        assert panel.compare.isEnabled()
        panel.compare.click()
        _wait(w)
        tiles = w.tiles
        assert w.view_stack.currentWidget() is tiles and len(tiles.entries) == 2
        for (_, s), info in zip(tiles.entries, [infos[0], infos[2]]):
            rec = Runs(root).open(info.id).samples()[0]
            np.testing.assert_array_equal(s.gaussians.means.numpy() * [-1, -1, 1], _ply_xyz(info.folder / rec["file"]))
        np.testing.assert_allclose(tiles.camera.viewmat(), tiles.entries[0][1].input_viewmat.double().numpy(),
                                   atol=1e-5)
        qtbot.wait(50)
        img = tiles.grab_array()
        drawn = []
        for x, y, tw, th in tiles.rects[:2]:                   # origin top left
            tile = img[y: y + th, x: x + tw].astype(int)
            drawn.append(tile)
            assert (np.abs(tile - np.array([255, 255, 255])).max(-1) > 30).mean() > 0.01   # an object drawn
        assert np.abs(drawn[0] - drawn[1]).max(-1).__gt__(40).mean() > 0.01      # two different objects
        assert len(w.store) == 2
        # delete the middle run: gone from disk and the list; the other two intact
        kept = {i.id: {p.name: p.read_bytes() for p in i.folder.iterdir()} for i in (infos[0], infos[2])}
        assert w.history.delete([infos[1].id], confirm=False) == 1
        _wait(w)
        assert not infos[1].folder.exists() and panel.run_ids() == [infos[0].id, infos[2].id]
        assert [i.id for i in Runs(root).list()] == [infos[0].id, infos[2].id]
        for run_id, files in kept.items():
            assert {p.name: p.read_bytes() for p in (root / run_id).iterdir()} == files
        # reopening a run already in the gallery does not load it twice; a zip export reads back
        w.history.reopen([infos[0].id])
        _wait(w)
        assert len(w.store) == 2
        w.history.export_zip(infos[0].id, str(tmp_path / "sofa.zip"))
        _wait(w)
        with zipfile.ZipFile(tmp_path / "sofa.zip") as z:
            assert f"{infos[0].id}/photo.png" in z.namelist()
            assert z.read(f"{infos[0].id}/photo.png") == photos[2].read_bytes()
    finally:
        _dispose(w)
        _release_gl_context()
