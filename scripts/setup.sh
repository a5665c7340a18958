#!/usr/bin/env bash
# Create .venv and install the hub's Python requirements (add "dev" for the test requirements).
# PyTorch is pinned exactly (torch==2.14.1 with torchvision==0.29.1): a looser pin pulls a multi-GB download.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
requirements=requirements.txt
[ "${1:-}" = "dev" ] && requirements=requirements-dev.txt
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -r "$requirements"
