"""The public hub in a real headless Chromium: the account bar, token sign-in, the maintainer tab (hidden
from visitors and users, shown to maintainers, its approve action) and the "Sign in with Hugging Face"
button, with only Hugging Face's answer faked (the profile Gradio's OAuth hands the session)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from hub.access import hash_token
from hub.config import AuthSettings, TokenSpec
from leaderboards.schema import AuditEntry, Checkpoint
from tests.hub_app import fake_hugging_face, running_app
# Importing test_browser skips this module too where Chromium is missing (and fails with REQUIRE_CHROMIUM=1).
from tests.test_browser import browser, shoot  # noqa: F401 - browser is a fixture

ROOT = Path(__file__).resolve().parent.parent
TOKENS = {"dana": "dana-token", "ops": "ops-token"}
AUTH = AuthSettings(mode="token", tokens=[TokenSpec(id="dana", sha256=hash_token(TOKENS["dana"])),
                                          TokenSpec(id="ops", sha256=hash_token(TOKENS["ops"]), role="maintainer")])

pytestmark = [pytest.mark.timeout(300)]


def open_page(browser, url: str):
    from playwright.sync_api import expect

    page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    page.goto(url, wait_until="domcontentloaded")
    expect(page.locator("#tab-generate-button")).to_be_visible(timeout=60_000)
    page.wait_for_function("() => window.__sakugaReady === true", timeout=30_000)
    return page


def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("BROWSER_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def sign_in(page, token: str) -> None:
    page.locator("#account-token input").fill(token)
    page.locator("#account-sign-in").click()


def test_maintainer_tab_is_for_maintainers_and_approves_a_checkpoint(browser, tmp_path):
    from playwright.sync_api import expect

    from leaderboards import submissions
    from hub.families import FAMILIES

    with running_app(tmp_path / "data", f"sqlite:///{tmp_path / 'hub.sqlite3'}", config_updates={"auth": AUTH}) as (url, ctx):
        uploads = ctx.data_dir / "uploads"
        uploads.mkdir(parents=True)
        shutil.copytree(ROOT / "models" / "demo-english", uploads / "dana-model")
        submissions.register_checkpoint(ctx.db, "dana-model", f"folder:{uploads / 'dana-model'}", "sd15", families=FAMILIES,
                                        allowed_roots=[uploads], owner="token:dana", approved=False)

        page = open_page(browser, url)
        expect(page.locator("#account-status")).to_contain_text("Not signed in", timeout=30_000)
        expect(page.locator("#tab-maintainer-button")).to_have_count(0)
        sign_in(page, TOKENS["dana"])  # a user: still no maintainer tab
        expect(page.locator("#account-status")).to_contain_text("Signed in as token:dana (user)", timeout=30_000)
        expect(page.locator("#tab-maintainer-button")).to_have_count(0)
        shoot(page, shots(tmp_path), "public-01-user")

        page.locator("#account-sign-out").click()
        expect(page.locator("#account-status")).to_contain_text("Not signed in", timeout=30_000)
        sign_in(page, "wrong-token")
        expect(page.get_by_text("That sign-in token is not valid").first).to_be_visible(timeout=30_000)
        sign_in(page, TOKENS["ops"])
        expect(page.locator("#account-status")).to_contain_text("token:ops (maintainer)", timeout=30_000)
        expect(page.locator("#tab-maintainer-button")).to_be_visible(timeout=30_000)
        page.locator("#tab-maintainer-button").click()
        page.locator("#maintainer-refresh").click()
        expect(page.locator("#maintainer-checkpoints")).to_contain_text("dana-model", timeout=30_000)
        expect(page.locator("#maintainer-checkpoints")).to_contain_text("pending")
        page.locator("#maintainer-checkpoint input").fill("dana-model")
        page.locator("#maintainer-checkpoint-go").click()  # "approve" is the default action
        expect(page.locator("#maintainer-message")).to_contain_text("Approved dana-model", timeout=30_000)
        expect(page.locator("#maintainer-audit")).to_contain_text("approve_checkpoint", timeout=30_000)
        shoot(page, shots(tmp_path), "public-02-maintainer")
        with ctx.db.session() as s:
            assert s.get(Checkpoint, "dana-model").approval == "approved"
            assert s.query(AuditEntry).filter(AuditEntry.actor == "token:ops").count() == 1

        # The session stays signed in across a reload (the cookie is the server's), and a fresh
        # browser context is a new visitor.
        page.reload(wait_until="domcontentloaded")
        expect(page.locator("#account-status")).to_contain_text("token:ops (maintainer)", timeout=60_000)
        other = open_page(browser, url)
        expect(other.locator("#account-status")).to_contain_text("Not signed in", timeout=30_000)
        expect(other.locator("#tab-maintainer-button")).to_have_count(0)


def test_sign_in_with_hugging_face_button(browser, tmp_path, monkeypatch):
    from playwright.sync_api import expect

    fake_hugging_face(monkeypatch, "erin")
    updates = {"auth": AuthSettings(mode="hf_oauth", maintainers=["erin"])}
    with running_app(tmp_path / "data", f"sqlite:///{tmp_path / 'hub.sqlite3'}", config_updates=updates) as (url, _):
        page = open_page(browser, url)
        expect(page.locator("#account-status")).to_contain_text("Not signed in", timeout=30_000)
        button = page.locator("#account-login")
        expect(button).to_contain_text("Sign in with Hugging Face")
        expect(page.locator("#tab-maintainer-button")).to_have_count(0)
        button.click()
        expect(page.locator("#account-status")).to_contain_text("Signed in as hf:erin (maintainer)", timeout=60_000)
        expect(page.locator("#tab-maintainer-button")).to_be_visible(timeout=30_000)
        shoot(page, shots(tmp_path), "public-03-hf-login")
