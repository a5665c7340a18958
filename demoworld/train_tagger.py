"""Train the demo tagger: a small timm ConvNeXt on renders, saved in the WD v3 tagger format.

    python -m demoworld.train_tagger --out models/demo-tagger --device auto

Output folder: `config.json` (timm: architecture, num_classes, model_args, pretrained_cfg with the
input size), `model.safetensors`, `selected_tags.csv` (4 rating rows, category 9, first; then general
tags, category 0; then character tags, category 4). Inputs are preprocessed exactly as the WD v3
judge does (RGB on white, square, BGR, mean/std 0.5). Renders are augmented (blur, noise, colour and
position shifts) so that the tagger also reads the softer images a small diffusion model draws.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from demoworld import catalog as cat
from demoworld.dataset import render_set, sample_attributes

ARCHITECTURE = "convnext_atto"
MODEL_ARGS = {"dims": [32, 64, 128, 192], "depths": [2, 2, 4, 2]}
MODEL_ARGS_TINY = {"dims": [16, 32, 32, 64], "depths": [1, 1, 1, 1]}


def tag_list() -> list[tuple[str, int]]:
    return ([(t, 9) for t in cat.RATING_TAGS] + [(t, 0) for t in cat.general_tags()]
            + [(t, 4) for t in cat.character_tags()])


def label_matrix(attrs) -> np.ndarray:
    tags = [t for t, _ in tag_list()]
    index = {t: i for i, t in enumerate(tags)}
    y = np.zeros((len(attrs), len(tags)), dtype=np.float32)
    for i, a in enumerate(attrs):
        y[i, index["general"]] = 1.0
        for t in a.general_tags():
            y[i, index[t]] = 1.0
        if a.character:
            y[i, index[a.character]] = 1.0
    return y


def preprocess_batch(images_uint8: torch.Tensor) -> torch.Tensor:
    """(N, S, S, 3) uint8 RGB -> normalised BGR float, as the WD v3 judge feeds the model."""
    x = images_uint8.permute(0, 3, 1, 2).float().div(255.0)
    x = (x - 0.5) / 0.5
    return x.flip(1)


def augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Degrade renders the way a small generator does: blur, noise, colour drift, small shifts."""
    n = x.shape[0]
    dev = x.device
    # random blur: mix with a 3x3 box-blurred copy
    blur = F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    w = torch.rand(n, 1, 1, 1, generator=generator).to(dev) * 0.8
    x = x * (1 - w) + blur * w
    # colour drift per channel and brightness
    x = x + (torch.rand(n, 3, 1, 1, generator=generator).to(dev) - 0.5) * 0.15
    x = x * (1 + (torch.rand(n, 1, 1, 1, generator=generator).to(dev) - 0.5) * 0.2)
    # noise
    x = x + torch.randn(x.shape, generator=generator).to(dev) * (torch.rand(n, 1, 1, 1, generator=generator).to(dev) * 0.12)
    # shifts up to 2 px
    dx, dy = [int(v) for v in torch.randint(-2, 3, (2,), generator=generator)]
    x = torch.roll(x, shifts=(dy, dx), dims=(2, 3))
    return x.clamp(-1.5, 1.5)


