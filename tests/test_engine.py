"""The shared engine on tiny real diffusers pipelines: tasks, sharing, LoRAs, batching, failures."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch
from PIL import Image

from hub.config import load_config
from hub.engine import INTERACTIVE, EditRequest, Engine, GenerationRequest
from hub.errors import EngineError, HubInputError
from tests.conftest import write_config
from tests.tiny_models import save_random_lora, save_tiny_sdxl


def pixels(item) -> np.ndarray:
    return np.asarray(item.image, dtype=np.int16)


@pytest.fixture
def engine(hub_config_path):
    engine = Engine(load_config(hub_config_path), device="cpu")
    yield engine
    engine.shutdown()


@pytest.fixture
def lora_engine(tmp_path, builtin_root):
    """An engine whose config registers two LoRAs for sd15 and one for sdxl."""
    from diffusers import StableDiffusionPipeline

    base = StableDiffusionPipeline.from_pretrained(builtin_root / "demo-random", local_files_only=True)
    save_random_lora(base, tmp_path / "lora-a", seed=1)
    save_random_lora(base, tmp_path / "lora-b", seed=2)
    data = tmp_path / "data"
    data.mkdir()
    (data / "builtin").symlink_to(builtin_root, target_is_directory=True)
    loras = [
        {"id": "char-a", "name": "A", "source": f"folder:{tmp_path / 'lora-a'}", "base_family": "sd15", "trigger_words": ["aaa"]},
        {"id": "char-b", "name": "B", "source": f"folder:{tmp_path / 'lora-b'}", "base_family": "sd15"},
        {"id": "xl-only", "name": "XL", "source": f"folder:{tmp_path / 'lora-a'}", "base_family": "sdxl"},
    ]
    engine = Engine(load_config(write_config(tmp_path, loras=loras)), device="cpu")
    yield engine
    engine.shutdown()


def test_same_seed_same_pixels_and_recipe(engine):
    first = engine.generate(GenerationRequest("1girl, solo", seed=7))
    again = engine.generate(GenerationRequest("1girl, solo", seed=7))
    other = engine.generate(GenerationRequest("1girl, solo", seed=8))
    assert np.array_equal(pixels(first[0]), pixels(again[0]))
    assert not np.array_equal(pixels(first[0]), pixels(other[0]))
    recipe = first[0].recipe
    assert (recipe.model, recipe.seed, recipe.width, recipe.height, recipe.steps) == ("demo-random", 7, 64, 64, 3)
    assert recipe.model_hash == engine.checkpoint_version("demo-random")[:10]


def test_batch_count_gives_consecutive_seeds(engine):
    images = engine.generate(GenerationRequest("a cat", seed=10, batch=3))
    assert [item.seed for item in images] == [10, 11, 12]
    single = engine.generate(GenerationRequest("a cat", seed=11))
    # The second image of the batch is the seed-11 image (batched numerics agree closely).
    assert np.abs(pixels(images[1]) - pixels(single[0])).max() <= 2


def test_derived_pipelines_share_weights(engine):
    text2img = engine.pipeline("demo-random", "text2img")
    img2img = engine.pipeline("demo-random", "img2img")
    inpaint = engine.pipeline("demo-random", "inpaint")
    assert type(img2img).__name__ == "StableDiffusionImg2ImgPipeline"
    assert type(inpaint).__name__ == "StableDiffusionInpaintPipeline"
    for name in ("unet", "vae", "text_encoder"):
        base_params = {p.data_ptr() for p in getattr(text2img, name).parameters()}
        for derived in (img2img, inpaint):
            assert getattr(derived, name) is getattr(text2img, name)
            assert {p.data_ptr() for p in getattr(derived, name).parameters()} == base_params
    assert engine.stats["checkpoint_loads"] == 1


def test_img2img_and_inpaint(engine):
    source = engine.generate(GenerationRequest("a house", seed=1))[0].image
    edited = engine.edit(EditRequest(image=source, prompt="a red house", strength=0.5, seed=3))
    assert edited[0].recipe.task == "img2img" and edited[0].image.size == source.size
    mask = Image.new("L", source.size, 0)
    mask.paste(255, (16, 16, 48, 48))
    inpainted = engine.edit(EditRequest(image=source, prompt="a window", mask=mask, strength=1.0, seed=3))
    assert inpainted[0].recipe.task == "inpaint"
    assert inpainted[0].image.size == source.size
    assert engine.stats["checkpoint_loads"] == 1


def test_progress_reports_every_step(engine):
    seen: list[tuple[int, int]] = []
    engine.generate(GenerationRequest("progress", steps=4), progress=lambda step, total: seen.append((step, total)))
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)]


def test_compatible_concurrent_requests_are_batched(engine):
    engine.generate(GenerationRequest("warm up"))
    alone = {seed: pixels(engine.generate(GenerationRequest(f"prompt {seed}", seed=seed))[0]) for seed in range(4)}
    calls_before = engine.stats["pipeline_calls"]
    results: dict[int, np.ndarray] = {}
    # The device is held by an exclusive job until all 4 requests are queued, so the batch they form
    # does not depend on their arriving within the batching window (no timing in the test).
    held, release = threading.Event(), threading.Event()
    holder = threading.Thread(target=engine.run_exclusive, args=(lambda: (held.set(), release.wait(60)),))
    holder.start()
    assert held.wait(60)

    def client(seed: int) -> None:
        results[seed] = pixels(engine.generate(GenerationRequest(f"prompt {seed}", seed=seed))[0])

    threads = [threading.Thread(target=client, args=(seed,)) for seed in range(4)]
    for thread in threads:
        thread.start()
    while engine.queue.pending()[INTERACTIVE] < 4:
        time.sleep(0.01)
    release.set()
    for thread in (holder, *threads):
        thread.join()
    assert engine.stats["pipeline_calls"] - calls_before == 1  # the 4 compatible requests: one call
    for seed in range(4):
        assert np.abs(results[seed] - alone[seed]).max() <= 2  # same images as one at a time


def test_generate_many_batches_only_compatible_requests(engine):
    before = engine.stats["pipeline_calls"]
    requests = [GenerationRequest("a", seed=1), GenerationRequest("b", seed=2), GenerationRequest("c", seed=3, width=72)]
    out = engine.generate_many(requests)
    assert [len(items) for items in out] == [1, 1, 1]
    assert out[2][0].image.size == (72, 64)
    assert engine.stats["pipeline_calls"] - before == 2


def test_lora_load_switch_combine_unload(lora_engine):
    engine = lora_engine
    base = pixels(engine.generate(GenerationRequest("aaa", seed=5))[0])
    with_a = pixels(engine.generate(GenerationRequest("aaa", seed=5, loras=(("char-a", 1.0),)))[0])
    with_b = pixels(engine.generate(GenerationRequest("aaa", seed=5, loras=(("char-b", 1.0),)))[0])
    with_a_again = pixels(engine.generate(GenerationRequest("aaa", seed=5, loras=(("char-a", 1.0),)))[0])
    both = pixels(engine.generate(GenerationRequest("aaa", seed=5, loras=(("char-a", 0.7), ("char-b", 0.7))))[0])
    without = pixels(engine.generate(GenerationRequest("aaa", seed=5))[0])
    assert not np.array_equal(base, with_a)
    assert not np.array_equal(with_a, with_b)
    assert np.array_equal(with_a, with_a_again)
    assert not np.array_equal(both, with_a) and not np.array_equal(both, with_b)
    assert np.array_equal(base, without)  # LoRAs off again gives the base model's pixels
    assert engine.stats["lora_loads"] == 2  # each adapter loaded once, then switched
    assert engine.stats["checkpoint_loads"] == 1  # the base was never reloaded
    recipe = engine.generate(GenerationRequest("aaa", seed=5, loras=(("char-a", 0.5),)))[0].recipe
    assert recipe.loras == (("char-a", 0.5),) and recipe.lora_hashes[0][0] == "char-a"


def test_lora_refusals(lora_engine):
    with pytest.raises(HubInputError, match="sdxl"):
        lora_engine.generate(GenerationRequest("x", loras=(("xl-only", 1.0),)))
    with pytest.raises(HubInputError, match="Unknown LoRA"):
        lora_engine.generate(GenerationRequest("x", loras=(("nope", 1.0),)))
    with pytest.raises(HubInputError, match="not a valid id"):
        lora_engine.generate(GenerationRequest("x", loras=(("../lora-a", 1.0),)))
    with pytest.raises(HubInputError, match="finite"):
        lora_engine.generate(GenerationRequest("x", loras=(("char-a", float("nan")),)))
    with pytest.raises(HubInputError, match="between"):
        lora_engine.generate(GenerationRequest("x", loras=(("char-a", 5.0),)))


@pytest.mark.parametrize(
    "request_kwargs, message",
    [
        ({"prompt": "   "}, "prompt is empty"),
        ({"prompt": "x" * 5000}, "limit"),
        ({"prompt": "x", "steps": float("nan")}, "finite"),
        ({"prompt": "x", "steps": -3}, "Steps"),
        ({"prompt": "x", "steps": 2.5}, "whole number"),
        ({"prompt": "x", "cfg": float("inf")}, "finite"),
        ({"prompt": "x", "cfg": -1}, "CFG"),
        ({"prompt": "x", "width": 4096}, "Width"),
        ({"prompt": "x", "width": 70}, "multiples of 8"),
        ({"prompt": "x", "seed": -1}, "Seed"),
        ({"prompt": "x", "batch": 0}, "Batch"),
        ({"prompt": "x", "sampler": "warp9"}, "sampler"),
        ({"prompt": "x", "checkpoint": "nope"}, "Unknown checkpoint"),
        ({"prompt": "x", "checkpoint": "../../etc/passwd"}, "not a valid id"),
        ({"prompt": "x", "checkpoint": "/abs/path"}, "not a valid id"),
    ],
)
def test_bad_requests_are_refused_and_engine_stays_usable(engine, request_kwargs, message):
    with pytest.raises(HubInputError, match=message):
        engine.generate(GenerationRequest(**request_kwargs))
    assert len(engine.generate(GenerationRequest("still fine"))) == 1


def test_bad_edits_are_refused(engine):
    image = Image.new("RGB", (64, 64), "white")
    with pytest.raises(HubInputError, match="mask is 32x32"):
        engine.edit(EditRequest(image=image, prompt="x", mask=Image.new("L", (32, 32), 255)))
    with pytest.raises(HubInputError, match="mask is empty"):
        engine.edit(EditRequest(image=image, prompt="x", mask=Image.new("L", (64, 64), 0)))
    with pytest.raises(HubInputError, match="image to edit"):
        engine.edit(EditRequest(image="not an image", prompt="x"))  # type: ignore[arg-type]
    with pytest.raises(HubInputError, match="cannot do instruct"):
        engine.edit(EditRequest(image=image, prompt="x", task="instruct"))
    with pytest.raises(HubInputError, match="Strength"):
        engine.edit(EditRequest(image=image, prompt="x", strength=float("nan")))


def test_pipeline_failure_becomes_engine_error_and_engine_recovers(engine, monkeypatch):
    pipe = engine.pipeline("demo-random")
    original = pipe.unet.forward
    calls = {"n": 0}

    def failing_forward(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:  # what a GPU does when it runs out of memory (cannot happen on CPU)
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return original(*args, **kwargs)

    monkeypatch.setattr(pipe.unet, "forward", failing_forward)
    with pytest.raises(EngineError, match="Out of memory"):
        engine.generate(GenerationRequest("x"))
    assert len(engine.generate(GenerationRequest("x"))) == 1


def test_broken_checkpoint_fails_cleanly(tmp_path, builtin_root):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "model_index.json").write_text('{"_class_name": "StableDiffusionPipeline", "unet": ["diffusers", "UNet2DConditionModel"]}')
    extra = [{"id": "broken", "name": "Broken", "family": "sd15", "source": f"folder:{broken}"}]
    data = tmp_path / "data"
    data.mkdir()
    (data / "builtin").symlink_to(builtin_root, target_is_directory=True)
    engine = Engine(load_config(write_config(tmp_path, checkpoints_extra=extra)), device="cpu")
    try:
        with pytest.raises(EngineError, match="failed to load"):
            engine.generate(GenerationRequest("x", checkpoint="broken"))
        assert not engine.availability()["broken"].available
        with pytest.raises(HubInputError, match="not available"):
            engine.generate(GenerationRequest("x", checkpoint="broken"))
        assert len(engine.generate(GenerationRequest("x"))) == 1
    finally:
        engine.shutdown()


def test_lru_keeps_one_resident_and_evicts_over_budget(tmp_path, builtin_root):
    data = tmp_path / "data"
    data.mkdir()
    (data / "builtin").symlink_to(builtin_root, target_is_directory=True)
    engine = Engine(load_config(write_config(tmp_path, engine={"cpu_cache_gb": 0.0})), device="cpu")
    try:
        engine.generate(GenerationRequest("x", checkpoint="demo-random"))
        engine.generate(GenerationRequest("x", checkpoint="demo-random-b"))
        assert list(engine.models.loaded) == ["demo-random-b"]  # budget 0: only the resident one stays
        engine.generate(GenerationRequest("x", checkpoint="demo-random"))
        assert engine.stats["checkpoint_loads"] == 3
    finally:
        engine.shutdown()


def test_sdxl_family_generates_and_edits(tmp_path, builtin_root):
    folder = save_tiny_sdxl(tmp_path / "tiny-sdxl")
    extra = [
        {
            "id": "tiny-sdxl",
            "name": "Tiny SDXL",
            "family": "sdxl",
            "source": f"folder:{folder}",
            "defaults": {"width": 64, "height": 64, "steps": 2, "cfg": 5.0, "sampler": "euler"},
        }
    ]
    data = tmp_path / "data"
    data.mkdir()
    (data / "builtin").symlink_to(builtin_root, target_is_directory=True)
    engine = Engine(load_config(write_config(tmp_path, checkpoints_extra=extra)), device="cpu")
    try:
        first = engine.generate(GenerationRequest("1girl", checkpoint="tiny-sdxl", seed=4))
        again = engine.generate(GenerationRequest("1girl", checkpoint="tiny-sdxl", seed=4))
        assert np.array_equal(pixels(first[0]), pixels(again[0]))
        assert first[0].image.size == (64, 64)
        edited = engine.edit(EditRequest(image=first[0].image, prompt="smile", checkpoint="tiny-sdxl", strength=0.5))
        assert edited[0].recipe.task == "img2img"
        assert engine.pipeline("tiny-sdxl", "img2img").unet is engine.pipeline("tiny-sdxl").unet
    finally:
        engine.shutdown()
