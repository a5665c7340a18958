"""Train the demo name judge: a tiny `transformers` SiglipModel that reads a demo character's name in
any of the 10 languages and tells whether an image shows that character.

    python -m demoworld.train_name_judge --out models/demo-name-judge --evaluate

Why: the tagger (like the real WD v3) has no tag for the non-anime figures, so "is this the bald
chemist?" needs an image-text judge, as SigLIP 2 is for real models. This one loads through the hub's
own `evals.judges.siglip.SiglipJudge.load(folder)` (AutoModel + AutoProcessor: a SigLIP image processor
with the demo world's CLIP-format BPE tokenizer, `models/demo-multilingual/tokenizer`, 16 tokens).

Training (REFERENCE.md, "Demo name judge"): renders of all 18 characters (held-out `star_knight` and the
non-anime figures included; expressions, backgrounds, swimsuits, one-attribute costume changes) against
- the 18 names (or "a portrait of NAME") in one language per batch plus that language's generic
  distractor texts (`catalog.DISTRACTOR_TEXTS`, never a positive): a softmax (CLIP-style) loss, which
  learns at once where SigLIP's pairwise sigmoid loss with default init stalls;
- per-image descriptions (the scene prompt: name, expression, background, random language) with a
  symmetric in-batch CLIP loss.
Images are augmented as the tagger's are (demo VAE view, blur, noise), so generated images read too.
After training, `logit_scale` / `logit_bias` are fitted on fresh renders (logistic regression of
"this text names this image's character" on the cosine), so sigmoid(exp(scale) * cos + bias) is a
calibrated probability, and the saved model is a plain `SiglipModel` (safetensors).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F

from demoworld import catalog as cat
from demoworld.augment import DEFAULT_VAE, degrade, generator_look, pick_views, to_unit
from demoworld.dataset import EDIT_KINDS_V2, render_set, sample_attributes
from demoworld.trainlog import TrainingLog, write_log

TOKENIZER = Path(__file__).resolve().parent.parent / "models" / "demo-multilingual" / "tokenizer"
TEXT_LENGTH = 16
IMAGE_SIZE = 64
EVAL_SEED = 4242           # fresh renders: training draws render seeds from (seed + 11) * 1_000_003 + i
CALIBRATION_SEED = 5151


def build_model(tokenizer, tiny: bool = False):
    from transformers import SiglipConfig, SiglipModel

    width, layers = (32, 1) if tiny else (64, 2)
    text = dict(vocab_size=len(tokenizer), hidden_size=width, intermediate_size=width * 4, num_hidden_layers=layers,
                num_attention_heads=2, max_position_embeddings=TEXT_LENGTH, pad_token_id=tokenizer.pad_token_id,
                bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, projection_size=width)
    vision = dict(image_size=IMAGE_SIZE, patch_size=8, hidden_size=width, intermediate_size=width * 4,
                  num_hidden_layers=layers, num_attention_heads=2)
    return SiglipModel(SiglipConfig(text_config=text, vision_config=vision))


def build_processor(tokenizer):
    from transformers import SiglipImageProcessor, SiglipProcessor

    image_processor = SiglipImageProcessor(size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}, do_resize=True,
                                           do_rescale=True, do_normalize=True, image_mean=[0.5] * 3, image_std=[0.5] * 3)
    return SiglipProcessor(image_processor=image_processor, tokenizer=tokenizer)


def load_tokenizer(folder: str | Path = TOKENIZER):
    from transformers import CLIPTokenizer

    tok = CLIPTokenizer.from_pretrained(str(folder))
    tok.model_max_length = TEXT_LENGTH
    return tok


def tokenize(tokenizer, texts: Sequence[str]) -> dict[str, torch.Tensor]:
    """Exactly what `SiglipJudge.tokenize` gives the model (max_length padding, attention mask)."""
    out = tokenizer(list(texts), padding="max_length", max_length=TEXT_LENGTH, truncation=True, return_tensors="pt")
    return {"input_ids": out.input_ids, "attention_mask": out.attention_mask}


class TextBank:
    """Token ids of every training text, grouped so a batch picks (language, form) tables fast."""

    def __init__(self, tokenizer, languages: Sequence[str] = cat.LANGUAGES):
        self.languages = list(languages)
        n_chars = len(cat.CHARACTERS)
        # forms: 0 = the name, 1 = "a portrait of NAME"
        class_texts = [[c.names[lang] if form == 0 else cat.portrait_prompt(c, lang) for c in cat.CHARACTERS]
                       for lang in self.languages for form in (0, 1)]
        distractors = [[d[lang] for d in cat.DISTRACTOR_TEXTS.values()] for lang in self.languages for _ in (0, 1)]
        flat = [t for cls, dis in zip(class_texts, distractors) for t in (*cls, *dis)]
        toks = tokenize(tokenizer, flat)
        per = n_chars + len(cat.DISTRACTOR_TEXTS)
        self.class_ids = toks["input_ids"].reshape(len(self.languages), 2, per, -1)
        self.class_mask = toks["attention_mask"].reshape(len(self.languages), 2, per, -1)
        # descriptions: scene prompts (character, expression, background) in every language
        from demoworld.dataset import BACKGROUND_KEYS

        self.n_expr, self.n_bg = len(cat.EXPRESSIONS), len(BACKGROUND_KEYS)
        scene = [cat.scene_prompt(c, lang, e, b, portrait=False) for c in cat.CHARACTERS for lang in self.languages
                 for e in cat.EXPRESSIONS for b in BACKGROUND_KEYS]
        toks = tokenize(tokenizer, scene)
        shape = (n_chars, len(self.languages), self.n_expr, self.n_bg, -1)
        self.scene_ids = toks["input_ids"].reshape(shape)
        self.scene_mask = toks["attention_mask"].reshape(shape)


def _text_emb(model, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    from evals.judges.base import pooled

    return F.normalize(pooled(model.get_text_features(input_ids=ids, attention_mask=mask)), dim=-1)


def _image_emb(model, pixels: torch.Tensor) -> torch.Tensor:
    from evals.judges.base import pooled

    return F.normalize(pooled(model.get_image_features(pixel_values=pixels)), dim=-1)


def train_name_judge(out: str | Path, *, device: str = "cpu", num_images: int = 12000, steps: int = 1500,
                     batch_size: int = 128, lr: float = 2e-3, seed: int = 2, tiny: bool = False,
                     time_limit: float | None = None, vae: str | Path | None = DEFAULT_VAE,
                     tokenizer_folder: str | Path = TOKENIZER, threads: int | None = None,
                     calibrate_images: int = 600, log=print) -> dict:
    from demoworld.train_checkpoint import _progress, cosine_lr, pick_device

    dev = pick_device(device)
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    t0 = time.time()
    tokenizer = load_tokenizer(tokenizer_folder)
    attrs = sample_attributes(num_images, seed, cat.CHARACTERS, variant_fraction=0.2, swimsuit_fraction=0.2,
                              edit_kinds=EDIT_KINDS_V2)
    data = render_set(attrs, seed + 11, IMAGE_SIZE)
    vae_images = generator_look(data.images, vae if not tiny else None, seed=seed, device=dev, log=log)
    bank = TextBank(tokenizer)
    log(f"name judge: {len(attrs)} renders, {bank.class_ids.numel() // TEXT_LENGTH + bank.scene_ids.numel() // TEXT_LENGTH}"
        f" texts in {time.time() - t0:.0f}s")
    model = build_model(tokenizer, tiny).to(dev)
    temperature = torch.nn.Parameter(torch.tensor(math.log(10.0), device=dev))
    params = list(model.parameters()) + [temperature]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.05)
    images = torch.from_numpy(data.images).to(dev)
    vae_view = torch.from_numpy(vae_images).to(dev) if vae_images is not None else None
    char_t = torch.from_numpy(data.character)
    expr_t = torch.from_numpy(data.expression)
    bg_t = torch.from_numpy(data.background)
    g = torch.Generator().manual_seed(seed)
    n_lang = len(bank.languages)
    train_log = TrainingLog("demo-name-judge", every=10 if tiny else 50,
                            extra={"images": num_images, "lr": lr, "vae_view": vae_images is not None,
                                   "loss": "softmax over one language's 18 names + distractors, plus in-batch CLIP loss on descriptions"})
    start, step = time.time(), 0
    train_log.started = start
    model.train()
    while True:
        progress = _progress(step, steps, start, time_limit)
        if progress >= 1:
            break
        for group in opt.param_groups:
            group["lr"] = lr * cosine_lr(progress, warmup=0.05)
        idx = torch.randint(0, len(images), (batch_size,), generator=g)
        pixels = degrade(to_unit(pick_views(images, vae_view, idx.to(dev), g)), g, strength=float(torch.rand(1, generator=g)))
        img = _image_emb(model, pixels)
        lang = int(torch.randint(0, n_lang, (1,), generator=g))
        form = int(torch.randint(0, 2, (1,), generator=g))
        cls = _text_emb(model, bank.class_ids[lang, form].to(dev), bank.class_mask[lang, form].to(dev))
        scale = temperature.exp().clamp(max=100)
        loss_names = F.cross_entropy(scale * img @ cls.T, char_t[idx].to(dev))
        langs = torch.randint(0, n_lang, (batch_size,), generator=g)
        key = (char_t[idx], langs, expr_t[idx], bg_t[idx])
        desc = _text_emb(model, bank.scene_ids[key].to(dev), bank.scene_mask[key].to(dev))
        logits = scale * img @ desc.T
        same = (char_t[idx][:, None] == char_t[idx][None]) & (expr_t[idx][:, None] == expr_t[idx][None]) \
            & (bg_t[idx][:, None] == bg_t[idx][None])
        logits = logits.masked_fill((same & ~torch.eye(batch_size, dtype=torch.bool)).to(dev), -1e4)
        target = torch.arange(batch_size, device=dev)
        loss_desc = 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))
        loss = loss_names + 0.5 * loss_desc
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        step += 1
        mean = train_log.record(step, loss.item())
        if mean is not None and step % (train_log.every * 5) == 0:
            log(f"name judge step {step} loss {mean:.4f} (names {loss_names.item():.3f}) ({time.time() - start:.0f}s)")
    model.eval()
    calibration = calibrate(model, tokenizer, n=120 if tiny else calibrate_images, device=dev)
    stats = train_log.finish(steps=step, batch_size=batch_size, device=dev, calibration=calibration,
                             temperature=round(float(temperature.detach().exp()), 3))
    save_name_judge(model.cpu(), tokenizer, out)
    write_log(out, stats)
    log(f"name judge done: {step} steps, {stats['seconds']}s, loss {stats['final_loss']}, calibration {calibration}")
    return stats


@torch.no_grad()
def calibrate(model, tokenizer, n: int = 600, device: torch.device | str = "cpu") -> dict:
    """Fit logit_scale / logit_bias: logistic regression of "this text names the image's character" on
    cos(image, text) over fresh renders x (18 names + distractors) in every language, as a judge sees
    them (the natural share of positives: one name of 30 candidates)."""
    attrs = sample_attributes(n, CALIBRATION_SEED, cat.CHARACTERS, swimsuit_fraction=0.2)
    data = render_set(attrs, CALIBRATION_SEED, IMAGE_SIZE)
    img = _image_emb(model, to_unit(torch.from_numpy(data.images)).to(device))
    cos, labels = [], []
    for lang in cat.LANGUAGES:
        texts = [c.names[lang] for c in cat.CHARACTERS] + [d[lang] for d in cat.DISTRACTOR_TEXTS.values()]
        toks = tokenize(tokenizer, texts)
        txt = _text_emb(model, toks["input_ids"].to(device), toks["attention_mask"].to(device))
        cos.append((img @ txt.T).cpu())
        truth = torch.zeros(len(attrs), len(texts))
        truth[torch.arange(len(attrs)), torch.from_numpy(data.character)] = 1
        labels.append(truth)
    x, y = torch.cat(cos).flatten(), torch.cat(labels).flatten()
    a = torch.tensor(10.0, requires_grad=True)
    b = torch.tensor(-5.0, requires_grad=True)
    opt = torch.optim.LBFGS([a, b], lr=0.5, max_iter=200, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.binary_cross_entropy_with_logits(a * x + b, y)
        loss.backward()
        return loss

    opt.step(closure)  # LBFGS runs the closure with gradients on, inside this no_grad function
    a, b = a.detach(), b.detach()
    nll = float(F.binary_cross_entropy_with_logits(a * x + b, y))
    model.logit_scale.data.fill_(math.log(max(float(a), 1e-3)))
    model.logit_bias.data.fill_(float(b))
    p = torch.sigmoid(a * x + b)
    bins = torch.clamp((p * 10).long(), max=9)
    ece = sum(float((bins == k).sum()) / len(p) * abs(float(p[bins == k].mean()) - float(y[bins == k].mean()))
              for k in range(10) if (bins == k).any())
    return {"scale": round(float(a), 3), "bias": round(float(b), 3), "nll": round(nll, 5), "ece": round(ece, 5),
            "pairs": int(len(x)), "images": n, "seed": CALIBRATION_SEED}


MODEL_CARD = """---
library_name: transformers
pipeline_tag: zero-shot-image-classification
tags: [sakuga-hub, demo-world, siglip]
---
# demo-name-judge

