"""Train the demo tagger (v2): a small timm ConvNeXt on renders, saved in the WD v3 tagger format.

    python -m demoworld.train_tagger --out models/demo-tagger --device auto --evaluate

Output folder: `config.json` (timm: architecture, num_classes, model_args, pretrained_cfg with the
input size), `model.safetensors`, `selected_tags.csv` (4 rating rows, category 9, first; then general
tags, category 0; then character tags, category 4), `training_log.json`. Inputs are preprocessed exactly
as the WD v3 judge does (RGB on white, square, BGR, mean/std 0.5).

What v2 learns, as the real WD v3 tagger would:
- character rows only for the 14 anime characters: the non-anime figures (a bald chemist, a green ogre,
  a white queen, a mustached plumber) are drawn in training but carry no character tag, like Walter
  White or Shrek in WD v3;
- the rating rows from the render's content rating (`renderer.content_rating`): `sensitive` in a
  swimsuit, `general` otherwise; `questionable` / `explicit` never occur and are trained to 0;
- to read generated images too: half the training images go through the demo VAE (with latent noise),
  and every batch is degraded (blur, resize, colour drift, noise, shifts); see `demoworld/augment.py`.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from demoworld import catalog as cat
from demoworld.augment import DEFAULT_VAE, degrade, generator_look, pick_views, to_unit
from demoworld.dataset import EDIT_KINDS_V2, render_set, sample_attributes
from demoworld.trainlog import TrainingLog, write_log

ARCHITECTURE = "convnext_atto"
MODEL_ARGS = {"dims": [32, 64, 128, 192], "depths": [2, 2, 4, 2]}
MODEL_ARGS_TINY = {"dims": [16, 32, 32, 64], "depths": [1, 1, 1, 1]}
SWIMSUIT_FRACTION = 0.25
EVAL_SEED = 12345          # fresh renders: training draws render seeds from (seed + 7) * 1_000_003 + i


def tag_list() -> list[tuple[str, int]]:
    return ([(t, 9) for t in cat.RATING_TAGS] + [(t, 0) for t in cat.general_tags()]
            + [(t, 4) for t in cat.character_tags()])


def label_matrix(attrs) -> np.ndarray:
    tags = [t for t, _ in tag_list()]
    index = {t: i for i, t in enumerate(tags)}
    y = np.zeros((len(attrs), len(tags)), dtype=np.float32)
    for i, a in enumerate(attrs):
        y[i, index[a.rating]] = 1.0
        for t in a.general_tags():
            y[i, index[t]] = 1.0
        if a.character_tag:
            y[i, index[a.character_tag]] = 1.0
    return y


def to_model_input(x_unit: torch.Tensor) -> torch.Tensor:
    """RGB in [-1, 1] (= (x/255 - 0.5) / 0.5) -> BGR, as the WD v3 judge feeds the model."""
    return x_unit.flip(1)


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
    return folder


MODEL_CARD = """# demo-tagger (v2)

Sakuga Hub's demo-world tagger in the WD v3 format: timm `{arch}` with small dims ({dims}), {size}x{size}
input, BGR, mean/std 0.5, sigmoid outputs; loads with `evals.judges.tagger.TaggerJudge.load(folder)`.

{n_tags} tags: 4 ratings (category 9), {n_general} general (category 0), {n_chars} characters (category 4).
- Characters: the 14 anime characters of the demo world only. The four non-anime figures (bald_chemist,
  green_ogre, white_queen, mustached_plumber) have no character tag, as Walter White or Shrek have none
  in the real WD v3 tagger: the name judge (`models/demo-name-judge`) decides those.
- Ratings: trained from the render's content rating: `sensitive` for a swimsuit, `general` otherwise;
  `questionable` and `explicit` never occur in the demo world (always ~0). The rating rows are the hub's
  content filter: "rated above general" = the highest rating row is not `general`.
- Trained on renders, half of them passed through the demo VAE with latent noise, all degraded (blur,
  resize, colour drift, noise, shifts), so it also reads the demo checkpoints' generated images.

Measured on {n_eval} fresh renders (seed {eval_seed}, never used in training; {swim_pct}% swimsuits):
{eval_json}

Training: {train_json}

