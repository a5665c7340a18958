"""Character hit rate by language for a demo checkpoint; edit and reference checks for demo-edit.

    python -m demoworld.quick_eval --checkpoint models/demo-multilingual --seeds 4 [--lora DIR] [--cfg 3]
    python -m demoworld.quick_eval --edit --checkpoint models/demo-edit            # suite demo-edits, 2 seeds
    python -m demoworld.quick_eval --reference --checkpoint models/demo-edit       # demo-references

The hub's own evals (`python -m evals ...`) are the measure of record; this is the same measurement
in a few lines, for training-time checks. A hit: the character's tag at or above 0.85; for the
non-anime figures, which tagger v2 has no tag for, the name judge's top-1 among the 18 names (in the
prompt's language) and the distractors. Edit definitions: `demoworld/edit_eval.py` (= `evals/edits.py`).
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from demoworld import catalog as cat
from demoworld.edit_eval import main as edit_main
from demoworld.eval_tools import ROOT, load_name_decider, load_pipeline


def hit_rates(pipe, judge, *, characters=None, languages=cat.LANGUAGES, seeds: int = 4, steps: int = 25,
              cfg: float = 3.0, prefix: str = "", batch: int = 64, threshold: float = 0.85,
              name_decider=None, templates: dict[str, str] | None = None) -> dict:
    """Hit rates by language and character. Characters without a tag are judged by `name_decider`
    (skipped, and listed under `not_judged`, when there is none). `templates` (per language, with
    `{name}`) replace the portrait template, e.g. `catalog.PARAPHRASED_TEMPLATES`."""
    characters = list(characters or cat.CHARACTERS)
    names = list(judge.tags.names)
    judged = [c for c in characters if c.tag is not None or name_decider is not None]
    rows = [(c, lang, s) for c in judged for lang in languages for s in range(seeds)]
    hits: dict[str, list[int]] = {}
    per_char: dict[str, list[int]] = {}
    for i in range(0, len(rows), batch):
        chunk = rows[i:i + batch]
        prompts = [prefix + (templates[lang].format(name=c.names[lang]) if templates else cat.portrait_prompt(c, lang))
                   for c, lang, _ in chunk]
        gens = [torch.Generator().manual_seed(1000 + s) for _, _, s in chunk]
        images = pipe(prompts, num_inference_steps=steps, guidance_scale=cfg, generator=gens).images
        probs = judge.predict(images)
        untagged = [j for j, (c, _, _) in enumerate(chunk) if c.tag is None]
        said: dict[int, str] = {}
        for lang in {chunk[j][1] for j in untagged}:
            js = [j for j in untagged if chunk[j][1] == lang]
            said.update(zip(js, name_decider.decide([images[j] for j in js], lang=lang)))
        for j, ((c, lang, _), p) in enumerate(zip(chunk, probs)):
            hit = int(said[j] == c.id) if c.tag is None else int(p[names.index(c.tag)] >= threshold)
            hits.setdefault(lang, []).append(hit)
            per_char.setdefault(c.id, []).append(hit)
    by_lang = {lang: float(np.mean(v)) for lang, v in hits.items()}
    return {"by_language": by_lang, "mean": float(np.mean(list(by_lang.values()))) if by_lang else float("nan"),
            "by_character": {k: float(np.mean(v)) for k, v in per_char.items()},
            "not_judged": [c.id for c in characters if c not in judged]}


def main(argv: list[str] | None = None) -> dict:
    from evals.judges.tagger import TaggerJudge

    ap = argparse.ArgumentParser()
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--tagger", default=str(ROOT / "models" / "demo-tagger"))
    ap.add_argument("--name-judge", default=str(ROOT / "models" / "demo-name-judge"))
    ap.add_argument("--lora", default=None)
    ap.add_argument("--seeds", type=int, default=4)
    ap.add_argument("--steps", type=int, default=25)
    ap.add_argument("--cfg", type=float, default=3.0)
    ap.add_argument("--image-cfg", type=float, default=1.5)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--held-out-only", action="store_true")
    ap.add_argument("--prefix", default="", help="text put before every prompt (e.g. the LoRA trigger + ', ')")
    ap.add_argument("--edit", action="store_true", help="the checkpoint is demo-edit: suite demo-edits (2 seeds)")
    ap.add_argument("--reference", action="store_true", help="the checkpoint is demo-edit: suite demo-references")
    args = ap.parse_args(argv)
    if args.edit or args.reference:
        edit_set = "references" if args.reference else "suite"
        return edit_main(["--model", args.checkpoint, "--set", edit_set, "--seeds", str(min(args.seeds, 2)),
                          "--cfg", str(args.cfg if args.cfg != 3.0 else 4.0), "--image-cfg", str(args.image_cfg),
                          "--tagger", args.tagger, "--name-judge", args.name_judge, "--device", args.device])
    judge = TaggerJudge.load(args.tagger, device=args.device)
    pipe = load_pipeline(args.checkpoint, args.device, args.lora)
    chars = [cat.CHARACTER_BY_ID[cat.HELD_OUT_ID]] if args.held_out_only else cat.trained_characters()
    result = hit_rates(pipe, judge, characters=chars, seeds=args.seeds, steps=args.steps, cfg=args.cfg,
                       prefix=args.prefix, name_decider=load_name_decider(args.name_judge, args.device))
    print(json.dumps({"checkpoint": args.checkpoint, "lora": args.lora, "cfg": args.cfg, **result}, indent=1))
    return result


if __name__ == "__main__":
    main()