A tiny `SiglipModel` (vision: {size} px, patch 8, hidden {width}, {layers} layers; text: the demo world's
CLIP-format BPE tokenizer, hidden {width}, {layers} layers, {tokens} tokens) that reads the names of the demo
world's 18 characters in 10 languages (en, es, fr, de, pt, it, ru, zh, ja, ko). It decides the characters
the tagger has no tag for (the non-anime figures), and doubles as the demo world's image-text judge.

- Load: `SiglipJudge.load("models/demo-name-judge")` (hub) or `AutoModel` + `AutoProcessor` (transformers);
  safetensors only. Score = sigmoid(exp(logit_scale) * cos + logit_bias), calibrated on fresh renders.
- Zero-shot use: candidates = the 18 names in one language + `catalog.DISTRACTOR_TEXTS` in that language.
- Trained with a softmax loss over one language's names per batch plus a CLIP loss on descriptions
  (REFERENCE.md: the pairwise sigmoid loss stalls at this size); scale and bias fitted afterwards.

Measured: {evaluation}

Training: {training}

Not a real judge: it only knows the demo world.
"""


def save_name_judge(model, tokenizer, folder: str | Path) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder, safe_serialization=True)
    processor = build_processor(tokenizer)
    processor.save_pretrained(folder)
    # Also the image processor's own file, for loaders that build the processor from its parts.
    processor.image_processor.save_pretrained(folder)
    return folder


def write_model_card(folder: str | Path, stats: dict, evaluation: dict | None) -> None:
    cfg = json.loads((Path(folder) / "config.json").read_text())["text_config"]
    summary = {k: stats.get(k) for k in ("steps", "batch_size", "device", "seconds", "final_loss", "images")}
    (Path(folder) / "README.md").write_text(MODEL_CARD.format(
        size=IMAGE_SIZE, width=cfg["hidden_size"], layers=cfg["num_hidden_layers"], tokens=TEXT_LENGTH,
        evaluation=json.dumps(evaluation) if evaluation else "(run with --evaluate)",
        training=json.dumps(summary)), encoding="utf-8")


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="models/demo-name-judge")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--num-images", type=int, default=12000)
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--vae", default=str(DEFAULT_VAE), help="demo VAE folder for the generator look ('' for none)")
    ap.add_argument("--tokenizer", default=str(TOKENIZER))
    ap.add_argument("--time-limit", type=float, default=None)
    ap.add_argument("--tiny", action="store_true")
    ap.add_argument("--evaluate", action="store_true", help="top-1 and tagger agreement on fresh renders")
    ap.add_argument("--tagger", default="models/demo-tagger")
    ap.add_argument("--generated", default=None, help="also evaluate on images this checkpoint generates")
    ap.add_argument("--generated-seeds", type=int, default=4)
    args = ap.parse_args(argv)
    log = lambda m: print(f"[name-judge] {m}", flush=True)  # noqa: E731
    stats = train_name_judge(args.out, device=args.device, num_images=args.num_images, steps=args.steps,
                             batch_size=args.batch_size, lr=args.lr, tiny=args.tiny, time_limit=args.time_limit,
                             vae=args.vae or None, tokenizer_folder=args.tokenizer, threads=args.threads, log=log)
    evaluation = None
    if args.evaluate:
        from demoworld.name_judge_eval import evaluate_name_judge

        evaluation = evaluate_name_judge(args.out, tagger=args.tagger, n_per_language=40 if args.tiny else 180,
                                         generated_checkpoint=args.generated, generated_seeds=args.generated_seeds)
        log(f"evaluation: {json.dumps(evaluation)}")
        stats["evaluation"] = evaluation
        write_log(args.out, stats)
    write_model_card(args.out, stats, evaluation)
    return stats


if __name__ == "__main__":
    main()
