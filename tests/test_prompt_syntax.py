"""A1111 prompt syntax end to end: the parser, LoRA tags, CLIP chunks and weights, samplers, clip skip, recipes.

Expected values come from AUTOMATIC1111's documented behaviour (its `parse_prompt_attention` docstring,
its chunking and "Original" emphasis rules) or are computed here by hand from the text encoders and the
raw diffusers pipelines, never from the code under test. Everything runs on tiny models on the CPU.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from hub.engine import EditRequest, GenerationRequest
from hub.engine.call import make_scheduler
from hub.engine.requests import job_settings
from hub.errors import EngineError, HubInputError
from hub.families import clip_text, get_family
from hub.prompt_syntax import PromptSyntaxError, check_weights, lora_tags, parse_attention, plain_text, split_lora_tags
from hub.recipe import Recipe, parse_a1111
from hub.samplers import SAMPLERS, sampler_from_name
from hub.validation import check_sampler
from tests.tiny_models import checkpoint_entry, save_random_lora, save_tiny_instruct_pix2pix, save_tiny_sdxl, tiny_engine

ROOT = Path(__file__).resolve().parent.parent
SD15, SDXL = get_family("sd15"), get_family("sdxl")


def pixels(item) -> np.ndarray:
    return np.asarray(item.image, dtype=np.int16)


def image_array(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


def assert_fragments(actual, expected) -> None:
    assert [part for part, _ in actual] == [part for part, _ in expected]
    assert [weight for _, weight in actual] == pytest.approx([weight for _, weight in expected], abs=1e-9)


# --- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sd15_pipe():
    """The committed demo model: SD 1.5 layout, 3-layer CLIP, a real BPE tokenizer."""
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(ROOT / "models" / "demo-multilingual", dtype=torch.float32, local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(scope="module")
def random_pipe():
    """The builtin random SD 1.5 pipeline, in memory (byte-level tokenizer: one token per character)."""
    from hub.builtin import build_random_sd_pipeline

    pipe = build_random_sd_pipeline(0)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(scope="module")
def byte_tokenizer(random_pipe):
    return random_pipe.tokenizer


@pytest.fixture(scope="module")
def sdxl_pipe(tmp_path_factory):
    from diffusers import StableDiffusionXLPipeline

    folder = save_tiny_sdxl(tmp_path_factory.mktemp("prompt-sdxl") / "tiny-sdxl")
    pipe = StableDiffusionXLPipeline.from_pretrained(folder, dtype=torch.float32, local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(scope="module")
def engine(tmp_path_factory, builtin_root):
    """The builtin `demo-random` (sd15) with a registered LoRA, a tiny SDXL and a tiny InstructPix2Pix."""
    from diffusers import StableDiffusionPipeline

    root = tmp_path_factory.mktemp("prompt-engine")
    base = StableDiffusionPipeline.from_pretrained(builtin_root / "demo-random", local_files_only=True)
    save_random_lora(base, root / "lora-a", seed=1)
    loras = [{"id": "char-a", "name": "A", "source": f"folder:{root / 'lora-a'}", "base_family": "sd15"}]
    checkpoints = [
        checkpoint_entry("tiny-sdxl", "sdxl", save_tiny_sdxl(root / "sdxl"), 5.0, "euler"),
        checkpoint_entry("tiny-ip2p", "instruct-pix2pix", save_tiny_instruct_pix2pix(root / "ip2p"), 4.0, "euler_a"),
    ]
    engine = tiny_engine(root, builtin_root, checkpoints, loras=loras)
    yield engine
    engine.shutdown()


def generate(engine, prompt: str, **kwargs):
    kwargs.setdefault("steps", 2)
    return engine.generate(GenerationRequest(prompt, **kwargs))[0]


# --- 1. the parser -----------------------------------------------------------------------------

A1111_DOCSTRING = [
    ("normal text", [("normal text", 1.0)]),
    ("an (important) word", [("an ", 1.0), ("important", 1.1), (" word", 1.0)]),
    ("(unbalanced", [("unbalanced", 1.1)]),
    (r"\(literal\]", [("(literal]", 1.0)]),
    ("(unnecessary)(parens)", [("unnecessaryparens", 1.1)]),
    ("a (((house:1.3)) [on] a (hill:0.5), sun, (((sky))).",
     [("a ", 1.0), ("house", 1.573), (" ", 1.1), ("on", 1.0), (" a ", 1.1), ("hill", 0.55), (", sun, ", 1.1),
      ("sky", 1.4641), (".", 1.1)]),
    ("a BREAK b", [("a", 1.0), ("BREAK", -1.0), ("b", 1.0)]),
]


@pytest.mark.parametrize("text, expected", A1111_DOCSTRING, ids=[text for text, _ in A1111_DOCSTRING])
def test_parse_attention_matches_a1111_docstring(text, expected):
    assert_fragments(parse_attention(text), expected)


MORE_CASES = [
    ("[[x]]", [("x", 1 / 1.21)]),
    ("a [b] c", [("a ", 1.0), ("b", 1 / 1.1), (" c", 1.0)]),
    ("back \\\\ slash", [("back \\ slash", 1.0)]),  # an escaped backslash is one literal backslash
    (r"\[x\]", [("[x]", 1.0)]),
    (r"ganyu \(genshin impact\), (smile:0.8)", [("ganyu (genshin impact), ", 1.0), ("smile", 0.8)]),
    ("a) b", [("a) b", 1.0)]),  # a stray closing bracket is literal
    ("a] b", [("a] b", 1.0)]),
    ("(x:1.2", [("x:1.2", 1.1)]),  # unclosed: the weight is text, the bracket still applies 1.1
    ("[x:1.2]", [("x:1.2", 1 / 1.1)]),  # a weight only closes a round bracket
    ("(x:abc)", [("x:abc", 1.1)]),
    ("((a:1.2) b)", [("a", 1.32), (" b", 1.1)]),
    ("(a:-0.5) b", [("a", -0.5), (" b", 1.0)]),
    ("( a : 1.3 )", [(" a ", 1.3)]),  # spaces around the weight
    ("", [("", 1.0)]),
    ("(a BREAK b)", [("a", 1.1), ("BREAK", -1.1), ("b", 1.1)]),  # A1111: inside brackets BREAK is a word
    ("BREAKfast break", [("BREAKfast break", 1.0)]),  # only the upper-case word of its own
    ("a BREAK BREAK b", [("a", 1.0), ("BREAK", -1.0), ("", 1.0), ("BREAK", -1.0), ("b", 1.0)]),
]


@pytest.mark.parametrize("text, expected", MORE_CASES, ids=[repr(text) for text, _ in MORE_CASES])
def test_parse_attention_more_cases(text, expected):
    assert_fragments(parse_attention(text), expected)


@pytest.mark.parametrize("text, expected", [
    ("(masterpiece:1.2), 1girl BREAK smile", "masterpiece, 1girl, smile"),
    ("a, BREAK, b", "a, b"),
    (r"ganyu \(genshin impact\), [[blurry]]", "ganyu (genshin impact), blurry"),
    ("plain words", "plain words"),
])
def test_plain_text_takes_the_syntax_out(text, expected):
    assert plain_text(text) == expected


def test_check_weights_range():
    check_weights(parse_attention("(a:4) (b:-2) [c] BREAK d"))  # the bounds and BREAK's -1 are fine
    for text in ("(x:5)", "(x:-2.5)", "(((x:4)))"):  # the effective weight counts: 4 * 1.1**3 > 4
        with pytest.raises(PromptSyntaxError, match="between -2 and 4"):
            check_weights(parse_attention(text))


# --- 2. LoRA tags ------------------------------------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    ("1girl, <lora:char-a:0.7>, smile", ("1girl, smile", (("char-a", 0.7),))),
    ("<lora:x> 1girl", ("1girl", (("x", 1.0),))),
    ("1girl, <lyco:y:0.5>", ("1girl", (("y", 0.5),))),
    ("a <lora:x:0.5:te=1> b <lora:z:-1>", ("a b", (("x", 0.5), ("z", -1.0)))),
    ("a,  b ,", ("a,  b ,", ())),  # no tags: the text is left exactly as written
])
def test_split_lora_tags(text, expected):
    assert split_lora_tags(text) == expected


def test_split_lora_tags_refusals():
    with pytest.raises(PromptSyntaxError, match="hypernet"):
        split_lora_tags("1girl <hypernet:x:1>")
    with pytest.raises(PromptSyntaxError, match="number"):
        split_lora_tags("1girl <lora:x:strong>")


def test_lora_tags_round_trip():
    loras = (("char-a", 0.8), ("style", 1.0))
    assert lora_tags(loras) == "<lora:char-a:0.8> <lora:style:1>"
    assert split_lora_tags("1girl " + lora_tags(loras)) == ("1girl", loras)


def test_lora_tag_in_the_prompt_through_the_engine(engine):
    job = engine.resolve_generation(GenerationRequest("1girl, <lora:char-a:0.7>, smile"))
    assert job.loras == (("char-a", 0.7),)
    assert job.prompt == "1girl, smile" and "lora" not in job.prompt
    # The tag draws what the LoRA list draws, and not what no LoRA draws.
    tagged = pixels(generate(engine, "aaa <lora:char-a:0.7>", seed=5))
    listed = pixels(generate(engine, "aaa", seed=5, loras=(("char-a", 0.7),)))
    without = pixels(generate(engine, "aaa", seed=5))
    assert np.array_equal(tagged, listed)
    assert not np.array_equal(tagged, without)


@pytest.mark.parametrize("request_kwargs, message", [
    ({"prompt": "1girl <lora:nope:1>"}, "nope"),
    ({"prompt": "a (x:5) b"}, "between -2 and 4"),
    ({"prompt": "a", "negative_prompt": "(x:-3)"}, "between -2 and 4"),
    ({"prompt": "a", "negative_prompt": "lowres <lora:char-a:1>"}, "negative prompt"),
    ({"prompt": "<lora:char-a:1>"}, "empty"),
    ({"prompt": "a <hypernet:h:1>"}, "only <lora"),
    ({"prompt": "a", "clip_skip": 0}, "Clip skip"),
    ({"prompt": "a", "clip_skip": 13}, "Clip skip"),
])
def test_prompt_syntax_refusals(engine, request_kwargs, message):
    with pytest.raises(HubInputError, match=message):
        engine.resolve_generation(GenerationRequest(**request_kwargs))


@pytest.mark.parametrize("prompt", ["(a:1.2.3) b", "(a:.) b"])
def test_malformed_weight_is_refused_as_input(engine, prompt):
    with pytest.raises(HubInputError, match="is not a weight"):
        engine.resolve_generation(GenerationRequest(prompt))


# --- 3. short plain prompts: exactly diffusers' encoding ----------------------------------------


def test_sd15_short_prompt_equals_diffusers(sd15_pipe):
    with torch.no_grad():
        ours = clip_text.encode("1girl, solo, smiling", SD15.encoders(sd15_pipe, 1))
        empty = clip_text.encode("", SD15.encoders(sd15_pipe, 1))
        theirs, negative = sd15_pipe.encode_prompt("1girl, solo, smiling", "cpu", 1, True, negative_prompt="")
    assert (ours.chunks, ours.tokens) == (1, len(sd15_pipe.tokenizer.tokenize("1girl, solo, smiling")))
    assert ours.states.shape == theirs.shape == (1, 77, 128)
    assert torch.equal(ours.states, theirs)
    assert torch.equal(empty.states, negative)


def test_sd15_clip_skip_by_hand(sd15_pipe):
    tokenizer, encoder = sd15_pipe.tokenizer, sd15_pipe.text_encoder
    ids = tokenizer("1girl, solo", padding="max_length", max_length=77, return_tensors="pt").input_ids
    with torch.no_grad():
        hidden = encoder(ids, output_hidden_states=True).hidden_states
        for skip in (2, 3):
            expected = encoder.final_layer_norm(hidden[-skip])
            ours = clip_text.encode("1girl, solo", SD15.encoders(sd15_pipe, skip))
            assert (ours.states - expected).abs().max().item() == 0
        last = clip_text.encode("1girl, solo", SD15.encoders(sd15_pipe, 1)).states
    assert not torch.allclose(last, encoder.final_layer_norm(hidden[-2]))
    with pytest.raises(ValueError, match="3 text encoder layers"):
        SD15.encoders(sd15_pipe, 4)


def test_sdxl_short_prompt_equals_diffusers(sdxl_pipe):
    with torch.no_grad():
        ours = clip_text.encode("1girl, solo", SDXL.encoders(sdxl_pipe, 2))
        empty = clip_text.encode("", SDXL.encoders(sdxl_pipe, 2))
        states, negative, pooled, negative_pooled = sdxl_pipe.encode_prompt(
            "1girl, solo", device="cpu", num_images_per_prompt=1, do_classifier_free_guidance=True, negative_prompt="")
    assert ours.states.shape == states.shape == (1, 77, 64)
    assert torch.equal(ours.states, states) and torch.equal(ours.pooled, pooled)
    assert torch.equal(empty.states, negative) and torch.equal(empty.pooled, negative_pooled)


def test_sdxl_clip_skip_1_encodes(sdxl_pipe):
    with torch.no_grad():
        ours = clip_text.encode("1girl, solo", SDXL.encoders(sdxl_pipe, 1))
        default = clip_text.encode("1girl, solo", SDXL.encoders(sdxl_pipe, 2))
    assert ours.states.shape == (1, 77, 64)
    assert not torch.equal(ours.states, default.states)


def test_sdxl_clip_skip_1_generates(engine):
    assert generate(engine, "1girl", checkpoint="tiny-sdxl", clip_skip=1).image.size == (64, 64)


# --- 4. weights, computed by hand ----------------------------------------------------------------


def _hand_weighted(z: torch.Tensor, positions: list[int], weight: float) -> torch.Tensor:
    """A1111 "Original" emphasis: multiply the tokens' states, then restore the chunk's mean."""
    scaled = z.clone()
    scaled[:, positions] *= weight
    return scaled * (z.mean() / scaled.mean())


def _sd15_chunk(pipe, text: str) -> torch.Tensor:
    ids = pipe.tokenizer(text, padding="max_length", max_length=77, return_tensors="pt").input_ids
    return pipe.text_encoder(ids)[0]


def test_weights_by_hand_sd15(sd15_pipe):
    tokenizer = sd15_pipe.tokenizer
    ogre = len(tokenizer("ogre", add_special_tokens=False).input_ids)
    with torch.no_grad():
        z = _sd15_chunk(sd15_pipe, "ogre smiling")
        weighted = clip_text.encode("(ogre:1.5) smiling", SD15.encoders(sd15_pipe, 1)).states
        unit = clip_text.encode("(ogre:1) smiling", SD15.encoders(sd15_pipe, 1)).states
        plain = clip_text.encode("ogre smiling", SD15.encoders(sd15_pipe, 1)).states
    expected = _hand_weighted(z, list(range(1, 1 + ogre)), 1.5)  # position 0 is BOS
    assert torch.allclose(weighted, expected, atol=1e-6)
    assert not torch.allclose(weighted, z, atol=1e-3)
    assert torch.allclose(weighted.mean(), z.mean(), atol=1e-6)
    assert torch.equal(unit, plain) and torch.equal(plain, z)


def test_weights_by_hand_sdxl(sdxl_pipe):
    """Both encoders get the weights; each restores its own mean; SDXL reads the penultimate layer raw."""
    parts = []
    with torch.no_grad():
        for tokenizer, encoder in ((sdxl_pipe.tokenizer, sdxl_pipe.text_encoder), (sdxl_pipe.tokenizer_2, sdxl_pipe.text_encoder_2)):
            ids = tokenizer("ogre smiling", padding="max_length", max_length=77, return_tensors="pt").input_ids
            z = encoder(ids, output_hidden_states=True).hidden_states[-2]
            ogre = len(tokenizer("ogre", add_special_tokens=False).input_ids)
            parts.append(_hand_weighted(z, list(range(1, 1 + ogre)), 0.5))
        ours = clip_text.encode("(ogre:0.5) smiling", SDXL.encoders(sdxl_pipe, 2))
        _, _, pooled, _ = sdxl_pipe.encode_prompt("ogre smiling", device="cpu", num_images_per_prompt=1,
                                                  do_classifier_free_guidance=False)
    assert torch.allclose(ours.states, torch.cat(parts, dim=-1), atol=1e-6)
    assert torch.equal(ours.pooled, pooled)  # the pooled embedding is not weighted


def test_weights_rescale_each_chunk_by_its_own_mean(sd15_pipe):
    assert sd15_pipe.tokenizer.tokenize("cat") == ["cat</w>"]
    with torch.no_grad():
        ours = clip_text.encode("cat " * 75 + "(ogre:1.5) smiling", SD15.encoders(sd15_pipe, 1))
        first = _sd15_chunk(sd15_pipe, "cat " * 75)
        z = _sd15_chunk(sd15_pipe, "ogre smiling")
    assert ours.chunks == 2 and ours.states.shape == (1, 154, 128)
    assert torch.equal(ours.states[:, :77], first)
    assert torch.allclose(ours.states[:, 77:], _hand_weighted(z, [1], 1.5), atol=1e-6)


# --- 5. long prompts, BREAK, comma backtracking, padding ---------------------------------------


def test_long_prompt_gives_two_chunks(sd15_pipe):
    with torch.no_grad():
        ours = clip_text.encode("cat " * 80, SD15.encoders(sd15_pipe, 1))
        first = _sd15_chunk(sd15_pipe, "cat " * 75)
        second = _sd15_chunk(sd15_pipe, "cat " * 5)
    assert (ours.chunks, ours.tokens) == (2, 80)
    assert ours.states.shape == (1, 154, 128)
    assert torch.equal(ours.states[:, :77], first) and torch.equal(ours.states[:, 77:], second)


def test_break_starts_a_new_chunk(sd15_pipe):
    with torch.no_grad():
        ours = clip_text.encode("red hat BREAK blue sky", SD15.encoders(sd15_pipe, 1))
        first, second = _sd15_chunk(sd15_pipe, "red hat"), _sd15_chunk(sd15_pipe, "blue sky")
        joined = clip_text.encode("red hat blue sky", SD15.encoders(sd15_pipe, 1))
    assert ours.chunks == 2 and ours.states.shape == (1, 154, 128)
    assert torch.equal(ours.states[:, :77], first) and torch.equal(ours.states[:, 77:], second)
    assert joined.chunks == 1


def test_comma_backtracking_moves_a_straddling_tag(sd15_pipe):
    tokenizer = sd15_pipe.tokenizer
    ids = lambda text: tuple(tokenizer(text, add_special_tokens=False).input_ids)  # noqa: E731
    comma, tag = ids(",")[0], ids("red hat smile")
    assert len(ids("cat, " * 37)) == 74 and len(tag) == 3
    # 74 tokens of "cat," then a 3-token tag: without backtracking it would be cut after "red".
    chunks = clip_text.chunk_prompt("cat, " * 37 + "red hat smile", tokenizer)
    assert [len(chunk.tokens) for chunk in chunks] == [74, 3]
    assert chunks[0].tokens[-1] == comma and chunks[1].tokens == tag
    with torch.no_grad():
        encoded = clip_text.encode("cat, " * 37 + "red hat smile", SD15.encoders(sd15_pipe, 1))
        assert torch.equal(encoded.states[:, 77:], _sd15_chunk(sd15_pipe, "red hat smile"))


@pytest.mark.parametrize("before, moved", [(55, True), (54, False)])
def test_comma_backtracking_looks_back_20_tokens(byte_tokenizer, before, moved):
    """Byte-level tokens: a comma `before` tokens in, then a 25-token tag that crosses position 75.
    A1111 moves the tag when the comma is at most 20 tokens before the chunk's end."""
    vocab = byte_tokenizer.get_vocab()
    tag = "bcdefghijklmnopqrstuvwxyz"
    tag_ids = tuple(byte_tokenizer(tag, add_special_tokens=False).input_ids)
    a, comma = vocab["a</w>"], vocab[",</w>"]
    assert len(tag_ids) == 25
    chunks = clip_text.chunk_prompt(" ".join(["a"] * before) + ", " + tag, byte_tokenizer)
    if moved:
        assert chunks[0].tokens == (a,) * before + (comma,) and chunks[1].tokens == tag_ids
    else:
        assert chunks[0].tokens == (a,) * before + (comma,) + tag_ids[:20] and chunks[1].tokens == tag_ids[20:]


