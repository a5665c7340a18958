"""The app served by Gradio, driven over HTTP with gradio_client: /generate, /edit, bad input."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from gradio_client import Client, handle_file
from PIL import Image

from hub.recipe import read_recipe
from tests.hub_app import running_app


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    folder = tmp_path_factory.mktemp("app")
    with running_app(folder / "data", f"sqlite:///{folder / 'hub.sqlite3'}") as (url, ctx):
        yield Client(url, verbose=False), ctx, folder


def image_paths(result) -> list[str]:
    gallery = result[0] if isinstance(result, (tuple, list)) and result and isinstance(result[0], list) else result
    return [item["image"] if isinstance(item["image"], str) else item["image"]["path"] for item in gallery]


def test_generate_returns_pngs_with_recipes(app):
    client, ctx, _ = app
    result = client.predict("1girl, aqua hair", "lowres", "demo-random", "", 64, 64, 4, 5.0, "euler_a", 11, 2, api_name="/generate")
    paths = image_paths(result)
    assert len(paths) == 2
    for path, seed in zip(paths, (11, 12)):
        with Image.open(path) as image:
            assert image.format == "PNG" and image.size == (64, 64)
            assert "parameters" in image.info and "Seed: " in image.info["parameters"]
        recipe = read_recipe(path)
        assert (recipe.prompt, recipe.negative_prompt, recipe.seed, recipe.model) == ("1girl, aqua hair", "lowres", seed, "demo-random")
        assert recipe.model_hash == ctx.engine.checkpoint_version("demo-random")[:10]


def test_generate_only_prompt_uses_defaults_and_is_reproducible(app):
    client, ctx, _ = app
    first = image_paths(client.predict("a quiet street", api_name="/generate"))
    again = image_paths(client.predict("a quiet street", api_name="/generate"))
    spec = ctx.config.checkpoint(ctx.config.default_checkpoint)
    recipe = read_recipe(first[0])
    assert (recipe.width, recipe.height, recipe.steps) == (spec.defaults.width, spec.defaults.height, spec.defaults.steps)
    assert np.array_equal(np.asarray(Image.open(first[0])), np.asarray(Image.open(again[0])))


def _png_file(folder: Path, name: str, image: Image.Image) -> str:
    path = folder / name
    image.save(path, format="PNG")
    return str(path)


def test_edit_img2img_and_inpaint(app):
    client, _, folder = app
    source = _png_file(folder, "source.png", Image.new("RGB", (64, 64), (200, 120, 40)))
    mask_image = Image.new("L", (64, 64), 0)
    mask_image.paste(255, (0, 0, 32, 64))
    mask = _png_file(folder, "mask.png", mask_image)
    plain = image_paths(client.predict(handle_file(source), "make it blue", None, 0.5, "demo-random", 3, 4, api_name="/edit"))
    assert read_recipe(plain[0]).task == "img2img"
    painted = image_paths(client.predict(handle_file(source), "a window", handle_file(mask), 0.9, "demo-random", 3, 4, api_name="/edit"))
    recipe = read_recipe(painted[0])
    assert recipe.task == "inpaint" and recipe.strength == 0.9
    assert Image.open(painted[0]).size == (64, 64)


def _bad_files(folder: Path) -> dict[str, str]:
    text = folder / "notes.png"
    text.write_text("this is not an image")
    corrupt = folder / "corrupt.png"
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), "red").save(buffer, format="PNG")
    corrupt.write_bytes(buffer.getvalue()[:60])
    bomb = folder / "bomb.png"
    Image.new("1", (6000, 6000)).save(bomb, format="PNG")  # 36 Mpx, a few kB on disk
    small_mask = folder / "small_mask.png"
    Image.new("L", (16, 16), 255).save(small_mask)
    good = folder / "good.png"
    Image.new("RGB", (64, 64), "white").save(good)
    return {"text": str(text), "corrupt": str(corrupt), "bomb": str(bomb), "small_mask": str(small_mask), "good": str(good)}


GENERATE_CASES = [
    (("",), "prompt is empty"),
    (("x" * 1500,), "limit"),
    (("x", "", "no-such-model"), "Unknown checkpoint"),
    (("x", "", "../../etc/passwd"), "not a valid id"),
    (("x", "", "/etc/passwd"), "not a valid id"),
    (("x", "", "demo-random", "nope:0.5"), "Unknown LoRA"),
    (("x", "", "demo-random", "../evil:0.5"), "not a valid id"),
    (("x", "", "demo-random", "", 64, 64, 4, 5.0, "euler_a", -5), "Seed|less than minimum"),
    (("x", "", "demo-random", "", 64, 64, 4, 5.0, "warp", 1), "sampler"),
]


@pytest.mark.parametrize("args, message", GENERATE_CASES)
def test_generate_bad_input_is_refused(app, args, message):
    client, ctx, _ = app
    before = ctx.engine.stats["pipeline_calls"]
    with pytest.raises(Exception, match=message):
        client.predict(*args, api_name="/generate")
    assert ctx.engine.stats["pipeline_calls"] == before  # refused before any work


@pytest.mark.parametrize(
    "kwargs",
    [{"steps": -3}, {"steps": 10_000}, {"width": 100_000}, {"cfg": -1}, {"batch": 0}],
)
def test_generate_out_of_range_numbers_are_refused(app, kwargs):
    client, _, _ = app
    with pytest.raises(Exception):
        client.predict("x", **kwargs, api_name="/generate")


@pytest.mark.parametrize(
    "case, message",
    [("text", "not a readable image"), ("corrupt", "not a readable image"), ("bomb", "limit"), ("small_mask", "mask is 16x16")],
)
def test_edit_bad_uploads_are_refused(app, case, message):
    client, ctx, folder = app
    files = _bad_files(folder)
    before = ctx.engine.stats["pipeline_calls"]
    if case == "small_mask":
        args = (handle_file(files["good"]), "x", handle_file(files["small_mask"]))
    else:
        args = (handle_file(files[case]), "x")
    with pytest.raises(Exception, match=message):
        client.predict(*args, api_name="/edit")
    assert ctx.engine.stats["pipeline_calls"] == before


@pytest.mark.parametrize("index", [6, 7])  # steps, cfg
def test_nan_sent_over_raw_http_is_refused(app, index):
    """gradio_client will not send NaN, but any HTTP client can: the server must refuse it."""
    import httpx

    client, ctx, _ = app
    data = ["x", "", "demo-random", "", 64, 64, 4, 5.0, "euler_a", 1, 1]
    data[index] = "__NaN__"
    body = json.dumps({"data": data}).replace('"__NaN__"', "NaN")
    base = client.src.rstrip("/")
    before = ctx.engine.stats["pipeline_calls"]
    posted = httpx.post(f"{base}/gradio_api/call/generate", content=body, headers={"content-type": "application/json"}, timeout=30)
    assert posted.status_code == 200, posted.text
    event_id = posted.json()["event_id"]
    stream = httpx.get(f"{base}/gradio_api/call/generate/{event_id}", timeout=60).text
    assert "event: error" in stream and "finite" in stream, stream
    assert ctx.engine.stats["pipeline_calls"] == before


def test_edit_without_image_is_refused(app):
    client, _, _ = app
    with pytest.raises(Exception, match="image to edit is required"):
        client.predict(None, "make it red", api_name="/edit")


def test_server_still_serves_after_bad_input(app):
    client, _, _ = app
    assert len(image_paths(client.predict("after the storm", api_name="/generate"))) == 1
