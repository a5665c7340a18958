"""The demo name judge's measurements, and the "is this character X?" decision the quick evals use.

- Zero-shot top-1 on fresh renders, per language: candidates = the 18 names in that language + the
  distractor texts in that language (`catalog.DISTRACTOR_TEXTS`); a hit when the highest-scoring text is
  the character's name.
- Agreement with the tagger on the characters both know (images of the 14 anime ones): the tagger's
  decision (its best character tag at >= 0.85, else "none") equals the judge's (its top-1 candidate; a
  distractor or an untagged figure counts as "none", all the tagger could say).
- The same two on images `demo-multilingual` generates (English portrait prompts, 64x64, Euler a,
  25 steps, CFG 3, one seed per image): an honest secondary number, since the checkpoint itself misses
  some characters (it never saw `star_knight`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from demoworld import catalog as cat
from demoworld.eval_tools import NONE, NameDecider, load_pipeline


def tagger_decisions(tagger: Any, images: Sequence[Any], threshold: float = 0.85) -> list[str]:
    probs = tagger.predict(list(images))
    names = tagger.tags.names
    char_cols = [i for i, c in enumerate(tagger.tags.categories) if c == 4]
    out = []
    for p in probs:
        best = max(char_cols, key=lambda j: p[j])
        out.append(names[best] if p[best] >= threshold else NONE)
    return out


def _scores(decider: NameDecider, image_emb: np.ndarray, truth: list[str], tagger_says: list[str] | None,
            languages: Sequence[str]) -> dict:
    tagged = {c.id for c in cat.tagged_characters()}
    top1: dict[str, float] = {}
    agree: dict[str, float] = {}
    by_tier: dict[str, list[int]] = {}
    for lang in languages:
        said = decider.decide(lang=lang, image_emb=image_emb)
        hits = [int(s == t) for s, t in zip(said, truth)]
        top1[lang] = float(np.mean(hits))
        for t, h in zip(truth, hits):
            by_tier.setdefault(cat.CHARACTER_BY_ID[t].tier, []).append(h)
        if tagger_says is not None:
            # The tagger can only say "none" for an untagged figure: the judge naming one is "none" too.
            both = [(s if s in tagged else NONE, k) for s, k, t in zip(said, tagger_says, truth) if t in tagged]
            agree[lang] = float(np.mean([int(s == k) for s, k in both])) if both else float("nan")
    out = {"top1_by_language": top1, "top1_mean": float(np.mean(list(top1.values()))),
           "top1_min_language": min(top1.values()), "top1_by_tier": {k: float(np.mean(v)) for k, v in by_tier.items()}}
    if tagger_says is not None:
        out |= {"tagger_agreement_by_language": agree, "tagger_agreement_mean": float(np.nanmean(list(agree.values())))}
    return out


def evaluate_name_judge(folder: str | Path, *, tagger: str | Path | None = "models/demo-tagger",
                        n_per_language: int = 180, seed: int = 4242, languages: Sequence[str] = cat.LANGUAGES,
                        generated_checkpoint: str | Path | None = None, generated_seeds: int = 4) -> dict:
    """Top-1 and tagger agreement on `n_per_language` fresh renders (every language reads the same
    renders), and optionally on a checkpoint's generated images."""
    from PIL import Image

    from demoworld.dataset import render_set, sample_attributes
    from evals.judges.siglip import SiglipJudge

    judge = SiglipJudge.load(str(folder), device="cpu", batch_size=128)
    decider = NameDecider(judge)
    tagger_judge = None
    if tagger and Path(tagger).is_dir():
        from evals.judges.tagger import TaggerJudge

        tagger_judge = TaggerJudge.load(str(tagger), device="cpu", batch_size=128)
    attrs = sample_attributes(n_per_language, seed, cat.CHARACTERS, swimsuit_fraction=0.25)
    images = [Image.fromarray(im) for im in render_set(attrs, seed).images]
    truth = [a.character for a in attrs]
    emb = judge.image_embeddings(images)
    says = tagger_decisions(tagger_judge, images) if tagger_judge else None
    result: dict[str, Any] = {"renders": {"n_images": len(images), "seed": seed, **_scores(decider, emb, truth, says, languages)}}
    if generated_checkpoint:
        gen_images, gen_truth = generate_portraits(generated_checkpoint, generated_seeds)
        gen_emb = judge.image_embeddings(gen_images)
        gen_says = tagger_decisions(tagger_judge, gen_images) if tagger_judge else None
        scores = _scores(decider, gen_emb, gen_truth, gen_says, languages)
        keep = [i for i, t in enumerate(gen_truth) if t != cat.HELD_OUT_ID]
        trained = _scores(decider, gen_emb[keep], [gen_truth[i] for i in keep],
                          [gen_says[i] for i in keep] if gen_says else None, ["en"])
        result["generated"] = {"checkpoint": str(generated_checkpoint), "n_images": len(gen_images),
                               "settings": "English portrait prompts, 64x64, Euler a, 25 steps, CFG 3, seeds 1000+k",
                               **scores, "top1_en_without_held_out": trained["top1_mean"]}
    return result


def generate_portraits(checkpoint: str | Path, seeds: int = 4, steps: int = 25, cfg: float = 3.0,
                       batch: int = 36) -> tuple[list[Any], list[str]]:
    """`seeds` images of each of the 18 characters from English portrait prompts (seed 1000 + k)."""
    import torch

    pipe = load_pipeline(checkpoint, "cpu")
    rows = [(c, s) for c in cat.CHARACTERS for s in range(seeds)]
    images: list[Any] = []
    for i in range(0, len(rows), batch):
        chunk = rows[i:i + batch]
        prompts = [cat.portrait_prompt(c, "en") for c, _ in chunk]
        gens = [torch.Generator().manual_seed(1000 + s) for _, s in chunk]
        images += pipe(prompts, num_inference_steps=steps, guidance_scale=cfg, generator=gens, height=64,
                       width=64).images
    return images, [c.id for c, _ in rows]