class RecordingPipe:
    """A real pipeline whose calls are recorded (the embeddings ClipFamily.run passes)."""

    def __init__(self, pipe):
        self._pipe, self.calls = pipe, []

    def __getattr__(self, name):
        return getattr(self._pipe, name)

    def __call__(self, **kwargs):
        self.calls.append(kwargs)
        return self._pipe(**kwargs)


def _run(pipe, prompts, negatives, seeds):
    recorder = RecordingPipe(pipe)
    kwargs = {"prompt": prompts, "negative_prompt": negatives, "num_inference_steps": 2, "guidance_scale": 5.0,
              "width": 64, "height": 64, "generator": [torch.Generator("cpu").manual_seed(s) for s in seeds],
              "clip_skip": 1}
    with torch.inference_mode():
        images = SD15.run(recorder, kwargs)
    return images, recorder.calls


LONG = "x, " * 45 + "red hat"  # byte-level tokens: 92


def test_negative_prompt_is_padded_to_the_prompt(random_pipe):
    images, calls = _run(random_pipe, [LONG], [""], [1])
    assert len(images) == 1 and images[0].size == (64, 64)
    (call,) = calls
    assert call["prompt_embeds"].shape == call["negative_prompt_embeds"].shape == (1, 154, 32)
    negative = call["negative_prompt_embeds"]
    assert torch.equal(negative[:, :77], negative[:, 77:])  # the empty prompt, twice
    # And the other way round: a short prompt padded to a long negative prompt.
    _, calls = _run(random_pipe, ["1girl"], [LONG], [1])
    prompt = calls[0]["prompt_embeds"]
    assert prompt.shape == calls[0]["negative_prompt_embeds"].shape == (1, 154, 32)
    assert torch.equal(prompt[:, 77:], negative[:, :77])


