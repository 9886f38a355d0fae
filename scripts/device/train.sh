#!/usr/bin/env bash
# One device call of training: run the named jobs side by side on the GPU for MINUTES, then copy
# the exported models, logs and sample grids to $OUT. Runs live in runs/ (git-ignored), which stays
# on a warm machine, so the next call resumes exactly; on a fresh machine a job starts from the
# committed model in assets/models (weights only, EMA) when there is one; diffusion trains over the
# shipped VAR: DIFFUSION_ARGS="--var assets/models/diffusion/var".
#
#   scripts/device/train.sh MINUTES JOB [JOB ...]     JOB: regressor | var | diffusion
#   env FRESH: jobs that start new weights instead of the shipped ones, e.g. a larger denoiser:
#       FRESH=diffusion DIFFUSION_ARGS="--var assets/models/diffusion/var --denoiser-channels 96 128 160"
#   (carry: .whl data/packed_train — train split packed with --quality 92 so repo + wheels + data stay under 64 MiB)     extra arguments per job: env REGRESSOR_ARGS / VAR_ARGS / DIFFUSION_ARGS
set -uo pipefail
minutes=${1:?usage: scripts/device/train.sh MINUTES JOB...}; shift
for job in "$@"; do
  case $job in regressor|var|diffusion) ;; *) echo "train.sh: unknown job '$job' (regressor, var, diffusion)" >&2; exit 2 ;; esac
done
source scripts/device/env.sh || exit 1
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT" runs
nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv,noheader
# Build gsplat's CUDA extension once before the jobs start (parallel first imports race in ninja).
python3 -c "import torch, gsplat; from gsplat.cuda._backend import _C; print('gsplat', gsplat.__version__, 'ready')" 2>&1 | tail -1
pids=()
for job in "$@"; do
  run=runs/$job
  case $job in  # where each network of the shipped model set lives
    regressor) shipped=assets/models/regressor ;;
    var) shipped=assets/models/diffusion/var ;;
    diffusion) shipped=assets/models/diffusion/denoiser ;;
  esac
  init=()
  if [ ! -d "$run/checkpoint" ] && [ -f "$shipped/config.json" ] && [[ " ${FRESH-} " != *" $job "* ]]; then
    init=(--init-from "$shipped")
  fi
  extra_var=${job^^}_ARGS
  # shellcheck disable=SC2086
  python3 -m splatgen.core.cli train "$job" --data "${DATA:-data/packed_train}" --out "$run" --resume "${init[@]}" \
      --max-minutes "$minutes" --export "$run/export" ${!extra_var:-} > "$run.log" 2>&1 &
  pids+=($!)
done
status=0
for p in "${pids[@]}"; do wait "$p" || status=1; done
# $OUT returns at most 8 files: one tarball per job (exported model, logs, last sample grid)
for job in "$@"; do
  files=(); for f in runs/$job/export runs/$job/log.jsonl runs/$job.log $(ls runs/$job/samples_*.png 2>/dev/null | tail -1); do
    [ -e "$f" ] && files+=("$f"); done
  [ ${#files[@]} -gt 0 ] && tar -cf "$OUT/$job.tar" "${files[@]}"
  echo "== $job"; grep -v -e "config attributes" -e "kept in float32" "runs/$job.log" | tail -n 2 | cut -c1-300
done
nvidia-smi --query-gpu=memory.used --format=csv,noheader
exit $status
