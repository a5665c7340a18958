"""Orphaned eval runs (issue 23): a run whose worker died is taken over on time by a busy worker's lease
watch, counted in `eval_runs.takeovers`, and shown as "resuming"; a live lease is left alone.

The real engine (tiny random demo pipeline), runner, judges and SQLite database; the only stand-in is a
gate in front of `generate_missing` (the runner's `generate_step` hook) that holds a suite's runs before
their first sample for as long as the test wants, while the engine stays free for the others.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import inspect, select, text

from evals.generate import generate_missing
from evals.runner import EvalRunner, RunOptions
from evals.worker import EvalWorker
from hub.config import load_config
from hub.ui.i18n import tr
from hub.ui.leaderboard_tab import run_progress
from leaderboards import queue, submissions
from leaderboards.db import Database, current_revision, downgrade, init_db, upgrade
from leaderboards.results import upsert_checkpoint
from leaderboards.schema import EvalRun, utcnow
from tests.test_eval_runner import write_world

WAIT = 300.0  # generous: a loaded 2-core machine is slow, never wrong
RESUMING = "resuming after its worker stopped"


class Gate:
    """`generate_step` for the runner: runs of the given suites wait at the gate (`entered` is set, then
    they block until `release` is), then the real `generate_missing` generates their samples."""

    def __init__(self, *suites: str):
        self.entered = {suite: threading.Event() for suite in suites}
        self.release = {suite: threading.Event() for suite in suites}

    def __call__(self, plan: Any, **kwargs: Any) -> tuple[int, int, int]:
        suite = plan.suite.name
        if suite in self.entered:
            self.entered[suite].set()
            if not self.release[suite].wait(WAIT):
                raise TimeoutError(f"the gate of {suite} was never opened")
        return generate_missing(plan, **kwargs)

    def open(self) -> None:
        for event in self.release.values():
            event.set()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The engine and config shared by this module's tests (the demo pipeline is built once)."""
    from hub.engine import Engine

    root = tmp_path_factory.mktemp("orphans")
    config = load_config(write_world(root))
    mp = pytest.MonkeyPatch()
    mp.setenv("HUB_DATA_DIR", str(root / "data"))
    mp.delenv("HUB_DATABASE_URL", raising=False)
    engine = Engine(config, device="cpu")
    yield SimpleNamespace(root=root, config=config, engine=engine)
    engine.shutdown()
    mp.undo()


@pytest.fixture
def make_runner(world, tmp_path):
    """A runner on a fresh database (each test sees only its own runs), with an optional gate."""
    dbs: list[Database] = []

    def make(gate: Gate | None = None, lease_seconds: float = 30.0) -> EvalRunner:
        db = init_db(f"sqlite:///{tmp_path / f'hub{len(dbs)}.sqlite3'}")
        dbs.append(db)
        with db.write_session() as session:  # as a dead worker's run left it: its checkpoint recorded
            upsert_checkpoint(session, id="demo-random", display_name="Demo (random)", family="sd15",
                              source="builtin:demo-random", is_demo=True)
        return EvalRunner(world.engine, db, world.config, data_dir=world.root / "data", prompts_dir=world.root / "prompts",
                          lease_seconds=lease_seconds, generate_step=gate)

    yield make
    for db in dbs:
        db.dispose()


def row(db: Database, run_id: int) -> EvalRun:
    with db.session() as session:
        run = session.get(EvalRun, run_id)
        assert run is not None
        return run


def wait_for(db: Database, what: str, check: Callable[[], bool]) -> None:
    """Poll until `check()`; a run that failed meanwhile fails the test at once, with its error."""
    deadline = time.monotonic() + WAIT
    while not check():
        with db.session() as session:
            failed = session.execute(select(EvalRun.id, EvalRun.error).where(EvalRun.status == "failed")).first()
        assert failed is None, f"run {failed[0]} failed while waiting for {what}: {failed[1]}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def orphan_of_dead_worker(runner: EvalRunner, options: RunOptions, lease_seconds: float) -> int:
    """A run its worker started and then lost (kill -9): running, its lease renewed by nobody."""
    return queue.start_run(runner.db, options.checkpoint, options.suite, options.adapter_string, options.as_settings(),
                           "dead-worker", lease_seconds=lease_seconds).id


