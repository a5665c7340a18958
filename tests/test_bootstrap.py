"""Boards full from the first start: `bootstrap_evals` is queued on a fresh database (once), the worker
runs it, and the boards and the arena read the results."""

from __future__ import annotations

import time

from sqlalchemy import select

from hub.config import BootstrapEval
from leaderboards.boards import BoardSource, board
from leaderboards.schema import EvalRun
from tests.hub_app import running_app


def wait_for_runs(ctx, count: int, timeout_s: float = 600) -> list[tuple[str, str]]:
    deadline = time.monotonic() + timeout_s  # generous: a loaded 2-core machine is slow, never wrong
    while time.monotonic() < deadline:
        with ctx.db.session() as s:
            runs = s.execute(select(EvalRun.status, EvalRun.error).order_by(EvalRun.id)).all()
        if len(runs) >= count and all(status in ("complete", "failed") for status, _ in runs):
            return [tuple(r) for r in runs]
        time.sleep(0.5)
    raise AssertionError(f"runs not finished: {runs}")


def test_fresh_database_queues_the_bootstrap_evals_once_and_boards_fill(tmp_path):
    url = f"sqlite:///{tmp_path / 'hub.sqlite3'}"
    subset = {"seeds": 1, "limit": 3, "languages": ["en", "ja"]}
    plan = [BootstrapEval(checkpoint="demo-multilingual", suite="demo-characters", **subset),
            BootstrapEval(checkpoint="demo-random", suite="demo-characters", **subset),  # a second checkpoint
            BootstrapEval(checkpoint="animagine-xl-4", suite="demo-characters", **subset)]  # needs a GPU: skipped
    with running_app(tmp_path / "data", url, start_worker=True, bootstrap_evals=plan) as (_, ctx):
        runs = wait_for_runs(ctx, 2)
        assert [status for status, _ in runs] == ["complete", "complete"], runs
        characters = board("characters").table(BoardSource(ctx.db))
        assert {"demo-multilingual", "demo-random"} <= set(characters["checkpoint"])
        top = characters[(characters["group"] == "all") & (characters["language"] == "all") & (characters["metric"] == "hit_rate")]
        best = top.set_index("checkpoint")["value"]
        assert best["demo-multilingual"] > best["demo-random"]  # a trained model beats noise on the first board
    with running_app(tmp_path / "data", url, start_worker=True, bootstrap_evals=plan) as (_, ctx):
        with ctx.db.session() as s:  # a restart on the same database queues nothing again
            assert len(s.execute(select(EvalRun.id)).all()) == 2
