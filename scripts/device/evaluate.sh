#!/usr/bin/env bash
# Evaluate a model set (MODELS/regressor, MODELS/diffusion) on the test and val objects, all runs at
# once (each is small next to the GPU, so side by side they take little longer than the slowest).
# Each JSON lands in runs/evals/ and $OUT/evals.tar is rewritten whenever one finishes, so a call cut
# at its time limit keeps every evaluation that completed. Prints one line per JSON at the end.
#
#   scripts/device/evaluate.sh MODELS
#   env: EVAL_TEST (1: test split, regressor when EVAL_REGRESSOR=1, and diffusion best-of-4; default 1)
#        EVAL_REGRESSOR (1: include the regressor, on test and, with a SWEEP, on val; default 1)
#        SWEEP (val-split settings for the diffusion model: GUIDANCE[/SKIP_WEIGHT][@STRENGTH], e.g. "2.0 2.0@0.7")
#        DEVICE (default cuda), EVAL_ARGS (more `splatgen eval` options, e.g. --max-objects 2),
#        SPLATGEN (the command; default `python3 -m splatgen.core.cli`, as scripts/device/env.sh sets up)
#   data: data/eval_test and data/eval_val (object folders)
set -uo pipefail
models=${1:?usage: scripts/device/evaluate.sh MODELS}
OUT=${OUT:-/tmp/out}
EVAL_TEST=${EVAL_TEST:-1}
EVAL_REGRESSOR=${EVAL_REGRESSOR:-1}
SWEEP=${SWEEP-}
DEVICE=${DEVICE:-cuda}
read -r -a splatgen <<< "${SPLATGEN:-python3 -m splatgen.core.cli}"
read -r -a extra <<< "${EVAL_ARGS-}"
mkdir -p "$OUT" && rm -rf runs/evals && mkdir -p runs/evals

declare -A test_run=()   # pid → name, for the runs whose failure fails the call
start() {  # start NAME DATA MODEL [eval options...]: one evaluation in the background
  local name=$1 data=$2 model=$3; shift 3
  "${splatgen[@]}" eval --data "$data" --model "$models/$model" --device "$DEVICE" --no-progress \
    --json "runs/evals/$name.json" "${extra[@]}" "$@" > "runs/evals/$name.log" 2>&1 &
  case $name in test-*) test_run[$!]=$name ;; esac
}
if [ "$EVAL_TEST" = 1 ]; then
  [ "$EVAL_REGRESSOR" = 1 ] && start test-regressor data/eval_test regressor
  start test-diffusion data/eval_test diffusion -k 4
fi
if [ -n "$SWEEP" ] && [ -d data/eval_val ]; then
  [ "$EVAL_REGRESSOR" = 1 ] && start val-regressor data/eval_val regressor
  for setting in $SWEEP; do
    st=(); if [[ $setting == *@* ]]; then st=(--strength "${setting#*@}"); fi
    rest=${setting%%@*}; g=${rest%%/*}; skip=(); name=val-diffusion-g$g
    if [ "$rest" != "$g" ]; then skip=(--skip-weight "${rest#*/}"); name=$name-s${rest#*/}; fi
    [ ${#st[@]} -gt 0 ] && name=$name-st${setting#*@}
    start "$name" data/eval_val diffusion -k 4 --guidance "$g" "${skip[@]}" "${st[@]}"
  done
fi
status=0
while [ -n "$(jobs -rp)" ]; do
  wait -n -p done_pid; rc=$?
  if [ -n "${test_run[$done_pid]-}" ] && [ $rc != 0 ]; then
    status=1; echo "!! ${test_run[$done_pid]} failed:"; tail -n 3 "runs/evals/${test_run[$done_pid]}.log"
  fi
  tar -cf "$OUT/evals.tar" -C runs evals
done
python3 - <<'PY'
import json, pathlib
keys = ("input_psnr", "novel_psnr", "best_of_k_novel_psnr", "diversity_novel_psnr", "diversity_input_psnr")
for p in sorted(pathlib.Path("runs/evals").glob("*.json")):
    r = json.loads(p.read_text())
    first = r["per_object"][0].get("seconds", float("nan"))
    print(f"{p.stem:28s}", " ".join(f"{k}={r[k]:.2f}" for k in keys if k in r),
          f"({r['seconds']:.0f} s; model load {r.get('load_seconds', float('nan')):.1f} s, first object {first:.1f} s)")
PY
exit $status
