"""The hub opened to the public, tried as a hostile visitor would, over HTTP (gradio_client and raw
HTTP) against the real app on SQLite, and the parts that need them on a real PostgreSQL server:

- the client address: a forged X-Forwarded-For from an untrusted peer does not raise the per-IP limit;
  the same header from a trusted proxy does;
- sessions are server-issued signed cookies: a reused Gradio session_hash or a forged cookie reads no
  other session's board and undoes no other session's vote;
- roles (auth mode `token`): a visitor cannot register, queue, upload a gallery, train a LoRA or use
  the maintainer tools; a user's registration waits as `pending` (never loaded, its run never claimed)
  until a maintainer approves it, then its run starts and finishes; quotas refuse with the quota and
  when it resets; galleries wait for review; multi-frame uploads are refused;
- Hugging Face sign-in (auth mode `hf_oauth`) with only the provider's answer faked;
- voiding a session's votes changes the ratings exactly as refitting without them does (SQLite, PostgreSQL);
- every CSV the hub writes here has no formula cell; no page or answer shows the data folder's path;
- two replicas on one PostgreSQL database: a burst of registrations admits exactly the quota.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pandas as pd
import pytest
import yaml
from PIL import Image
from sqlalchemy import func, select

from hub.access import client_address, hash_token
from hub.config import AuthSettings, Quotas, ServerSettings, TokenSpec
from leaderboards import moderation, queue
from leaderboards.arena import Arena, ArenaLimits, SessionHasher
from leaderboards.arena_sessions import load_salt
from leaderboards.arena_votes import tallies_frame, votes_frame
from leaderboards.boards import BoardSource, board
from leaderboards.csv_safe import formula_cells
from leaderboards.db import Database
from leaderboards.ratings import bradley_terry, bradley_terry_from_counts
from leaderboards.results import upsert_checkpoint
from leaderboards.schema import AuditEntry, Checkpoint, EvalRun, UsageEvent, Vote
from tests.hub_app import client_session, fake_hugging_face, running_app

try:
    from tests.pg import postgres_server, postgres_url  # noqa: F401 - fixtures
except ImportError:  # tests/ is not a package
    from pg import postgres_server, postgres_url  # noqa: F401

ROOT = Path(__file__).resolve().parent.parent
TOKENS = {"alice": "alice-secret-token", "bob": "bob-secret-token", "ops": "ops-secret-token"}
AUTH = AuthSettings(
    mode="token",
    tokens=[TokenSpec(id=name, sha256=hash_token(token), role="maintainer" if name == "ops" else "user")
            for name, token in TOKENS.items()],
)
# 10 GPU-seconds per image: a 20-image run is 200 s of a 360 s (0.1 GPU-hour) daily quota.
QUOTAS = Quotas(registrations_per_day=2, eval_gpu_hours_per_day=0.1, eval_gpu_seconds_per_image=10, galleries_per_day=1)


def token_client(url: str, name: str | None, headers: dict[str, str] | None = None, **kwargs):
    """A gradio_client; `name` signs it in with that token (the API's X-Hub-Token header)."""
    from gradio_client import Client

    headers = dict(headers or {})
    if name:
        headers["X-Hub-Token"] = TOKENS[name]
    return Client(url, verbose=False, ssl_verify=False, headers=headers, **kwargs)


def refused(call, match: str) -> None:
    with pytest.raises(Exception, match=match):
        call()


@pytest.fixture(scope="module")
def public(tmp_path_factory):
    folder = tmp_path_factory.mktemp("public")
    updates = {"auth": AUTH, "quotas": QUOTAS}
    with running_app(folder / "data", f"sqlite:///{folder / 'hub.sqlite3'}", config_updates=updates) as (url, ctx):
        yield url.rstrip("/"), ctx


def _battle_for(ctx, client, a: str = "demo-multilingual", b: str = "demo-english") -> str:
    """A battle served to `client`'s session (as if it had called /battle): votes are what we test."""
    from hub.ui.arena_tab import make_arena

    arena = make_arena(ctx)
    return arena.record_battle(a, b, "p", "a.png", "b.png",
                               session_hash=arena.hasher.hash(client_session(ctx.data_dir, client), "session"))


# ------------------------------------------------------------------------------------ client address


def test_client_address_reads_forwarded_for_only_from_trusted_proxies():
    trusted = ["10.0.0.0/8", "::1/128"]
    assert client_address("127.0.0.1", "1.2.3.4", trusted) == "127.0.0.1"  # untrusted peer: header ignored
    assert client_address("10.1.1.1", "1.2.3.4", trusted) == "1.2.3.4"
    # The right-most hop that is not one of ours: a client's own prefix cannot choose the address.
    assert client_address("10.1.1.1", "6.6.6.6, 1.2.3.4, 10.2.2.2", trusted) == "1.2.3.4"
    assert client_address("10.1.1.1", "10.3.3.3, 10.2.2.2", trusted) == "10.1.1.1"
    assert client_address("10.1.1.1", "garbage", trusted) == "10.1.1.1"
    assert client_address("::1", "2001:db8::5", trusted) == "2001:db8::5"
    with pytest.raises(ValueError, match="not-a-network"):
        ServerSettings(trusted_proxies=["not-a-network"])


def test_auth_settings_resolve_as_documented(monkeypatch):
    monkeypatch.delenv("SPACE_ID", raising=False)
    monkeypatch.delenv("HUB_AUTH_MODE", raising=False)
    assert AuthSettings().resolved_mode == "none" and AuthSettings(auto_approve=True).authors_approve_own
    monkeypatch.setenv("SPACE_ID", "org/space")
    assert AuthSettings().resolved_mode == "hf_oauth"
    assert not AuthSettings(auto_approve=True).authors_approve_own  # never on a Space
    monkeypatch.setenv("HUB_AUTH_MODE", "token")
    assert AuthSettings().resolved_mode == "token"
    monkeypatch.setenv("HUB_AUTH_MODE", "open-sesame")
    with pytest.raises(ValueError, match="HUB_AUTH_MODE"):
        AuthSettings().resolved_mode


def test_forged_forwarded_for_does_not_raise_the_limit_but_a_trusted_proxy_does(tmp_path):
    # votes_per_minute=1 -> 10 votes a minute per address; every vote from a new session and a new header.
    for trusted, expected in (([], 10), (["127.0.0.1/32"], 12)):
        folder = tmp_path / ("trusted" if trusted else "direct")
        updates = {"auth": AUTH, "server": ServerSettings(trusted_proxies=trusted)}
        with running_app(folder / "data", f"sqlite:///{folder / 'hub.sqlite3'}", votes_per_minute=1,
                         config_updates=updates) as (url, ctx):
            accepted, errors = 0, []
            for i in range(12):
                client = token_client(url, None, headers={"X-Forwarded-For": f"203.0.113.{i}"})
                try:
                    client.predict(_battle_for(ctx, client), "tie", api_name="/vote")
                    accepted += 1
                except Exception as err:  # noqa: BLE001 - the limit's refusal
                    errors.append(str(err))
            with ctx.db.session() as s:
                addresses = s.scalar(select(func.count(func.distinct(Vote.ip_hash))))
        assert accepted == expected, errors
        assert all("Too many votes" in e for e in errors)
        assert addresses == (12 if trusted else 1)  # behind our own proxy each header is a real client


def test_generation_is_gpu_time_with_a_budget_per_session_and_address(tmp_path):
    with running_app(tmp_path / "data", f"sqlite:///{tmp_path / 'hub.sqlite3'}", images_per_minute=2,
                     config_updates={"auth": AUTH}) as (url, ctx):
        visitor = token_client(url, None)
        gallery, _ = visitor.predict("1girl, smile", batch=2, steps=2, api_name="/generate")
        assert len(gallery) == 2
        refused(lambda: visitor.predict("1girl", steps=2, api_name="/generate"), "Too many images: at most 2 a minute")
        refused(lambda: token_client(url, None).predict("1girl", steps=2, batch=-3, api_name="/generate"), "Batch count|less than minimum")
        # Another session from the same address has its own budget; the address's is ten times larger.
        token_client(url, None).predict("1girl", steps=2, api_name="/generate")
        # Maintainers are not limited.
        ops = token_client(url, "ops")
        for _ in range(2):
            ops.predict("1girl", batch=2, steps=2, api_name="/generate")
        with ctx.db.session() as s:
            spent = s.scalar(select(func.sum(UsageEvent.amount)).where(UsageEvent.action == "images",
                                                                         UsageEvent.user.like("session:%")))
        assert spent == 3  # the refused requests spent nothing


# ------------------------------------------------------------------------------------------ sessions


def test_sessions_are_server_issued_and_a_forged_one_gets_a_new_session(public):
    url, ctx = public
    page = httpx.get(url + "/", cookies={"hub_session": "forged.value.here"})
    assert page.status_code == 200
    issued = page.headers.get("set-cookie", "")
    assert issued.startswith("hub_session=") and "HttpOnly" in issued and "forged" not in issued
    assert page.headers["x-content-type-options"] == "nosniff"
    again = httpx.get(url + "/", cookies={"hub_session": issued.split(";")[0].split("=", 1)[1]})
    assert "set-cookie" not in again.headers  # a cookie we signed is kept

    voter = token_client(url, None)
    battle = _battle_for(ctx, voter)
    voter.predict(battle, "model_a", api_name="/vote")
    # A second client that reuses the voter's Gradio session_hash, and one with a forged cookie.
    copycat = token_client(url, None)
    copycat.session_hash = voter.session_hash
    forger = token_client(url, None, httpx_kwargs={"cookies": {"hub_session": "InZvdGVyIg.AAAAAA.forged"}})
    forger.session_hash = voter.session_hash
    for other in (copycat, forger):
        refused(lambda: other.predict(battle, api_name="/undo_vote"), "only undo your own vote")
        message, _ = other.predict(api_name="/personal_board")
        assert "vote on 20 more" in message  # its own empty board, not the voter's
    assert "vote on 19 more" in voter.predict(api_name="/personal_board")[0]
    with ctx.db.session() as s:
        assert s.execute(select(Vote.undone_at).where(Vote.battle_id == battle)).scalar_one() is None


# ---------------------------------------------------------------------------------------------- roles


def _uploads(ctx, *names: str) -> list[Path]:
    uploads = ctx.data_dir / "uploads"
    uploads.mkdir(parents=True, exist_ok=True)
    folders = []
    for name in names:
        if not (uploads / name).exists():
            shutil.copytree(ROOT / "models" / "demo-english", uploads / name)
        folders.append(uploads / name)
    return folders


def _portraits(folder: Path, n: int = 3) -> list[str]:
    paths = []
    for i in range(n):
        path = folder / f"portrait-{i}.png"
        Image.new("RGB", (64, 64), (40 * i, 120, 200)).save(path)
        paths.append(str(path))
    return paths


def test_visitors_are_refused_every_signed_in_action_and_nothing_changes(public, tmp_path):
    from gradio_client import handle_file

    url, ctx = public
    _uploads(ctx, "visitor-model")
    visitor = token_client(url, None)
    with ctx.db.session() as s:
        before = (s.scalar(select(func.count()).select_from(Checkpoint)), s.scalar(select(func.count()).select_from(EvalRun)),
                  s.scalar(select(func.count()).select_from(UsageEvent)))
    refused(lambda: visitor.predict("visitor-model", "Visitor", "folder", "visitor-model", "sd15", api_name="/register_checkpoint"),
            "Sign in to register a checkpoint")
    refused(lambda: visitor.predict("demo-english", "demo-characters", "", 1, 1, api_name="/queue_eval"), "Sign in to queue an eval run")
    files = [handle_file(p) for p in _portraits(tmp_path)]
    refused(lambda: visitor.predict("demo-characters", "aqua_diva", files, api_name="/upload_gallery"),
            "Sign in to upload a reference gallery")
    refused(lambda: visitor.predict(files + [handle_file(_portraits(tmp_path, 4)[3])], "Mine", "mine", "demo-english", 10,
                                    api_name="/train_lora"), "Sign in to train a LoRA on the server")
    refused(lambda: visitor.predict(api_name="/maintainer_view"), "Only maintainers")
    refused(lambda: visitor.predict("demo-english", "reject", api_name="/moderate_checkpoint"), "Only maintainers")
    refused(lambda: visitor.predict("session", "0" * 64, "void", api_name="/moderate_votes"), "Only maintainers")
    refused(lambda: visitor.predict(api_name="/export_audit"), "Only maintainers")
    refused(lambda: token_client(url, None, headers={"X-Hub-Token": "guess"}).predict(api_name="/whoami"), "token is not valid")
    # A user is no maintainer either.
    refused(lambda: token_client(url, "bob").predict(api_name="/maintainer_view"), "Only maintainers")
    # A visitor still votes (the arena is open), and /whoami says who is who.
    assert visitor.predict(api_name="/whoami") == {"role": "visitor", "user": None, "auth_mode": "token"}
    assert token_client(url, "ops").predict(api_name="/whoami")["role"] == "maintainer"
    with ctx.db.session() as s:
        after = (s.scalar(select(func.count()).select_from(Checkpoint)), s.scalar(select(func.count()).select_from(EvalRun)),
                 s.scalar(select(func.count()).select_from(UsageEvent)))
    assert after == before
    assert not (ctx.data_dir / "galleries_pending").exists() or not any((ctx.data_dir / "galleries_pending").iterdir())


def test_a_pending_checkpoint_is_never_loaded_until_approved_then_its_run_starts(public):
    from hub.ui.context import start_eval_worker

    url, ctx = public
    _uploads(ctx, "alice-one", "alice-two", "alice-three")
    alice, ops = token_client(url, "alice"), token_client(url, "ops")

    message, _, _ = alice.predict("alice-one", "Alice One", "folder", "alice-one", "sd15", api_name="/register_checkpoint")
    assert "waits for a maintainer's approval" in message
    assert str(ctx.data_dir) not in message and "uploads" not in message.split("from")[0]
    with ctx.db.session() as s:
        row = s.get(Checkpoint, "alice-one")
        assert (row.approval, row.owner) == ("pending", "token:alice")
    # Pending: unknown to the engine (never listed, never loaded), and generation with it is refused.
    assert "alice-one" not in ctx.engine.checkpoint_ids()
    refused(lambda: alice.predict("1girl", checkpoint="alice-one", api_name="/generate"), "alice-one")

    # The display name is plain text: markup and formula starts are refused, and cost no quota.
    for name in ('=HYPERLINK("http://x","click")', "<img src=x onerror=alert(1)>"):
        refused(lambda: alice.predict("alice-two", name, "folder", "alice-two", "sd15", api_name="/register_checkpoint"),
                "display name must be plain text")
    alice.predict("alice-two", "Alice Two", "folder", "alice-two", "sd15", api_name="/register_checkpoint")
    refused(lambda: alice.predict("alice-three", "Alice Three", "folder", "alice-three", "sd15", api_name="/register_checkpoint"),
            r"Over quota: 2 checkpoint registrations a day, 2 used; room again at \d{4}-\d\d-\d\d \d\d:\d\d UTC")
    with ctx.db.session() as s:
        assert s.get(Checkpoint, "alice-three") is None

    # A run of the pending checkpoint waits in the queue (240 GPU-seconds of a 360 s quota).
    alice.predict("alice-one", "demo-characters", "", 1, 2, api_name="/queue_eval")
    with ctx.db.session() as s:
        run = s.execute(select(EvalRun).where(EvalRun.checkpoint_id == "alice-one")).scalar_one()
        run_id = run.id
        assert (run.status, run.owner, run.gpu_seconds) == ("queued", "token:alice", 2 * 10 * 10.0)  # 2 items x 10 languages
    assert queue.claim_next_run(ctx.db, "probe") is None  # nothing of a pending checkpoint is ever claimed
    refused(lambda: alice.predict("alice-two", "demo-characters", "", 1, 2, api_name="/queue_eval"),
            r"Over quota: 0\.10 GPU-hours of queued evals a day, 0\.06 used; room again at")
    refused(lambda: alice.predict("alice-two", "demo-characters", "", 16, 0, api_name="/queue_eval"),
            r"this run needs [\d.]+ GPU-hours, more than the daily quota of 0\.10")

    # The maintainer sees it first in the list, approves it, and the worker runs it to the end.
    checkpoints, *_ = ops.predict(api_name="/maintainer_view")
    table = pd.DataFrame(checkpoints["data"], columns=checkpoints["headers"])
    assert table.iloc[0]["approval"] == "pending" and "alice-one" in set(table["checkpoint"])
    assert "Approved alice-one" in ops.predict("alice-one", "approve", api_name="/moderate_checkpoint")
    refused(lambda: ops.predict("alice-one", "approve", api_name="/moderate_checkpoint"), "not waiting for approval")
    start_eval_worker(ctx)
    deadline = time.monotonic() + 900  # generous: a loaded 2-core machine is slow, never wrong
    status = error = None
    while time.monotonic() < deadline:
        with ctx.db.session() as s:
            status, error = s.execute(select(EvalRun.status, EvalRun.error).where(EvalRun.id == run_id)).one()
        if status in ("complete", "failed"):
            break
        time.sleep(1)
    ctx.eval_worker.stop()
    ctx.eval_worker = None
    assert status == "complete", error
    assert "alice-one" in ctx.engine.checkpoint_ids()

    assert "alice-one" in set(board("characters").table(BoardSource(ctx.db))["checkpoint"])

    # Hide it: off the engine and every board; the audit log has every action.
    assert "Hid alice-one" in ops.predict("alice-one", "hide", api_name="/moderate_checkpoint")
    assert "alice-one" not in ctx.engine.checkpoint_ids()
    assert "alice-one" not in set(board("characters").table(BoardSource(ctx.db))["checkpoint"])
    refused(lambda: ops.predict("demo-english", "hide", api_name="/moderate_checkpoint"), "comes from the hub's config")
    with ctx.db.session() as s:
        actions = [a for (a,) in s.execute(select(AuditEntry.action).order_by(AuditEntry.id))]
    assert actions[-2:] == ["approve_checkpoint", "hide_checkpoint"]


def test_galleries_wait_for_review_and_multi_frame_uploads_are_refused(public, tmp_path):
    from gradio_client import handle_file

    from evals.galleries import list_galleries

    url, ctx = public
    bob, ops = token_client(url, "bob"), token_client(url, "ops")
    gif = tmp_path / "animated.gif"
    frames = [Image.new("RGB", (64, 64), (255 * i, 0, 0)) for i in range(2)]
    frames[0].save(gif, save_all=True, append_images=frames[1:])
    files = [handle_file(p) for p in _portraits(tmp_path)]
    refused(lambda: bob.predict("demo-characters", "aqua_diva", files[:2] + [handle_file(gif)], api_name="/upload_gallery"),
            "multi-frame images are not accepted")
    before = list_galleries(ctx.data_dir)
    message, _, _ = bob.predict("demo-characters", "aqua_diva", files, api_name="/upload_gallery")
    assert "A maintainer reviews them" in message
    assert list_galleries(ctx.data_dir) == before  # the gallery in use is unchanged
    refused(lambda: bob.predict("demo-characters", "aqua_diva", files, api_name="/upload_gallery"),
            "Over quota: 1 gallery uploads a day, 1 used")
    _, galleries, *_ = ops.predict(api_name="/maintainer_view")
    pending = pd.DataFrame(galleries["data"], columns=galleries["headers"])
    assert list(pending["owner"]) == ["token:bob"] and list(pending["character_id"]) == ["aqua_diva"]
    refused(lambda: ops.predict("../../etc", "accept", api_name="/moderate_gallery"), "Unknown pending gallery")
    ops.predict(pending.iloc[0]["stage_id"], "accept", api_name="/moderate_gallery")
    used = {(g.suite, g.character_id): g for g in list_galleries(ctx.data_dir)}
    assert used[("demo-characters", "aqua_diva")].n_images == 3


def test_maintainer_voids_and_bans_over_http_and_the_audit_csv_has_no_formula(public):
    url, ctx = public
    stuffer, ops = token_client(url, None, headers={"X-Forwarded-For": "192.0.2.9"}), token_client(url, "ops")
    battles = [_battle_for(ctx, stuffer) for _ in range(2)]
    stuffer.predict(battles[0], "model_a", api_name="/vote")
    hasher = SessionHasher(load_salt(ctx.data_dir))
    session_hash = hasher.hash(client_session(ctx.data_dir, stuffer), "session")
    _, _, _, voters, *_ = ops.predict(api_name="/maintainer_view")
    assert session_hash in {row[0] for row in voters["data"]}
    assert "Voided 1 votes" in ops.predict("session", session_hash, "void", api_name="/moderate_votes")
    ops.predict("session", session_hash, "ban", api_name="/moderate_votes")
    refused(lambda: stuffer.predict(battles[1], "model_b", api_name="/vote"), "banned from the arena")
    refused(lambda: ops.predict("session", "../../x", "void", api_name="/moderate_votes"), "64 hexadecimal")
    with ctx.db.session() as s:
        assert s.execute(select(Vote.voided_at).where(Vote.battle_id == battles[0])).scalar_one() is not None
    moderation.record(ctx.db, "=cmd|' /C calc'!A0", "+note", "@target", "-detail\t=1+1")
    path = ops.predict(api_name="/export_audit")
    text = Path(path).read_text(encoding="utf-8")
    assert "calc" in text and formula_cells(text) == []
    assert pd.read_csv(path)["actor"].iloc[0].startswith("'=cmd")


def test_no_page_or_answer_shows_the_data_folder(public):
    url, ctx = public
    secrets = {str(ctx.data_dir), str(ctx.data_dir.resolve())}
    alice, ops = token_client(url, "alice"), token_client(url, "ops")
    pages = [httpx.get(url + path) for path in ("/", "/config", "/gradio_api/info")]
    assert all(page.status_code == 200 for page in pages)
    texts = [page.text for page in pages]
    assert "uploads/" in texts[1]  # the Submit tab's help names the upload folder, relative
    for source in ("folder:/etc", "folder:../../etc", "folder:uploads/nothing-here", "file:/etc/passwd.safetensors"):
        kind, _, location = source.partition(":")
        with pytest.raises(Exception) as err:
            alice.predict("probe-model", "Probe", kind, location, "sd15", api_name="/register_checkpoint")
        texts.append(str(err.value))
    texts.append(json.dumps(ops.predict(api_name="/maintainer_view"), default=str))
    texts.append(json.dumps(alice.predict(api_name="/whoami")))
    for text in texts:
        assert not any(secret in text for secret in secrets), text[:300]


# ---------------------------------------------------------------------------------------- HF sign-in


def test_hugging_face_sign_in_with_the_providers_answer_faked(tmp_path, monkeypatch):
    """Only what Hugging Face would answer is faked (the profile Gradio's OAuth puts in its session);
    the login route, the session cookie and the hub's roles are the real ones."""
    fake_hugging_face(monkeypatch, "carol")
    updates = {"auth": AuthSettings(mode="hf_oauth", maintainers=["carol"])}
    with running_app(tmp_path / "data", f"sqlite:///{tmp_path / 'hub.sqlite3'}", config_updates=updates) as (url, ctx):
        url = url.rstrip("/")
        anonymous = token_client(url, None)
        assert anonymous.predict(api_name="/whoami")["role"] == "visitor"
        refused(lambda: anonymous.predict(api_name="/maintainer_view"), "Only maintainers")
        login = httpx.get(url + "/login/huggingface", follow_redirects=False)
        callback = httpx.get(httpx.URL(url).join(login.headers["location"]), follow_redirects=False)
        session_cookie = callback.cookies.get("session")
        assert session_cookie
        carol = token_client(url, None, httpx_kwargs={"cookies": {"session": session_cookie}})
        assert carol.predict(api_name="/whoami") == {"role": "maintainer", "user": "hf:carol", "auth_mode": "hf_oauth"}
        carol.predict(api_name="/maintainer_view")


# ------------------------------------------------------------------------------ voiding = refitting


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_voiding_a_sessions_votes_equals_refitting_without_them(backend, tmp_path, request):
    url = f"sqlite:///{tmp_path / 'v.sqlite3'}" if backend == "sqlite" else request.getfixturevalue("postgres_url")
    db = Database(url, migrate=True)
    models = ["m-a", "m-b", "m-c"]
    with db.write_session() as s:
        for m in models:
            upsert_checkpoint(s, id=m, display_name=m, family="sd15", source=f"builtin:{m}", is_demo=True)
    arena = Arena(db, tmp_path / "img", SessionHasher(b"salt"), candidates=lambda: models,
                  limits=ArenaLimits(votes_per_minute=1000))
    honest = [f"voter-{i}" for i in range(6)]
    outcomes = ["model_a", "model_b", "tie", "tie (bothbad)"]
    for k in range(60):  # honest voters: a mix of everything
        a, b = models[k % 3], models[(k + 1) % 3]
        session = honest[k % len(honest)]
        battle = arena.record_battle(a, b, "p", "a", "b", session_hash=arena.hasher.hash(session, "session"))
        arena.record_vote(battle, outcomes[(k * 7) % 4], session, f"10.0.0.{k % 5}")
    for _ in range(40):  # one stuffer: m-c always wins
        battle = arena.record_battle("m-c", "m-a", "p", "a", "b", session_hash=arena.hasher.hash("stuffer", "session"))
        arena.record_vote(battle, "model_a", "stuffer", "10.9.9.9")
    with db.session() as s:
        before = bradley_terry_from_counts(tallies_frame(s), num_bootstrap=20, seed=0)
    voided = moderation.void_votes(db, "token:ops", session_hash=arena.hasher.hash("stuffer", "session"))
    assert voided == 40
    with db.session() as s:
        after = bradley_terry_from_counts(tallies_frame(s), num_bootstrap=20, seed=0)
        remaining = votes_frame(s)
        kept = s.scalar(select(func.count()).select_from(Vote))
    refit = bradley_terry(remaining.rename(columns={"outcome": "winner"})[["model_a", "model_b", "winner"]],
                          num_bootstrap=20, seed=0)
    assert kept == 100 and len(remaining) == 60  # the voided votes are kept, marked, and not counted
    pd.testing.assert_frame_equal(after[["rating", "lower", "upper", "battles", "rank"]],
                                  refit[["rating", "lower", "upper", "battles", "rank"]], check_exact=False, rtol=1e-9)
    assert before.loc["m-c", "rating"] > after.loc["m-c", "rating"] + 50  # the stuffing had moved the board
    db.dispose()


def test_cancelled_runs_stay_cancelled_and_failed_ones_can_be_requeued(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'runs.sqlite3'}", migrate=True)
    with db.write_session() as s:
        upsert_checkpoint(s, id="m-a", display_name="m-a", family="sd15", source="builtin:m-a", is_demo=True)
    run_id = queue.queue_run(db, "m-a", "characters")
    claimed = queue.claim_next_run(db, "worker-1")
    assert claimed is not None and claimed.id == run_id
    moderation.cancel_run(db, "token:ops", run_id)
    # The worker finishes its batch afterwards: its write is refused, the cancellation stands.
    assert not queue.finish_run(db, run_id, status="complete", worker_id="worker-1", n_generated=5)
    with db.session() as s:
        run = s.get(EvalRun, run_id)
        assert (run.status, run.error, run.n_generated) == ("failed", "Cancelled by a maintainer.", 0)
    with pytest.raises(Exception, match="only queued or running runs can be cancelled"):
        moderation.cancel_run(db, "token:ops", run_id)
    moderation.requeue_run(db, "token:ops", run_id)
    with pytest.raises(Exception, match="only failed runs can be requeued"):
        moderation.requeue_run(db, "token:ops", run_id)
    again = queue.claim_next_run(db, "worker-2")
    assert again is not None and again.id == run_id
    assert queue.finish_run(db, run_id, status="complete", worker_id="worker-2")
    with db.session() as s:
        assert s.get(EvalRun, run_id).status == "complete"
        assert [a for (a,) in s.execute(select(AuditEntry.action).order_by(AuditEntry.id))] == ["cancel_run", "requeue_run"]
    db.dispose()


# ------------------------------------------------------------------- two replicas, quotas exactly


REPLICA = """\
import json, os, socket, sys, time
root, config_path = sys.argv[1], sys.argv[2]
sys.path.insert(0, root)
from hub.config import load_config
from hub.ui import build_app, launch_kwargs
from hub.ui.context import create_context

ctx = create_context(load_config(config_path), start_worker=False)
demo = build_app(ctx)
demo.queue(default_concurrency_limit=8)
with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, **launch_kwargs(ctx))
print("READY " + json.dumps({"url": demo.local_url}), flush=True)
while True:
    time.sleep(3600)
"""


def test_two_replicas_on_postgresql_hold_the_quota_exactly(tmp_path, builtin_root, postgres_server):
    database_url = postgres_server.create_database()
    data = tmp_path / "data"
    (data / "uploads").mkdir(parents=True)
    (data / "builtin").symlink_to(builtin_root, target_is_directory=True)
    for i in range(8):
        (data / "uploads" / f"m{i}").mkdir()
        shutil.copy(ROOT / "models" / "demo-english" / "model_index.json", data / "uploads" / f"m{i}")
        shutil.copytree(ROOT / "models" / "demo-english" / "unet", data / "uploads" / f"m{i}" / "unet")
    defaults = {"width": 64, "height": 64, "steps": 3, "cfg": 5.0, "sampler": "euler_a"}
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({
        "default_checkpoint": "demo-random", "data_dir": str(data), "database_url": database_url, "demo_world": None,
        "auth": {"mode": "token", "tokens": [{"id": "alice", "sha256": hash_token(TOKENS["alice"])}]},
        "quotas": {"registrations_per_day": 3},
        "checkpoints": [{"id": "demo-random", "name": "Demo", "family": "sd15", "source": "builtin:demo-random",
                         "is_demo": True, "defaults": defaults}],
    }), encoding="utf-8")
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1", "HUB_SESSION_SALT": "shared-salt"}
    script = tmp_path / "replica.py"
    script.write_text(REPLICA, encoding="utf-8")
    processes, urls = [], []
    try:
        for name in ("a", "b"):
            log = tmp_path / f"{name}.log"
            processes.append(subprocess.Popen([sys.executable, str(script), str(ROOT), str(config)], stdout=log.open("w"),
                                              stderr=subprocess.STDOUT, env=env, cwd=ROOT))
        for name, process in zip(("a", "b"), processes):
            log = tmp_path / f"{name}.log"
            deadline = time.monotonic() + 240
            while not any(line.startswith("READY ") for line in log.read_text(errors="replace").splitlines()):
                assert process.poll() is None and time.monotonic() < deadline, log.read_text(errors="replace")[-3000:]
                time.sleep(0.3)
            ready = next(line for line in log.read_text().splitlines() if line.startswith("READY "))
            urls.append(json.loads(ready[len("READY "):])["url"])
        clients = [token_client(urls[i % 2], "alice") for i in range(8)]

        def register(i: int) -> str:
            try:
                return clients[i].predict(f"burst-{i}", f"Burst {i}", "folder", f"m{i}", "sd15", api_name="/register_checkpoint")[0]
            except Exception as err:  # noqa: BLE001 - the quota's refusal
                return f"refused: {err}"

        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(register, range(8)))
        accepted = [a for a in answers if not a.startswith("refused")]
        assert len(accepted) == 3, answers
        assert all("Over quota: 3 checkpoint registrations a day" in a for a in answers if a.startswith("refused"))
        db = Database(database_url)
        with db.session() as s:
            assert s.scalar(select(func.count()).select_from(Checkpoint).where(Checkpoint.owner == "token:alice")) == 3
            assert s.scalar(select(func.count()).select_from(UsageEvent).where(UsageEvent.action == "register")) == 3
        db.dispose()
    finally:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
