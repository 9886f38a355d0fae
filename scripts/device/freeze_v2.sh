#!/usr/bin/env bash
# Model v2's freeze point (issue #23), two device calls of one warm machine, after the packed train
# and eval splits are staged (scripts/device/stage_data.py) into /tmp/splatgen-data/.
#
#   scripts/device/freeze_v2.sh a MINUTES   # last regressor steps (cosine lr); the VAR decoder and the
#                                           # denoiser over the VAR's frozen encoders; mv-denoiser beside;
#                                           # then the val split picks the regressor to freeze
#   scripts/device/freeze_v2.sh b MINUTES   # the denoiser moves onto the frozen regressor; the model set
#                                           # runs/v2set is assembled and evaluated on val and test
#
# Weights start from the committed in-training checkpoints (checkpoints/v2, checkpoints/mv) and the
# shipped denoiser; runs/ (git-ignored) carries call a's results to call b on the same machine.
set -uo pipefail
phase=${1:?usage: freeze_v2.sh a|b MINUTES}; minutes=${2:?usage: freeze_v2.sh a|b MINUTES}
source scripts/device/env.sh > /dev/null || exit 1
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT" runs
cache=/tmp/splatgen-data
python3 scripts/device/stage_data.py --check $cache/games_packed || exit 1
python3 scripts/device/stage_data.py --check $cache/games_packed_eval || exit 1
export DATA=$cache/games_packed
zoom="--loss-scale 2 --zoom-weight 0.25"
den_common="--batch-size 1024 --teacher-latent --ema-decay 0.998 --log-every 200"
export MVDEN_ARGS="--autoencoder checkpoints/mv/autoencoder --batch-size 16 --log-every 500"
case $phase in
a)
  export INIT_RSA=checkpoints/v2/regressor RSA_ARGS="--batch-size 64 --compile --log-every 500 $zoom --lr-final 1e-5"
  export INIT_VARD=checkpoints/v2/var VARD_ARGS="--decoder-only --batch-size 64 --compile --log-every 500 $zoom --lr-final 1e-5"
  export INIT_DEN=assets/models/diffusion/denoiser \
    DEN_ARGS="$den_common --var checkpoints/v2/var --teacher checkpoints/v2/regressor --lr 2e-4 --lr-final 5e-5"
  scripts/device/train.sh "$minutes" rsa=regressor vard=var den=diffusion mvden=mv-denoiser
  python3 scripts/device/pick_regressor.py --data $cache/games_packed_eval --split val --copy-to runs/frozen/regressor \
    -o "$OUT/pick.json" start=checkpoints/v2/regressor rsa=runs/rsa/export
  ;;
b)
  [ -d runs/frozen/regressor ] && [ -d runs/vard/export ] && [ -d runs/den/export ] || { echo "call a's results are missing"; exit 1; }
  export INIT_DEN2=runs/den/export \
    DEN2_ARGS="$den_common --var checkpoints/v2/var --teacher runs/frozen/regressor --lr 1e-4 --lr-final 1e-5"
  export INIT_VARD2=runs/vard/export VARD2_ARGS="--decoder-only --batch-size 64 --compile --log-every 500 $zoom --lr 1e-4 --lr-final 1e-5"
  scripts/device/train.sh "$minutes" den2=diffusion vard2=var mvden=mv-denoiser
  set=runs/v2set; rm -rf $set; mkdir -p $set/diffusion
  cp -r runs/frozen/regressor $set/regressor
  cp -r runs/vard2/export $set/diffusion/var
  cp -r runs/den2/export $set/diffusion/denoiser
  cp assets/models/diffusion/splatgen.json $set/diffusion/
  mkdir -p runs/evals; rm -f runs/evals/*
  for split in val test; do
    python3 -m splatgen.core.cli eval --data $cache/games_packed_eval --split $split -m $set/diffusion -k 4 \
      --device cuda --no-progress -o runs/evals/$split-diffusion.json > runs/evals/$split-diffusion.log 2>&1 &
    python3 -m splatgen.core.cli eval --data $cache/games_packed_eval --split $split -m $set/regressor \
      --device cuda --no-progress -o runs/evals/$split-regressor.json > runs/evals/$split-regressor.log 2>&1 &
  done
  wait
  tar -cf "$OUT/evals.tar" -C runs evals
  python3 - <<'PY'
import json, pathlib
for p in sorted(pathlib.Path("runs/evals").glob("*.json")):
    r = json.loads(p.read_text())
    print(f"{p.stem:18s}", " ".join(f"{k}={r[k]:.2f}" for k in ("input_psnr", "novel_psnr", "best_of_k_novel_psnr",
          "diversity_novel_psnr", "diversity_input_psnr", "input_saturation_ratio") if k in r), f"{r['seconds']:.0f}s")
PY
  ;;
*) echo "phase a or b" >&2; exit 2 ;;
esac
