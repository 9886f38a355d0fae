"""``scripts/device/stage_data.py``: a packed dataset staged over consecutive calls, and the check a
call makes before it trains (only the splits it reads, when told)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "device" / "stage_data.py"


def _stage(cwd, *args):
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          timeout=60)


def _packed(root: Path) -> Path:
    """An index naming 2 val and 2 test shards of 1 MiB each."""
    root.mkdir()
    splits = {s: [{"file": f"{s}-{k:05d}.safetensors", "objects": [f"{s}{k}"]} for k in range(2)] for s in ("val", "test")}
    (root / "index.json").write_text(json.dumps({"format": 1, "splits": splits}))
    for shards in splits.values():
        for shard in shards:
            (root / shard["file"]).write_bytes(b"\0" * (1 << 20))
    return root


def test_groups_travel_within_the_budget_and_the_check_reads_only_the_splits_asked(tmp_path):
    packed = _packed(tmp_path / "evalset")
    listed = _stage(tmp_path, packed, "--budget-mib", 2.5, "--list")
    assert listed.returncode == 0 and listed.stdout.count("call ") == 2  # 4 MiB in groups of ≤ 2.5 MiB
    cache = tmp_path / "cache" / "evalset"
    cache.mkdir(parents=True)
    assert "index.json" in _stage(tmp_path, "--check", cache).stdout  # nothing arrived yet: named, no traceback
    for call in range(2):
        staged = _stage(tmp_path, packed, "--budget-mib", 2.5, "--call", call)
        assert staged.returncode == 0, staged.stderr
        for f in (tmp_path / ".devdata" / "evalset").iterdir():  # what env.sh does on the device
            (cache / f.name).write_bytes(f.read_bytes())
        if call == 0:  # shards go in name order: the test shards came first
            only_test = _stage(tmp_path, "--check", cache, "--split", "test")
            only_val = _stage(tmp_path, "--check", cache, "--split", "val")
            everything = _stage(tmp_path, "--check", cache)
            assert only_test.returncode == 0 and "complete" in only_test.stdout
            assert only_val.returncode == 1 and "val-00000.safetensors" in only_val.stdout
            assert everything.returncode == 1 and "val-00001.safetensors" in everything.stdout
    assert _stage(tmp_path, "--check", cache).returncode == 0
