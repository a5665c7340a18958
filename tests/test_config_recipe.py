"""Config validation errors name the file and key; PNG recipes round-trip."""

from __future__ import annotations

import pytest
import yaml
from PIL import Image

from hub.config import ConfigError, load_config
from hub.recipe import Recipe, parse_a1111, read_recipe, save_png
from tests.conftest import write_config


def test_shipped_config_is_valid():
    config = load_config()
    ids = {c.id for c in config.checkpoints}
    assert config.default_checkpoint in ids
    for real in ("animagine-xl-4", "noobai-xl-1", "illustrious-xl-0.1", "flux2-klein-4b", "z-image-turbo"):
        assert real in ids and config.checkpoint(real).requires_gpu


def _broken(tmp_path, mutate) -> str:
    path = write_config(tmp_path)
    data = yaml.safe_load(path.read_text())
    mutate(data)
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert str(path) in message
    return message


def test_missing_key_is_named(tmp_path):
    message = _broken(tmp_path, lambda d: d["checkpoints"][0].pop("family"))
    assert "checkpoints.0.family" in message and "missing" in message


def test_unknown_key_is_named(tmp_path):
    assert "checkpoints.1.colour" in _broken(tmp_path, lambda d: d["checkpoints"][1].update(colour="red"))


@pytest.mark.parametrize(
    "mutate, expected",
    [
        (lambda d: d["checkpoints"][0].update(id="../etc"), "checkpoints.0.id"),
        (lambda d: d["checkpoints"][0].update(source="ftp:thing"), "checkpoints.0.source"),
        (lambda d: d["checkpoints"][0].update(source="file:model.ckpt"), ".safetensors"),
        (lambda d: d["checkpoints"][0].update(family="dalle"), "checkpoints.0.family"),
        (lambda d: d.update(default_checkpoint="missing"), "default_checkpoint"),
        (lambda d: d["checkpoints"].append(dict(d["checkpoints"][0])), "duplicate checkpoint id"),
        (lambda d: d.update(limits={"max_steps": -1}), "limits.max_steps"),
    ],
)
def test_bad_values_are_named(tmp_path, mutate, expected):
    assert expected in _broken(tmp_path, mutate)


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("checkpoints: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


RECIPE = Recipe(
    prompt="初音ミク, 1girl, aqua hair,\nsmile",
    negative_prompt="lowres, bad hands",
    steps=28,
    sampler="euler_a",
    cfg=5.5,
    seed=123456789,
    width=832,
    height=1216,
    model="animagine-xl-4",
    model_hash="abcdef1234",
    loras=(("char-a", 0.8), ("style-b", -0.25)),
    lora_hashes=(("char-a", "0123456789"), ("style-b", "9876543210")),
)


def test_png_recipe_round_trip(tmp_path):
    path = save_png(Image.new("RGB", (8, 8)), RECIPE, tmp_path / "out.png")
    assert read_recipe(path) == RECIPE
    with Image.open(path) as image:
        text = image.info["parameters"]
    assert text.splitlines()[-1].startswith("Steps: 28, Sampler: Euler a, CFG scale: 5.5, Seed: 123456789, Size: 832x1216")
    assert "Model hash: abcdef1234" in text and "Model: animagine-xl-4" in text
    parsed = parse_a1111(text)  # the text chunk alone carries the same recipe
    assert parsed == RECIPE


def test_anonymous_png_names_no_model(tmp_path):
    path = save_png(Image.new("RGB", (8, 8)), RECIPE, tmp_path / "arena.png", anonymous=True)
    raw = path.read_bytes()
    for secret in (b"animagine", b"abcdef1234", b"char-a"):
        assert secret not in raw
    assert read_recipe(path).prompt == RECIPE.prompt


def test_parses_another_tools_parameters():
    text = "masterpiece, 1girl\nNegative prompt: worst quality\nSteps: 30, Sampler: DPM++ 2M Karras, CFG scale: 7, Seed: 42, Size: 512x768, Model hash: 1a2b3c4d5e, Model: someModel_v1, Denoising strength: 0.45"
    recipe = parse_a1111(text)
    assert (recipe.prompt, recipe.negative_prompt, recipe.steps, recipe.sampler) == ("masterpiece, 1girl", "worst quality", 30, "dpmpp_2m_karras")
    assert (recipe.width, recipe.height, recipe.seed, recipe.model, recipe.strength) == (512, 768, 42, "someModel_v1", 0.45)
    assert read_recipe(Image.new("RGB", (4, 4))) is None
