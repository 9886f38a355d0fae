#!/usr/bin/env bash
# Run the test suite on a virtual X display (the GUI tests need one; rendering uses headless EGL).
#
#   scripts/test.sh [pytest arguments...]     e.g. scripts/test.sh tests/test_cli.py -x
#
# Needs scripts/install.sh to have run.
set -euo pipefail
cd "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ ! -x .venv/bin/python ] || ! command -v xvfb-run >/dev/null 2>&1; then
  echo "test.sh: run scripts/install.sh first (no .venv or no xvfb-run)" >&2
  exit 1
fi
exec xvfb-run -a -s "-screen 0 1280x1024x24" .venv/bin/python -m pytest -q "$@"
