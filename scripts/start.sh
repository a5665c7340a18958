#!/usr/bin/env bash
# Set up (first run only installs) and start the hub on its embedded defaults:
# SQLite in ./hub_data, the bundled demo checkpoints when there is no GPU or network.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python app.py "$@"
