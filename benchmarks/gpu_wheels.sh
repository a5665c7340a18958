#!/usr/bin/env bash
# The wheels the GPU session needs and the lent machine lacks, into the ignored .whl/ (carried by `run`).
#
#   bash benchmarks/gpu_wheels.sh            # from the repository root, where PyPI can be reached
#
# The lent machine (device KINDS.md: Python 3.12, torch, transformers, safetensors, huggingface-hub, numpy,
# pillow, pyyaml already there) lacks what the hub's engine imports on top: diffusers and pydantic with its
# three dependencies. Each is named here, without its dependencies, at the version this project's venv runs
# (what `pip install -r requirements.txt` gave), so the GPU runs the code CI tested. Ray is not carried: its
# wheel alone is over the 64 MiB a call may carry, and the SDXL serving numbers are measured without it.
set -euo pipefail
PY=${PYTHON:-.venv/bin/python}
WHEELS=(diffusers pydantic pydantic-core annotated-types typing-inspection)
LIMIT_BYTES=$(( 64 * 1024 * 1024 ))

rm -rf .whl && mkdir -p .whl
for name in "${WHEELS[@]}"; do
  version=$("$PY" -c "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))" "$name")
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    --platform any -d .whl "$name==$version"
done

# One wheel per name, and nothing else: two versions of one package stop the install on the machine.
count=$(ls .whl/*.whl | wc -l)
[ "$count" -eq "${#WHEELS[@]}" ] || { echo "expected ${#WHEELS[@]} wheels in .whl/, found $count" >&2; exit 1; }
total=$(du -cb .whl/*.whl | tail -1 | cut -f1)
ls -l .whl/
echo "$count wheels, $(( total / 1024 )) KiB (limit $(( LIMIT_BYTES / 1024 )) KiB with the working tree)"
[ "$total" -lt "$LIMIT_BYTES" ] || { echo ".whl/ is over the carry limit" >&2; exit 1; }
