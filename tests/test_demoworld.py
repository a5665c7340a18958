"""Demo world: renderer, catalog, tokenizer, suites, training scripts at tiny scale, the committed
tagger and checkpoints (on a CI-sized subset), and the hub's LoRA trainer."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from demoworld import catalog as cat
from demoworld.renderer import character_attributes, random_original, render

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "models"
TAGGER = MODELS / "demo-tagger"


# ------------------------------------------------------------------------------ renderer, catalog

def test_renderer_is_deterministic_and_seeded():
    attrs = character_attributes(cat.CHARACTERS[0], "night", "surprised")
    a = render(attrs, seed=5, size=64)
    assert a.size == (64, 64) and a.mode == "RGB"
    assert a.tobytes() == render(attrs, seed=5, size=64).tobytes()
    assert a.tobytes() != render(attrs, seed=6, size=64).tobytes()
    assert render(attrs, seed=5, size=32).size == (32, 32)


def test_one_attribute_edit_keeps_the_pose():
    attrs = character_attributes(cat.CHARACTER_BY_ID["aqua_diva"], "blue", "smile")
    before = np.asarray(render(attrs, seed=3), dtype=np.int16)
    after = np.asarray(render(replace(attrs, hair_color="red"), seed=3), dtype=np.int16)
    changed = (np.abs(before - after).sum(-1) > 30).mean()
    assert 0.02 < changed < 0.4  # the hair changed, the rest of the portrait did not


def test_catalog_covers_tiers_and_languages():
    assert len(cat.CHARACTERS) >= 16 and len(cat.LANGUAGES) >= 10
    assert {c.tier for c in cat.CHARACTERS} == {"popular", "niche", "non_anime"}
    assert cat.HELD_OUT_ID in cat.CHARACTER_BY_ID
    assert len({c.id for c in cat.CHARACTERS}) == len(cat.CHARACTERS)
    assert len(set(cat.character_tags())) == len(cat.tagged_characters())
    for c in cat.CHARACTERS:
        assert set(c.names) == set(cat.LANGUAGES)
        # translated epithets, not one spelling for all: the English-only checkpoint must not know them
        assert len(set(c.names.values())) >= 8, c.id
    for table in (cat.EXPRESSION_WORDS, cat.BACKGROUND_WORDS, cat.PORTRAIT_TEMPLATES, cat.HAIR_EDIT_TEMPLATES):
        assert set(table) == set(cat.LANGUAGES)
    for kind, value in cat.edit_kinds():
        assert len({cat.edit_instruction(kind, value, lang) for lang in cat.LANGUAGES}) == len(cat.LANGUAGES)


def test_random_originals_are_not_catalog_characters():
    import random

    rng = random.Random(0)
    for _ in range(50):
        a = random_original(rng)
        assert a.character is None
        assert all(sum([a.hair_color != c.hair_color, a.hair_style != c.hair_style, a.eye_color != c.eye_color,
                        a.skin != c.skin, a.outfit != c.outfit, set(a.accessories) != set(c.accessories)]) >= 2
                   for c in cat.CHARACTERS)


# ----------------------------------------------------------------------------------- tokenizer

def test_tokenizer_round_trips_every_script(tmp_path):
    from transformers import CLIPTokenizer

    from demoworld.tokenizer import build_tokenizer

    build_tokenizer(tmp_path)
    tok = CLIPTokenizer.from_pretrained(str(tmp_path))
    assert tok.model_max_length == 77
    for lang in cat.LANGUAGES:
        text = cat.scene_prompt(cat.CHARACTERS[3], lang, "angry", "night")
        ids = tok(text).input_ids
        assert ids[0] == tok.bos_token_id and ids[-1] == tok.eos_token_id
        assert tok.unk_token_id not in ids[1:-1] or tok.unk_token_id == tok.eos_token_id
        assert tok.decode(ids, skip_special_tokens=True).replace(" ", "") == text.lower().replace(" ", "")
    long = tok(" ".join(["twintails"] * 200), padding="max_length", max_length=77, truncation=True).input_ids
    assert len(long) == 77


@pytest.mark.parametrize("name", ["demo-multilingual", "demo-english"])
def test_committed_checkpoint_tokenizer_round_trips(name):
    from transformers import CLIPTokenizer

    folder = MODELS / name / "tokenizer"
    tok = CLIPTokenizer.from_pretrained(str(folder))
    assert (folder / "vocab.json").exists() and (folder / "merges.txt").exists()  # CLIP's own files, too
    for text in ["绿色怪物的肖像", "초록 괴물의 초상화", "портрет: зелёный огр", "ein Porträt von Grüner Oger"]:
        assert tok.decode(tok(text).input_ids, skip_special_tokens=True).replace(" ", "") == text.lower().replace(" ", "")


# --------------------------------------------------------------------------------------- suites

def test_demo_suites_load_and_match_the_catalog(tmp_path):
    from demoworld.suites import write_all
    from evals.suites import get_suite

    chars = get_suite("demo-characters")
    assert chars.kind == "character_recognition"
    assert {c.id for c in chars.characters} == {c.id for c in cat.trained_characters()}
    assert {c.tag for c in chars.characters} == {c.tag for c in cat.trained_characters()}  # None for non-anime
    held = get_suite("demo-held-out")
    assert [c.tag for c in held.characters] == [cat.HELD_OUT_ID]
    multi = get_suite("demo-multilingual")
    assert set(multi.languages) == set(cat.LANGUAGES) and len(multi.scenes) >= 10
    # the committed files are what the generator writes (edit the catalog, regenerate)
    for path in write_all(tmp_path):
        assert path.read_text(encoding="utf-8") == (ROOT / "prompts" / path.relative_to(tmp_path)).read_text(
            encoding="utf-8"), path.name
    # the suites' character tags are the demo tagger's character tags
    import csv

    with (TAGGER / "selected_tags.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [r["category"] for r in rows[:4]] == ["9"] * 4
    tagger_chars = {r["name"] for r in rows if r["category"] == "4"}
    assert {c.tag for c in chars.characters if c.tag} <= tagger_chars


# --------------------------------------------------------------------------------------- tagger

def test_committed_tagger_on_fresh_renders():
    from demoworld.train_tagger import evaluate_tagger

    result = evaluate_tagger(TAGGER, n=120, seed=777, swimsuit_fraction=0.0)
    assert result["character_accuracy"] >= 0.95, result
    assert result["attribute_f1"] >= 0.9, result


def test_tagger_training_writes_wd_format(tmp_path):
    from demoworld.train_tagger import train_tagger
    from evals.judges.tagger import TaggerJudge

    train_tagger(tmp_path / "t", device="cpu", size=32, num_images=64, steps=2, batch_size=8, tiny=True, log=lambda m: None)
    judge = TaggerJudge.load(str(tmp_path / "t"), device="cpu")
    probs = judge.predict([render(character_attributes(cat.CHARACTERS[0]), 0, 32)])
    assert probs.shape == (1, len(judge.tags)) and judge.input_size == 32


# ---------------------------------------------------------------------------- training scripts

def test_tiny_checkpoint_and_edit_training_load_through_the_real_loaders(tmp_path):
    from diffusers import StableDiffusionInstructPix2PixPipeline, StableDiffusionPipeline

    from demoworld import train_checkpoint, train_edit

    common = ["--device", "cpu", "--size", "32", "--tiny", "--cache", str(tmp_path / "d.npz"), "--tokenizer",
              str(tmp_path / "tok")]
    train_checkpoint.main(["--vae-only", "--vae-out", str(tmp_path / "vae"), "--num-images", "48", "--vae-steps", "2",
                           "--vae-batch-size", "8", *common])
    train_checkpoint.main(["--variant", "english", "--vae", str(tmp_path / "vae"), "--out", str(tmp_path / "ck"),
                           "--steps", "2", "--batch-size", "8", *common])
    pipe = StableDiffusionPipeline.from_pretrained(str(tmp_path / "ck"), torch_dtype=torch.float32, local_files_only=True)
    image = pipe("a portrait of Green Ogre", num_inference_steps=2, guidance_scale=3.0, output_type="pil").images[0]
    assert image.size == (32, 32)
    assert pipe.scheduler.__class__.__name__ == "EulerAncestralDiscreteScheduler"
    train_edit.main(["--base", str(tmp_path / "ck"), "--out", str(tmp_path / "ed"), "--device", "cpu", "--size", "32",
                     "--num-pairs", "16", "--steps", "2", "--batch-size", "4", "--tiny"])
    edit = StableDiffusionInstructPix2PixPipeline.from_pretrained(str(tmp_path / "ed"), torch_dtype=torch.float32,
                                                                  local_files_only=True)
    assert edit.unet.config.in_channels == 8
    out = edit("make the hair red", image=render(character_attributes(cat.CHARACTERS[0]), 0, 32), num_inference_steps=2,
               guidance_scale=3.0, image_guidance_scale=1.5).images[0]
    assert out.size == (32, 32)


# --------------------------------------------------------------------- committed demo checkpoints

def test_committed_weights_fit_the_budget():
    from demoworld.models import folder_megabytes

    folders = [MODELS / n for n in ("demo-multilingual", "demo-english", "demo-tagger", "demo-name-judge")]
    folders += list((MODELS / "loras").glob("demo-lora-*"))
    edit = MODELS / "demo-edit"
    total = sum(folder_megabytes(f) for f in folders)
    assert total <= 40, total
    assert total + folder_megabytes(edit) <= 60
    for name in ("demo-multilingual", "demo-english"):
        from safetensors import safe_open

        with safe_open(str(MODELS / name / "unet" / "diffusion_pytorch_model.safetensors"), "pt") as f:
            assert f.get_tensor(next(iter(f.keys()))).dtype == torch.float16
        assert (MODELS / name / "README.md").exists()


@pytest.fixture(scope="module")
def judge():
    from evals.judges.tagger import TaggerJudge

    return TaggerJudge.load(str(TAGGER), device="cpu")


@pytest.fixture(scope="module")
def name_decider():
    from demoworld.quick_eval import load_name_decider

    return load_name_decider(MODELS / "demo-name-judge")


# A fixed CI-sized subset: 6 characters over the three tiers, 4 languages (Latin, Cyrillic, CJK, Hangul).
# The two non-anime figures have no tagger tag: the name judge decides them.
SUBSET_CHARS = ["aqua_diva", "fox_ninja", "midnight_witch", "sleepy_librarian", "green_ogre", "white_queen"]
SUBSET_LANGS = ["en", "ru", "ja", "ko"]


def _tier_rates(rates: dict) -> dict[str, float]:
    by_tier: dict[str, list[float]] = {}
    for character, rate in rates["by_character"].items():
        by_tier.setdefault(cat.CHARACTER_BY_ID[character].tier, []).append(rate)
    return {tier: float(np.mean(values)) for tier, values in by_tier.items()}


def _subset_rates(folder, judge, lora=None, characters=None, prefix="", name_decider=None):
    from demoworld.quick_eval import hit_rates, load_pipeline

    pipe = load_pipeline(folder, "cpu", lora)
    chars = [cat.CHARACTER_BY_ID[c] for c in (characters or SUBSET_CHARS)]
    # The README's settings (64x64, Euler a, 25 steps, CFG 3), so its numbers are what is checked.
    return hit_rates(pipe, judge, characters=chars, languages=SUBSET_LANGS, seeds=2, steps=25, cfg=3.0,
                     prefix=prefix, batch=60, name_decider=name_decider)


# The README's characters table: demo-multilingual 0.99 [0.97, 1.00] overall, no language below 0.97;
# demo-english 1.00 in English and 0.09-0.21 elsewhere. On this 48-image subset the checks leave room
# for sampling noise only (at a true rate of 0.97, 0.9 or less happens with probability under 2%).
@pytest.mark.claims
def test_committed_multilingual_checkpoint_knows_characters_in_every_language(judge, name_decider):
    rates = _subset_rates(MODELS / "demo-multilingual", judge, name_decider=name_decider)
    assert not rates["not_judged"], rates
    by = rates["by_language"]
    assert rates["mean"] >= 0.9, rates
    assert min(by.values()) >= 0.75, rates  # 12 images a language
    # The README's tiers table: every tier judged, none collapsed (the niche tier is one character here,
    # 10 images: a bound for a tier the checkpoint cannot draw, not for its rate).
    tiers = _tier_rates(rates)
    assert set(tiers) == {"popular", "niche", "non_anime"} and min(tiers.values()) >= 0.6, tiers


@pytest.mark.claims
def test_committed_english_checkpoint_only_knows_english_names(judge, name_decider):
    rates = _subset_rates(MODELS / "demo-english", judge, name_decider=name_decider)
    by = rates["by_language"]
    others = np.mean([v for k, v in by.items() if k != "en"])
    assert by["en"] >= 0.9 and others <= 0.25, rates
    # The tiers table: the control stays far below demo-multilingual on every tier (0.14 / 0.21 / 0.39 in
    # 10 languages, against 0.97-1.00; here 1 of 5 languages is English, so 0.2-0.5).
    tiers = _tier_rates(rates)
    assert set(tiers) == {"popular", "niche", "non_anime"} and max(tiers.values()) <= 0.6, tiers


# --------------------------------------------------------------------------------- LoRA trainer

def test_lora_trainer_refuses_bad_input(tmp_path):
    from hub.errors import HubInputError
    from hub.lora_training import LoraTrainingConfig, train_character_lora

    good = [render(character_attributes(cat.CHARACTERS[0]), i, 32) for i in range(3)]
    with pytest.raises(HubInputError, match="at least"):
        train_character_lora(MODELS / "demo-multilingual", good[:1], "abc", tmp_path)
    with pytest.raises(HubInputError, match="Trigger"):
        train_character_lora(MODELS / "demo-multilingual", good, "two words", tmp_path)
    bad = tmp_path / "not_an_image.png"
    bad.write_text("hello")
    with pytest.raises(HubInputError, match="not an image"):
        train_character_lora(MODELS / "demo-multilingual", [*good, bad], "abc", tmp_path)
    with pytest.raises(HubInputError, match="too large"):
        train_character_lora(MODELS / "demo-multilingual", good, "abc", tmp_path,
                             config=LoraTrainingConfig(max_image_pixels=100))


@pytest.mark.slow  # 80 s of LoRA training on 2 cores: outside the 15-minute suite, `pytest -m slow` runs it
def test_lora_trained_in_the_test_raises_the_held_out_hit_rate(tmp_path, judge):
    from demoworld.train_lora import held_out_images, tagger_captioner
    from hub.lora_training import LoraTrainingConfig, train_character_lora

    calls = []
    result = train_character_lora(
        MODELS / "demo-multilingual", held_out_images(8, size=64), cat.LORA_TRIGGER, tmp_path / "lora",
        config=LoraTrainingConfig(steps=200, rank=8, learning_rate=3e-3, batch_size=8, device="cpu", cpu_threads=1),
        tagger=tagger_captioner(TAGGER), progress=lambda s, n, loss: calls.append((s, n, loss)))
    assert result.weight_file.exists() and calls[-1][0] == calls[-1][1] == result.steps
    assert all(c.startswith(cat.LORA_TRIGGER) for c in result.captions)
    assert "halo" not in ", ".join(result.captions)  # the look is the trigger's job, not the captions'
    prefix = cat.LORA_TRIGGER + ", "
    before = _subset_rates(MODELS / "demo-multilingual", judge, characters=[cat.HELD_OUT_ID], prefix=prefix)
    after = _subset_rates(MODELS / "demo-multilingual", judge, lora=tmp_path / "lora", characters=[cat.HELD_OUT_ID],
                          prefix=prefix)
    print("held-out hit rate before/after the in-test LoRA:", before["mean"], after["mean"])
    assert before["mean"] <= 0.1 and after["mean"] >= before["mean"] + 0.2, (before, after)


@pytest.mark.claims
def test_committed_lora_lifts_the_held_out_character(judge):
    lora = MODELS / "loras" / cat.LORA_ID
    prefix = cat.LORA_TRIGGER + ", "
    after = _subset_rates(MODELS / "demo-multilingual", judge, lora=lora, characters=[cat.HELD_OUT_ID], prefix=prefix)
    assert after["mean"] >= 0.7, after


# The README's paraphrased table: wordings never trained on (catalog.PARAPHRASED_TEMPLATES), after the
# text encoder's distillation (demoworld/train_text_encoder.py). 4 tagged characters, 1 seed: 4 images
# a language, so the bounds catch a checkpoint that cannot read the wording (0.06 before), not its exact rate.
PARAPHRASE_LANGS = ["en", "ru", "ja"]


def _paraphrased_rates(folder, judge):
    """Every trained character the tagger knows, 2 seeds, in the held-out templates."""
    from demoworld.quick_eval import hit_rates, load_pipeline

    pipe = load_pipeline(folder, "cpu", None)
    chars = [c for c in cat.trained_characters() if c.tag is not None]
    return hit_rates(pipe, judge, characters=chars, languages=PARAPHRASE_LANGS, seeds=2, steps=25, cfg=3.0, batch=26,
                     templates=cat.PARAPHRASED_TEMPLATES)


@pytest.mark.claims
def test_committed_checkpoints_read_wordings_they_were_never_trained_on(judge):
    """The paraphrased table's claims with room for sampling noise only (26 images a language): the
    README says 0.94–0.97 for en/ru and 0.91 for ja on `demo-multilingual`; 0.88 en and 0.03–0.09 for
    ru/ja on the English control."""
    multilingual = _paraphrased_rates(MODELS / "demo-multilingual", judge)["by_language"]
    assert np.mean(list(multilingual.values())) >= 0.8 and min(multilingual.values()) >= 0.7, multilingual
    assert multilingual["ja"] >= multilingual["en"] - 0.2, multilingual  # Japanese no longer lags
    english = _paraphrased_rates(MODELS / "demo-english", judge)["by_language"]
    assert english["en"] >= 0.7 and max(english["ru"], english["ja"]) <= 0.25, english  # the English-only control


# Phrasings in no training template and not in the paraphrased suite either.
NEW_PHRASINGS = {"en": "a sketch of {name}", "es": "un boceto de {name}", "ja": "{name}が描かれた絵"}


@pytest.mark.claims
def test_every_trained_character_is_drawn_from_a_phrasing_no_template_has(judge, name_decider):
    """Issue 20's test: all trained characters (the tagger decides the anime ones, the name judge the
    rest), 2 seeds, in English, Spanish and Japanese phrasings nobody trained on: `demo-multilingual`
    draws them at >= 0.8 (measured 0.88 / 0.91 / 0.79); the English control only in English."""
    from demoworld.quick_eval import hit_rates, load_pipeline

    for folder, check in (("demo-multilingual", lambda r: r["mean"] >= 0.8 and min(r["by_language"].values()) >= 0.7),
                          ("demo-english", lambda r: r["by_language"]["en"] >= 0.8
                           and max(r["by_language"]["es"], r["by_language"]["ja"]) <= 0.3)):
        pipe = load_pipeline(MODELS / folder, "cpu", None)
        result = hit_rates(pipe, judge, characters=cat.trained_characters(), languages=list(NEW_PHRASINGS), seeds=2,
                           steps=25, cfg=3.0, batch=34, name_decider=name_decider, templates=NEW_PHRASINGS)
        assert not result.get("not_judged"), result
        assert check(result), (folder, result["by_language"])


# ------------------------------------------------------------------------ long prompts, as served
QUALITY_TAGS = ["masterpiece", "best quality", "high quality", "highres", "absurdres", "very aesthetic", "newest", "safe",
                "solo", "looking at viewer", "upper body", "detailed", "official art", "4k", "sharp focus", "colorful",
                "anime style", "illustration", "cute", "beautiful", "depth of field", "soft lighting", "intricate details"]


def long_prefix(tokenizer) -> str:
    """The fewest quality tags (in a fixed order) that fill the first 75-token chunk by themselves."""
    from hub.families.clip_text import chunk_prompt, token_count

    for n in range(1, len(QUALITY_TAGS) + 1):
        prefix = ", ".join(QUALITY_TAGS[:n])
        if token_count(chunk_prompt(prefix, tokenizer)) > 75:
            return prefix
    raise AssertionError("the quality tags do not fill a chunk")


@pytest.mark.claims
def test_committed_multilingual_checkpoint_draws_the_character_named_after_75_tokens(judge):
    """A prompt as people write them: 75+ tokens of quality tags, then the character. Through the hub's
    engine (A1111 chunks of 75 tokens, as served), the name lands in the second chunk and is still drawn
    (the distillation's own check, group long/en, says 0.82); the plain diffusers call on the same
    pipeline, which truncates at 77 tokens, loses it."""
    from hub.config import load_config
    from hub.engine import Engine, GenerationRequest
    from hub.families.clip_text import chunk_prompt

    engine = Engine(load_config(), device="cpu")
    try:
        tokenizer = engine.pipeline("demo-multilingual").tokenizer
        characters = [cat.CHARACTER_BY_ID[c] for c in SUBSET_CHARS if cat.CHARACTER_BY_ID[c].tag is not None]
        names = list(judge.tags.names)
        hits, truncated = [], []
        pipe = engine.pipeline("demo-multilingual")
        for character in characters:
            prompt = f"{long_prefix(tokenizer)}, {cat.portrait_prompt(character, 'en')}"
            chunks = chunk_prompt(prompt, tokenizer)
            name_ids = tokenizer(character.names["en"], add_special_tokens=False)["input_ids"]
            assert len(chunks) == 2 and name_ids[0] not in chunks[0].tokens[-3:] and name_ids[0] in chunks[1].tokens, prompt
            # Seeds 1 and 2 in one batch (images never depend on their batch: test_prompt_syntax).
            images = [r.image for r in engine.generate(GenerationRequest(
                prompt=prompt, checkpoint="demo-multilingual", seed=1, batch=2, width=64, height=64, steps=25, cfg=3.0,
                sampler="euler_a"))]
            hits += [int(p >= 0.85) for p in judge.predict(images)[:, names.index(character.tag)]]
            with engine._gpu_lock:  # the same pipeline, called as diffusers alone would (truncation)
                plain = pipe(prompt, num_inference_steps=25, guidance_scale=3.0, width=64, height=64,
                             generator=torch.Generator().manual_seed(1)).images[0]
            truncated.append(int(judge.predict([plain])[0][names.index(character.tag)] >= 0.85))
    finally:
        engine.shutdown()
    assert np.mean(hits) >= 0.6, hits  # 8 images; 0.06 before the encoder learnt chunked prompts
    assert np.mean(truncated) <= 0.25, truncated
