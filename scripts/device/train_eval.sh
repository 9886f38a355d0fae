#!/usr/bin/env bash
# One device call: train the shipped networks for MINUTES (scripts/device/train.sh), then evaluate the
# freshly exported model set on the test objects, sweep the guidance weight on the validation objects,
# and time generation and the viewport, so every figure describes exactly the weights that come back.
#
#   scripts/device/train_eval.sh MINUTES
#   carry: .whl .gl data/packed_train data/eval_test data/eval_val (copies of the test / val object folders;
#          over 64 MiB with the repo, they travel as one data.tar.xz unpacked into data/ first)
#   env:   JOBS (default "var diffusion"), REGRESSOR_ARGS / VAR_ARGS / DIFFUSION_ARGS,
#          SWEEP (settings to evaluate on data/eval_val: GUIDANCE[/SKIP_WEIGHT][@STRENGTH], e.g. "2.0 2.0/0.5 2.0@0.7";
#                 without @ the model's default strength; empty: no sweep),
#          BENCH (1: also run the CUDA-graph tests, time generation, the viewport and gsplat's rendering, and
#                 check torch-vs-gsplat parity; default 1),
#          EVAL_TEST (0: skip the test-split evaluations, e.g. while weights are still being picked on val;
#                     default 1)
#   MINUTES=0 with JOBS="" evaluates the model set in assets/models as it is.
#
# The VAR trains with --decoder-only: its encoders, hence the latents and the denoiser's condition,
# stay fixed, so the denoiser (trained over the shipped VAR in the same call) remains valid for it.
# The shipped denoiser also reads the regressor's features (--teacher, pinned by the
# sha256 of its weights): a call that retrains the regressor makes the diffusion model of the set it
# exports refuse to load, so train the regressor only together with a new denoiser over it.
# Order: the CUDA-graph tests and the benchmarks (short, fixed length) first, the evaluations last,
# so a call that reaches the time limit loses part of an evaluation, not a benchmark.
# $OUT gets at most 8 files: call.log (the caller's), one tar per job, evals.tar (every evaluation's
# JSON and log, scripts/device/evaluate.sh), and bench.tar (the benchmark JSONs: generate, viewport,
# render, parity).
set -uo pipefail
minutes=${1:?usage: scripts/device/train_eval.sh MINUTES}
status=0
OUT=${OUT:-/tmp/out}
JOBS=${JOBS-var diffusion}
SWEEP=${SWEEP-}
BENCH=${BENCH:-1}
EVAL_TEST=${EVAL_TEST:-1}
# The VAR always trains --decoder-only here: the denoiser beside it models the shipped VAR's latents.
echo "[$(date +%T)] training"
# shellcheck disable=SC2086
REGRESSOR_ARGS=${REGRESSOR_ARGS:---batch-size 64 --compile} VAR_ARGS="${VAR_ARGS:---batch-size 64 --compile} --decoder-only" \
DIFFUSION_ARGS=${DIFFUSION_ARGS:---batch-size 1024 --compile --var assets/models/diffusion/var --teacher assets/models/regressor} \
  scripts/device/train.sh "$minutes" $JOBS || { status=1; echo "!! a training job failed; evaluating what was exported"; }
source scripts/device/env.sh || exit 1
# the model set as it will ship: manifests from the repo, each network replaced by its new export
rm -rf runs/models && mkdir -p runs/models && cp -r assets/models/regressor assets/models/diffusion runs/models/
declare -A dest=([regressor]=regressor [var]=diffusion/var [diffusion]=diffusion/denoiser)
for job in $JOBS; do
  if [ -f "runs/$job/export/config.json" ]; then cp runs/$job/export/* "runs/models/${dest[$job]}/"; fi
done
# the benchmarks time the set that comes back
rm -rf assets/models && cp -r runs/models assets/models
if [ "$BENCH" = 1 ]; then
  python3 -m pytest -q -p no:cacheprovider -rf tests/test_step_graphs.py || status=1
  rm -rf runs/bench && mkdir -p runs/bench
  splatgen bench generate --device cuda --out-dir runs/bench || status=1
  splatgen bench viewport --out-dir runs/bench || status=1
  splatgen bench render --backends gsplat --sizes 256 512 1024 --counts 16384 65536 262144 --repeat 10 \
    --out-dir runs/bench || status=1
  splatgen bench parity --reference torch --other gsplat --out-dir runs/bench || status=1
  tar -cf "$OUT/bench.tar" -C runs bench
fi
# The first evaluation after training is slow for reasons not yet known (benchmarks/TRAINING.md,
# "How a device call was made"): record the CUDA archs and the kernel JIT cache's size around it.
python3 -c "import torch; print('cuda archs', torch.cuda.get_arch_list(), 'device', torch.cuda.get_device_capability())"
du -sh ~/.nv/ComputeCache 2>/dev/null || echo "no ~/.nv/ComputeCache"
# the regressor is evaluated when it trained in this call (or when nothing did); all runs side by side
echo "[$(date +%T)] evaluating"
eval_regressor=0; case " $JOBS " in *" regressor "*|"  ") eval_regressor=1 ;; esac
EVAL_TEST=$EVAL_TEST EVAL_REGRESSOR=$eval_regressor SWEEP=$SWEEP OUT=$OUT scripts/device/evaluate.sh runs/models || status=1
du -sh ~/.nv/ComputeCache 2>/dev/null
echo "[$(date +%T)] done"
ls "$OUT"
exit $status
