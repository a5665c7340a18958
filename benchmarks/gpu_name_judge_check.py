"""Device check (issue 13): the name judge on CUDA in float16 gives the verdicts it gives on a CPU."""
import os, sys, time, tempfile
sys.path.insert(0, os.getcwd())
import torch
import transformers
print("torch", torch.__version__, "cuda", torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else "-",
      "transformers", transformers.__version__, flush=True)
from pathlib import Path
from tests import name_world as w
from evals.judges import build_judge
from evals.suites import get_suite
from evals.calibrate import render_known_truth, calibrate_name_judge
tmp = Path(tempfile.mkdtemp())
t = time.time(); folder = w.save_tiny_siglip(tmp / "m", train_steps=100); print("train 100 steps on CPU", round(time.time() - t, 1), "s")
w.write_prompts(tmp / "p"); suite = get_suite("shapes", tmp / "p")
spec = {"id": "n", "kind": "name", "source": f"folder:{folder}", "thresholds": {"probability": 0.5, "margin": 0.0}}
cpu = build_judge(spec, device="cpu", use_cache=False)
gpu = build_judge({**spec, "options": {"dtype": "float16"}}, device="cuda", use_cache=False)
p = next(gpu.model.parameters()); print("gpu judge", p.device, p.dtype)
imgs, metas = [], []
for c in w.CHARACTERS:
    for row in suite.rows():
        for i in range(3):
            imgs.append(w.render(c, 900 + i)); metas.append(row.meta)
a, b = cpu.recognise(imgs, metas), gpu.recognise(imgs, metas)
print("verdicts", len(a), "same hit", sum(x.hit == y.hit for x, y in zip(a, b)), "cpu hits", sum(x.hit for x in a),
      "max|dprob|", round(max(abs(x.probability - y.probability) for x, y in zip(a, b)), 4),
      "max|dmargin|", round(max(abs(x.margin - y.margin) for x, y in zip(a, b)), 4))
images = render_known_truth(w.render_input, suite, seeds=6)
for name, judge in (("cpu", cpu), ("gpu-fp16", gpu)):
    r = calibrate_name_judge(judge, suite, images)
    print(name, r.thresholds, "true-hit", r.true_hit_rate, "false-hit", r.false_hit_rates, "top1", r.top1_rate)
