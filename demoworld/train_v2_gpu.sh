#!/usr/bin/env bash
# Demo world v2 on one GPU: train demo-edit v2 (the one model a 2-core CPU cannot train in time), check it,
# and pack it. The tagger v2 and the name judge are trained on a CPU (committed in models/).
#
#   bash demoworld/train_v2_gpu.sh OUTDIR [TOTAL_SECONDS]        (TINY=1 for a quick CPU dry run)
#
# Stages, each with a time limit derived from TOTAL_SECONDS (default 330) so the script ends inside it:
#   1. environment: the carried diffusers wheel (.whl/diffusers-*.whl) if diffusers is missing; versions; GPU
#   2. demo-edit v2: render pairs (all CPU cores), encode, fine-tune demo-multilingual's UNet (conv_in 4 -> 8)
#      and text encoder until the time limit, save (always). If the run fails (e.g. out of memory), it is
#      retried once with half the batch and the time that is left.
#   3. pack: OUTDIR/models.tar.part-* (cat them | tar x -C models/), 15 MB each, logs inside
#   4. checks with the time left (never blocking the pack): demo-edits (2 seeds, 10 languages), demo-references,
#      and a guidance sweep on held-out edits -> OUTDIR/eval-edit.json
# OUTDIR gets at most 6 files: the parts (2), train.log (or $TRAIN_LOG, elsewhere), eval-edit.json.
set -u
OUTDIR=${1:-${OUT:-/tmp/demoworld_v2_out}}
TOTAL=${2:-330}
mkdir -p "$OUTDIR"
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
exec > >(tee -a "${TRAIN_LOG:-$OUTDIR/train.log}") 2>&1
T0=$(date +%s)
elapsed() { echo $(( $(date +%s) - T0 )); }
left() { echo $(( TOTAL - $(date +%s) + T0 )); }
W=${WORKDIR:-/tmp/demoworld_v2_work}
rm -rf "$W"; mkdir -p "$W/logs"

# --- 1. environment ------------------------------------------------------------------------------
PY=${PYTHON:-}
if [ -z "$PY" ]; then
  for C in python3 .venv/bin/python /work/main/.venv/bin/python python; do
    if command -v "$C" >/dev/null 2>&1 && "$C" -c "import torch" 2>/dev/null; then PY=$C; break; fi
  done
fi
[ -z "$PY" ] && { echo "no python with torch found"; exit 3; }
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
# Only the diffusers wheel is needed (pure Python, no dependencies the machine lacks); the machine's own
# torch / transformers stay in charge (appended to PYTHONPATH, never in front of them).
if ! $PY -c "import diffusers" 2>/dev/null; then
  WHEEL=$(ls .whl/diffusers-*.whl 2>/dev/null | head -1)
  [ -z "$WHEEL" ] && { echo "diffusers is not installed and .whl/diffusers-*.whl is not carried"; exit 3; }
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site "$WHEEL" \
    && export PYTHONPATH=$PYTHONPATH:/tmp/site
fi
$PY -c "import torch, diffusers, transformers; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'diffusers', diffusers.__version__, 'transformers', transformers.__version__)" || exit 4
nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv 2>/dev/null

if [ -n "${TINY:-}" ]; then
  DEV=cpu; PAIRS=64; BS=8; WORKERS=2; RESERVE=25; TINYF=--tiny; EVAL_ARGS="--limit 2 --languages en,ja --seeds 1 --steps 4"
else
  DEV=cuda; PAIRS=60000; BS=512; WORKERS=16; RESERVE=70; TINYF=; EVAL_ARGS="--seeds 2 --batch 200"
fi
BASE=models/demo-multilingual
for F in $BASE/unet/config.json models/demo-tagger/model.safetensors; do
  [ -f "$F" ] || { echo "missing $F (the working tree must carry models/)"; exit 5; }
done

# --- 2. demo-edit v2 -----------------------------------------------------------------------------
train_edit() {  # $1 batch size, $2 deadline (unix time) for the end of training; saving follows (~10 s)
  $PY -m demoworld.train_edit --base $BASE --out "$W/demo-edit" --device $DEV --num-pairs $PAIRS --workers $WORKERS \
    --batch-size "$1" --lr 3e-4 --steps 1000000 --deadline "$2" $TINYF
}
# Training ends RESERVE seconds before the end (saving, packing, checks); rendering and encoding the pairs
# (~30-40 s on the GPU machine) come out of the training time, not out of the reserve.
DEADLINE=$(( T0 + TOTAL - RESERVE )); [ -n "${TINY:-}" ] && DEADLINE=$(( $(date +%s) + 20 ))
echo "== $(elapsed)s: demo-edit v2 at batch $BS, training until $(( DEADLINE - T0 ))s"
if ! train_edit $BS $DEADLINE 2>&1 | tee "$W/logs/edit.log" | grep -v -i "warn\|shards\|kept in float32\|deprecat"; then :; fi
if [ ! -f "$W/demo-edit/unet/diffusion_pytorch_model.safetensors" ]; then
  RETRY_END=$(( T0 + TOTAL - 30 )); [ -n "${TINY:-}" ] && RETRY_END=$(( $(date +%s) + 20 ))
  echo "== $(elapsed)s: first run saved nothing; retrying at batch $(( BS / 2 )) until $(( RETRY_END - T0 ))s"
  if [ $(( RETRY_END - $(date +%s) )) -gt 40 ]; then
    train_edit $(( BS / 2 )) $RETRY_END 2>&1 | tee "$W/logs/edit-retry.log" | grep -v -i "warn\|shards\|kept in float32\|deprecat"
  fi
fi
[ -f "$W/demo-edit/unet/diffusion_pytorch_model.safetensors" ] || { echo "demo-edit was not saved"; exit 6; }

# --- 3. pack -------------------------------------------------------------------------------------
echo "== $(elapsed)s: pack"
nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv 2>/dev/null > "$W/logs/gpu.txt"
tar cf - -C "$W" demo-edit logs | split -b 15000000 - "$OUTDIR/models.tar.part-"
ls -la "$OUTDIR"

# --- 4. checks with the time left ----------------------------------------------------------------
REMAIN=$(( $(left) - 5 ))
[ -n "${TINY:-}" ] && [ $REMAIN -lt 240 ] && REMAIN=240   # the dry run exercises the checks whatever the clock says
if [ $REMAIN -gt 15 ]; then
  echo "== $(elapsed)s: checks (${REMAIN}s)"
  timeout $REMAIN $PY - "$W/demo-edit" "$OUTDIR/eval-edit.json" $DEV $EVAL_ARGS <<'EOF'
import json, sys, time
from demoworld.edit_eval import main
model, out, device, *rest = sys.argv[1:]
result, t = {}, time.time()
def save():
    with open(out, "w") as f:
        json.dump(result, f, indent=1)
for name, extra in (("suite", []), ("references", []), ("held_out_sweep", ["--sweep", "--seeds", "1"])):
    args = ["--model", model, "--device", device, "--set", name.split("_sweep")[0].replace("held_out", "held-out"),
            *rest, *extra]
    try:
        result[name] = main(args)
    except Exception as exc:  # a failed check never loses the ones before it
        result[name] = {"error": f"{type(exc).__name__}: {exc}"}
    result[name + "_seconds"] = round(time.time() - t, 1)
    save()
    for run in result[name].get("runs", []):
        print(name, json.dumps({"cfg": run["cfg"], "image_cfg": run["image_cfg"], **run["overall"]}), flush=True)
EOF
fi
echo "== $(elapsed)s: done"