def test_run_groups_prompts_by_chunk_count(random_pipe):
    mixed, calls = _run(random_pipe, [LONG, "1girl", LONG + " again"], ["", "", ""], [1, 2, 3])
    assert sorted(call["prompt_embeds"].shape[:2] for call in calls) == [(1, 77), (2, 154)]
    alone, _ = _run(random_pipe, ["1girl"], [""], [2])
    assert np.array_equal(image_array(mixed[1]), image_array(alone[0]))
    # Padding the short prompt to the long one's length would change its image: the grouping matters.
    with torch.inference_mode():
        encoders = SD15.encoders(random_pipe, 1)
        short, empty = clip_text.encode("1girl", encoders), clip_text.encode("", encoders)
        padded = random_pipe(prompt_embeds=clip_text.pad_to(short, 2, empty), negative_prompt_embeds=clip_text.pad_to(empty, 2, empty),
                             num_inference_steps=2, guidance_scale=5.0, width=64, height=64,
                             generator=[torch.Generator("cpu").manual_seed(2)]).images[0]
    assert not np.array_equal(image_array(padded), image_array(alone[0]))


# --- 6. the second chunk matters end to end -----------------------------------------------------


def test_second_chunk_changes_the_image_where_diffusers_truncates(engine):
    filler = "x, " * 45  # 90 byte-level tokens
    first, second = filler + "red hat", filler + "blue cap"
    ours_a = pixels(generate(engine, first, seed=3, steps=3))
    ours_b = pixels(generate(engine, second, seed=3, steps=3))
    assert not np.array_equal(ours_a, ours_b)
    pipe = engine.pipeline("demo-random")

    def raw(prompt: str) -> np.ndarray:
        with torch.inference_mode():
            image = pipe(prompt=[prompt], negative_prompt=[""], num_inference_steps=3, guidance_scale=5.0, width=64, height=64,
                         generator=[torch.Generator("cpu").manual_seed(3)]).images[0]
        return image_array(image)

    raw_a, raw_b = raw(first), raw(second)
    assert np.array_equal(raw_a, raw_b)  # diffusers cut both at 77 tokens
    assert not np.array_equal(raw_a, raw("y, " + first))  # (it does read the first chunk)


