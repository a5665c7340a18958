"""Character LoRA tab over HTTP: train from uploads, register, then generate and compare with it."""

from __future__ import annotations

import numpy as np
import pytest
from gradio_client import Client, handle_file
from PIL import Image, ImageDraw

from hub.recipe import read_recipe
from tests.hub_app import running_app


def character_images(folder, count: int) -> list[str]:
    paths = []
    for index in range(count):
        image = Image.new("RGB", (64, 64), (255, 255, 255))
        draw = ImageDraw.Draw(image)
        draw.ellipse((12 + index, 8, 52 + index, 48), fill=(90, 200, 210))  # the same aqua head, jittered
        draw.rectangle((20, 44, 44, 63), fill=(40, 40, 160))
        path = folder / f"char_{index}.png"
        image.save(path)
        paths.append(str(path))
    return paths


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    folder = tmp_path_factory.mktemp("lora-app")
    with running_app(folder / "data", f"sqlite:///{folder / 'hub.sqlite3'}") as (url, ctx):
        yield Client(url, verbose=False), ctx, folder


def test_train_register_and_use_a_lora(app):
    client, ctx, folder = app
    uploads = [handle_file(path) for path in character_images(folder, 4)]
    summary, dropdown = client.predict(uploads, "Aqua Test", "aqua_test", "demo-random", 10, api_name="/train_lora")
    assert "user-aqua-test" in summary and "10 steps" in summary
    assert ctx.engine.lora_spec("user-aqua-test").trigger_words == ["aqua_test"]
    assert (ctx.engine.trained_lora_dir / "user-aqua-test" / "registration.json").is_file()

    with pytest.raises(Exception, match="trained for demo-random"):
        client.predict("aqua_test", loras="user-aqua-test:0.8", checkpoint="demo-english", api_name="/generate")
    gallery, _ = client.predict(
        "aqua_test", checkpoint="demo-random", loras="user-aqua-test:0.8", seed=3, width=64, height=64, steps=3, api_name="/generate"
    )
    recipe = read_recipe(gallery[0]["image"] if isinstance(gallery[0]["image"], str) else gallery[0]["image"]["path"])
    assert recipe.loras == (("user-aqua-test", 0.8),)

    with_lora, without = client.predict("user-aqua-test", "aqua_test", "demo-random", 1.0, 5, api_name="/lora_compare")
    assert read_recipe(with_lora).loras == (("user-aqua-test", 1.0),)
    assert read_recipe(without).loras == ()
    assert read_recipe(with_lora).seed == read_recipe(without).seed == 5
    with Image.open(with_lora) as a, Image.open(without) as b:  # same seed: only the LoRA can make them differ
        assert np.abs(np.asarray(a, dtype=np.int16) - np.asarray(b, dtype=np.int16)).mean() > 1.0
    # `steps` is an optional last parameter (older positional calls, as above, keep working).
    with_lora, without = client.predict("user-aqua-test", "aqua_test", "demo-random", 1.0, 5, 2, api_name="/lora_compare")
    assert read_recipe(with_lora).steps == read_recipe(without).steps == 2


def test_trained_lora_survives_a_restart(app):
    _, ctx, _ = app
    from hub.engine import Engine

    again = Engine(ctx.config, device="cpu")
    try:
        assert "user-aqua-test" in {spec.id for spec in again.lora_specs()}
    finally:
        again.shutdown()


def test_bad_training_uploads_are_refused(app):
    client, ctx, folder = app
    good = character_images(folder, 4)
    not_image = folder / "notes.png"
    not_image.write_text("hello")
    cases = [
        ([good[0]], "Aqua Two", "aqua_two", "Upload 4 to"),
        (good[:3] + [str(not_image)], "Aqua Three", "aqua_three", "not a readable image"),
        (good, "Aqua Test", "aqua_test", "already exists"),
        (good, "Aqua Four", "two words", "Trigger word"),
        (good, "Aqua Five", "aqua_five", "Unknown checkpoint"),
    ]
    before = {spec.id for spec in ctx.engine.lora_specs()}
    for paths, name, trigger, message in cases:
        checkpoint = "no-such" if "Five" in name else "demo-random"
        with pytest.raises(Exception, match=message):
            client.predict([handle_file(p) for p in paths], name, trigger, checkpoint, 10, api_name="/train_lora")
    assert {spec.id for spec in ctx.engine.lora_specs()} == before
