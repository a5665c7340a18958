"""Demo world v2: swimsuit and content rating, untagged non-anime figures, tagger v2's rating rows, the
name judge (a SiglipModel through the hub's SigLIP loader), demo-edit v2's training from
demo-multilingual (edits + character from reference), the v2 suites, and the weights budget."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from demoworld import catalog as cat
from demoworld.renderer import character_attributes, content_rating, render

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "models"
TAGGER = MODELS / "demo-tagger"
NAME_JUDGE = MODELS / "demo-name-judge"
NON_ANIME = {"bald_chemist", "green_ogre", "white_queen", "mustached_plumber"}


# ------------------------------------------------------------------------------ renderer, catalog

def test_swimsuit_render_is_deterministic_and_its_own_drawing():
    attrs = character_attributes(cat.CHARACTER_BY_ID["aqua_diva"], "blue", "smile", garment="swimsuit")
    a = render(attrs, seed=7)
    assert a.tobytes() == render(attrs, seed=7).tobytes()
    shirt = np.asarray(render(replace(attrs, garment="shirt"), seed=7), dtype=np.int16)
    changed = np.abs(np.asarray(a, dtype=np.int16) - shirt).sum(-1) > 30
    assert 0.02 < changed.mean() < 0.3          # the body changed ...
    assert not changed[:36].any()               # ... the head and everything above it did not
    assert "swimsuit" in attrs.general_tags() and "grey_shirt" not in attrs.general_tags()
    assert "grey_shirt" in replace(attrs, garment="shirt").general_tags()


def test_content_rating_of_attribute_sets():
    for c in cat.CHARACTERS:
        for garment in cat.GARMENTS:
            attrs = character_attributes(c, "night", "angry", garment=garment)
            assert content_rating(attrs) == attrs.rating == ("sensitive" if garment == "swimsuit" else "general")
            assert attrs.rating in cat.RATING_TAGS
    assert set(cat.GARMENT_RATINGS.values()) == {"general", "sensitive"}  # nothing questionable or explicit


def test_non_anime_figures_have_no_character_tag_but_keep_everything_else():
    assert {c.id for c in cat.CHARACTERS if c.tier == "non_anime"} == NON_ANIME
    assert len(cat.tagged_characters()) == 14 and set(cat.character_tags()) & NON_ANIME == set()
    for c in cat.CHARACTERS:
        assert (c.tag is None) == (c.id in NON_ANIME)
        assert set(c.names) == set(cat.LANGUAGES) and c.look_tags()
        attrs = character_attributes(c)
        assert attrs.character == c.id and attrs.character_tag == c.tag


def test_v2_words_cover_every_language():
    from demoworld.dataset import BACKGROUND_KEYS

    for kind, value in cat.edit_kinds():
        texts = {cat.edit_instruction(kind, value, lang) for lang in cat.LANGUAGES}
        assert len(texts) == len(cat.LANGUAGES), (kind, value)
    assert {k for k, _ in cat.edit_kinds()} == {"hair", "background", "accessory", "expression", "outfit"}
    assert ("outfit", "swimsuit") not in cat.edit_kinds(include_sensitive=False)  # e.g. a public arena's draws
    for e in cat.EXPRESSIONS:
        for b in BACKGROUND_KEYS:
            assert len({cat.reference_prompt(e, b, lang) for lang in cat.LANGUAGES}) == len(cat.LANGUAGES)
    assert cat.reference_prompt("smile", "night", "en") == "smiling, on a night sky background"
    for texts in cat.DISTRACTOR_TEXTS.values():
        assert set(texts) == set(cat.LANGUAGES)
        assert not {t.lower() for t in texts.values()} & {n.lower() for c in cat.CHARACTERS for n in c.names.values()}
    assert set(cat.PARAPHRASED_TEMPLATES) == set(cat.LANGUAGES)


def test_v2_edits_change_one_attribute_at_the_same_pose():
    import random

    from demoworld.dataset import EDIT_KINDS_V2, one_edit

    rng = random.Random(0)
    seen = set()
    for _ in range(200):
        attrs = character_attributes(rng.choice(cat.CHARACTERS), rng.choice(list(cat.BACKGROUNDS)),
                                     rng.choice(cat.EXPRESSIONS))
        edited, (kind, value) = one_edit(attrs, rng, EDIT_KINDS_V2)
        seen.add(kind)
        assert cat.edit_expected_tag(kind, value) in edited.general_tags()
        assert edited.character == attrs.character
    assert seen == set(EDIT_KINDS_V2)


# ------------------------------------------------------------------------------ training scripts

def test_tiny_tagger_v2_has_rating_rows_and_only_anime_characters(tmp_path):
    from demoworld.train_tagger import train_tagger
    from evals.judges.tagger import TaggerJudge

    stats = train_tagger(tmp_path / "t", device="cpu", size=32, num_images=64, steps=3, batch_size=8, tiny=True,
                         log=lambda m: None)
    judge = TaggerJudge.load(str(tmp_path / "t"), device="cpu")
    names, cats = judge.tags.names, judge.tags.categories
    assert list(names[:4]) == list(cat.RATING_TAGS) and list(cats[:4]) == [9] * 4
    assert {n for n, c in zip(names, cats) if c == 4} == set(cat.character_tags())
    assert "swimsuit" in names and not NON_ANIME & set(names)
    assert stats["steps"] == 3 and stats["loss_curve"] and (tmp_path / "t" / "training_log.json").exists()


def test_tiny_name_judge_loads_through_the_hub_siglip_loader(tmp_path):
    from demoworld.train_name_judge import train_name_judge
    from evals.judges.siglip import SiglipJudge

    stats = train_name_judge(tmp_path / "nj", num_images=64, steps=3, batch_size=16, tiny=True, threads=1,
                             calibrate_images=40, log=lambda m: None)
    judge = SiglipJudge.load(str(tmp_path / "nj"), device="cpu")
    assert type(judge.model).__name__ == "SiglipModel" and judge.text_max_length == 16
    assert judge.tokenize(["Capitano Cappello di Paglia"])["input_ids"].shape == (1, 16)
    images = [render(character_attributes(c), 0, 64) for c in cat.CHARACTERS[:3]]
    scores = judge.scores(images, [c.names["ja"] for c in cat.CHARACTERS[:3]])
    assert scores.shape == (3,) and np.all((scores >= 0) & (scores <= 1))
    fitted = stats["calibration"]
    assert float(judge.model.logit_bias.detach()) == pytest.approx(fitted["bias"], abs=1e-3)
    assert float(judge.model.logit_scale.detach().exp()) == pytest.approx(fitted["scale"], rel=1e-3)
    assert not list((tmp_path / "nj").glob("*.bin")) and (tmp_path / "nj" / "training_log.json").exists()


def test_widened_unet_is_the_text_to_image_unet_at_step_zero():
    from demoworld.models import Sizes, build_unet
    from demoworld.train_edit import widen_unet

    torch.manual_seed(0)
    base = build_unet(Sizes.tiny(), 8).eval()
    wide = widen_unet(base).eval()
    x, c = torch.randn(2, 4, 8, 8), torch.randn(2, 4, 8, 8)
    text = torch.randn(2, 5, Sizes.tiny().cross_attention_dim)
    with torch.no_grad():
        assert torch.allclose(wide(torch.cat([x, c], 1), 10, text).sample, base(x, 10, text).sample, atol=1e-5)
    assert wide.config.in_channels == 8 and torch.all(wide.conv_in.weight[:, 4:] == 0)


def test_tiny_edit_v2_training_from_a_text_to_image_checkpoint(tmp_path):
    from diffusers import StableDiffusionInstructPix2PixPipeline

    from demoworld import train_checkpoint, train_edit

    common = ["--device", "cpu", "--size", "32", "--tiny", "--cache", str(tmp_path / "d.npz"), "--tokenizer",
              str(tmp_path / "tok")]
    train_checkpoint.main(["--vae-only", "--vae-out", str(tmp_path / "vae"), "--num-images", "32", "--vae-steps", "1",
                           "--vae-batch-size", "8", *common])
    train_checkpoint.main(["--variant", "multilingual", "--vae", str(tmp_path / "vae"), "--out", str(tmp_path / "ck"),
                           "--steps", "1", "--batch-size", "4", *common])
    stats = train_edit.main(["--base", str(tmp_path / "ck"), "--out", str(tmp_path / "ed"), "--device", "cpu",
                             "--size", "32", "--num-pairs", "24", "--steps", "2", "--batch-size", "4", "--tiny"])
    assert stats["reference_pairs"] > 0 and stats["steps"] == 2 and stats["seconds_per_step"] > 0
    edit = StableDiffusionInstructPix2PixPipeline.from_pretrained(str(tmp_path / "ed"), torch_dtype=torch.float32,
                                                                  local_files_only=True)
    assert edit.unet.config.in_channels == 8
    reference = render(character_attributes(cat.CHARACTERS[0], "white", "neutral"), 0, 32)
    out = edit(cat.reference_prompt("smile", "night", "ko"), image=reference, num_inference_steps=2,
               guidance_scale=3.0, image_guidance_scale=1.5).images[0]
    assert out.size == (32, 32)
    assert (tmp_path / "ed" / "training_log.json").exists() and not (tmp_path / "ed" / "training_stats.json").exists()


# ------------------------------------------------------------------------------ committed models

def test_committed_tagger_v2_holds_the_readmes_judge_numbers():
    """The README's judges table, measured as it was (400 renders at the evaluation seed, a quarter in
    swimsuits): character accuracy 1.00 on the 317 anime renders, no character tag on a non-anime
    figure, attribute micro-F1 0.980, rating precision and recall 1.00."""
    from demoworld.train_tagger import evaluate_tagger

    result = evaluate_tagger(TAGGER)
    assert result["n_tagged"] == 317 and result["character_accuracy"] >= 0.995, result
    assert result["untagged_false_character_rate"] == 0.0, result
    assert result["rating_precision"] >= 0.99 and result["rating_recall"] >= 0.99, result
    assert result["attribute_f1"] >= 0.975, result
    assert result["max_questionable_or_explicit"] < 0.35, result


def test_committed_name_judge_holds_the_readmes_judge_numbers():
    """The README's judges table: zero-shot top-1 1.00 in each of the 10 languages on 400 renders, and
    agreement with the tagger 1.00."""
    from demoworld.name_judge_eval import evaluate_name_judge

    result = evaluate_name_judge(NAME_JUDGE, tagger=TAGGER, n_per_language=400, seed=4243)["renders"]
    assert result["n_images"] == 400 and min(result["top1_by_language"].values()) >= 0.995, result
    assert min(result["top1_by_tier"].values()) >= 0.995, result
    assert min(result["tagger_agreement_by_language"].values()) >= 0.995, result


def test_renderer_edits_pass_the_edit_checks_with_the_committed_judges():
    """Ground-truth edits (the renderer's) must count as successes that keep identity, with the suite's
    calibrated reference_threshold: the check the editor is measured by is reachable."""
    from demoworld.edit_eval import EditScorer, render_spec, suite_cases
    from demoworld.edit_suite import CASES

    scorer = EditScorer(TAGGER, NAME_JUDGE)
    outputs, inputs, chars, expects = [], [], [], []
    for case, (_, kind, value) in zip(suite_cases(), CASES):
        spec = case["input"]
        source = character_attributes(cat.CHARACTER_BY_ID[case["character"]], spec["background"], spec["expression"])
        attribute = {"hair": "hair_color", "background": "background"}.get(kind)
        edited = (replace(source, **{attribute: value}) if attribute else
                  replace(source, accessories=tuple(sorted((*source.accessories, value)))))
        outputs.append(render(edited, spec["seed"]))
        inputs.append(render_spec(spec))
        chars.append(case["character"])
        expects.append(case["expect"])
    rows = scorer.score(outputs, inputs, chars, expects)
    assert np.mean([r["success"] for r in rows]) >= 0.95
    assert np.mean([r["identity_kept"] for r in rows]) >= 0.9


# ------------------------------------------------------------------------------ suites and budget

def test_v2_suites_match_the_generators(tmp_path):
    from demoworld import edit_suite
    from demoworld.suites import write_all
    from evals.suites import get_suite

    for path in write_all(tmp_path):
        committed = ROOT / "prompts" / path.relative_to(tmp_path)
        assert committed.read_text(encoding="utf-8") == path.read_text(encoding="utf-8"), path.name
    chars = get_suite("demo-characters")
    assert {c.id for c in chars.characters if c.tag is None} == NON_ANIME
    paraphrased = get_suite("demo-characters-paraphrased")
    assert [c.id for c in paraphrased.characters] == [c.id for c in chars.characters]
    for lang in cat.LANGUAGES:  # wordings the demo checkpoints never saw in training
        assert paraphrased.document["templates"][lang] not in (cat.PORTRAIT_TEMPLATES[lang], "{name}")
        assert chars.document["templates"][lang] == cat.PORTRAIT_TEMPLATES[lang]
    edits = get_suite("demo-edits")
    assert [c.id for c in edits.cases] == [f"{c}_{k}_{v}" for c, k, v in edit_suite.CASES]
    assert edits.document["reference_threshold"] == edit_suite.REFERENCE_THRESHOLD
    doc = edit_suite.build_reference_document()
    assert doc["kind"] == "reference" and len(doc["cases"]) == 2 * len(cat.CHARACTERS)
    assert {c["character_id"] for c in doc["cases"] if c["character"] is None} == NON_ANIME
    for case in doc["cases"]:
        assert set(case["prompt"]) == set(case["status"]) == set(cat.LANGUAGES)
        assert 1 <= len(case["references"]) <= 4 and set(case["references"][0]) == {"render"}


def test_all_committed_weights_fit_the_budget():
    from demoworld.models import folder_megabytes

    total = sum(folder_megabytes(f) for f in MODELS.iterdir() if f.is_dir())
    assert total <= 60, total
    assert (NAME_JUDGE / "model.safetensors").exists() and (TAGGER / "training_log.json").exists()


def test_committed_demo_edit_is_v1_or_meets_the_v2_goals():
    """v2 (its `training_log.json` committed) must meet the goals it was trained for, on a CI-sized subset
    (6 suite cases and 6 reference cases, 3 languages, 1 seed): a failure, never a skip. Until then the
    committed editor must be v1, the one whose numbers the README prints (and `evals reproduce` checks)."""
    import json

    from demoworld.edit_eval import EditScorer, load_edit_pipeline, reference_suite_cases, run_cases, suite_cases

    folder = MODELS / "demo-edit"
    pipe = load_edit_pipeline(folder)
    assert pipe.unet.config.in_channels == 8 and type(pipe).__name__ == "StableDiffusionInstructPix2PixPipeline"
    if not (folder / "training_log.json").exists():  # v1: trained from scratch, as the README's editing section says
        stats = json.loads((folder / "training_stats.json").read_text(encoding="utf-8"))
        assert stats["steps"] > 0 and "base" not in stats
        assert "still the first version" in (MODELS.parent / "README.md").read_text(encoding="utf-8")
        return
    scorer = EditScorer(TAGGER, NAME_JUDGE)
    langs = ["en", "zh", "ru"]
    edits = run_cases(pipe, scorer, suite_cases()[::3][:6], languages=langs, seeds=1)
    refs = run_cases(pipe, scorer, reference_suite_cases()[::6][:6], languages=langs, seeds=1)
    success, identity = np.mean([r["success"] for r in edits]), np.mean([r["identity_kept"] for r in edits])
    scene = np.mean([r["success"] for r in refs])
    assert success >= 0.8 and identity >= 0.9 and scene >= 0.5, (success, identity, scene)
