"""The Generate tab in a real headless Chromium: a recipe PNG dropped on the page fills the settings
(the checkpoint's own defaults do not overwrite them), the token count follows the prompt, and a click on
an example draws it."""

from __future__ import annotations

import pytest
from PIL import Image

from hub.recipe import Recipe, read_recipe, save_png
from tests.hub_app import running_app
# Importing test_browser skips this module too where Chromium is missing (and fails with REQUIRE_CHROMIUM=1).
from tests.test_browser import browser, open_page  # noqa: F401 - browser is a fixture

pytestmark = [pytest.mark.timeout(300)]


def test_recipe_drop_fills_the_settings_and_an_example_click_draws(browser, tmp_path):
    from playwright.sync_api import expect

    with running_app(tmp_path / "data", f"sqlite:///{tmp_path / 'hub.sqlite3'}") as (url, ctx):
        recipe = Recipe(prompt="a portrait of Fox Ninja, (smiling:1.1)", negative_prompt="blurry", steps=7,
                        sampler="dpmpp_2m_karras", cfg=4.5, seed=4242, width=64, height=64, model="demo-english")
        png = save_png(Image.new("RGB", (64, 64)), recipe, tmp_path / "recipe.png")
        page = open_page(browser, url)
        page.get_by_text("Load recipe from image").first.click()
        page.locator("#generate-recipe input[type=file]").set_input_files(str(png))
        expect(page.locator("#generate-recipe-note")).to_contain_text("Recipe read (Sakuga Hub)", timeout=30_000)
        expect(page.locator("#generate-prompt textarea")).to_have_value(recipe.prompt)
        expect(page.locator("#generate-negative textarea")).to_have_value("blurry")
        expect(page.locator("#generate-seed input")).to_have_value("4242")
        # The checkpoint changed (demo-english's defaults are 25 steps, CFG 3, Euler a): the recipe's values stay.
        expect(page.locator("#generate-steps input[type=number]")).to_have_value("7", timeout=15_000)
        expect(page.locator("#generate-cfg input[type=number]")).to_have_value("4.5")
        expect(page.locator("#generate-sampler input")).to_have_value("DPM++ 2M Karras")
        expect(page.locator("#generate-tokens")).to_contain_text("tokens", timeout=15_000)
        # The drawn image carries the recipe's settings.
        page.locator("#generate-button").click()
        expect(page.locator("#generate-gallery img").first).to_be_visible(timeout=120_000)
        made = read_recipe(_outputs(ctx)[-1])
        assert (made.model, made.prompt, made.steps, made.cfg, made.seed, made.sampler) == \
            ("demo-english", recipe.prompt, 7, 4.5, 4242, "dpmpp_2m_karras")

        # demo-english's first example, one click: the prompt is filled and an image is drawn.
        example = ctx.engine.checkpoint_spec("demo-english").examples[0]
        page.locator("#generate-examples").get_by_text(example.prompt).first.click()
        expect(page.locator("#generate-prompt textarea")).to_have_value(example.prompt, timeout=15_000)
        expect(page.locator("#generate-info")).to_contain_text(f"seeds {example.seed}", timeout=120_000)
        made = read_recipe(_outputs(ctx)[-1])
        assert (made.model, made.prompt, made.seed) == ("demo-english", example.prompt, example.seed)


def _outputs(ctx) -> list:
    return sorted((ctx.data_dir / "outputs").rglob("*.png"), key=lambda p: p.stat().st_mtime)
