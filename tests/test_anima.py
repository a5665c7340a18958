"""The Anima family on a tiny random Anima built here, loaded through the hub's own loading code.

The tiny model has every component of the real one (Cosmos transformer, Qwen3 text encoder, Qwen2
and T5 tokenizers, the T5-token text conditioner, Qwen-Image VAE), saved by
`AnimaModularPipeline.save_pretrained` (a `modular_model_index.json` folder) and loaded by the engine
through `Family.load` (`from_pretrained` + `load_components`), exactly as a registered checkpoint.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from PIL import Image

from hub.config import load_config
from hub.engine import EditRequest, GenerationRequest
from hub.errors import EngineError, HubInputError
from tests.tiny_models import checkpoint_entry, save_random_transformer_lora, save_tiny_anima, tiny_engine

SIZE = 32  # the tiny VAE downsamples 4x and the transformer patches 2x2: multiples of 8


def pixels(item) -> np.ndarray:
    return np.asarray(item.image, dtype=np.int16)


def anima(prompt: str = "1girl", **settings) -> GenerationRequest:
    return GenerationRequest(prompt, checkpoint="tiny-anima", **settings)


@pytest.fixture(scope="module")
def anima_folder(tmp_path_factory):
    return save_tiny_anima(tmp_path_factory.mktemp("anima") / "tiny-anima")


@pytest.fixture(scope="module")
def anima_engine(tmp_path_factory, builtin_root, anima_folder):
    from diffusers import CosmosTransformer3DModel

    root = tmp_path_factory.mktemp("anima-engine")
    transformer = CosmosTransformer3DModel.from_pretrained(anima_folder / "transformer")
    lora_folder = save_random_transformer_lora(transformer, root / "lora-anima", seed=1)
    loras = [
        {"id": "anima-char", "name": "Anima character", "source": f"folder:{lora_folder}", "base_family": "anima"},
        # The file is never opened: the family check refuses first.
        {"id": "sd-char", "name": "SD character", "source": f"folder:{lora_folder}", "base_family": "sd15"},
    ]
    engine = tiny_engine(root, builtin_root, [checkpoint_entry("tiny-anima", "anima", anima_folder, 4.0, "default", SIZE)],
                         loras=loras)
    yield engine
    engine.shutdown()


def test_anima_generates_through_the_hub_loader(anima_engine):
    engine = anima_engine
    seen: list[tuple[int, int]] = []
    prompt = "masterpiece, best quality, score_7, 1girl, @artist"
    first = engine.generate(anima(prompt, seed=3), progress=lambda step, total: seen.append((step, total)))
    again = engine.generate(anima(prompt, seed=3))
    other = engine.generate(anima(prompt, seed=4))
    assert np.array_equal(pixels(first[0]), pixels(again[0]))  # same seed, same pixels
    assert not np.array_equal(pixels(first[0]), pixels(other[0]))
    assert seen == [(1, 2), (2, 2)]  # progress comes from the scheduler (no callback_on_step_end)
    recipe = first[0].recipe
    assert first[0].image.size == (SIZE, SIZE) and recipe.task == "text2img" and recipe.sampler == "default"
    assert recipe.model_hash == engine.checkpoint_version("tiny-anima")[:10]  # the folder's sha256
    pipe = engine.pipeline("tiny-anima")
    assert type(pipe).__name__ == "AnimaModularPipeline" and pipe.transformer is not None
    assert engine.stats["checkpoint_loads"] == 1


def test_cfg_reaches_the_guider_and_batches_keep_seeds(anima_engine):
    engine = anima_engine
    guided = engine.generate(anima(seed=5, cfg=4.0))
    unguided = engine.generate(anima(seed=5, cfg=1.0))
    assert not np.array_equal(pixels(guided[0]), pixels(unguided[0]))
    assert engine.pipeline("tiny-anima").guider.guidance_scale == 1.0
    batch = engine.generate(anima(seed=5, batch=2))
    assert [item.seed for item in batch] == [5, 6]
    assert np.abs(pixels(batch[0]) - pixels(guided[0])).max() <= 2  # one call for both, same images


def test_anima_img2img_shares_the_base(anima_engine):
    engine = anima_engine
    source = engine.generate(anima(seed=1))[0].image
    light = engine.edit(EditRequest(image=source, prompt="1girl, smile", checkpoint="tiny-anima", strength=0.5, seed=2))
    strong = engine.edit(EditRequest(image=source, prompt="1girl, smile", checkpoint="tiny-anima", strength=1.0, seed=2))
    assert light[0].recipe.task == "img2img" and light[0].image.size == source.size
    assert not np.array_equal(pixels(light[0]), pixels(strong[0]))  # strength reaches the pipeline
    assert engine.pipeline("tiny-anima", "img2img") is engine.pipeline("tiny-anima", "text2img")


def test_anima_lora_switches_without_reloading(anima_engine):
    engine = anima_engine
    loads_before = engine.stats["lora_loads"]
    base = pixels(engine.generate(anima(seed=7))[0])
    with_lora = pixels(engine.generate(anima(seed=7, loras=(("anima-char", 1.0),)))[0])
    with_lora_again = pixels(engine.generate(anima(seed=7, loras=(("anima-char", 1.0),)))[0])
    half = pixels(engine.generate(anima(seed=7, loras=(("anima-char", 0.5),)))[0])
    without = pixels(engine.generate(anima(seed=7))[0])
    assert not np.array_equal(base, with_lora)
    assert np.array_equal(with_lora, with_lora_again)
    assert not np.array_equal(half, with_lora)  # the adapter weight reaches set_adapters
    assert np.array_equal(base, without)  # LoRA off again: the base model's pixels
    assert engine.stats["lora_loads"] - loads_before == 1  # loaded once, then switched
    assert engine.stats["checkpoint_loads"] == 1  # the base was never reloaded
    assert "lora_anima_char" in engine.pipeline("tiny-anima").transformer.peft_config


SQUARE = Image.new("RGB", (SIZE, SIZE))
BAD_REQUESTS = {
    "a LoRA of another family": (anima(loras=(("sd-char", 1.0),)), "is for sd15 models"),
    "a sampler it does not support": (anima(sampler="euler_a"), "only its own sampler"),
    "reference images": (anima(references=(Image.new("RGB", (64, 64)),)), "does not take reference images"),
    "an instruction edit": (EditRequest(image=SQUARE, prompt="x", checkpoint="tiny-anima", task="instruct"),
                            "cannot do instruct; it offers: img2img"),
    "a mask": (EditRequest(image=SQUARE, prompt="x", mask=Image.new("L", (SIZE, SIZE), 255), checkpoint="tiny-anima"),
               "cannot do inpaint"),
}


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
def test_bad_anima_requests_are_refused_before_any_call(anima_engine, case):
    engine = anima_engine
    request, message = BAD_REQUESTS[case]
    calls = engine.stats["pipeline_calls"]
    with pytest.raises(HubInputError, match=message):
        engine.edit(request) if isinstance(request, EditRequest) else engine.generate(request)
    assert engine.stats["pipeline_calls"] == calls  # nothing ran
    assert len(engine.generate(anima("still fine"))) == 1


@pytest.mark.parametrize("flaw", ["weights missing", "index pointing outside the folder"])
def test_a_broken_anima_folder_fails_cleanly(tmp_path, builtin_root, anima_folder, flaw):
    # load_components only logs a component it cannot load, and a copied folder's index still points
    # at the original: the family must refuse both rather than serve a half or borrowed pipeline.
    broken = tmp_path / "broken-anima"
    shutil.copytree(anima_folder, broken)
    (broken / "transformer" / "diffusion_pytorch_model.safetensors").unlink()
    if flaw == "weights missing":
        index = broken / "modular_model_index.json"
        index.write_text(index.read_text().replace(str(anima_folder), str(broken)))
    engine = tiny_engine(tmp_path, builtin_root, [checkpoint_entry("broken-anima", "anima", broken, 4.0, "default", SIZE)])
    try:
        with pytest.raises(EngineError, match="failed to load: Anima components .*transformer"):
            engine.generate(GenerationRequest("x", checkpoint="broken-anima"))
        assert not engine.availability()["broken-anima"].available
        assert len(engine.generate(GenerationRequest("x"))) == 1  # the default checkpoint still serves
    finally:
        engine.shutdown()


def test_anima_is_registered_for_gpu_deployments():
    config = load_config()  # the repository's spaces_config.yaml
    spec = config.checkpoint("anima-base-1")
    assert (spec.family, spec.hub_repo, spec.requires_gpu) == ("anima", "circlestone-labs/Anima-Base-v1.0-Diffusers", True)
    assert "non-commercial" in spec.description.lower()
    defaults = spec.defaults
    assert 30 <= defaults.steps <= 50 and 4.0 <= defaults.cfg <= 5.0 and defaults.sampler == "default"
    assert defaults.quality_prefix == "masterpiece, best quality, score_7"
    assert all(abs(w * h - 1024 * 1024) / (1024 * 1024) < 0.1 and w % 16 == 0 and h % 16 == 0 for w, h in spec.size_presets)
