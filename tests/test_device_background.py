"""``scripts/device/background.sh``: a command started in its own process session outlives the call
that started it (the device ends a call's other processes), and later calls watch it to its end."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "device" / "background.sh"


def _bg(tmp_path, *args, timeout=60):
    return subprocess.run(["bash", str(SCRIPT), *args], cwd=tmp_path, capture_output=True, text=True, timeout=timeout)


def test_a_background_run_outlives_its_call_and_is_watched_to_its_status(tmp_path):
    (tmp_path / "runs").mkdir()
    # the "call": a process group that starts the run and is then killed as the device kills a call's processes
    call = subprocess.Popen(["bash", "-c", f"bash {SCRIPT} start job bash -c 'for i in 1 2 3 4; do echo tick $i >> "
                             "runs/ticks.txt; sleep 0.5; done; exit 3'; sleep 30"],
                            cwd=tmp_path, start_new_session=True, stdout=subprocess.PIPE, text=True)
    assert "started job" in call.stdout.readline()
    os.killpg(call.pid, signal.SIGKILL)
    call.wait()
    assert _bg(tmp_path, "status", "job").stdout.strip() == "running"
    assert _bg(tmp_path, "start", "job", "true").returncode == 1          # one run of a name at a time
    watched = _bg(tmp_path, "watch", "job", "30", "runs/ticks.txt")
    assert watched.returncode == 1 and "ended (status 3)" in watched.stdout  # its own failure is reported
    assert (tmp_path / "runs" / "ticks.txt").read_text().split("\n")[:4] == [f"tick {i}" for i in range(1, 5)]
    assert _bg(tmp_path, "status", "job").stdout.strip() == "ended (status 3)"


def test_watch_returns_while_the_run_goes_on(tmp_path):
    (tmp_path / "runs").mkdir()
    assert _bg(tmp_path, "start", "slow", "sleep", "20").returncode == 0
    t = time.monotonic()
    watched = _bg(tmp_path, "watch", "slow", "2")
    assert watched.returncode == 0 and "still running after 2 s" in watched.stdout and time.monotonic() - t < 15
    pid = int((tmp_path / "runs" / "background" / "slow.pid").read_text())
    os.killpg(pid, signal.SIGTERM)   # setsid made it the leader of its own group


def test_a_name_that_would_reach_outside_its_folder_is_refused(tmp_path):
    (tmp_path / "runs").mkdir()
    for name in ("../escape", "a/b", ".hidden"):
        refused = _bg(tmp_path, "start", name, "touch", "ran")
        assert refused.returncode == 2 and "must be letters" in refused.stderr, name
    assert not (tmp_path / "ran").exists() and not (tmp_path / "escape.pid").exists()