def shown(db: Database) -> dict[int, str]:
    table = submissions.runs_table(db)
    return dict(zip(table["run"], table["status"], strict=True))


def test_an_orphan_is_taken_over_while_the_worker_is_busy(make_runner):
    gate = Gate("tiny-chars", "tiny-ml")
    runner = make_runner(gate)
    db = runner.db
    # The older, queued run keeps the worker's main loop busy (at the gate) ...
    busy = runner.queue(RunOptions("demo-random", "tiny-chars", seeds=1, limit=1, languages=("en",)))
    # ... while a dead worker's run loses its lease a second later.
    orphan = orphan_of_dead_worker(runner, RunOptions("demo-random", "tiny-ml", seeds=1, limit=1, languages=("ja",)), 1.0)
    worker = EvalWorker(runner, poll_seconds=0.05, watch_seconds=0.1).start()
    try:
        wait_for(db, "the busy run at its gate", gate.entered["tiny-chars"].is_set)
        assert worker.current_run == busy
        # The lease watch claims the orphan and executes it beside the busy run.
        wait_for(db, "the orphan at its gate", gate.entered["tiny-ml"].is_set)
        taken = row(db, orphan)
        assert (taken.status, taken.worker_id, taken.takeovers) == ("running", runner.worker_id, 1)
        assert worker.takeover_runs == {orphan}
        assert queue.lease_expired(taken) is False  # renewed under the new holder
        # The board and the run tables say which run resumes and which simply runs.
        text, _ = run_progress(SimpleNamespace(db=db))
        assert f"{RESUMING}: `demo-random` on `tiny-ml`" in text
        assert "running: `demo-random` on `tiny-chars`" in text
        assert shown(db) == {busy: "running", orphan: "resuming"}
        # The orphan completes while the busy run still waits at its gate.
        gate.release["tiny-ml"].set()
        wait_for(db, "the orphan to complete", lambda: row(db, orphan).status == "complete")
        assert not gate.release["tiny-chars"].is_set()
        done = row(db, orphan)
        assert (done.worker_id, done.takeovers, done.n_generated) == (runner.worker_id, 1, 2)  # en + ja
        still = row(db, busy)
        assert (still.status, still.worker_id, still.takeovers) == ("running", runner.worker_id, 0)
        wait_for(db, "the takeover slot to free", lambda: not worker.takeover_runs)
        # Then the busy run finishes as usual.
        gate.release["tiny-chars"].set()
        wait_for(db, "the busy run to complete", lambda: row(db, busy).status == "complete")
        assert row(db, busy).takeovers == 0
        assert shown(db) == {busy: "complete", orphan: "complete"}
    finally:
        gate.open()
        worker.stop(timeout=WAIT)


