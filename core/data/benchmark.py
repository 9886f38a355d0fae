"""Measure a built and a packed dataset against the data pipeline's targets; write benchmarks/data-build-*.json.

    python -m splatgen.core.data.benchmark --built data/sh3d --packed data/packed [--repeat 3]

Reads the build time and counts from the built dataset (``build_log.txt``, ``dataset.json``) — it
does not rebuild — sizes the packed shards per split, and times :func:`load_split_arrays` (the GPU
trainer's loader) and :class:`MultiViewDataset` items on the packed train split. Timings are
wall-clock on this machine; nothing here is asserted by a test.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import statistics
import sys
import time
from pathlib import Path

#: The targets of the data pipeline (issue: "finish the training-data pipeline").
TARGETS = {
    "full_build_seconds_max": 20 * 60,
    "objects_about": 820,
    "views_per_object_min": 24,
    "size": 128,
    "packed_train_mib_max": 48,
    "load_views_per_second_min": 2000,
}


def build_record(built: Path) -> dict:
    """Build time, counts and settings of a built dataset, from its log and index."""
    index = json.loads((built / "dataset.json").read_text())
    log = (built / "build_log.txt").read_text()
    done = re.search(r"# done: (\d+) rendered, (\d+) resumed, (\d+) skipped, (\d+) warnings, ([\d.]+) s", log)
    head = re.search(r"workers (\d+);", log)
    started = re.search(r"# splatgen data build (\S+)", log)
    n_views = sum(len(v) for v in index["splits"].values()) * index["views"]
    return {
        "dataset": str(built),
        "source": index["build"]["sources"],
        "started": started.group(1) if started else None,
        "seconds": float(done.group(5)) if done else None,
        "rendered": int(done.group(1)) if done else None,
        "resumed": int(done.group(2)) if done else None,
        "skipped": int(done.group(3)) if done else None,
        "warnings": int(done.group(4)) if done else None,
        "workers": int(head.group(1)) if head else None,
        "objects": {k: len(v) for k, v in index["splits"].items()},
        "objects_total": sum(len(v) for v in index["splits"].values()),
        "views_per_object": index["views"],
        "views_total": n_views,
        "size": index["size"],
        "seed": index["seed"],
        "textured_objects": sum(1 for o in index["objects"].values() if o.get("textured")),
        "seconds_per_object": (float(done.group(5)) / max(1, int(done.group(1)))) if done else None,
    }


def packed_record(packed: Path) -> dict:
    """Bytes, objects and views of each packed split."""
    index = json.loads((packed / "index.json").read_text())
    out = {"dataset": str(packed), "codec": index.get("codec"), "quality": index.get("quality"), "splits": {}}
    for split, shards in index["splits"].items():
        size = sum((packed / s["file"]).stat().st_size for s in shards)
        n = sum(len(s["objects"]) for s in shards)
        out["splits"][split] = {
            "objects": n, "views": n * index["views"], "shards": len(shards),
            "bytes": size, "mib": round(size / 2**20, 2),
            "bytes_per_view": round(size / max(1, n * index["views"]), 1),
        }
    return out


def time_loading(packed: Path, split: str = "train", repeat: int = 3) -> dict:
    """Views per second of ``load_split_arrays`` (whole split) and of ``MultiViewDataset`` items."""
    import torch

    from .dataset import MultiViewDataset, load_split_arrays

    runs = []
    n_views = 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        images, _, ids = load_split_arrays(packed, split)
        runs.append(time.perf_counter() - t0)
        n_views = images.shape[0] * images.shape[1]
        shape = list(images.shape)
        del images
    ds = MultiViewDataset(packed, split, num_targets=4)
    torch.manual_seed(0)
    for i in range(min(20, len(ds))):  # open the shards first, as a training epoch would have
        ds[i]
    n_items = min(400, len(ds))
    t0 = time.perf_counter()
    for i in range(n_items):
        ds[i]
    item_s = time.perf_counter() - t0
    return {
        "split": split,
        "load_split_arrays": {
            "views": n_views, "shape": shape, "seconds_runs": [round(r, 3) for r in runs],
            "views_per_second_median": round(n_views / statistics.median(runs)),
            "views_per_second_best": round(n_views / min(runs)),
        },
        "multiview_dataset_items": {
            "items": n_items, "views_per_item": 4, "seconds": round(item_s, 3),
            "views_per_second": round(n_items * 4 / item_s),
        },
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m splatgen.core.data.benchmark", description=__doc__.split("\n")[0])
    ap.add_argument("--built", required=True, help="built dataset folder (dataset.json, build_log.txt)")
    ap.add_argument("--packed", nargs="+", required=True, help="packed dataset folder(s); the first is timed")
    ap.add_argument("--repeat", type=int, default=3, help="runs of load_split_arrays (default 3)")
    ap.add_argument("--out-dir", default="benchmarks")
    ap.add_argument("--note", action="append", default=[], help="free text recorded with the result")
    ap.add_argument("--pack-seconds", type=float, action="append", default=[],
                    help="measured wall time of each `splatgen data pack` (same order as --packed)")
    args = ap.parse_args(argv)

    from ..benchmarks import machine_info, write_result

    machine = machine_info()
    try:
        machine["load_average_at_start"] = [round(x, 2) for x in __import__("os").getloadavg()]
    except OSError:
        pass
    build = build_record(Path(args.built))
    packs = [packed_record(Path(p)) for p in args.packed]
    for rec, secs in zip(packs, args.pack_seconds):
        rec["pack_seconds"] = secs
    loading = [time_loading(Path(p), repeat=args.repeat) | {"dataset": p} for p in args.packed]
    try:
        machine["load_average_at_end"] = [round(x, 2) for x in __import__("os").getloadavg()]
    except OSError:
        pass
    train = packs[0]["splits"].get("train", {})
    result = {
        "benchmark": "data-build",
        "machine": machine,
        "command": shlex.join(["python", "-m", "splatgen.core.data.benchmark",
                               *(argv if argv is not None else sys.argv[1:])]),
        "targets": TARGETS,
        "build": build,
        "packed": packs,
        "loading": loading,
        "meets_targets": {
            "full_build_time": build["seconds"] is not None and build["seconds"] <= TARGETS["full_build_seconds_max"],
            "views_per_object": build["views_per_object"] >= TARGETS["views_per_object_min"],
            "packed_train_size": train.get("mib", 1e9) <= TARGETS["packed_train_mib_max"],
            "loading_speed": loading[0]["load_split_arrays"]["views_per_second_median"]
            >= TARGETS["load_views_per_second_min"],
        },
        "notes": args.note,
    }
    path = write_result("data-build", result, args.out_dir)
    print(json.dumps({k: result[k] for k in ("meets_targets",)}, indent=1))
    for rec in loading:
        print(f"{rec['dataset']}: load_split_arrays {rec['load_split_arrays']['views_per_second_median']} views/s, "
              f"items {rec['multiview_dataset_items']['views_per_second']} views/s")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
