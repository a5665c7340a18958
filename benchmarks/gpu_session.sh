#!/usr/bin/env bash
# The one device session of this work, as it ran (never in CI): `bash benchmarks/gpu_session.sh OUTDIR`
# on a machine with one CUDA GPU, from the repository root, with the wheels the machine lacks in .whl/.
#
#   1. demo-edit v2 training (demoworld/train_v2_gpu.sh, ~300 s), in the background; meanwhile the
#      correctness checks that need CUDA but no clean timings: the engine (bf16, determinism, OOM and
#      recovery, compiled LoRA hot-swap), the families (Anima, Z-Image) and the name judge in float16;
#   2. then, alone on the GPU, the SDXL-size serving numbers for docs/SCALING.md.
# OUTDIR gets: the demo-edit parts and logs, session.log, gpu_check.json, gpu_ray_check.json.
# DRY=1 rehearses it on a CPU in about a minute: tiny training and packing, the families check and tiny
# SDXL configs (the engine and name-judge checks need CUDA and are skipped).
set -u
if [ -n "${DRY:-}" ]; then export TINY=1; DEV=cpu; RAY_FLAGS=--tiny; else DEV=cuda; RAY_FLAGS=; fi
PY=${PYTHON:-python3}
OUTDIR=${1:-${OUT:-/tmp/gpu_session}}
TRAIN_SECONDS=${TRAIN_SECONDS:-300}
mkdir -p "$OUTDIR"
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1
LOG="$OUTDIR/session.log"
T0=$(date +%s)
stamp() { echo "== $(( $(date +%s) - T0 ))s: $*" | tee -a "$LOG"; }

# Wheels the device's Python lacks go behind its own packages (its torch and transformers stay in charge).
if ls .whl/*.whl >/dev/null 2>&1; then
  [ -n "${DRY:-}" ] || $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl >>"$LOG" 2>&1
fi
export PYTHONPATH=$PWD:/tmp/site
$PY -c "import torch, diffusers, transformers, pydantic, sqlalchemy; print('torch', torch.__version__, 'diffusers', diffusers.__version__, 'transformers', transformers.__version__, 'gpu', torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)" 2>&1 | tee -a "$LOG"

stamp "demo-edit v2 training (background, ${TRAIN_SECONDS}s)"
PYTHON=$PY bash demoworld/train_v2_gpu.sh "$OUTDIR" "$TRAIN_SECONDS" > /dev/null 2>&1 &
TRAIN=$!

if [ -n "${DRY:-}" ]; then
  stamp "engine check and name judge check skipped: they need CUDA"
else
  stamp "engine check"
  timeout 120 $PY benchmarks/gpu_check.py --out "$OUTDIR" >>"$LOG" 2>&1; echo "gpu_check exit $?" | tee -a "$LOG"
fi
stamp "families check"
DEV=$DEV timeout 120 $PY benchmarks/gpu_families_check.py 2>&1 | grep -v "^\s*$" | tail -n 40 >>"$LOG"
if [ -z "${DRY:-}" ]; then
  stamp "name judge check"
  timeout 90 $PY benchmarks/gpu_name_judge_check.py >>"$LOG" 2>&1; echo "name judge check exit $?" | tee -a "$LOG"
fi

stamp "waiting for the training"
wait $TRAIN; echo "training exit $?" | tee -a "$LOG"
stamp "SDXL-size serving numbers (alone on the GPU)"
timeout 200 $PY benchmarks/gpu_ray_check.py --out "$OUTDIR" $RAY_FLAGS >>"$LOG" 2>&1; echo "gpu_ray_check exit $?" | tee -a "$LOG"
stamp "done"
ls -la "$OUTDIR" | tee -a "$LOG"
