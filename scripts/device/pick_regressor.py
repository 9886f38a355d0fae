"""Judge regressor checkpoints on a split they were not trained on, and copy the one a fixed rule picks.

    python3 scripts/device/pick_regressor.py --data /tmp/splatgen-data/games_packed_eval --split val \
        --copy-to runs/frozen/regressor -o $OUT/pick.json start=assets/models/regressor new=runs/rs/export

Each candidate is evaluated (`splatgen eval`: input / novel PSNR, saturation ratio) and its pixel grid
measured (`scripts/experiments/grid_spectrum.py`, 40 objects), all side by side on one device. The rule,
set before the runs it judges: among candidates whose grid peak (mean) is at most ``--max-grid`` and
whose input PSNR is at least ``--min-input``, the highest novel PSNR wins; a candidate within
``--tie-db`` of the best counts as tied, and of tied ones the earliest listed is kept (the one already
known). Prints one row per candidate, the pick last.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("candidates", nargs="+", metavar="NAME=FOLDER")
    ap.add_argument("--data", required=True)
    ap.add_argument("--split", default="val")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--objects", type=int, default=40, help="objects of the grid measurement")
    ap.add_argument("--max-grid", type=float, default=4.0)
    ap.add_argument("--min-input", type=float, default=33.0)
    ap.add_argument("--tie-db", type=float, default=0.05)
    ap.add_argument("--max-objects", type=int, help="evaluate only the first N objects (a quick check)")
    ap.add_argument("--work", type=Path, default=Path("runs/pick"))
    ap.add_argument("--copy-to", type=Path)
    ap.add_argument("-o", "--out", type=Path)
    a = ap.parse_args()
    names, folders = zip(*(c.split("=", 1) for c in a.candidates))
    a.work.mkdir(parents=True, exist_ok=True)
    procs = []
    for name, folder in zip(names, folders):
        procs.append(subprocess.Popen([sys.executable, "-m", "splatgen.core.cli", "eval", "--data", a.data, "--split",
                                       a.split, "-m", folder, "--device", a.device, "--no-progress",
                                       "-o", str(a.work / f"eval-{name}.json"),
                                       *(["--max-objects", str(a.max_objects)] if a.max_objects else [])],
                                      stdout=subprocess.DEVNULL, stderr=open(a.work / f"eval-{name}.log", "w")))
        procs.append(subprocess.Popen([sys.executable, str(HERE.parent / "experiments" / "grid_spectrum.py"), "--data",
                                       a.data, "--split", a.split, "-m", folder, "--objects", str(a.objects),
                                       "--device", a.device, "-o", str(a.work / f"grid-{name}.json")],
                                      stdout=subprocess.DEVNULL, stderr=open(a.work / f"grid-{name}.log", "w")))
    failed = [p.args for p in procs if p.wait() != 0]
    rows = []
    for name, folder in zip(names, folders):
        try:
            ev = json.loads((a.work / f"eval-{name}.json").read_text())
            gr = json.loads((a.work / f"grid-{name}.json").read_text())
        except (OSError, ValueError):
            print(f"{name}: no result (see {a.work}/*-{name}.log)")
            continue
        rows.append({"name": name, "folder": folder, "input_psnr": ev["input_psnr"], "novel_psnr": ev["novel_psnr"],
                     "novel_ms_ssim": ev.get("novel_ms_ssim"), "saturation": ev.get("input_saturation_ratio"),
                     "grid_peak_mean": gr["grid_peak_mean"], "grid_peak_median": gr["grid_peak_median"],
                     "eval_seconds": ev.get("seconds")})
    ok = [r for r in rows if r["grid_peak_mean"] <= a.max_grid and r["input_psnr"] >= a.min_input]
    pick = None
    if ok:
        best = max(r["novel_psnr"] for r in ok)
        pick = next(r for r in ok if r["novel_psnr"] >= best - a.tie_db)
    for r in rows:
        print(f"{r['name']:10s} input {r['input_psnr']:.2f}  novel {r['novel_psnr']:.2f}  sat {r['saturation']:.3f}  "
              f"grid {r['grid_peak_mean']:.2f}/{r['grid_peak_median']:.2f}{'  <- picked' if r is pick else ''}")
    if a.out:
        a.out.write_text(json.dumps({"split": a.split, "data": a.data, "rule": {"max_grid": a.max_grid, "min_input":
                                     a.min_input, "tie_db": a.tie_db}, "rows": rows,
                                     "pick": pick and pick["name"], "failed": [" ".join(f) for f in failed]},
                                    indent=1) + "\n")
    if pick is None:
        print("no candidate meets the rule", file=sys.stderr)
        return 1
    if a.copy_to:
        if a.copy_to.exists():
            shutil.rmtree(a.copy_to)
        shutil.copytree(pick["folder"], a.copy_to)
        print(f"picked {pick['name']} ({pick['folder']}) -> {a.copy_to}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
