#!/usr/bin/env bash
# Set up everything the tests need on a fresh Debian machine, then run the tests in two stages: the
# suite (everything not marked slow, claims or cluster, under 15 minutes on 2 cores), then the second
# stage: the claims (the committed demo weights generating at the README's numbers) and the cluster
# tests (a Ray cluster in the test process), about 5 minutes. With arguments, only `pytest ARGS` runs.
# System packages: Chromium (browser test) and PostgreSQL (the vote test runs against a real server).
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
[ -x /usr/lib/postgresql/15/bin/postgres ] || ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || need+=(postgresql)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
bash scripts/setup.sh dev
if [ $# -gt 0 ]; then
  exec .venv/bin/python -m pytest "$@"
fi
.venv/bin/python -m pytest
exec .venv/bin/python -m pytest -m "claims or cluster"
