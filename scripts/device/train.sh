#!/usr/bin/env bash
# One device call of training: run the named jobs side by side on the GPU for MINUTES, then copy
# the exported models, logs and sample grids to $OUT. Runs live in runs/NAME (git-ignored), which
# stays on a warm machine, so the next call resumes exactly; on a fresh machine a regressor / var /
# diffusion job starts from the committed model in assets/models (weights only, EMA), or from the
# folder in env INIT_NAME.
#
#   scripts/device/train.sh MINUTES JOB [JOB ...]
#   JOB: MODEL, or NAME=MODEL to run one model twice with different arguments; MODEL is one of
#        regressor var diffusion mv-autoencoder mv-denoiser mv-decoder mv-distill teacher-guided
#   env NAME_ARGS (NAME upper-cased, - as _): extra arguments of that job, e.g.
#       RS2_ARGS="--batch-size 64 --compile --loss-scale 2"  INIT_RS2=assets/models/regressor
#   env FRESH: jobs that start new weights instead of the shipped ones, e.g. FRESH="diffusion"
#   env DATA: the packed train split (default data/packed_train)
# With more than one job the split is decoded once into the view cache before they start.
set -uo pipefail
minutes=${1:?usage: scripts/device/train.sh MINUTES JOB...}; shift
names=(); models=()
for spec in "$@"; do
  name=${spec%%=*}; model=${spec#*=}
  case $model in regressor|var|diffusion|mv-autoencoder|mv-denoiser|mv-decoder|mv-distill|teacher-guided) ;;
    *) echo "train.sh: unknown model '$model' in '$spec'" >&2; exit 2 ;; esac
  names+=("$name"); models+=("$model")
done
source scripts/device/env.sh || exit 1
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT" runs
nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv,noheader
# Build gsplat's CUDA extension once before the jobs start (parallel first imports race in ninja).
python3 -c "import torch, gsplat; from gsplat.cuda._backend import _C; print('gsplat', gsplat.__version__, 'ready')" 2>&1 | tail -1
if [ ${#names[@]} -gt 1 ] && [ -n "${SPLATGEN_VIEW_CACHE:-}" ]; then
  python3 - "${DATA:-data/packed_train}" <<'PY'
import sys, time
from splatgen.core.training.viewbank import load_view_bank, loading_rate
t = time.perf_counter(); bank = load_view_bank(sys.argv[1], "cpu")
print(f"view cache: {bank.num_objects} objects, {loading_rate(bank, time.perf_counter() - t)}", flush=True)
PY
fi
pids=()
for i in "${!names[@]}"; do
  job=${names[$i]}; model=${models[$i]}; run=runs/$job; key=${job^^}; key=${key//-/_}
  case $model in  # where each network of the shipped model set lives
    regressor) shipped=assets/models/regressor ;;
    var) shipped=assets/models/diffusion/var ;;
    diffusion) shipped=assets/models/diffusion/denoiser ;;
    *) shipped="" ;;
  esac
  init_var=INIT_$key; shipped=${!init_var:-$shipped}
  init=()
  if [ ! -d "$run/checkpoint" ] && [ -n "$shipped" ] && [ -f "$shipped/config.json" ] && [[ " ${FRESH-} " != *" $job "* ]]; then
    init=(--init-from "$shipped")
  fi
  extra_var=${key}_ARGS
  # shellcheck disable=SC2086
  python3 -m splatgen.core.cli train "$model" --data "${DATA:-data/packed_train}" --out "$run" --resume "${init[@]}" \
      --max-minutes "$minutes" --export "$run/export" ${!extra_var:-} > "$run.log" 2>&1 &
  pids+=($!)
done
status=0
for p in "${pids[@]}"; do wait "$p" || status=1; done
# $OUT returns at most 8 files: one tarball per job (exported model, logs, last sample grid)
for job in "${names[@]}"; do
  files=(); for f in runs/$job/export runs/$job/log.jsonl runs/$job.log $(ls runs/$job/samples_*.png 2>/dev/null | tail -1); do
    [ -e "$f" ] && files+=("$f"); done
  [ ${#files[@]} -gt 0 ] && tar -cf "$OUT/$job.tar" "${files[@]}"
  echo "== $job"; grep -v -e "config attributes" -e "kept in float32" "runs/$job.log" | tail -n 2 | cut -c1-300
done
nvidia-smi --query-gpu=memory.used --format=csv,noheader
exit $status
