"""The Arena in a real headless Chromium: a battle on stored 64 px samples is shown large (nearest-
neighbour) and side by side, a click shows an image full screen, keys vote (not while typing in the
prompt), the names are revealed and the buttons disabled, the vote is undone from the page and cast
again (kept off the ratings). A screenshot is kept for a human to look at
(set ARENA_SCREENSHOT=path to keep a copy)."""

from __future__ import annotations

import os
import shutil

import pytest
from PIL import Image, ImageDraw
from sqlalchemy import select

try:
    from tests.hub_app import running_app
    from tests.needs import missing
except ImportError:
    from hub_app import running_app
    from needs import missing

CHROMIUM = "/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else shutil.which("chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PROMPT = "hatsune miku, twintails, smile"

if CHROMIUM is None:
    missing("REQUIRE_CHROMIUM", "Debian chromium is not installed (.ci/run installs it)", module=True)

# The size at which the image content is drawn (object-fit and all), and whether it is pixelated.
RENDERED = """(img) => {
  const box = img.getBoundingClientRect();
  const style = getComputedStyle(img);
  let scale = Math.min(box.width / img.naturalWidth, box.height / img.naturalHeight);
  if (style.objectFit === 'scale-down') scale = Math.min(scale, 1);
  if (style.objectFit === 'none') scale = 1;
  const fill = style.objectFit === 'fill';
  return {x: box.x, y: box.y, width: fill ? box.width : img.naturalWidth * scale,
          height: fill ? box.height : img.naturalHeight * scale, natural: img.naturalWidth,
          rendering: style.imageRendering};
}"""


def chibi(colour: tuple[int, int, int]) -> Image.Image:
    """A 64 px stand-in portrait: hair colour, face, eyes (small enough that smoothing would show)."""
    image = Image.new("RGB", (64, 64), (235, 240, 250))
    draw = ImageDraw.Draw(image)
    draw.ellipse((12, 8, 52, 48), fill=colour)
    draw.ellipse((18, 16, 46, 44), fill=(252, 224, 200))
    draw.rectangle((24, 26, 27, 30), fill=(30, 30, 60))
    draw.rectangle((37, 26, 40, 30), fill=(30, 30, 60))
    draw.rectangle((22, 48, 42, 63), fill=colour)
    return image


def stored_samples(ctx, folder) -> None:
    from hub.ui.arena_tab import arena_candidates
    from leaderboards.results import get_or_create_suite
    from leaderboards.schema import Sample

    folder.mkdir(parents=True, exist_ok=True)
    with ctx.db.session() as s:
        suite = get_or_create_suite(s, "characters", "browser", [{"item_id": "miku", "language": "en", "text": PROMPT, "meta": {"tier": "popular"}}])
        for model, colour in zip(arena_candidates(ctx), [(40, 190, 190), (230, 90, 150)]):
            path = folder / f"{model}.png"
            chibi(colour).save(path)
            s.add(Sample(cache_key=f"browser-{model}", checkpoint_id=model, adapters="", suite_id=suite.id, item_id="miku",
                         language="en", prompt_text=PROMPT, seed=1, settings_hash="x", image_path=str(path)))


