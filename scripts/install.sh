#!/usr/bin/env bash
# Set up splatgen on a Debian machine: system packages, then .venv with everything in it.
#
#   scripts/install.sh            the CPU build of torch (every machine; CI's)
#   scripts/install.sh --cuda     a CUDA build of torch from PyPI (GBs) for an NVIDIA GPU; gsplat then
#                                 builds its CUDA code on first use (needs nvcc: Debian's nvidia-cuda-toolkit)
#
# Idempotent and quick when nothing is missing: apt runs only for packages not yet installed (as
# root, else through sudo), the venv is created only when absent or broken, torch only when the
# pinned CPU wheel is not there, and the project only when pyproject.toml changed since last time.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="$ROOT/.venv"
PY="$VENV/bin/python"
# Installed FIRST, so that pip never resolves "torch" itself (which would fetch GBs of CUDA wheels).
TORCH_PIN="torch==2.13.0"
CUDA=0
for arg in "$@"; do
  case $arg in
    --cuda) CUDA=1 ;;
    *) echo "install.sh: unknown option $arg (only --cuda)" >&2; exit 2 ;;
  esac
done
STAMP="$VENV/.splatgen-install"

# Debian packages: Python's venv; xvfb + xauth (xvfb-run, tests of the GUI); the X/xcb, font and
# D-Bus libraries the Qt in PyQt6 loads; EGL/GL with Mesa's software drivers (moderngl renders
# headless through EGL); ffmpeg (videos); sweethome3d-furniture (3D models the dataset is built from);
# chromium + its driver (tests drive the browser pages in it) and node (tests check exports with npm's
# @playcanvas/splat-transform; npm itself is added below when node did not bring it); tuxpaint-stamps-default
# (cut-out photos with alpha: the one-step generator's distillation images, `splatgen distil images`).
APT_PACKAGES=(
  python3 python3-venv
  xvfb xauth
  libxkbcommon0 libxkbcommon-x11-0 libxcb1 libx11-xcb1 libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1
  libxcb-shape0 libxcb-xinerama0 libxcb-randr0 libxcb-render-util0 libxcb-image0 libxcb-xkb1
  libfontconfig1 libfreetype6 fonts-dejavu-core libglib2.0-0 libdbus-1-3
  libegl1 libegl-mesa0 libgl1 libglx-mesa0 libgl1-mesa-dri
  ffmpeg
  sweethome3d-furniture
  chromium chromium-driver
  nodejs
  tuxpaint-stamps-default
)
command -v npm >/dev/null 2>&1 || APT_PACKAGES+=(npm)

say() { echo "install.sh: $*"; }

# ------------------------------------------------------------------ system packages
if command -v dpkg-query >/dev/null 2>&1; then
  installed=" $(dpkg-query -W -f='${Package}=${db:Status-Status} ' "${APT_PACKAGES[@]}" 2>/dev/null || true)"
  missing=()
  for p in "${APT_PACKAGES[@]}"; do
    [[ "$installed" == *" $p=installed "* ]] || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -eq 0 ]; then
      SUDO=()
    elif command -v sudo >/dev/null 2>&1; then
      SUDO=(sudo)
    else
      say "need root or sudo to install these Debian packages: ${missing[*]}" >&2
      exit 1
    fi
    say "apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    "${SUDO[@]}" apt-get update -qq
    "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
  else
    say "Debian packages: all present"
  fi
else
  say "no dpkg here (not Debian?): install the equivalents of these yourself: ${APT_PACKAGES[*]}" >&2
fi

# ------------------------------------------------------------------ virtual environment
if ! "$PY" -c "import sys" >/dev/null 2>&1; then
  say "creating .venv"
  python3 -m venv --clear "$VENV"
fi

if [ "$CUDA" = 1 ]; then
  # PyPI's default torch wheels for Linux are the CUDA builds; the CPU pin above would shadow them
  if ! "$PY" -c "import torch, sys; sys.exit(torch.version.cuda is None)" >/dev/null 2>&1; then
    say "pip install torch (a CUDA build)"
    "$PY" -m pip install -q --upgrade "torch>=2.4,!=${TORCH_PIN#torch==}+cpu"
  fi
elif ! "$PY" -c "import importlib.metadata as m, sys; sys.exit(m.version('torch').split('+')[0] != '${TORCH_PIN#torch==}')" >/dev/null 2>&1; then
  say "pip install $TORCH_PIN"
  "$PY" -m pip install -q "$TORCH_PIN"
  command -v nvidia-smi >/dev/null 2>&1 && say "an NVIDIA driver is here: scripts/install.sh --cuda installs a CUDA build of torch for it"
fi

# The editable install points at this checkout; redo it when pyproject.toml changed or the
# checkout moved.
want="$(sha256sum pyproject.toml | cut -d' ' -f1) $ROOT"
if [ "$(cat "$STAMP" 2>/dev/null || true)" != "$want" ] || [ ! -x "$VENV/bin/splatgen" ] \
   || ! "$PY" -c "import os, splatgen.core; assert os.path.samefile(list(splatgen.core.__path__)[0], 'core')" >/dev/null 2>&1; then
  say "pip install -e '.[test]'"
  "$PY" -m pip install -q -e '.[test]'
  echo "$want" > "$STAMP"
else
  say "splatgen: installed in .venv"
fi
say "done"
[ "$CUDA" = 1 ] && "$VENV/bin/splatgen" doctor
exit 0
