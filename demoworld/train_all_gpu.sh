#!/usr/bin/env bash
# Train the whole demo world on one GPU in a fixed time budget, and pack the results.
#
#   bash demoworld/train_all_gpu.sh OUTDIR [TOTAL_SECONDS]     (TINY=1 for a quick CPU dry run)
#
# v1's script (v2: the editor is trained by train_v2_gpu.sh from the resulting demo-multilingual).
# Steps: tokenizer; pre-render the training set (all CPU cores); tagger (in the background);
# shared VAE; demo-multilingual and demo-english in parallel on the one GPU; the held-out
# character's LoRA through hub/lora_training.py; a quick hit-rate check; everything packed into
# OUTDIR/models.tar.part-* (cat them | tar x) with the logs inside. Every stage has a time limit derived from
# TOTAL_SECONDS, so the script ends (and saves) inside it.
set -u
OUTDIR=${1:-${OUT:-/tmp/demoworld_out}}
TOTAL=${2:-440}
mkdir -p "$OUTDIR"
export PYTHONUNBUFFERED=1
exec > >(tee -a "$OUTDIR/train.log") 2>&1
T0=$(date +%s)
elapsed() { echo $(( $(date +%s) - T0 )); }
PY=${PYTHON:-python3}
W=${WORKDIR:-/tmp/demoworld_work}
rm -rf "$W"; mkdir -p "$W"

if [ -d .whl ] && [ -z "${NO_WHEELS:-}" ]; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=/tmp/site:$PWD
  if ! $PY -c "import transformers, diffusers, peft; from transformers import CLIPTextModel" 2>/dev/null; then
    echo "carried transformers does not import here; using the installed one"
    rm -rf /tmp/site/transformers /tmp/site/transformers-*
  fi
fi
export PYTHONPATH=${PYTHONPATH:-$PWD}:$PWD
$PY -c "import torch, diffusers, transformers, peft, timm; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'diffusers', diffusers.__version__, 'transformers', transformers.__version__, 'peft', peft.__version__, 'timm', timm.__version__)" || exit 3
nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv 2>/dev/null

if [ -n "${TINY:-}" ]; then
  DEV=cpu; NIMG=400; NTAG=400; TINYF=--tiny; VAE_T=5; TAG_T=5; BS=16; VBS=16; LORA_STEPS=5; WORKERS=2; EVAL_SEEDS=1
else
  DEV=cuda; NIMG=30000; NTAG=40000; TINYF=; VAE_T=55; TAG_T=150; BS=256; VBS=128; LORA_STEPS=600; WORKERS=16; EVAL_SEEDS=2
fi

$PY -c "from demoworld.tokenizer import build_tokenizer; t=build_tokenizer('$W/tokenizer'); print('tokenizer', len(t))"
$PY - <<EOF
import time
from demoworld import catalog as cat
from demoworld.dataset import render_set, sample_attributes
t = time.time()
data = render_set(sample_attributes($NIMG, 0, cat.trained_characters()), 0, 64, $WORKERS)
data.save("$W/train64.npz")
print(f"rendered {len(data)} training images in {time.time() - t:.1f}s", flush=True)
EOF
echo "== $(elapsed)s: tagger (background), VAE"
$PY -m demoworld.train_tagger --out "$W/demo-tagger" --device $DEV --num-images $NTAG --steps 1000000 \
  --batch-size $BS --workers 8 --time-limit $TAG_T $TINYF --evaluate > "$W/tagger.log" 2>&1 &
TAGGER_PID=$!
$PY -m demoworld.train_checkpoint --vae-only --vae-out "$W/vae" --cache "$W/train64.npz" --device $DEV \
  --vae-steps 1000000 --vae-time-limit $VAE_T --vae-batch-size $VBS --vae-lr 2e-3 $TINYF --stats-out "$W/vae_stats.json" || exit 4

# Leave ~150 s after the diffusion runs for saving, the LoRA, a quick check and packing (on the first run
# the LoRA hit its 60 s limit there; it was trained on CPU instead, same recipe as below).
DIFF_T=$(( TOTAL - $(elapsed) - 150 ))
[ -n "${TINY:-}" ] && DIFF_T=5
echo "== $(elapsed)s: diffusion, ${DIFF_T}s each, in parallel"
PIDS=""
for V in multilingual english; do
  $PY -m demoworld.train_checkpoint --variant $V --vae "$W/vae" --cache "$W/train64.npz" --tokenizer "$W/tokenizer" \
    --out "$W/demo-$V" --device $DEV --steps 1000000 --batch-size $BS --lr 5e-4 --time-limit $DIFF_T $TINYF \
    > "$W/diffusion-$V.log" 2>&1 &
  PIDS="$PIDS $!"
done
# demo-edit v2 starts from demo-multilingual: train it afterwards with demoworld/train_v2_gpu.sh.
# Wait on explicit ids: a bare `wait` would also wait for the `tee` of the log, forever.
for P in $PIDS $TAGGER_PID; do wait $P; done
for F in "$W/tagger.log" "$W/diffusion-multilingual.log" "$W/diffusion-english.log"; do
  grep -v -i "warn\|shards\|kept in float32" "$F" | tail -n 6
done

echo "== $(elapsed)s: LoRA"
LORA_DIR="$W/loras/$($PY -c 'from demoworld import catalog as c; print(c.LORA_ID)')"
timeout 150 $PY -m demoworld.train_lora --base "$W/demo-multilingual" --tagger "$W/demo-tagger" --out "$LORA_DIR" \
  --device $DEV --steps $LORA_STEPS --images 24 --rank 16 --lr 2e-3

echo "== $(elapsed)s: pack"
# At most 8 files of 16 MiB come back: one tar of everything, split into 15 MB parts.
mkdir -p "$W/logs"; cp "$W"/*.log "$W/vae_stats.json" "$W/logs/" 2>/dev/null
tar cf - -C "$W" demo-multilingual demo-english demo-tagger loras logs | split -b 15000000 - "$OUTDIR/models.tar.part-"
ls -la "$OUTDIR"

REMAIN=$(( TOTAL - $(elapsed) - 5 ))
if [ $REMAIN -gt 20 ]; then
  echo "== $(elapsed)s: quick check (${REMAIN}s)"
  timeout $(( REMAIN / 2 )) $PY -m demoworld.quick_eval --checkpoint "$W/demo-multilingual" --tagger "$W/demo-tagger" \
    --device $DEV --seeds $EVAL_SEEDS > "$OUTDIR/eval-multilingual.json"
  timeout $(( REMAIN / 2 - 2 )) $PY -m demoworld.quick_eval --checkpoint "$W/demo-english" --tagger "$W/demo-tagger" \
    --device $DEV --seeds $EVAL_SEEDS > "$OUTDIR/eval-english.json"
  cat "$OUTDIR"/eval-*.json | grep -A12 by_language | head -40
fi
echo "== $(elapsed)s: done"