# --- 7. a mixed batch ---------------------------------------------------------------------------


@pytest.mark.parametrize("sampler", ["euler_a", "dpmpp_sde"])
def test_mixed_batch_short_prompt_draws_as_alone(engine, sampler):
    long_prompt, short_prompt = "x, " * 45 + "red hat", "1girl, smile"
    alone_short = pixels(generate(engine, short_prompt, seed=6, sampler=sampler))
    alone_long = pixels(generate(engine, long_prompt, seed=5, sampler=sampler))
    before = engine.stats["pipeline_calls"]
    together = engine.generate_many([GenerationRequest(long_prompt, seed=5, steps=2, sampler=sampler),
                                     GenerationRequest(short_prompt, seed=6, steps=2, sampler=sampler)])
    assert engine.stats["pipeline_calls"] - before == 1  # one engine call, split by chunk count inside
    assert np.array_equal(pixels(together[1][0]), alone_short)
    assert np.array_equal(pixels(together[0][0]), alone_long)


def test_dpmpp_sde_batch_seeds_each_image(engine):
    """DPM++ SDE draws Brownian noise outside the generators: each image of a batch gets its own seed,
    so the second image of a batch is the next seed's image alone."""
    batch = engine.generate(GenerationRequest("1girl", seed=10, batch=2, steps=2, sampler="dpmpp_sde"))
    alone = generate(engine, "1girl", seed=11, sampler="dpmpp_sde")
    assert [item.seed for item in batch] == [10, 11]
    assert np.abs(pixels(batch[1]) - pixels(alone)).max() <= 2  # batched numerics agree closely


