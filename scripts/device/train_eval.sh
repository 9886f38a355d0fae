#!/usr/bin/env bash
# One device call: train regressor + diffusion for MINUTES (scripts/device/train.sh), then evaluate the
# freshly exported models on the test objects and time generation, so the figures describe exactly
# the weights that come back.
#   scripts/device/train_eval.sh MINUTES      (carry: .whl data/packed_train data/eval_test)
set -uo pipefail
minutes=$1
OUT=${OUT:-/tmp/out}
REGRESSOR_ARGS=${REGRESSOR_ARGS:---batch-size 32} DIFFUSION_ARGS=${DIFFUSION_ARGS:---batch-size 64 --var assets/models/diffusion/var} \
  scripts/device/train.sh "$minutes" regressor diffusion || exit 1
source scripts/device/env.sh
# the model set as it will ship: manifests and VAR from the repo, new regressor and denoiser weights
rm -rf runs/models && mkdir -p runs/models && cp -r assets/models/regressor assets/models/diffusion runs/models/
cp runs/regressor/export/* runs/models/regressor/ && cp runs/diffusion/export/* runs/models/diffusion/denoiser/
splatgen eval --data data/eval_test --model runs/models/regressor --device cuda --json "$OUT/eval-regressor.json" --no-progress
splatgen eval --data data/eval_test --model runs/models/diffusion -k 4 --device cuda --json "$OUT/eval-diffusion.json" --no-progress
cp -r assets/models/* /tmp/shipped_backup 2>/dev/null; rm -rf assets/models && cp -r runs/models assets/models
splatgen bench generate --device cuda --out-dir "$OUT"
