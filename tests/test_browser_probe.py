"""The Who-can-draw panel and a report card in a real headless Chromium: a probe typed and run from the
page (progress, card, plot, images), a board's checkpoint link opening its report card (`?model=ID`), and
the card's Markdown download. The screenshots are the README's (BROWSER_SCREENSHOTS=docs/images)."""

from __future__ import annotations

import pytest

from evals.plan import RunOptions
from hub.ui.context import make_runner
from tests.hub_app import running_app
# Importing test_browser skips this module too where Chromium is missing (and fails with REQUIRE_CHROMIUM=1).
from tests.test_browser import LONG, browser, open_page, shoot, shots, tab  # noqa: F401 - fixtures

pytestmark = [pytest.mark.timeout(300)]


def test_probe_panel_and_report_card(browser, shots, tmp_path):
    from playwright.sync_api import expect

    with running_app(tmp_path / "data", f"sqlite:///{tmp_path / 'hub.sqlite3'}") as (url, ctx):
        page = open_page(browser, url)
        tab(page, "Who can draw…?")
        page.locator("#probe-name textarea").fill("Ogro Verde")  # Green Ogre in Spanish
        page.locator("#probe-language input").click()
        page.get_by_role("option", name="es", exact=True).click()
        seeds = page.locator("#probe-seeds input[type=number]")
        seeds.fill("2")
        seeds.press("Enter")
        page.locator("#probe-button").click()
        card = page.locator("#probe-card")
        expect(card).to_contain_text("Who can draw Ogro Verde?", timeout=LONG)
        expect(card).to_contain_text("as the demo-characters suite judges Green Ogre")
        # The model that learnt Spanish draws it; the English-only control does not.
        expect(card.locator("tr", has_text="demo-multilingual")).to_contain_text("2/2")
        expect(card.locator("tr", has_text="demo-english")).to_contain_text("0/2")
        expect(page.locator("#probe-images img")).to_have_count(4, timeout=LONG)
        expect(page.locator("#probe-plot img, #probe-plot svg, #probe-plot canvas").first).to_be_visible(timeout=LONG)
        shoot(page, shots, "probe_card")

        # A board with numbers, then its link to the checkpoint's report card.
        make_runner(ctx).run(RunOptions(checkpoint="demo-multilingual", suite="demo-characters", seeds=1, limit=2,
                                        languages=("en", "es")), progress=False)
        page = open_page(browser, url)
        tab(page, "Leaderboard")
        tab(page, "Character recognition")
        page.locator("#refresh-characters").click()
        link = page.locator("#note-characters a", has_text="demo-multilingual")
        expect(link).to_be_visible(timeout=LONG)
        assert link.get_attribute("href") == "?model=demo-multilingual"
        with page.context.expect_page() as opened:  # Gradio opens Markdown links in a new tab
            link.click()
        page = opened.value
        page.wait_for_url("**model=demo-multilingual*", timeout=LONG)
        report = page.locator("#report-card")
        expect(report).to_contain_text("Demo multilingual (demo world)", timeout=LONG)
        expect(report).to_contain_text("Character recognition")
        expect(report).to_contain_text("1 of 1")
        expect(report).to_contain_text("not in the arena yet")
        expect(page.locator("#report-samples img").first).to_be_visible(timeout=LONG)
        with page.expect_download() as download:
            page.locator("#report-download-md").click()
        text = open(download.value.path(), encoding="utf-8").read()
        assert text.startswith("# Demo multilingual (demo world) (`demo-multilingual`)")
        assert "| Character recognition | hit_rate |" in text
        shoot(page, shots, "report_card")

        # An unknown id in the link is a warning, and the page stays usable.
        page = open_page(browser, url, path="?model=no-such-model")
        expect(page.get_by_text("Unknown checkpoint 'no-such-model': no report card.").first).to_be_visible(timeout=LONG)
