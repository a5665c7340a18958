"""demo-edit checks with the hub's definitions (`evals/edits.py`), in a few lines, for training-time use.

    python -m demoworld.edit_eval --model models/demo-edit --set suite        # demo-edits, 2 seeds
    python -m demoworld.edit_eval --model models/demo-edit --set references   # demo-references
    python -m demoworld.edit_eval --model models/demo-edit --set held-out --sweep   # guidance sweep
    python -m demoworld.edit_eval --calibrate                                  # reference_threshold

Per edited image:
- success: the tagger sees every expected tag at >= 0.35;
- character kept: the tagger gives the character tag at >= 0.85; for the non-anime figures (no tag in
  tagger v2) the name judge decides: its top-1 among the 18 English names + distractors is the character;
- reference same: cosine of the tagger's pooled features (output vs. input) >= the suite's
  `reference_threshold` (what the hub does when no reference judge is configured);
- identity kept = character kept AND reference same.
Reference mode ("character from reference"): character hit = character kept as above; success =
the scene's expression and background tags are seen; the feature cosine to the reference is reported,
not required. Seeds are CPU generators seeded 0, 1, ... as the hub's runner does.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from demoworld import catalog as cat
from demoworld.edit_suite import CASES, REFERENCE_THRESHOLD, reference_cases
from demoworld.eval_tools import NameDecider
from demoworld.renderer import character_attributes, render

ROOT = Path(__file__).resolve().parent.parent
THRESHOLD_GENERAL = 0.35
THRESHOLD_CHARACTER = 0.85


def render_spec(spec: dict[str, Any]):
    c = cat.CHARACTER_BY_ID[spec["character"]]
    return render(character_attributes(c, spec.get("background", "white"), spec.get("expression", "smile")),
                  int(spec["seed"]), int(spec.get("size", 64)))


def suite_cases() -> list[dict[str, Any]]:
    """demo-edits' cases (the suite's own inputs and instructions)."""
    out = []
    for index, (character, kind, value) in enumerate(CASES):
        spec = {"character": character, "background": "white", "expression": "smile", "seed": 100 + index}
        out.append({"id": f"{character}_{kind}_{value}", "character": character, "category": kind, "input": spec,
                    "texts": {lang: cat.edit_instruction(kind, value, lang) for lang in cat.LANGUAGES},
                    "expect": [cat.edit_expected_tag(kind, value)]})
    return out


def held_out_cases(n: int = 30, seed: int = 777) -> list[dict[str, Any]]:
    """Edits the suite does not hold (every v2 kind, expression and swimsuit included), other inputs
    (random scenes, render seeds 20000+): for choosing guidance without tuning on the suite."""
    from demoworld.dataset import EDIT_KINDS_V2, one_edit

    rng = random.Random(seed)
    kinds = list(EDIT_KINDS_V2)
    out = []
    for i in range(n):
        c = rng.choice(cat.CHARACTERS)
        spec = {"character": c.id, "background": rng.choice(list(cat.BACKGROUNDS)),
                "expression": rng.choice(cat.EXPRESSIONS), "seed": 20000 + i}
        attrs = character_attributes(c, spec["background"], spec["expression"])
        want = kinds[i % len(kinds)]
        for _ in range(50):
            _, (kind, value) = one_edit(attrs, rng, EDIT_KINDS_V2)
            if kind == want:
                break
        out.append({"id": f"held_{i}_{c.id}_{kind}_{value}", "character": c.id, "category": kind, "input": spec,
                    "texts": {lang: cat.edit_instruction(kind, value, lang) for lang in cat.LANGUAGES},
                    "expect": [cat.edit_expected_tag(kind, value)]})
    return out


def reference_suite_cases() -> list[dict[str, Any]]:
    return [{"id": c["id"], "character": c["character_id"], "category": "reference", "input": c["references"][0]["render"],
             "texts": c["prompt"], "expect": c["expect_tags"]} for c in reference_cases()]


class EditScorer:
    """Tagger (+ name judge for untagged characters) decisions for edited images."""

    def __init__(self, tagger_folder: str | Path = ROOT / "models" / "demo-tagger",
                 name_judge_folder: str | Path | None = ROOT / "models" / "demo-name-judge",
                 reference_threshold: float = REFERENCE_THRESHOLD, device: str = "cpu"):
        from evals.judges.tagger import TaggerJudge

        self.tagger = TaggerJudge.load(str(tagger_folder), device=device, batch_size=128)
        self.decider = None
        if name_judge_folder and (Path(name_judge_folder) / "config.json").is_file():
            from evals.judges.siglip import SiglipJudge

            try:
                self.decider = NameDecider(SiglipJudge.load(str(name_judge_folder), device=device, batch_size=128))
            except Exception as exc:  # noqa: BLE001 - untagged characters then have no "kept" signal (NaN)
                print(f"name judge not loaded ({exc}); untagged characters: reference cosine only", flush=True)
        self.threshold = reference_threshold

    def score(self, outputs: Sequence[Any], inputs: Sequence[Any], characters: Sequence[str],
              expects: Sequence[Sequence[str]]) -> list[dict[str, float]]:
        probs = self.tagger.predict(list(outputs))
        emb = self.tagger.embed(list(outputs) + list(inputs))
        n = len(outputs)
        index = self.tagger.tags.index
        untagged = [i for i, c in enumerate(characters) if cat.CHARACTER_BY_ID[c].tag is None]
        judged: dict[int, str] = {}
        if untagged and self.decider is not None:
            said = self.decider.decide([outputs[i] for i in untagged], lang="en")
            judged = dict(zip(untagged, said))
        rows = []
        for i, (character, expect) in enumerate(zip(characters, expects)):
            tag = cat.CHARACTER_BY_ID[character].tag
            if tag is not None:
                kept = float(probs[i, index[tag]] >= THRESHOLD_CHARACTER)
            else:
                kept = float(judged[i] == character) if i in judged else float("nan")
            success = float(all(probs[i, index[t]] >= THRESHOLD_GENERAL for t in expect))
            cos = float(np.dot(emb[i], emb[n + i]))
            same = float(cos >= self.threshold)
            identity = float(kept >= 1 and same >= 1) if np.isfinite(kept) else same
            rows.append({"success": success, "character_kept": kept, "reference_same": same, "identity_kept": identity,
                         "cosine": cos})
        return rows


def load_edit_pipeline(folder: str | Path, device: str = "cpu"):
    from diffusers import StableDiffusionInstructPix2PixPipeline

    pipe = StableDiffusionInstructPix2PixPipeline.from_pretrained(str(folder), torch_dtype=torch.float32,
                                                                  local_files_only=True).to(device)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def run_cases(pipe, scorer: EditScorer, cases: Sequence[dict[str, Any]], *, languages: Sequence[str] = cat.LANGUAGES,
              seeds: int = 2, steps: int = 20, cfg: float = 4.0, image_cfg: float = 1.5, batch: int = 40) -> list[dict]:
    """One edit per (case, language, seed): records with id, character, category, language, seed and scores."""
    jobs = [(case, lang, seed) for case in cases for seed in range(seeds) for lang in languages]
    inputs = {case["id"]: render_spec(case["input"]) for case in cases}
    records = []
    for start in range(0, len(jobs), batch):
        chunk = jobs[start:start + batch]
        out = pipe([case["texts"][lang] for case, lang, _ in chunk], image=[inputs[case["id"]] for case, _, _ in chunk],
                   num_inference_steps=steps, guidance_scale=cfg, image_guidance_scale=image_cfg,
                   generator=[torch.Generator("cpu").manual_seed(seed) for _, _, seed in chunk]).images
        scores = scorer.score(out, [inputs[case["id"]] for case, _, _ in chunk], [case["character"] for case, _, _ in chunk],
                              [case["expect"] for case, _, _ in chunk])
        for (case, lang, seed), s in zip(chunk, scores):
            records.append({"id": case["id"], "character": case["character"], "category": case["category"],
                            "language": lang, "seed": seed, **s})
    return records


def summarize(records: Sequence[dict], keys: Sequence[str] = ("success", "identity_kept", "character_kept",
                                                               "reference_same")) -> dict:
    """Means overall, per language (with the gap to English), per category and per tier."""
    def mean(rows, key):
        values = [r[key] for r in rows if np.isfinite(r[key])]
        return round(float(np.mean(values)), 4) if values else None

    langs = list(dict.fromkeys(r["language"] for r in records))
    by_lang = {lang: {k: mean([r for r in records if r["language"] == lang], k) for k in keys} for lang in langs}
    out: dict[str, Any] = {"n": len(records), "overall": {k: mean(records, k) for k in keys}}
    out["overall"]["success_mean_over_languages"] = round(float(np.mean([v["success"] for v in by_lang.values()])), 4)
    if "en" in by_lang:
        for k in ("success", "identity_kept"):
            gaps = {lang: round(v[k] - by_lang["en"][k], 4) for lang, v in by_lang.items() if lang != "en"}
            out["overall"][f"{k}_worst_gap_to_english"] = min(gaps.values()) if gaps else 0.0
    out["by_language"] = by_lang
    out["by_category"] = {c: {k: mean([r for r in records if r["category"] == c], k) for k in keys}
                          for c in dict.fromkeys(r["category"] for r in records)}
    out["by_tier"] = {t: {k: mean([r for r in records if cat.CHARACTER_BY_ID[r["character"]].tier == t], k) for k in keys}
                      for t in ("popular", "niche", "non_anime")}
    return out


def calibrate_reference_threshold(tagger_folder: str | Path = ROOT / "models" / "demo-tagger", n: int = 2000,
                                  seed: int = 31337, through_vae: bool = True) -> dict:
    """Cosines of the tagger's features: renderer ground-truth edits (every v2 kind, same seed) vs. their
    input, and other characters (same scene and seed) vs. the input. With `through_vae` the edited
    image also goes through the demo VAE (what a perfect demo editor could output at best)."""
    from PIL import Image

    from demoworld.augment import generator_look
    from demoworld.dataset import EDIT_KINDS_V2, one_edit
    from evals.judges.tagger import TaggerJudge

    judge = TaggerJudge.load(str(tagger_folder), device="cpu", batch_size=256)
    rng = random.Random(seed)
    src, edited, other = [], [], []
    for i in range(n):
        c = rng.choice(cat.CHARACTERS)
        d = rng.choice([x for x in cat.CHARACTERS if x.id != c.id])
        bg, expr = rng.choice(list(cat.BACKGROUNDS)), rng.choice(cat.EXPRESSIONS)
        attrs = character_attributes(c, bg, expr)
        src.append(np.asarray(render(attrs, seed + i)))
        edited.append(np.asarray(render(one_edit(attrs, rng, EDIT_KINDS_V2)[0], seed + i)))
        other.append(np.asarray(render(character_attributes(d, bg, expr), seed + i)))
    result = {"n": n, "seed": seed}
    views = {"renders": np.stack(edited)}
    if through_vae:
        views["through_vae"] = generator_look(np.stack(edited), max_latent_noise=0.0, log=lambda m: None)
    base = judge.embed([Image.fromarray(x) for x in src])
    others = judge.embed([Image.fromarray(x) for x in other])
    diff = np.sum(base * others, axis=1)
    result["other_character"] = {q: round(float(np.quantile(diff, q / 100)), 4) for q in (50, 95, 99, 100)}
    for name, images in views.items():
        if images is None:
            continue
        emb = judge.embed([Image.fromarray(x) for x in images])
        same = np.sum(base * emb, axis=1)
        result[f"same_character_{name}"] = {q: round(float(np.quantile(same, q / 100)), 4) for q in (0, 1, 5, 50)}
    low = result.get("same_character_through_vae", result["same_character_renders"])[1]
    high = result["other_character"][99]
    result["suggested_threshold"] = round(float((low + high) / 2), 2)
    return result


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=str(ROOT / "models" / "demo-edit"))
    ap.add_argument("--tagger", default=str(ROOT / "models" / "demo-tagger"))
    ap.add_argument("--name-judge", default=str(ROOT / "models" / "demo-name-judge"))
    ap.add_argument("--set", choices=["suite", "references", "held-out"], default="suite")
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--cfg", type=float, default=4.0)
    ap.add_argument("--image-cfg", type=float, default=1.5)
    ap.add_argument("--languages", default=",".join(cat.LANGUAGES))
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--limit", type=int, default=None, help="only the first N cases")
    ap.add_argument("--batch", type=int, default=40, help="edits per pipeline call")
    ap.add_argument("--sweep", action="store_true", help="grid over guidance x image guidance")
    ap.add_argument("--calibrate", action="store_true", help="calibrate reference_threshold for the tagger")
    ap.add_argument("--threshold", type=float, default=REFERENCE_THRESHOLD)
    ap.add_argument("--out", default=None, help="write the JSON result here too")
    args = ap.parse_args(argv)
    if args.calibrate:
        result: dict = calibrate_reference_threshold(args.tagger)
    else:
        languages = args.languages.split(",")
        cases = {"suite": suite_cases, "references": reference_suite_cases, "held-out": held_out_cases}[args.set]()
        cases = cases[:args.limit] if args.limit else cases
        pipe = load_edit_pipeline(args.model, args.device)
        scorer = EditScorer(args.tagger, args.name_judge, args.threshold, args.device)
        grid = [(c, i) for c in (3.0, 4.0, 6.0) for i in (1.2, 1.5, 2.0)] if args.sweep else [(args.cfg, args.image_cfg)]
        result = {"model": args.model, "set": args.set, "seeds": args.seeds, "steps": args.steps,
                  "reference_threshold": args.threshold, "runs": []}
        for cfg, image_cfg in grid:
            records = run_cases(pipe, scorer, cases, languages=languages, seeds=args.seeds, steps=args.steps, cfg=cfg,
                                image_cfg=image_cfg, batch=args.batch)
            summary = summarize(records)
            result["runs"].append({"cfg": cfg, "image_cfg": image_cfg, **summary})
            print(json.dumps({"cfg": cfg, "image_cfg": image_cfg, **summary["overall"]}), flush=True)
    text = json.dumps(result, indent=1)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
    print(text if args.calibrate else "", flush=True)
    return result


if __name__ == "__main__":
    main()
