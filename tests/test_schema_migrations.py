"""Schema and migrations: empty and populated upgrades (SQLite and PostgreSQL), no drift between
schema.py and the migrations, constraints enforced by the database, SQLite settings, killed writers."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, inspect, select, text
from sqlalchemy.exc import IntegrityError

from leaderboards import results
from leaderboards.db import (
    Database,
    current_revision,
    downgrade,
    head_revision,
    init_db,
    normalize_url,
    resolve_database_url,
    upgrade,
)
from leaderboards.schema import Base, Battle, Checkpoint, Prompt, PromptSuite, Vote

try:
    from tests.pg import postgres_server, postgres_url  # noqa: F401 - fixtures
except ImportError:  # tests/ is not a package: import from the folder itself
    from pg import postgres_server, postgres_url  # noqa: F401

REPO_ROOT = Path(__file__).resolve().parent.parent
TABLES = {"checkpoints", "adapters", "prompt_suites", "prompts", "eval_runs", "samples", "scores", "battles", "votes", "vote_tallies"}


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'hub.sqlite3'}"
    return request.getfixturevalue("postgres_url")


def test_empty_database_upgrades_to_head_without_drift(url):
    db = init_db(url)
    try:
        assert current_revision(db.engine) == head_revision()
        assert TABLES <= set(inspect(db.engine).get_table_names())
        with db.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
        assert diff == [], f"schema.py and the migrations differ: {diff}"
        init_db(url).dispose()  # idempotent at head
    finally:
        db.dispose()


def _populate_at_0001(db: Database) -> None:
    now = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    later = now + dt.timedelta(hours=1)
    with db.session() as s:
        for cid in ("alpha", "beta"):
            s.execute(
                text("INSERT INTO checkpoints (id, display_name, family, source, is_demo, status, created_at) "
                     "VALUES (:id, :id, 'sd15', :src, false, 'available', :t)"),
                {"id": cid, "src": f"builtin:{cid}", "t": now},
            )
        for i, outcome in enumerate(["model_a", "model_a", "tie", "model_b", "tie (bothbad)"]):
            s.execute(
                text("INSERT INTO battles (id, kind, model_a, model_b, prompt, image_a, image_b, image_source, created_at, expires_at) "
                     "VALUES (:id, 'generate', 'alpha', 'beta', 'p', 'a.png', 'b.png', 'generated', :t, :e)"),
                {"id": f"battle-{i:02d}-xxxxxxxxxxxxxxxxxxxxxxxx", "t": now, "e": later},
            )
            s.execute(
                text("INSERT INTO votes (battle_id, outcome, created_at) VALUES (:b, :o, :t)"),
                {"b": f"battle-{i:02d}-xxxxxxxxxxxxxxxxxxxxxxxx", "o": outcome, "t": now},
            )


def test_populated_database_upgrades_and_keeps_data(url):
    db = Database(url)
    try:
        upgrade(db.engine, "0001")
        assert current_revision(db.engine) == "0001"
        assert "vote_tallies" not in inspect(db.engine).get_table_names()
        _populate_at_0001(db)
        upgrade(db.engine)  # to head: creates vote_tallies and backfills it from the stored votes
        assert current_revision(db.engine) == head_revision()
        with db.session() as s:
            assert s.scalar(select(func.count()).select_from(Vote)) == 5
            assert s.scalar(select(func.count()).select_from(Checkpoint)) == 2
            tallies = {(a, b, o): n for a, b, o, n in s.execute(text("SELECT model_a, model_b, outcome, n FROM vote_tallies"))}
        assert tallies == {("alpha", "beta", "model_a"): 2, ("alpha", "beta", "tie"): 1,
                           ("alpha", "beta", "model_b"): 1, ("alpha", "beta", "tie (bothbad)"): 1}
        downgrade(db.engine, "0001")  # and back again, data intact
        assert "vote_tallies" not in inspect(db.engine).get_table_names()
        upgrade(db.engine)
        with db.session() as s:
            assert s.scalar(text("SELECT SUM(n) FROM vote_tallies")) == 5
    finally:
        db.dispose()


def test_constraints_are_enforced_by_the_database(url):
    db = init_db(url)
    try:
        _populate_checkpoints(db)
        battle_id = "b" * 32
        with db.session() as s:
            s.add(Battle(id=battle_id, model_a="alpha", model_b="beta", prompt="p", image_a="a", image_b="b",
                         expires_at=dt.datetime.now(dt.timezone.utc)))
        with pytest.raises(IntegrityError, match="ck_votes_outcome"):  # CHECK on the outcome
            with db.session() as s:
                s.add(Vote(battle_id=battle_id, outcome="bothbad"))
        with db.session() as s:
            s.add(Vote(battle_id=battle_id, outcome="tie (bothbad)"))
        with pytest.raises(IntegrityError, match=r"(?i)unique|duplicate key"):  # one vote per battle
            with db.session() as s:
                s.add(Vote(battle_id=battle_id, outcome="model_a"))
        with pytest.raises(IntegrityError, match=r"(?i)foreign key"):  # foreign key (on SQLite too: PRAGMA foreign_keys)
            with db.session() as s:
                s.add(Vote(battle_id="c" * 32, outcome="model_a"))
        with pytest.raises(IntegrityError, match="ck_battles_distinct_models"):  # a battle needs two different models
            with db.session() as s:
                s.add(Battle(id="d" * 32, model_a="alpha", model_b="alpha", prompt="p", image_a="a", image_b="b",
                             expires_at=dt.datetime.now(dt.timezone.utc)))
        with db.session() as s:
            assert s.scalar(select(func.count()).select_from(Vote)) == 1
    finally:
        db.dispose()


def _populate_checkpoints(db: Database) -> None:
    with db.session() as s:
        results.upsert_checkpoint(s, "alpha", "Alpha", "sd15", "builtin:alpha", None, True)
        results.upsert_checkpoint(s, "beta", "Beta", "sd15", "builtin:beta", None, True)


def test_results_helpers_are_idempotent(url):
    db = init_db(url)
    try:
        prompts = [{"item_id": f"c{i}", "language": lang, "text": f"{lang} {i}", "meta": {"tier": "popular"}}
                   for i in range(3) for lang in ("en", "ja")]
        with db.session() as s:
            first = results.get_or_create_suite(s, "characters", "h1", prompts)
            results.upsert_checkpoint(s, "alpha", "Alpha", "sd15", "builtin:alpha", None, True)
        with db.session() as s:
            again = results.get_or_create_suite(s, "characters", "h1", prompts)
            other = results.get_or_create_suite(s, "characters", "h2", prompts[:2])
            row = results.upsert_checkpoint(s, "alpha", "Alpha v2", "sdxl", "builtin:alpha", "ab" * 32, False)
            assert row.display_name == "Alpha v2" and row.sha256 == "ab" * 32 and row.status == "available"
        assert first.id == again.id != other.id
        with db.session() as s:
            assert s.scalar(select(func.count()).select_from(Prompt).where(Prompt.suite_id == first.id)) == 6
            assert s.scalar(select(func.count()).select_from(PromptSuite)) == 2
            assert s.get(Prompt, 1).meta == {"tier": "popular"}
    finally:
        db.dispose()


def test_sqlite_connection_settings(tmp_path):
    db = init_db(f"sqlite:///{tmp_path / 'x' / 'hub.sqlite3'}")  # creates the parent folder
    try:
        with db.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 5000
    finally:
        db.dispose()


def test_database_url_resolution(monkeypatch, tmp_path):
    monkeypatch.delenv("HUB_DATABASE_URL", raising=False)
    monkeypatch.setenv("HUB_DATA_DIR", str(tmp_path))
    assert resolve_database_url() == f"sqlite:///{tmp_path.as_posix()}/hub.sqlite3"
    assert resolve_database_url("sqlite:///other.db") == "sqlite:///other.db"
    monkeypatch.setenv("HUB_DATABASE_URL", "postgres://u:p@h/db")
    assert resolve_database_url("sqlite:///other.db") == "postgresql+psycopg://u:p@h/db"
    assert normalize_url("postgresql://h/db") == "postgresql+psycopg://h/db"
    assert normalize_url("postgresql+psycopg://h/db") == "postgresql+psycopg://h/db"


def test_the_cli_and_the_app_open_the_same_database_from_any_folder(monkeypatch, tmp_path):
    """One resolution (core.settings): a relative data folder is under the repository root for the
    storage CLI as for the app's config, whatever the working directory."""
    from core.settings import REPO_ROOT
    from hub.config import load_config

    monkeypatch.delenv("HUB_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    for data_dir in (None, "elsewhere/data"):
        if data_dir is None:
            monkeypatch.delenv("HUB_DATA_DIR", raising=False)
        else:
            monkeypatch.setenv("HUB_DATA_DIR", data_dir)
        app_url = load_config(REPO_ROOT / "spaces_config.yaml").resolved_database_url
        assert resolve_database_url() == app_url
        assert app_url.startswith(f"sqlite:///{REPO_ROOT.as_posix()}/")
        assert str(tmp_path) not in app_url


def test_cli_migrate_and_ratings(tmp_path):
    url = f"sqlite:///{tmp_path / 'cli.sqlite3'}"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    out = subprocess.run([sys.executable, "-m", "leaderboards", "migrate", "--db", url], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert head_revision() in out.stdout
    out = subprocess.run([sys.executable, "-m", "leaderboards", "ratings", "--db", url], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0 and "No arena votes yet" in out.stdout


KILLED_WRITER = textwrap.dedent(
    """
    import sys, time
    from leaderboards.db import Database
    from leaderboards import results
    db = Database(sys.argv[1])
    prompts = [{"item_id": f"item{i}", "language": "en", "text": "t" * 50} for i in range(5000)]
    with db.write_session() as s:
        results.get_or_create_suite(s, "big-suite", "hash", prompts[:2500])
        s.flush()
        print("HALFWAY", flush=True)
        time.sleep(60)  # killed here, in the middle of the transaction
        results.get_or_create_suite(s, "big-suite", "hash", prompts[2500:])
    """
)


def test_killed_writer_leaves_no_partial_rows(url, tmp_path):
    init_db(url).dispose()
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, url], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout.readline().strip() == "HALFWAY"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    db = Database(url)
    try:
        with db.session() as s:  # the server (or SQLite's WAL recovery) rolled the transaction back
            assert s.scalar(select(func.count()).select_from(PromptSuite)) == 0
            assert s.scalar(select(func.count()).select_from(Prompt)) == 0
        if db.is_sqlite:
            with db.engine.connect() as conn:
                assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
        with db.session() as s:  # and the database is writable again
            results.get_or_create_suite(s, "big-suite", "hash", [{"item_id": "x", "language": "en", "text": "t"}])
    finally:
        db.dispose()


def test_leaderboards_never_imports_torch_diffusers_or_gradio():
    code = (
        "import sys, leaderboards.db, leaderboards.schema, leaderboards.ratings, leaderboards.arena, "
        "leaderboards.boards, leaderboards.plots, leaderboards.results, leaderboards.submissions, leaderboards.__main__; "
        "print(sorted(m for m in ('torch', 'diffusers', 'gradio', 'transformers') if m in sys.modules))"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
