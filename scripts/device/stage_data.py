"""Stage one call's share of a packed dataset into ``.devdata/NAME/`` for the device tool to carry.

A packed dataset (``splatgen data pack``) larger than what one call can carry beside the repository
(64 MiB in all) travels over consecutive calls of one warm machine: call ``k`` carries the index and
the ``k``-th group of shards, ``scripts/device/env.sh`` adds them to ``/tmp/splatgen-data/NAME/``
there, and once every group has arrived training reads that folder.

    python3 scripts/device/stage_data.py data/packed_train --budget-mib 30 --list    # how many calls
    python3 scripts/device/stage_data.py data/packed_train --budget-mib 30 --call 0  # stage call 0's share

Each call's command can check ``/tmp/splatgen-data/NAME`` holds every shard the index names before it
trains (``--check DIR`` does, exit 1 when some are missing; ``--split val`` checks only the shards a
job reads, e.g. an eval folder whose test shards were not staged).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path


def shard_groups(packed: Path, budget_mib: float) -> list[list[Path]]:
    """The dataset's shards in groups of at most ``budget_mib`` MiB each (a larger shard is a group alone)."""
    shards = sorted(packed.glob("*.safetensors"))
    groups: list[list[Path]] = [[]]
    size = 0
    for shard in shards:
        n = shard.stat().st_size
        if groups[-1] and size + n > budget_mib * 2**20:
            groups.append([])
            size = 0
        groups[-1].append(shard)
        size += n
    return [g for g in groups if g]


def missing_shards(folder: Path, splits: list[str] | None = None) -> list[str]:
    """Shard files ``folder/index.json`` names (of ``splits`` only, when given) that are not in
    ``folder``; ``["index.json"]`` when the index itself has not arrived."""
    try:
        index = json.loads((folder / "index.json").read_text())
    except (OSError, ValueError):
        return ["index.json"]
    wanted = index["splits"] if splits is None else {k: index["splits"].get(k, []) for k in splits}
    names = {shard["file"] for shards in wanted.values() for shard in shards}
    return sorted(n for n in names if not (folder / n).is_file())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("packed", type=Path, nargs="?")
    ap.add_argument("--budget-mib", type=float, default=30.0, help="shard bytes per call (default 30)")
    ap.add_argument("--call", type=int, help="stage this call's group into .devdata/NAME/ (replacing it)")
    ap.add_argument("--list", action="store_true", help="print the groups")
    ap.add_argument("--check", type=Path, help="exit 1 unless this cache folder holds every shard of its index")
    ap.add_argument("--split", action="append", default=None, metavar="NAME",
                    help="with --check: only the shards of this split (repeatable), e.g. val when test is not used")
    a = ap.parse_args()
    if a.check:
        missing = missing_shards(a.check, a.split)
        what = f" ({', '.join(a.split)})" if a.split else ""
        print(f"{a.check}{what}: " + (f"{len(missing)} files missing: {' '.join(missing[:6])}" if missing else "complete"))
        return 1 if missing else 0
    groups = shard_groups(a.packed, a.budget_mib)
    if a.list or a.call is None:
        for i, g in enumerate(groups):
            print(f"call {i}: {len(g)} shards, {sum(p.stat().st_size for p in g) / 2**20:.1f} MiB")
        return 0
    if not 0 <= a.call < len(groups):
        sys.exit(f"stage_data: --call {a.call}: the dataset has {len(groups)} groups")
    dest = Path(".devdata") / a.packed.name
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    for f in [a.packed / "index.json", a.packed / "DATASET_CARD.md", *groups[a.call]]:
        if f.is_file():
            shutil.copy2(f, dest / f.name)
    print(f"staged call {a.call} of {len(groups)}: {len(groups[a.call])} shards into {dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