@pytest.mark.timeout(300)
def test_arena_battle_keyboard_vote_and_undo_in_chromium(tmp_path):
    from playwright.sync_api import expect, sync_playwright

    from leaderboards.schema import Vote

    with running_app(tmp_path / "data", f"sqlite:///{tmp_path / 'hub.sqlite3'}") as (url, ctx):
        stored_samples(ctx, tmp_path / "samples")

        def votes() -> list[Vote]:
            with ctx.db.session() as s:
                return list(s.scalars(select(Vote)))

        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.goto(url, wait_until="domcontentloaded")
                page.get_by_role("tab", name="Arena", exact=True).click(timeout=60_000)
                vote_a, vote_b = page.locator("#arena-vote-model_a"), page.locator("#arena-vote-model_b")
                # Every click a vote button receives (the keys click them), counted in the page: the key
                # handler runs synchronously, so after a key press the count is final (no waiting on the
                # server to prove that nothing was sent).
                page.evaluate("""() => { window.__voteClicks = [];
                    document.addEventListener('click', (e) => {
                        const b = e.target.closest && e.target.closest('[id^="arena-vote-"]');
                        if (b) window.__voteClicks.push(b.id); }, true); }""")

                def vote_clicks() -> list[str]:
                    return page.evaluate("() => window.__voteClicks")

                expect(vote_a).to_be_disabled()  # no battle yet
                page.keyboard.press("1")
                assert vote_clicks() == []
                page.locator("#arena-prompt textarea").fill(PROMPT)
                page.locator("#arena-new-battle").click()
                images = [page.locator(f"#arena-image-{side} img") for side in "ab"]
                for image in images:
                    expect(image).to_be_visible(timeout=60_000)
                expect(vote_b).to_be_enabled(timeout=30_000)
                page.wait_for_function(
                    "() => [...document.querySelectorAll('.arena-image img')].every(i => i.complete && i.naturalWidth > 0)"
                )
                a, b = (image.evaluate(RENDERED) for image in images)
                assert a["natural"] == b["natural"] == 64  # the stored pixels, enlarged by the page only
                assert a["width"] >= 256 and b["width"] >= 256, (a, b)
                assert abs(a["width"] - b["width"]) < 1 and abs(a["height"] - b["height"]) < 1  # same size
                assert abs(a["y"] - b["y"]) < 2 and a["x"] + a["width"] <= b["x"]  # side by side
                assert a["rendering"] == b["rendering"] == "pixelated"

                images[0].click()  # click for full size: the image fills the screen, still pixelated
                page.wait_for_function("() => document.fullscreenElement && document.fullscreenElement.tagName === 'IMG'")
                full = page.evaluate(f"() => ({RENDERED})(document.fullscreenElement)")
                assert full["width"] >= a["width"] and full["rendering"] == "pixelated"
                page.evaluate("() => document.exitFullscreen()")
                page.wait_for_function("() => !document.fullscreenElement")

                page.locator("#arena-prompt textarea").press("2")  # typing in the prompt is not a vote
                assert vote_clicks() == [] and votes() == []
                page.locator("#arena-prompt textarea").fill(PROMPT)
                page.evaluate("document.activeElement && document.activeElement.blur()")
                page.keyboard.press("2")
                expect(page.locator("#arena-result")).to_contain_text("You voted B is better", timeout=30_000)
                expect(page.locator("#arena-result")).to_contain_text("A was")
                names = {page.locator(f"#arena-name-{side} textarea").input_value() for side in "ab"}
                assert names == {c.name for c in ctx.config.checkpoints if c.id in {"demo-multilingual", "demo-english"}}
                for outcome in ("model_a", "model_b", "tie", "bothbad"):
                    expect(page.locator(f"#arena-vote-{outcome}")).to_be_disabled()
                assert vote_clicks() == ["arena-vote-model_b"]
                page.keyboard.press("1")  # one vote per battle: the keys do nothing now
                assert vote_clicks() == ["arena-vote-model_b"]
                (vote,) = votes()
                assert vote.outcome == "model_b" and vote.undone_at is None

                undo = page.locator("#arena-undo")
                expect(undo).to_be_visible()
                shot = tmp_path / "arena.png"
                page.screenshot(path=str(shot), full_page=True)
                undo.click()
                expect(page.locator("#arena-result")).to_contain_text("Vote undone", timeout=30_000)
                expect(vote_a).to_be_enabled()
                expect(undo).to_be_hidden()
                (vote,) = votes()
                assert vote.undone_at is not None
                # Voting again on that battle works, is kept off the ratings, and cannot be undone.
                page.keyboard.press("1")
                assert vote_clicks() == ["arena-vote-model_b", "arena-vote-model_a"]
                expect(page.locator("#arena-result")).to_contain_text("personal board only", timeout=30_000)
                expect(vote_a).to_be_disabled()
                expect(undo).to_be_hidden()
                assert sorted((v.outcome, v.blind) for v in votes()) == [("model_a", False), ("model_b", True)]
                assert shot.stat().st_size > 10_000
                if os.environ.get("ARENA_SCREENSHOT"):
                    shutil.copy(shot, os.environ["ARENA_SCREENSHOT"])
            finally:
                browser.close()