def save_tagger(model, folder: str | Path, size: int, model_args: dict) -> Path:
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tags = tag_list()
    config = {
        "architecture": ARCHITECTURE,
        "num_classes": len(tags),
        "num_features": model.num_features,
        "global_pool": "avg",
        "model_args": model_args,
        "pretrained_cfg": {"custom_load": False, "input_size": [3, size, size], "fixed_input_size": False,
                           "interpolation": "bicubic", "crop_pct": 1.0, "crop_mode": "center",
                           "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5], "num_classes": len(tags),
                           "pool_size": None, "first_conv": None, "classifier": None},
    }
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    state = {k: v.detach().to(torch.float16).contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    with (folder / "selected_tags.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["tag_id", "name", "category", "count"])
        for i, (name, category) in enumerate(tags):
            writer.writerow([i, name, category, 1000])
    (folder / "README.md").write_text(
        "# demo-tagger\n\nSakuga Hub's demo-world tagger in the WD v3 format (timm `convnext_atto` with small "
        f"dims, {size}x{size} input, BGR, mean/std 0.5; sigmoid outputs). {len(tags)} tags: 4 ratings, "
        f"{len(cat.general_tags())} general, {len(cat.CHARACTERS)} characters of the demo world. Trained on "
        "renders only: it reads the demo world, nothing else. Rebuild: `python -m demoworld.train_tagger`.\n",
        encoding="utf-8")
    return folder


def train_tagger(out: str | Path, *, device: str = "auto", size: int = 64, num_images: int = 24000, steps: int = 4000,
                 batch_size: int = 128, lr: float = 2e-3, seed: int = 1, workers: int = 1, tiny: bool = False,
                 time_limit: float | None = None, log=print) -> dict:
    import timm

    from demoworld.train_checkpoint import cosine_lr, pick_device, _progress

    dev = pick_device(device)
    torch.manual_seed(seed)
    t0 = time.time()
    attrs = sample_attributes(num_images, seed, cat.CHARACTERS, original_fraction=0.3, variant_fraction=0.15)
    data = render_set(attrs, seed + 7, size, workers)
    y = torch.from_numpy(label_matrix(attrs))
    log(f"tagger: rendered {len(attrs)} images in {time.time() - t0:.1f}s")
    model_args = MODEL_ARGS_TINY if tiny else MODEL_ARGS
    model = timm.create_model(ARCHITECTURE, pretrained=False, num_classes=y.shape[1], **model_args).to(dev)
    images = torch.from_numpy(data.images).to(dev)
    y = y.to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.05)
    g = torch.Generator().manual_seed(seed)
    start, step, running = time.time(), 0, None
    model.train()
    while True:
        progress = _progress(step, steps, start, time_limit)
        if progress >= 1:
            break
        for group in opt.param_groups:
            group["lr"] = lr * cosine_lr(progress)
        idx = torch.randint(0, len(images), (batch_size,), generator=g).to(dev)
        x = augment(preprocess_batch(images[idx]), g)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=dev.type == "cuda"):
            logits = model(x)
        loss = F.binary_cross_entropy_with_logits(logits.float(), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        running = loss.item() if running is None else 0.98 * running + 0.02 * loss.item()
        if step % 250 == 0:
            log(f"tagger step {step} loss {running:.4f} ({time.time() - start:.0f}s)")
    model.eval().cpu()
    save_tagger(model, out, size, model_args)
    stats = {"steps": step, "seconds": round(time.time() - start, 1), "final_loss_ema": round(running or 0, 5),
             "images": num_images, "batch_size": batch_size, "device": str(dev)}
    (Path(out) / "training_stats.json").write_text(json.dumps(stats, indent=2))
    log(f"tagger done: {stats}")
    return stats


def evaluate_tagger(folder: str | Path, n: int = 400, seed: int = 12345, size: int = 64,
                    threshold_general: float = 0.35, threshold_character: float = 0.85) -> dict:
    """Character accuracy (top character tag above threshold equals the truth) and attribute
    micro-F1 (general tags except the rating) on fresh renders of catalog characters."""
    from evals.judges.tagger import TaggerJudge

    judge = TaggerJudge.load(str(folder), device="cpu", batch_size=64)
    attrs = sample_attributes(n, seed, cat.CHARACTERS)
    data = render_set(attrs, seed, size)
    from PIL import Image

    probs = judge.predict([Image.fromarray(im) for im in data.images])
    names = list(judge.tags.names)
    cats = judge.tags.categories
    char_cols = [i for i, c in enumerate(cats) if c == 4]
    gen_cols = [i for i, c in enumerate(cats) if c == 0]
    correct = 0
    tp = fp = fn = 0
    for i, a in enumerate(attrs):
        best = max(char_cols, key=lambda j: probs[i, j])
        if names[best] == a.character and probs[i, best] >= threshold_character:
            correct += 1
        truth = set(a.general_tags())
        pred = {names[j] for j in gen_cols if probs[i, j] >= threshold_general}
        tp += len(truth & pred)
        fp += len(pred - truth)
        fn += len(truth - pred)
    f1 = 2 * tp / max(1, 2 * tp + fp + fn)
    return {"character_accuracy": correct / n, "attribute_f1": f1, "n": n}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="models/demo-tagger")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--num-images", type=int, default=24000)
    ap.add_argument("--steps", type=int, default=4000)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--time-limit", type=float, default=None)
    ap.add_argument("--tiny", action="store_true")
    ap.add_argument("--evaluate", action="store_true", help="report accuracy/F1 on fresh renders after training")
    args = ap.parse_args(argv)
    log = lambda m: print(f"[tagger] {m}", flush=True)  # noqa: E731
    train_tagger(args.out, device=args.device, size=args.size, num_images=args.num_images, steps=args.steps,
                 batch_size=args.batch_size, lr=args.lr, workers=args.workers, tiny=args.tiny,
                 time_limit=args.time_limit, log=log)
    if args.evaluate:
        log(f"fresh renders: {evaluate_tagger(args.out, size=args.size)}")


if __name__ == "__main__":
    main()