# --- 8. samplers --------------------------------------------------------------------------------


@pytest.mark.parametrize("sampler", [key for key in SAMPLERS if key != "default"])
def test_every_sampler_runs_and_is_deterministic(engine, sampler):
    first = generate(engine, "1girl", seed=1, sampler=sampler)
    again = generate(engine, "1girl", seed=1, sampler=sampler)
    other = generate(engine, "1girl", seed=2, sampler=sampler)
    assert first.recipe.sampler == sampler and first.image.size == (64, 64)
    assert pixels(first).std() > 0
    assert np.array_equal(pixels(first), pixels(again))
    assert not np.array_equal(pixels(first), pixels(other))


def test_samplers_differ_from_each_other(engine):
    images = {key: pixels(generate(engine, "1girl", seed=1, sampler=key, steps=3))
              for key in ("euler_a", "euler", "euler_karras", "dpmpp_2m", "dpmpp_2m_karras", "dpmpp_2m_sde")}
    keys = list(images)
    for i, a in enumerate(keys):
        for b in keys[i + 1:]:
            assert not np.array_equal(images[a], images[b]), (a, b)


def test_make_scheduler_keeps_the_checkpoint_config(engine):
    base = engine.pipeline("demo-random").scheduler
    karras = make_scheduler("dpmpp_2m_sde_karras", base)
    assert type(karras).__name__ == "DPMSolverMultistepScheduler"
    assert karras.config.use_karras_sigmas and karras.config.algorithm_type == "sde-dpmsolver++"
    assert karras.config.beta_schedule == base.config.beta_schedule == "scaled_linear"
    assert karras.config.beta_end == base.config.beta_end
    assert make_scheduler("dpmpp_sde", base, [4, 5]).noise_sampler_seed == [4, 5]
    default = make_scheduler("default", base)
    assert type(default) is type(base) and default is not base


