#!/usr/bin/env bash
# One device session as consecutive calls of one warm machine (benchmarks/TRAINING.md, "One run across
# calls"): staging calls, one call that starts the background jobs and watches them, watching calls
# chained with no pause, a last call for the figures that need the GPU alone. Tracked, so it travels
# with the tree (a driver under the git-ignored runs/ travels only when named in `carry`).
#
#   scripts/device/session.sh stage                  setup (wheels, gsplat build, carried .devdata shards)
#   scripts/device/session.sh start MINUTES SECONDS  check the staged data, start JOBS for MINUTES, watch SECONDS
#   scripts/device/session.sh watch SECONDS          watch; every watching call returns the insurance copies
#   scripts/device/session.sh bench                  the figures that need no data: the graphed loops' CUDA tests,
#                                                    bench generate (#28), bench viewport's grid (#35)
#   scripts/device/session.sh eval                   the val split's evaluation alone on the GPU, timed (#31)
#
# env JOBS (default "cam tgp mvden"):
#   cam    photo-camera estimator at 128² (#36), at most 13 minutes; keeps its best-by-val weights on disk
#   tgp    teacher-guided denoiser, new, noising the VAR's posterior of the input + 2 views (#25)
#   mvden  multi-view denoiser continuing from checkpoints/mv/denoiser (#26)
# Data: /tmp/splatgen-data/games_packed (train) and games_packed_eval (val is read), staged beforehand.
# $OUT gets at most 8 files: one tar per job (EMA weights as fp16, logs) and the figures' JSON.
set -uo pipefail
what=${1:?usage: session.sh stage|start MINUTES SECONDS|watch SECONDS|bench|eval}; shift
source scripts/device/env.sh || exit 1
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT" runs
D=/tmp/splatgen-data
JOBS=${JOBS:-cam tgp mvden}

insurance() {
  # The EMA weights of each job's last checkpoint, fp16, and its log: the run dies with the machine.
  for job in $JOBS; do
    files=()
    if [ "$job" = cam ]; then
      for f in runs/cam128/best-so-far runs/cam128/config.json runs/cam128/training.json runs/cam128.log; do
        [ -e "$f" ] && files+=("$f"); done
      ls runs/cam128/*.safetensors >/dev/null 2>&1 && files+=(runs/cam128/*.safetensors)
    else
      rm -rf "runs/$job/ema16"
      if [ -d "runs/$job/checkpoint/ema" ]; then
        python3 - "runs/$job/checkpoint/ema" "runs/$job/ema16" <<'PY'
import json, shutil, sys, pathlib
import torch
from safetensors.torch import load_file, save_file
src, dst = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
dst.mkdir(parents=True, exist_ok=True)
for f in src.iterdir():
    if f.suffix == ".safetensors":
        save_file({k: (v.half() if v.is_floating_point() else v) for k, v in load_file(f).items()}, dst / f.name)
    else:
        shutil.copy(f, dst / f.name)
step = json.loads((src.parent / "trainer.json").read_text())["step"]
(dst / "step.txt").write_text(f"{step}\n")
PY
        files+=("runs/$job/ema16")
      fi
      for f in runs/$job/export runs/$job/log.jsonl runs/$job.log $(ls runs/$job/samples_*.png 2>/dev/null | tail -1); do
        [ -e "$f" ] && files+=("$f"); done
    fi
    [ ${#files[@]} -gt 0 ] && tar -cf "$OUT/$job.tar" "${files[@]}"
  done
}

logs() { for job in $JOBS; do [ "$job" = cam ] && echo runs/cam128.log || echo "runs/$job.log"; done; }

case $what in
  stage)
    for d in "$D"/*/; do [ -f "$d/index.json" ] && python3 scripts/device/stage_data.py --check "$d" && echo "complete: $d"; done
    ;;
  start)
    minutes=${1:?MINUTES}; seconds=${2:?SECONDS}
    python3 scripts/device/stage_data.py --check "$D/games_packed" || exit 1
    python3 scripts/device/stage_data.py --check "$D/games_packed_eval" --split val || exit 1
    nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv,noheader
    gpu_jobs=()
    for job in $JOBS; do
      case $job in
        cam)
          cam_minutes=$(awk "BEGIN {m = $minutes; print (m < 13 ? m : 13)}")
          scripts/device/background.sh start cam bash -c "python3 -m splatgen.core.cli train camera \
            --data $D/games_packed --test-data $D/games_packed_eval --out runs/cam128 --device cuda --workers 8 \
            --camera-views 24 --camera-jitter 0.05 --camera-weight-decay 0.05 --batch-size 256 --camera-size 128 \
            --camera-widths 16 32 64 128 256 --max-minutes $cam_minutes > runs/cam128.log 2>&1" ;;
        tgp) gpu_jobs+=(tgp=teacher-guided) ;;
        mvden) gpu_jobs+=(mvden=mv-denoiser) ;;
        *) echo "session.sh: unknown job $job" >&2; exit 2 ;;
      esac
    done
    if [ ${#gpu_jobs[@]} -gt 0 ]; then
      DATA=$D/games_packed FRESH="tgp" INIT_MVDEN=checkpoints/mv/denoiser \
      TGP_ARGS="--splat-backbone teacher --noisy-source posterior --var assets/models/diffusion/var \
        --teacher assets/models/regressor --num-targets 3 --num-context 2 --batch-size 64 --lr 1e-4 \
        --cond-dropout 0.05 --compile --log-every 200 --lr-final 1e-5" \
      MVDEN_ARGS="--autoencoder checkpoints/mv/autoencoder --batch-size 32 --log-every 500 --lr-final 1e-5" \
        scripts/device/background.sh start train scripts/device/train.sh "$minutes" "${gpu_jobs[@]}"
    fi
    sleep 5
    scripts/device/background.sh watch train "$seconds" $(logs) runs/background/train.log
    insurance
    ;;
  watch)
    seconds=${1:?SECONDS}
    scripts/device/background.sh watch train "$seconds" $(logs) runs/background/train.log
    scripts/device/background.sh status cam
    insurance
    ;;
  bench)
    # the CUDA-only tests of the graphed loops first (they decide whether the timings below count)
    python3 -m pytest -q -p no:cacheprovider tests/test_graphed_forward.py tests/test_step_graphs.py 2>&1 | tail -n 5
    python3 -m splatgen.core.cli bench generate --device cuda --out-dir "$OUT" 2>&1 | grep -v -e "config attributes" | tail -n 14
    python3 -m splatgen.core.cli bench viewport --backends gsplat gl --sizes 1024 --frames 60 --tiles 16 64 \
      --out-dir "$OUT" 2>&1 | grep -v -e "config attributes" | tail -n 20
    ;;
  eval)
    t0=$(date +%s.%N)
    python3 -m splatgen.core.cli eval --data "$D/games_packed_eval" --split val -m assets/models/regressor \
      --device cuda --json "$OUT/eval-regressor-games-val-gpu.json" 2>&1 | tail -n 8
    echo "eval wall: $(awk "BEGIN {printf \"%.1f\", $(date +%s.%N) - $t0}") s"
    ;;
  *) echo "session.sh: unknown step '$what'" >&2; exit 2 ;;
esac
