"""Stop in a real headless Chromium: the sliders end at the chosen checkpoint's own limits, Stop cancels
the running job between denoising steps (the engine's step counter stops short), and the next request
is served."""

from __future__ import annotations

import time

import pytest

from tests.hub_app import running_app
# Importing test_browser skips this module too where Chromium is missing (and fails with REQUIRE_CHROMIUM=1).
from tests.test_browser import browser, open_page, set_number  # noqa: F401 - browser is a fixture

pytestmark = [pytest.mark.timeout(300)]


def wait_for(condition, what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_sliders_follow_the_checkpoint_and_stop_cancels_the_running_job(browser, tmp_path):
    from playwright.sync_api import expect

    with running_app(tmp_path / "data", f"sqlite:///{tmp_path / 'hub.sqlite3'}", max_request_seconds=3600) as (url, ctx):
        page = open_page(browser, url)
        # The default checkpoint (demo-multilingual) draws at 64 px: the sliders stop at 128, not the hub's 1536.
        width = page.locator("#generate-width input[type=range]")
        expect(width).to_have_attribute("max", "128", timeout=30_000)
        assert ctx.config.limits.max_size == 1536
        set_number(page, "generate-height", 128)
        set_number(page, "generate-batch", 4)
        set_number(page, "generate-steps", 100)
        page.get_by_label("Prompt", exact=True).first.fill("1girl, solo, smile")
        engine = ctx.engine
        steps, stopped = engine.stats["steps"], engine.stats["cancelled_calls"]
        page.locator("#generate-button").click()
        wait_for(lambda: engine.stats["steps"] > steps + 2, "the job to be denoising")
        page.locator("#generate-stop").click()
        wait_for(lambda: engine.stats["cancelled_calls"] > stopped, "Stop to cancel the job", timeout=60)
        ran = engine.stats["steps"] - steps
        assert ran < 100, "the job ran to the end"
        # The next request is served, and shows.
        set_number(page, "generate-batch", 1)
        set_number(page, "generate-steps", 3)
        page.locator("#generate-button").click()
        expect(page.locator("#generate-gallery img").first).to_be_visible(timeout=120_000)
        assert engine.stats["steps"] - steps == ran + 3
