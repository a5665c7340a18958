"""Character hit rate by language for a demo checkpoint, judged by the demo tagger.

    python -m demoworld.quick_eval --checkpoint models/demo-multilingual --seeds 4 [--lora DIR] [--cfg 3]

The hub's own evals (`python -m evals ...`) are the measure of record; this is the same measurement
in a few lines, for training-time checks (a hit: the character's tag at or above 0.85).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from demoworld import catalog as cat


def load_pipeline(folder: str | Path, device: str = "cpu", lora: str | Path | None = None):
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(str(folder), torch_dtype=torch.float32, local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    if lora:
        pipe.load_lora_weights(str(lora), adapter_name="lora")
    return pipe.to(device)


def hit_rates(pipe, judge, *, characters=None, languages=cat.LANGUAGES, seeds: int = 4, steps: int = 25,
              cfg: float = 3.0, prefix: str = "", batch: int = 64, threshold: float = 0.85) -> dict:
    characters = list(characters or cat.CHARACTERS)
    names = list(judge.tags.names)
    rows = [(c, lang, s) for c in characters for lang in languages for s in range(seeds)]
    hits: dict[str, list[int]] = {}
    per_char: dict[str, list[int]] = {}
    for i in range(0, len(rows), batch):
        chunk = rows[i:i + batch]
        prompts = [(prefix + cat.portrait_prompt(c, lang)) for c, lang, _ in chunk]
        gens = [torch.Generator().manual_seed(1000 + s) for _, _, s in chunk]
        images = pipe(prompts, num_inference_steps=steps, guidance_scale=cfg, generator=gens).images
        probs = judge.predict(images)
        for (c, lang, _), p in zip(chunk, probs):
            hit = int(p[names.index(c.tag)] >= threshold)
            hits.setdefault(lang, []).append(hit)
            per_char.setdefault(c.id, []).append(hit)
    by_lang = {lang: float(np.mean(v)) for lang, v in hits.items()}
    return {"by_language": by_lang, "mean": float(np.mean(list(by_lang.values()))),
            "by_character": {k: float(np.mean(v)) for k, v in per_char.items()}}


def main(argv: list[str] | None = None) -> dict:
    from evals.judges.tagger import TaggerJudge

    ap = argparse.ArgumentParser()
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--tagger", default="models/demo-tagger")
    ap.add_argument("--lora", default=None)
    ap.add_argument("--seeds", type=int, default=4)
    ap.add_argument("--steps", type=int, default=25)
    ap.add_argument("--cfg", type=float, default=3.0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--held-out-only", action="store_true")
    ap.add_argument("--prefix", default="", help="text put before every prompt (e.g. the LoRA trigger + ', ')")
    ap.add_argument("--edit", action="store_true", help="the checkpoint is demo-edit: report edit success/identity")
    ap.add_argument("--cases", type=int, default=30)
    args = ap.parse_args(argv)
    judge = TaggerJudge.load(args.tagger, device=args.device)
    if args.edit:
        result = edit_rates(args.checkpoint, judge, cases=args.cases, device=args.device)
        print(json.dumps({"checkpoint": args.checkpoint, **result}, indent=1))
        return result
    pipe = load_pipeline(args.checkpoint, args.device, args.lora)
    chars = [cat.CHARACTER_BY_ID[cat.HELD_OUT_ID]] if args.held_out_only else cat.trained_characters()
    result = hit_rates(pipe, judge, characters=chars, seeds=args.seeds, steps=args.steps, cfg=args.cfg,
                       prefix=args.prefix)
    print(json.dumps({"checkpoint": args.checkpoint, "lora": args.lora, "cfg": args.cfg, **result}, indent=1))
    return result



def edit_rates(folder: str | Path, judge, *, cases: int = 30, languages=cat.LANGUAGES, steps: int = 20,
               cfg: float = 4.0, image_cfg: float = 1.5, seed: int = 99, device: str = "cpu",
               threshold_general: float = 0.35, threshold_character: float = 0.85) -> dict:
    """demo-edit check: success = the tagger sees the requested attribute; identity = the character
    tag is still given. Cases are (character, one edit) pairs; each runs in every language."""
    import random

    from diffusers import StableDiffusionInstructPix2PixPipeline

    from demoworld.dataset import one_edit
    from demoworld.renderer import character_attributes, render

    pipe = StableDiffusionInstructPix2PixPipeline.from_pretrained(str(folder), torch_dtype=torch.float32,
                                                                  local_files_only=True).to(device)
    pipe.set_progress_bar_config(disable=True)
    names = list(judge.tags.names)
    rng = random.Random(seed)
    success: dict[str, list[int]] = {}
    identity: dict[str, list[int]] = {}
    for i in range(cases):
        c = rng.choice(list(cat.CHARACTERS))
        attrs = character_attributes(c, rng.choice(list(cat.BACKGROUNDS)), rng.choice(cat.EXPRESSIONS))
        _, (kind, value) = one_edit(attrs, rng)
        wanted = {"hair": cat.hair_color_tag, "background": cat.background_tag, "accessory": cat.accessory_tag}[kind](value)
        source = render(attrs, seed + i, 64)
        prompts = [cat.edit_instruction(kind, value, lang) for lang in languages]
        out = pipe(prompts, image=[source] * len(prompts), num_inference_steps=steps, guidance_scale=cfg,
                   image_guidance_scale=image_cfg, generator=torch.Generator().manual_seed(seed + i)).images
        probs = judge.predict(out)
        for lang, p in zip(languages, probs):
            success.setdefault(lang, []).append(int(p[names.index(wanted)] >= threshold_general))
            identity.setdefault(lang, []).append(int(p[names.index(c.tag)] >= threshold_character))
    s = {k: float(np.mean(v)) for k, v in success.items()}
    ident = {k: float(np.mean(v)) for k, v in identity.items()}
    return {"success": float(np.mean(list(s.values()))), "identity_kept": float(np.mean(list(ident.values()))),
            "success_by_language": s, "identity_by_language": ident}


if __name__ == "__main__":
    main()
