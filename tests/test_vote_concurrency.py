"""Votes under load and under failure.

- 32 concurrent gradio_client clients (4 processes x 8 threads) cast 480 votes over HTTP against
  the real app (launched in this process with prevent_thread_lock=True on 127.0.0.1): exactly 480 vote rows, none duplicated, none lost, tallies equal to the votes; on SQLite
  and on a real PostgreSQL server started by the test. Battles are pre-created through
  `leaderboards.arena` (for each client's own session), so the HTTP part is only votes.
- A process killed while casting votes leaves no partial rows: every vote has its tally, and the
  database is consistent and writable afterwards.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import threading
import uuid
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select

from leaderboards.arena import new_battle_id, rebuild_tallies, tallies_frame
from leaderboards.db import Database, init_db
from leaderboards.schema import Battle, Vote, VoteTally, utcnow
from tests.threads import burst

try:
    from tests.pg import postgres_server, postgres_url  # noqa: F401 - fixtures
    from tests.hub_app import cast_votes, running_app, session_cookie, signed_client
except ImportError:  # tests/ is not a package
    from hub_app import cast_votes, running_app, session_cookie, signed_client
    from pg import postgres_server, postgres_url  # noqa: F401

REPO_ROOT = Path(__file__).resolve().parent.parent
N_CLIENTS = 32
N_PROCESSES = 4
N_VOTES = 480  # 15 a client: 32 clients interleave for a quarter of a minute on 2 cores; the suite keeps under 15 minutes
OUTCOMES = ("model_a", "model_b", "tie", "tie (bothbad)")


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'votes.sqlite3'}"
    return request.getfixturevalue("postgres_url")


@pytest.mark.timeout(300)
def test_480_votes_from_32_http_clients(database_url, tmp_path):
    with running_app(tmp_path / "data", database_url, votes_per_minute=10**6) as (url, ctx):
        from hub.ui.arena_tab import make_arena

        arena = make_arena(ctx)
        models = [c.id for c in ctx.config.checkpoints if c.id.startswith("demo-random")]
        assert len(models) >= 2
        sessions = [uuid.uuid4().hex for _ in range(N_CLIENTS)]
        # Each client votes on battles served to its own session (as if it had called /battle).
        # Pre-created in one transaction, so the timed HTTP part is only the votes.
        now = utcnow()
        work: list[list[tuple[str, str]]] = [[] for _ in sessions]
        battles = []
        for i in range(N_VOTES):
            k = i % N_CLIENTS
            a, b = (models[0], models[1]) if i % 2 else (models[1], models[0])
            battle_id = new_battle_id()
            battles.append({"id": battle_id, "kind": "generate", "model_a": a, "model_b": b, "prompt": "prompt",
                            "image_a": "a.png", "image_b": "b.png", "image_source": "generated",
                            "session_hash": arena.hasher.hash(sessions[k], "session"),
                            "created_at": now, "expires_at": now + dt.timedelta(hours=1)})
            work[k].append((battle_id, OUTCOMES[i % 4]))
        with ctx.db.write_session() as s:
            s.execute(insert(Battle), battles)

        # 32 clients as 4 worker processes x 8 threads, each thread its own gradio_client session.
        per_process = N_CLIENTS // N_PROCESSES
        assignments = [[(session_cookie(ctx.data_dir, sessions[k]), work[k]) for k in range(p * per_process, (p + 1) * per_process)]
                       for p in range(N_PROCESSES)]
        with ProcessPoolExecutor(N_PROCESSES, mp_context=multiprocessing.get_context("spawn")) as pool:
            outcomes = list(pool.map(cast_votes, [url] * N_PROCESSES, assignments))
        errors = [e for _, errs in outcomes for e in errs]
        answers = [a for ans, _ in outcomes for a in ans]
        assert not errors, errors[:3]
        assert len(answers) == N_VOTES
        names = {c.name for c in ctx.config.checkpoints}
        assert all(set(pair) <= names and pair[0] != pair[1] for pair in answers)

        from gradio_client import Client

        # A second vote on an already voted battle is refused and adds nothing.
        client = signed_client(url, ctx.data_dir, sessions[0])
        with pytest.raises(Exception, match="already has a vote"):
            client.predict(work[0][0][0], "model_b", api_name="/vote")
        # A battle served to another session is refused too (checked before anything is written).
        with pytest.raises(Exception, match="another session|already has a vote"):
            client.predict(work[1][0][0], "model_b", api_name="/vote")

        db = ctx.db
        with db.session() as s:
            assert s.scalar(select(func.count()).select_from(Vote)) == N_VOTES
            assert s.scalar(select(func.count(func.distinct(Vote.battle_id)))) == N_VOTES
            unvoted = s.scalar(
                select(func.count()).select_from(Battle).outerjoin(Vote, Vote.battle_id == Battle.id).where(Vote.id.is_(None))
            )
            assert unvoted == 0
            stored = Counter(dict(((a, b, o), n) for a, b, o, n in tallies_frame(s).itertuples(index=False)))
            assert sum(stored.values()) == N_VOTES
            sides = {i: (a, b) for i, a, b in s.execute(select(Battle.id, Battle.model_a, Battle.model_b))}
            expected = Counter((*sides[battle_id], outcome) for items in work for battle_id, outcome in items)
            voted = dict(s.execute(select(Vote.battle_id, Vote.outcome)).all())
            assert voted == {battle_id: outcome for items in work for battle_id, outcome in items}
            assert stored == expected


KILLED_VOTER = textwrap.dedent(
    """
    import sys
    from leaderboards.arena import Arena, ArenaLimits, SessionHasher
    from leaderboards.db import Database
    db = Database(sys.argv[1])
    arena = Arena(db, sys.argv[2], SessionHasher(b"salt"), candidates=lambda: [],
                  limits=ArenaLimits(votes_per_minute=10**6))
    for line in sys.stdin:
        battle_id = line.strip()
        arena.record_vote(battle_id, "model_a", session_id="voter")
        print("voted", flush=True)
    """
)


def test_killed_voter_leaves_no_partial_rows(tmp_path):
    from leaderboards.arena import Arena, ArenaLimits, SessionHasher
    from leaderboards.results import upsert_checkpoint

    url = f"sqlite:///{tmp_path / 'kill.sqlite3'}"
    db = init_db(url)
    with db.session() as s:
        upsert_checkpoint(s, "x", "X", "sd15", "builtin:x", None, True)
        upsert_checkpoint(s, "y", "Y", "sd15", "builtin:y", None, True)
    hasher = SessionHasher(b"salt")
    arena = Arena(db, tmp_path, hasher, candidates=lambda: [], limits=ArenaLimits(votes_per_minute=10**6))
    battles = [arena.record_battle("x", "y", "p", "a", "b", session_hash=hasher.hash("voter")) for _ in range(3000)]
    db.dispose()
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_VOTER, url, str(tmp_path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
    )
    try:
        def feed() -> None:
            try:
                proc.stdin.write("\n".join(battles) + "\n")
                proc.stdin.flush()
            except (BrokenPipeError, ValueError):  # the voter was killed mid-feed: expected
                pass

        feeder = threading.Thread(target=feed, daemon=True)
        feeder.start()
        seen = 0
        while seen < 200:  # let it get going, then kill it between (or inside) transactions
            assert proc.stdout.readline().startswith("voted")
            seen += 1
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    db = Database(url)
    try:
        with db.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
        with db.session() as s:
            votes = s.scalar(select(func.count()).select_from(Vote))
            tally = s.scalar(select(func.coalesce(func.sum(VoteTally.n), 0)))
            assert seen <= votes < len(battles)
            assert tally == votes  # vote and tally committed together, or neither
            before = sorted(tallies_frame(s).itertuples(index=False))
        with db.write_session() as s:
            rebuild_tallies(s)
        with db.session() as s:
            assert sorted(tallies_frame(s).itertuples(index=False)) == before
        arena = Arena(db, tmp_path, hasher, candidates=lambda: [], limits=ArenaLimits(votes_per_minute=10**6))
        arena.record_vote(battles[-1], "tie", session_id="voter")  # still writable
    finally:
        db.dispose()


@pytest.mark.timeout(120)
def test_burst_is_held_to_the_limits_exactly(database_url, tmp_path):
    """20 simultaneous votes from one session with a limit of 5 per minute: exactly 5 accepted (the
    check and the insert are serialised per session and per IP). The same for new battles, and for
    the per-IP limit across many sessions."""
    from PIL import Image

    from leaderboards.arena import Arena, ArenaLimits, SessionHasher
    from leaderboards.results import upsert_checkpoint

    db = init_db(database_url)
    try:
        with db.session() as s:
            for cid in ("x", "y", "z"):
                upsert_checkpoint(s, cid, cid.upper(), "sd15", f"builtin:{cid}", None, True)
        hasher = SessionHasher(b"salt")
        generated: list[str] = []

        def generate(checkpoint: str, prompt: str, seed: int):
            generated.append(checkpoint)
            return Image.new("RGB", (8, 8)), None

        arena = Arena(db, tmp_path / "arena", hasher, candidates=lambda: ["x", "y", "z"], generate=generate,
                      limits=ArenaLimits(votes_per_minute=5, battles_per_minute=5, ip_multiplier=2))
        battles = [arena.record_battle("x", "y", "p", "a", "b", session_hash=hasher.hash("burst")) for _ in range(20)]
        votes = burst(lambda i: arena.record_vote(battles[i], "model_a", session_id="burst", client_ip="10.9.9.9"), 20)
        assert votes == {"ok": 5, "Too many votes: at most 5 per minute. Please wait a moment.": 15}
        served = burst(lambda i: arena.create_battle("1girl", session_id="burst-b", client_ip="10.8.8.8"), 20)
        assert served == {"ok": 5, "Too many new battles: at most 5 per minute. Please wait a moment.": 15}
        assert len(generated) == 10  # refused requests generated nothing
        # Per IP (5 x 2 = 10 a minute), 20 sessions behind one address.
        shared = [arena.record_battle("x", "z", "p", "a", "b", session_hash=hasher.hash(f"s{i}")) for i in range(20)]
        by_ip = burst(lambda i: arena.record_vote(shared[i], "tie", session_id=f"s{i}", client_ip="10.7.7.7"), 20)
        assert by_ip == {"ok": 10, "Too many votes: at most 10 per minute. Please wait a moment.": 10}
        with db.session() as s:
            assert s.scalar(select(func.count()).select_from(Vote)) == 15
            assert s.scalar(select(func.count()).select_from(Battle).where(Battle.prompt == "1girl")) == 5
    finally:
        db.dispose()