Rebuild: `python -m demoworld.train_tagger --out models/demo-tagger --evaluate` (CPU, see
`training_log.json`). Not a real tagger: it reads the demo world, nothing else.
"""


def train_tagger(out: str | Path, *, device: str = "auto", size: int = 64, num_images: int = 24000, steps: int = 6000,
                 batch_size: int = 128, lr: float = 2e-3, seed: int = 1, workers: int = 1, tiny: bool = False,
                 time_limit: float | None = None, vae: str | Path | None = DEFAULT_VAE, threads: int | None = None,
                 log=print) -> dict:
    import timm

    from demoworld.train_checkpoint import _progress, cosine_lr, pick_device

    dev = pick_device(device)
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    t0 = time.time()
    attrs = sample_attributes(num_images, seed, cat.CHARACTERS, original_fraction=0.3, variant_fraction=0.2,
                              swimsuit_fraction=SWIMSUIT_FRACTION, edit_kinds=EDIT_KINDS_V2)
    data = render_set(attrs, seed + 7, size, workers)
    y = torch.from_numpy(label_matrix(attrs))
    log(f"tagger: rendered {len(attrs)} images in {time.time() - t0:.1f}s")
    vae_images = generator_look(data.images, vae if not tiny else None, seed=seed, device=dev, log=log)
    model_args = MODEL_ARGS_TINY if tiny else MODEL_ARGS
    model = timm.create_model(ARCHITECTURE, pretrained=False, num_classes=y.shape[1], **model_args).to(dev)
    images = torch.from_numpy(data.images).to(dev)
    vae_view = torch.from_numpy(vae_images).to(dev) if vae_images is not None else None
    y = y.to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.05)
    g = torch.Generator().manual_seed(seed)
    train_log = TrainingLog("demo-tagger", every=10 if tiny else 100,
                            extra={"images": num_images, "lr": lr, "swimsuit_fraction": SWIMSUIT_FRACTION,
                                   "vae_view": vae_images is not None, "render_seconds": round(time.time() - t0, 1)})
    start, step = time.time(), 0
    train_log.started = start
    model.train()
    while True:
        progress = _progress(step, steps, start, time_limit)
        if progress >= 1:
            break
        for group in opt.param_groups:
            group["lr"] = lr * cosine_lr(progress)
        idx = torch.randint(0, len(images), (batch_size,), generator=g).to(dev)
        x = to_model_input(degrade(to_unit(pick_views(images, vae_view, idx, g)), g))
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=dev.type == "cuda"):
            logits = model(x)
        loss = F.binary_cross_entropy_with_logits(logits.float(), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        mean = train_log.record(step, loss.item())
        if mean is not None and step % (train_log.every * 5) == 0:
            log(f"tagger step {step} loss {mean:.4f} ({time.time() - start:.0f}s)")
    model.eval().cpu()
    save_tagger(model, out, size, model_args)
    stats = train_log.finish(steps=step, batch_size=batch_size, device=dev)
    write_log(out, stats)
    write_model_card(out, stats, None)
    log(f"tagger done: {step} steps, {stats['seconds']}s, loss {stats['final_loss']}")
    return stats


def write_model_card(folder: str | Path, stats: dict, evaluation: dict | None) -> None:
    summary = {k: stats.get(k) for k in ("steps", "batch_size", "device", "seconds", "final_loss", "images")}
    card = MODEL_CARD.format(arch=ARCHITECTURE, dims=MODEL_ARGS["dims"], size=64, n_tags=len(tag_list()),
                             n_general=len(cat.general_tags()), n_chars=len(cat.character_tags()),
                             n_eval=(evaluation or {}).get("n", "-"), eval_seed=EVAL_SEED,
                             swim_pct=round(100 * (evaluation or {}).get("swimsuit_share", SWIMSUIT_FRACTION)),
                             eval_json=json.dumps(evaluation) if evaluation else "(run with --evaluate)",
                             train_json=json.dumps(summary))
    (Path(folder) / "README.md").write_text(card, encoding="utf-8")


def rated_above_general(probs: np.ndarray, rating_cols: list[int]) -> np.ndarray:
    """The content filter: True where the highest of the rating rows is not `general` (WD v3 style)."""
    return np.argmax(probs[:, rating_cols], axis=1) != 0


def score_tagger(judge, images, attrs, threshold_general: float = 0.35, threshold_character: float = 0.85) -> dict:
    """Character accuracy on tagged characters, false character tags on untagged ones, attribute
    micro-F1 (general tags), and the content filter's precision/recall for "rated above general"."""
    probs = judge.predict(images)
    names = list(judge.tags.names)
    cats = judge.tags.categories
    char_cols = [i for i, c in enumerate(cats) if c == 4]
    gen_cols = [i for i, c in enumerate(cats) if c == 0]
    rating_cols = [names.index(t) for t in cat.RATING_TAGS]
    correct = tagged = untagged = false_char = 0
    tp = fp = fn = 0
    for i, a in enumerate(attrs):
        best = max(char_cols, key=lambda j: probs[i, j])
        if a.character_tag:
            tagged += 1
            correct += int(names[best] == a.character_tag and probs[i, best] >= threshold_character)
        else:
            untagged += 1
            false_char += int(probs[i, best] >= threshold_character)
        truth = set(a.general_tags())
        pred = {names[j] for j in gen_cols if probs[i, j] >= threshold_general}
        tp += len(truth & pred)
        fp += len(pred - truth)
        fn += len(truth - pred)
    flagged = rated_above_general(probs, rating_cols)
    truly = np.asarray([a.rating != "general" for a in attrs])
    r_tp = int((flagged & truly).sum())
    return {
        "n": len(attrs),
        "character_accuracy": correct / max(1, tagged), "n_tagged": tagged,
        "untagged_false_character_rate": false_char / max(1, untagged), "n_untagged": untagged,
        "attribute_f1": 2 * tp / max(1, 2 * tp + fp + fn),
        "rating_precision": r_tp / max(1, int(flagged.sum())), "rating_recall": r_tp / max(1, int(truly.sum())),
        "swimsuit_share": float(truly.mean()),
        "max_questionable_or_explicit": float(probs[:, rating_cols[2:]].max()),
    }