@pytest.mark.parametrize("name, schedule, expected", [
    ("DPM++ 2M Karras", "", "dpmpp_2m_karras"),
    ("DPM++ 2M", "Karras", "dpmpp_2m_karras"),
    ("DPM++ 2M SDE", "Karras", "dpmpp_2m_sde_karras"),
    ("DPM++ 2M", "Automatic", "dpmpp_2m"),
    ("Euler", "Exponential", "euler_exponential"),
    ("Euler a", "", "euler_a"),
    ("euler_ancestral", "", "euler_a"),  # ComfyUI
    ("dpmpp_2m", "karras", "dpmpp_2m_karras"),  # ComfyUI sampler + scheduler
    ("k_euler_ancestral", "", "euler_a"),  # NovelAI
    ("dpmpp_2m_sde_karras", "", "dpmpp_2m_sde_karras"),  # our own id
    ("Restart", "", None),
    ("Euler a", "Karras", None),
])
def test_sampler_from_name(name, schedule, expected):
    assert sampler_from_name(name, schedule) == expected


def test_api_accepts_a1111_sampler_names(engine):
    assert check_sampler("DPM++ 2M Karras") == "dpmpp_2m_karras"
    job = engine.resolve_generation(GenerationRequest("1girl", sampler="DPM++ 2M SDE Karras"))
    assert job.sampler == "dpmpp_2m_sde_karras"
    by_label = generate(engine, "1girl", seed=4, sampler="Euler a")
    by_id = generate(engine, "1girl", seed=4, sampler="euler_a")
    assert by_label.recipe.sampler == "euler_a" and np.array_equal(pixels(by_label), pixels(by_id))
    with pytest.raises(HubInputError, match="sampler"):
        engine.resolve_generation(GenerationRequest("1girl", sampler="Restart"))


