#!/usr/bin/env bash
# The one device session of this work (never in CI), from the repository root on the lent GPU machine:
#
#   bash benchmarks/gpu_session.sh [OUTDIR]        # default $OUT; carry .whl (bash benchmarks/gpu_wheels.sh)
#   DRY=1 bash benchmarks/gpu_session.sh /tmp/dry   # the rehearsal on a CPU: tiny configs, the same steps
#
# Steps, in priority order, one after another (each timed alone on the GPU), within BUDGET seconds (480):
#   1. environment: the carried wheels unpacked *after* the machine's site-packages, CUDA checked first
#   2. engine      benchmarks/gpu_check.py       bf16, SDPA, determinism, OOM recovery, LoRA switch,
#                                                torch.compile with LoRA hot-swap (0 recompiles, 3 switches)
#   3. sdxl_unet   benchmarks/gpu_sdxl_unet.py   SDXL-base UNet, 1024x1024, 28 steps: s/image, batch-4 gain,
#                                                step time / FLOP floor
#   4. demo_edit   demoworld/train_v2_gpu.sh     demo-edit v2 trained in the time left (at most 330 s), packed
#                                                as models.tar.part-*, then checked (eval-edit.json)
#   5. families    benchmarks/gpu_families_check.py, then name_judge and serving (gpu_ray_check.py), each
#                  only when its minimum time is left
# A step gets min(its cap, the time left) and is killed at that limit; it writes its JSON under OUTDIR as
# it measures, so a killed step loses only its own last numbers. summary.json is rewritten after every step
# (exit code, seconds, limit). The session exits non-zero if any step failed or was killed; a failed step
# does not stop the ones after it. OUTDIR holds at most 8 files.
set -euo pipefail
OUTDIR=${1:-${OUT:-/tmp/gpu_session}}
BUDGET=${BUDGET:-480}
mkdir -p "$OUTDIR"
LOG="$OUTDIR/session.log"
SUMMARY="$OUTDIR/summary.json"
rm -f "$SUMMARY"
T0=$(date +%s)
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1
if [ -n "${DRY:-}" ]; then  # 2 CPU cores run the tiny configs about 3x slower than the GPU runs the real ones
  PY=${PYTHON:-.venv/bin/python}; TINY_FLAG=--tiny; CPU_FLAG=--allow-cpu; SIZE=64; SCALE=3; export TINY=1 DEV=cpu
else
  PY=${PYTHON:-python3}; TINY_FLAG=; CPU_FLAG=; SIZE=512; SCALE=1; export DEV=cuda
fi
BUDGET=$(( BUDGET * SCALE ))
DEADLINE=$(( T0 + BUDGET ))
FAILED=()

stamp() { echo "== $(( $(date +%s) - T0 ))s: $*" | tee -a "$LOG"; }

record() {  # name, exit code, seconds, limit: one entry of summary.json
  "$PY" - "$SUMMARY" "$@" <<'EOF'
import json, sys
from pathlib import Path
path, name, rc, seconds, limit = sys.argv[1:]
status = {"0": "ok", "124": "killed at its limit", "137": "killed at its limit", "skipped": "skipped: no time left"}
summary = json.loads(Path(path).read_text()) if Path(path).is_file() else {"steps": {}}
summary["steps"][name] = {"exit": rc, "status": status.get(rc, "failed"), "seconds": int(seconds), "limit_s": int(limit)}
summary["failed"] = [n for n, s in summary["steps"].items() if s["status"] not in ("ok", "skipped: no time left")]
Path(path).write_text(json.dumps(summary, indent=1) + "\n")
EOF
}

step() {  # name, cap seconds, minimum seconds, command...: run it alone, within min(cap, time left)
  local name=$1 cap=$(( $2 * SCALE )) minimum=$(( $3 * SCALE )); shift 3
  local left=$(( DEADLINE - $(date +%s) ))
  if [ "$left" -lt "$minimum" ]; then
    stamp "$name skipped: ${left}s left, it needs ${minimum}s"; record "$name" skipped 0 0; return 0
  fi
  local limit=$(( cap < left ? cap : left )) start rc=0
  start=$(date +%s)
  stamp "$name (limit ${limit}s)"
  timeout --kill-after=10 "$limit" "$@" >>"$LOG" 2>&1 || rc=$?
  record "$name" "$rc" $(( $(date +%s) - start )) "$limit"
  stamp "$name exit $rc"
  [ "$rc" -eq 0 ] || FAILED+=("$name")
}