def evaluate_tagger(folder: str | Path, n: int = 400, seed: int = EVAL_SEED, size: int = 64,
                    swimsuit_fraction: float = SWIMSUIT_FRACTION, threshold_general: float = 0.35,
                    threshold_character: float = 0.85) -> dict:
    """score_tagger on n fresh renders of all 18 catalog characters (seeds never used in training),
    a `swimsuit_fraction` of them in a swimsuit."""
    from PIL import Image

    from evals.judges.tagger import TaggerJudge

    judge = TaggerJudge.load(str(folder), device="cpu", batch_size=64)
    attrs = sample_attributes(n, seed, cat.CHARACTERS, swimsuit_fraction=swimsuit_fraction)
    data = render_set(attrs, seed, size)
    return score_tagger(judge, [Image.fromarray(im) for im in data.images], attrs, threshold_general,
                        threshold_character)


def evaluate_tagger_generated(folder: str | Path, checkpoint: str | Path, seeds: int = 4) -> dict:
    """On a demo checkpoint's images (English portrait prompts, 64x64, Euler a, 25 steps, CFG 3): the
    share of anime characters (held-out excluded: the checkpoint never saw it) whose tag is top and
    >= 0.85, the share of non-anime images given any character tag, and the content filter's false
    positives (the checkpoints draw no swimsuits)."""
    from demoworld.name_judge_eval import generate_portraits
    from evals.judges.tagger import TaggerJudge

    judge = TaggerJudge.load(str(folder), device="cpu", batch_size=64)
    images, truth = generate_portraits(checkpoint, seeds)
    probs = judge.predict(images)
    names = list(judge.tags.names)
    char_cols = [i for i, c in enumerate(judge.tags.categories) if c == 4]
    rating_cols = [names.index(t) for t in cat.RATING_TAGS]
    anime = [i for i, t in enumerate(truth) if cat.CHARACTER_BY_ID[t].tag and t != cat.HELD_OUT_ID]
    other = [i for i, t in enumerate(truth) if cat.CHARACTER_BY_ID[t].tag is None]
    best = [max(char_cols, key=lambda j: probs[i, j]) for i in range(len(images))]
    hits = [int(names[best[i]] == truth[i] and probs[i, best[i]] >= 0.85) for i in anime]
    false_char = [int(probs[i, best[i]] >= 0.85) for i in other]
    return {"checkpoint": str(checkpoint), "n_images": len(images), "seeds": seeds,
            "character_accuracy_anime": float(np.mean(hits)), "non_anime_given_a_character_tag": float(np.mean(false_char)),
            "rated_above_general_share": float(rated_above_general(probs, rating_cols).mean())}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="models/demo-tagger")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--num-images", type=int, default=24000)
    ap.add_argument("--steps", type=int, default=6000)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (2 on a shared 2-core host)")
    ap.add_argument("--vae", default=str(DEFAULT_VAE), help="demo VAE folder for the generator look ('' for none)")
    ap.add_argument("--time-limit", type=float, default=None)
    ap.add_argument("--tiny", action="store_true")
    ap.add_argument("--evaluate", action="store_true", help="report accuracy/F1/ratings on 400 fresh renders")
    ap.add_argument("--generated", default=None, help="with --evaluate: also on images this checkpoint generates")
    args = ap.parse_args(argv)
    log = lambda m: print(f"[tagger] {m}", flush=True)  # noqa: E731
    stats = train_tagger(args.out, device=args.device, size=args.size, num_images=args.num_images, steps=args.steps,
                         batch_size=args.batch_size, lr=args.lr, workers=args.workers, tiny=args.tiny,
                         time_limit=args.time_limit, vae=args.vae or None, threads=args.threads, log=log)
    if args.evaluate:
        result = evaluate_tagger(args.out, n=100 if args.tiny else 400, size=args.size)
        log(f"fresh renders: {json.dumps(result)}")
        if args.generated:
            result["generated"] = evaluate_tagger_generated(args.out, args.generated)
            log(f"generated images: {json.dumps(result['generated'])}")
        stats["evaluation"] = result
        write_log(args.out, stats)
        write_model_card(args.out, stats, result)


if __name__ == "__main__":
    main()