# --- 9. clip skip -------------------------------------------------------------------------------


def test_clip_skip_changes_the_sd15_image(engine):
    default = generate(engine, "1girl, smile", seed=2)
    one = generate(engine, "1girl, smile", seed=2, clip_skip=1)
    two = generate(engine, "1girl, smile", seed=2, clip_skip=2)
    assert np.array_equal(pixels(default), pixels(one))  # sd15's default is 1
    assert not np.array_equal(pixels(one), pixels(two))
    assert default.recipe.clip_skip is None and one.recipe.clip_skip is None and two.recipe.clip_skip == 2
    assert "Clip skip: 2" in two.recipe.to_a1111() and "Clip skip" not in one.recipe.to_a1111()
    assert "clip_skip" not in job_settings(engine.resolve_generation(GenerationRequest("a", clip_skip=1)))
    assert job_settings(engine.resolve_generation(GenerationRequest("a", clip_skip=2)))["clip_skip"] == 2


def test_clip_skip_past_the_encoder_fails_the_call(engine):
    with pytest.raises(EngineError, match="2 text encoder layers"):
        generate(engine, "a", clip_skip=3)  # demo-random's CLIP has 2 layers
    assert generate(engine, "still fine").image.size == (64, 64)


def test_sdxl_default_clip_skip_is_2(engine):
    job = engine.resolve_generation(GenerationRequest("a", checkpoint="tiny-sdxl"))
    assert job.clip_skip == 2
    item = generate(engine, "1girl", checkpoint="tiny-sdxl", seed=1)
    again = generate(engine, "1girl", checkpoint="tiny-sdxl", seed=1, clip_skip=2)
    assert item.recipe.clip_skip is None and np.array_equal(pixels(item), pixels(again))


