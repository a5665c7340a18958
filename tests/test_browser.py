"""The page in a real headless Chromium: open it, generate in the Generate tab, see the image."""

from __future__ import annotations

import shutil

import pytest

from tests.hub_app import running_app

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian chromium is not installed (.ci/run installs it)")


def test_generate_tab_shows_image_in_gallery(tmp_path):
    from playwright.sync_api import expect, sync_playwright

    with running_app(tmp_path / "data", f"sqlite:///{tmp_path / 'hub.sqlite3'}") as (url, ctx):
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.goto(url, wait_until="domcontentloaded")
                for tab in ("Generate", "Edit", "Character LoRA", "Arena", "Leaderboard", "Submit"):
                    expect(page.get_by_role("tab", name=tab)).to_be_visible(timeout=60_000)
                default = ctx.config.checkpoint(ctx.config.default_checkpoint)
                expect(page.get_by_text(default.description).first).to_be_visible()
                page.get_by_label("Prompt", exact=True).first.fill("1girl, aqua twintails, smile")
                page.locator("#generate-button").click()
                image = page.locator("#generate-gallery img").first
                expect(image).to_be_visible(timeout=120_000)
                expect(page.locator("#generate-info")).to_contain_text(default.id, timeout=30_000)
                assert page.evaluate("(img) => img.naturalWidth", image.element_handle()) > 0
                shot = tmp_path / "generate.png"
                page.screenshot(path=str(shot), full_page=True)
                assert shot.stat().st_size > 10_000
                assert ctx.engine.stats["images"] >= 1
            finally:
                browser.close()
