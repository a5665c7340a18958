"""Device check (issue 13): the name judge on CUDA in float16 gives the verdicts it gives on a CPU in
float32: every hit the same, probabilities within 0.02. Exit 1 otherwise. `--device cpu` rehearses it
(bfloat16 on the CPU against float32)."""
import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.getcwd())
import torch

parser = argparse.ArgumentParser()
parser.add_argument("--device", default="cuda")
DEVICE = parser.parse_args().device
HALF = "float16" if DEVICE == "cuda" else "bfloat16"
MAX_PROBABILITY_GAP = 0.02
import transformers

print("torch", torch.__version__, "cuda", torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else "-",
      "transformers", transformers.__version__, flush=True)
from pathlib import Path

from evals.calibrate import calibrate_name_judge, render_known_truth
from evals.judges.registry import build_judge
from evals.suites import get_suite
from tests import name_world as w

tmp = Path(tempfile.mkdtemp())
t = time.time(); folder = w.save_tiny_siglip(tmp / "m", train_steps=100); print("train 100 steps on CPU", round(time.time() - t, 1), "s")
w.write_prompts(tmp / "p"); suite = get_suite("shapes", tmp / "p")
spec = {"id": "n", "kind": "name", "source": f"folder:{folder}", "thresholds": {"probability": 0.5, "margin": 0.0}}
cpu = build_judge(spec, device="cpu", use_cache=False)
gpu = build_judge({**spec, "options": {"dtype": HALF}}, device=DEVICE, use_cache=False)
p = next(gpu.model.parameters()); print("gpu judge", p.device, p.dtype)
imgs, metas = [], []
for c in w.CHARACTERS:
    for row in suite.rows():
        for i in range(3):
            imgs.append(w.render(c, 900 + i)); metas.append(row.meta)
a, b = cpu.recognise(imgs, metas), gpu.recognise(imgs, metas)
same = sum(x.hit == y.hit for x, y in zip(a, b))
gap = max(abs(x.probability - y.probability) for x, y in zip(a, b))
print("verdicts", len(a), "same hit", same, "cpu hits", sum(x.hit for x in a), "max|dprob|", round(gap, 4),
      "max|dmargin|", round(max(abs(x.margin - y.margin) for x, y in zip(a, b)), 4))
failures = [f for ok, f in ((same == len(a), f"{len(a) - same} of {len(a)} verdicts differ in {HALF}"),
                            (gap <= MAX_PROBABILITY_GAP, f"probabilities differ by up to {gap:.4f} (at most {MAX_PROBABILITY_GAP})")) if not ok]
images = render_known_truth(w.render_input, suite, seeds=6)
for name, judge in (("cpu-float32", cpu), (f"{DEVICE}-{HALF}", gpu)):
    r = calibrate_name_judge(judge, suite, images)
    print(name, r.thresholds, "true-hit", r.true_hit_rate, "false-hit", r.false_hit_rates, "top1", r.top1_rate)
for failure in failures:
    print("FAIL", failure, file=sys.stderr)
raise SystemExit(1 if failures else 0)