def test_clip_skip_refused_where_the_family_takes_none(engine):
    source = Image.new("RGB", (64, 64), "white")
    with pytest.raises(HubInputError, match="does not take clip skip"):
        engine.resolve_edit(EditRequest(image=source, prompt="make it red", checkpoint="tiny-ip2p", clip_skip=2))
    assert engine.resolve_edit(EditRequest(image=source, prompt="make it red", checkpoint="tiny-ip2p")).clip_skip is None


def test_family_without_weights_gets_plain_text(engine):
    """InstructPix2Pix takes no weights: the syntax is taken out, the image is the plain prompt's."""
    source = Image.new("RGB", (64, 64), (40, 200, 200))
    weighted = engine.edit(EditRequest(image=source, prompt="(make the hair red:1.3)", checkpoint="tiny-ip2p", seed=3, steps=2))[0]
    plain = engine.edit(EditRequest(image=source, prompt="make the hair red", checkpoint="tiny-ip2p", seed=3, steps=2))[0]
    assert np.array_equal(pixels(weighted), pixels(plain))
    assert weighted.recipe.extra.get("prompt_syntax") == "stripped"
    assert "prompt_syntax" not in plain.recipe.extra


# --- 10. recipes --------------------------------------------------------------------------------


def test_recipe_a1111_round_trip():
    recipe = Recipe(
        prompt="(masterpiece:1.2), 1girl, [smile]", negative_prompt="lowres, (bad hands:1.3)", steps=28,
        sampler="dpmpp_2m_karras", cfg=6.5, seed=1234, width=832, height=1216, model="demo-random",
        model_hash="abcdef1234", loras=(("char-a", 0.8), ("style-b", 0.5)),
        lora_hashes=(("char-a", "0123456789"), ("style-b", "9876543210")), clip_skip=2,
    )
    text = recipe.to_a1111()
    first_line = text.split("\n")[0]
    assert "<lora:char-a:0.8>" in first_line and "<lora:style-b:0.5>" in first_line
    assert "Sampler: DPM++ 2M, Schedule type: Karras" in text and "Clip skip: 2" in text
    assert parse_a1111(text) == recipe


@pytest.mark.parametrize("sampler_text", ["Sampler: DPM++ 2M, Schedule type: Karras", "Sampler: DPM++ 2M Karras"])
def test_parse_a1111_modern_and_old_samplers(sampler_text):
    text = ("1girl, smile <lora:char-a:0.7>\nNegative prompt: lowres\n"
            f"Steps: 20, {sampler_text}, CFG scale: 7, Seed: 1, Size: 512x768, Clip skip: 2")
    recipe = parse_a1111(text)
    assert recipe.sampler == "dpmpp_2m_karras"
    assert (recipe.prompt, recipe.loras, recipe.clip_skip) == ("1girl, smile", (("char-a", 0.7),), 2)
    assert (recipe.steps, recipe.width, recipe.height, recipe.negative_prompt) == (20, 512, 768, "lowres")


def test_engine_recipes_record_syntax_and_reproduce(engine):
    plain = generate(engine, "1girl, smile", seed=9)
    assert plain.recipe.clip_skip is None and "prompt_syntax" not in plain.recipe.extra
    item = generate(engine, "(aaa:1.2), [smile] <lora:char-a:0.7>", seed=9, clip_skip=2, sampler="DPM++ 2M Karras")
    recipe = item.recipe
    assert recipe.extra["prompt_syntax"] == "weighted"
    assert (recipe.prompt, recipe.loras, recipe.clip_skip, recipe.sampler) == ("(aaa:1.2), [smile]", (("char-a", 0.7),), 2, "dpmpp_2m_karras")
    text = recipe.to_a1111()
    assert "<lora:char-a:0.7>" in text and "Schedule type: Karras" in text
    back = parse_a1111(text)
    again = engine.generate(GenerationRequest(back.prompt, negative_prompt=back.negative_prompt, loras=back.loras, steps=back.steps,
                                              cfg=back.cfg, sampler=back.sampler, seed=back.seed, width=back.width,
                                              height=back.height, clip_skip=back.clip_skip))[0]
    assert np.array_equal(pixels(item), pixels(again))