# --- 1. environment: wheels behind the machine's own packages, then CUDA ----------------------------
SITE=/tmp/gpu_session_site
rm -rf "$SITE"; mkdir -p "$SITE"
for wheel in .whl/*.whl; do
  [ -e "$wheel" ] || break
  "$PY" -m zipfile -e "$wheel" "$SITE"  # a wheel is a zip laid out for sys.path: no pip needed
done
export GPU_SESSION_SITE=$SITE PYTHONPATH=$PWD:$PWD/benchmarks/gpu_site  # gpu_site/sitecustomize.py appends $SITE
if ! "$PY" - <<'EOF' 2>&1 | tee -a "$LOG"; then
import importlib, os, sys
site = os.environ["GPU_SESSION_SITE"]
assert sys.path.index(site) > max(i for i, p in enumerate(sys.path) if p.endswith(("site-packages", "dist-packages"))), \
    "the carried wheels are not behind the machine's site-packages"
for name in ("torch", "transformers", "numpy", "diffusers", "pydantic", "pydantic_core", "safetensors", "huggingface_hub"):
    module = importlib.import_module(name)
    origin = "carried" if module.__file__.startswith(site) else "machine"
    print(f"{name:16} {getattr(module, '__version__', '?'):14} {origin}")
    assert not (name in ("torch", "transformers", "numpy") and origin == "carried"), f"a carried {name} hides the machine's"
import torch
print("cuda", torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else "-")
EOF
  stamp "the environment is not as the session needs: nothing run"; record environment 4 0 0; exit 4
fi
if [ -z "${DRY:-}" ]; then
  "$PY" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)" \
    || { stamp "no CUDA device: nothing run"; record environment 3 0 0; exit 3; }
fi
record environment 0 $(( $(date +%s) - T0 )) 0

# --- 2-3. the engine, then SDXL-size numbers ----------------------------------------------------------
step engine 120 60 "$PY" benchmarks/gpu_check.py --out "$OUTDIR" --size $SIZE $CPU_FLAG
step sdxl_unet 90 45 "$PY" benchmarks/gpu_sdxl_unet.py --out "$OUTDIR" $TINY_FLAG

# --- 4. demo-edit v2: the time left, at most 330 s, keeping 20 s for the summary ----------------------
TRAIN_S=$(( (DEADLINE - $(date +%s)) / SCALE - 20 )); [ "$TRAIN_S" -gt 330 ] && TRAIN_S=330
if [ "$TRAIN_S" -ge 150 ]; then  # its own log stays out of OUTDIR: the step's output is in session.log
  step demo_edit $(( TRAIN_S + 15 )) 0 \
    env PYTHON="$PY" TRAIN_LOG=/tmp/gpu_session_train.log bash demoworld/train_v2_gpu.sh "$OUTDIR" "$TRAIN_S"
else
  stamp "demo_edit skipped: ${TRAIN_S}s left, it needs 150s"; record demo_edit skipped 0 0
fi

# --- 5. only if time remains --------------------------------------------------------------------------
step families 60 40 "$PY" benchmarks/gpu_families_check.py --out "$OUTDIR"
step name_judge 45 30 "$PY" benchmarks/gpu_name_judge_check.py --device $DEV
step serving 150 120 "$PY" benchmarks/gpu_ray_check.py $TINY_FLAG

FILES=$(find "$OUTDIR" -type f | wc -l)
stamp "done: $FILES files in OUTDIR, failed: ${FAILED[*]:-none}"
[ "$FILES" -le 8 ] || { echo "OUTDIR holds $FILES files (at most 8 come back)" | tee -a "$LOG"; exit 1; }
[ ${#FAILED[@]} -eq 0 ]