def test_a_live_lease_is_not_taken_over(make_runner):
    runner = make_runner()
    db = runner.db
    live = queue.start_run(db, "demo-random", "tiny-ml", "", {"seeds": 1, "limit": 1}, "live-worker", lease_seconds=600).id
    queued = runner.queue(RunOptions("demo-random", "tiny-chars", seeds=1, limit=1))
    worker = EvalWorker(runner, watch_seconds=0.05)  # not started: its watch's beat, by hand
    assert worker.watch_seconds == 0.05 and EvalWorker(runner).watch_seconds == runner.lease_seconds / 3
    assert worker.take_over_expired() is None  # a live lease, and a queued run is no orphan
    assert queue.claim_expired_run(db, "another") is None
    assert (row(db, live).worker_id, row(db, live).takeovers, row(db, queued).status) == ("live-worker", 0, "queued")
    assert shown(db) == {live: "running", queued: "queued"}
    # A claim of a queued run is no takeover.
    claimed = queue.claim_next_run(db, "another", lease_seconds=600)
    assert claimed is not None and claimed.id == queued and row(db, queued).takeovers == 0
    # Once the lease is past, the orphan goes to the first claimer, oldest first, counted.
    later = utcnow() + dt.timedelta(seconds=601)
    taken = queue.claim_expired_run(db, "another", lease_seconds=600, now=later)
    assert taken is not None and taken.id == live and taken.worker_id == "another"
    assert row(db, live).takeovers == 1
    # Nobody takes over a run from its own worker (it is still executing it, its heartbeat late) ...
    much_later = later + dt.timedelta(seconds=601)
    assert queue.claim_expired_run(db, "another", now=much_later) is None
    assert queue.claim_next_run(db, "another", now=much_later) is None
    # ... and every other claim counts once more.
    again = queue.claim_next_run(db, "third", lease_seconds=600, now=much_later)
    assert again is not None and again.id == live and row(db, live).takeovers == 2


def test_the_board_shows_taken_over_and_expired_runs_as_resuming(make_runner):
    runner = make_runner()
    db = runner.db
    taken_over = orphan_of_dead_worker(runner, RunOptions("demo-random", "tiny-ml", seeds=1), -1.0)
    assert queue.claim_expired_run(db, "live-worker", lease_seconds=600).id == taken_over
    expired = orphan_of_dead_worker(runner, RunOptions("demo-random", "tiny-ml", seeds=2), -1.0)  # not taken yet
    fresh = queue.start_run(db, "demo-random", "tiny-chars", "", {"seeds": 1}, "live-worker", lease_seconds=600).id
    assert shown(db) == {taken_over: "resuming", expired: "resuming", fresh: "running"}
    text, _ = run_progress(SimpleNamespace(db=db))
    assert text.count(f"{RESUMING}: `demo-random` on `tiny-ml`") == 2
    assert text.count("running: `demo-random` on `tiny-chars`") == 1
    japanese, _ = run_progress(SimpleNamespace(db=db), lang="ja")
    assert japanese.count(tr("ja", "msg.board.resuming", checkpoint="demo-random", suite="tiny-ml", images=0)) == 2
    # A finished run is only finished, whatever happened on the way.
    queue.finish_run(db, taken_over, status="complete", worker_id="live-worker")
    assert shown(db)[taken_over] == "complete"


def test_migration_0006_adds_takeovers(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'hub.sqlite3'}")
    try:
        upgrade(db.engine, "0005")
        now = dt.datetime(2026, 12, 1, tzinfo=dt.timezone.utc)
        with db.session() as s:
            s.execute(text("INSERT INTO checkpoints (id, display_name, family, source, is_demo, status, created_at) "
                           "VALUES ('alpha', 'alpha', 'sd15', 'builtin:alpha', false, 'available', :t)"), {"t": now})
            s.execute(text("INSERT INTO eval_runs (checkpoint_id, suite_name, adapters, settings, status, n_generated, "
                           "n_reused, created_at) VALUES ('alpha', 'characters', '', '{}', 'running', 0, 0, :t)"), {"t": now})
        upgrade(db.engine, "0006")
        assert current_revision(db.engine) == "0006"
        assert "takeovers" in {c["name"] for c in inspect(db.engine).get_columns("eval_runs")}
        with db.session() as s:
            assert s.execute(text("SELECT takeovers FROM eval_runs")).scalar_one() == 0  # existing rows: none
        downgrade(db.engine, "0005")
        assert "takeovers" not in {c["name"] for c in inspect(db.engine).get_columns("eval_runs")}
        upgrade(db.engine)
        with db.session() as s:
            assert s.execute(text("SELECT COUNT(*) FROM eval_runs")).scalar_one() == 1
    finally:
        db.dispose()
