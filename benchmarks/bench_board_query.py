"""Benchmark: the arena board query with 1,000,000 votes stored (goal: <= 200 ms).

Measures, on the same database in the same run:
- the board's query: `vote_tallies` (a few rows per pair) -> counts;
- the baseline query: GROUP BY over every vote joined to its battle (what a board without tallies does);
- the whole board cold (query + Bradley–Terry with 100 bootstrap rounds) and warm (cached fit);
- the price of the aggregate: votes arriving one transaction each, as `Arena.record_vote` stores them
  (the vote row and its `vote_tallies` upsert together), against the same votes stored without the
  upsert; then the board read again must count every new vote (it is fresh, not a snapshot).

    python benchmarks/bench_board_query.py [--votes 1000000] [--models 50] [--db URL]
"""

from __future__ import annotations

import argparse
import datetime as dt
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import func, insert, select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from leaderboards.arena import bump_tally, rebuild_tallies, tallies_frame  # noqa: E402
from leaderboards.boards import ArenaBoard  # noqa: E402
from leaderboards.db import init_db  # noqa: E402
from leaderboards.results import upsert_checkpoint  # noqa: E402
from leaderboards.schema import VOTE_OUTCOMES, Battle, Vote  # noqa: E402


def timed(fn, repeat: int = 5) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def populate(db, n_votes: int, n_models: int) -> None:
    rng = np.random.default_rng(0)
    names = [f"model-{i:02d}" for i in range(n_models)]
    strength = rng.normal(0, 1, n_models)
    with db.session() as s:
        for name in names:
            upsert_checkpoint(s, name, name.title(), "sdxl", f"hub:org/{name}", None, False)
    now = dt.datetime.now(dt.timezone.utc)
    chunk = 100_000
    for offset in range(0, n_votes, chunk):
        n = min(chunk, n_votes - offset)
        a = rng.integers(0, n_models, n)
        b = (a + rng.integers(1, n_models, n)) % n_models
        p = 1 / (1 + np.exp(strength[b] - strength[a]))
        u = rng.random(n)
        outcome = np.where(u < 0.1, 2, np.where(u < 0.13, 3, np.where(rng.random(n) < p, 0, 1)))
        ids = [secrets.token_urlsafe(24) for _ in range(n)]
        with db.session() as s:
            s.execute(insert(Battle), [
                {"id": ids[i], "kind": "generate", "model_a": names[a[i]], "model_b": names[b[i]], "prompt": "p",
                 "image_a": "a.png", "image_b": "b.png", "image_source": "samples", "created_at": now, "expires_at": now}
                for i in range(n)
            ])
            s.execute(insert(Vote), [
                {"battle_id": ids[i], "outcome": VOTE_OUTCOMES[outcome[i]], "created_at": now} for i in range(n)
            ])
        print(f"  stored {offset + n:,} votes", flush=True)
    with db.write_session() as s:
        rebuild_tallies(s)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--votes", type=int, default=1_000_000)
    parser.add_argument("--models", type=int, default=50)
    parser.add_argument("--db", default=None)
    parser.add_argument("--new-votes", type=int, default=2000, help="votes stored one transaction each, with and without the tally")
    args = parser.parse_args()
    url = args.db or f"sqlite:///{Path(tempfile.mkdtemp(prefix='bench-board-')) / 'board.sqlite3'}"
    db = init_db(url)
    with db.session() as s:
        stored = s.scalar(select(func.count()).select_from(Vote))
    if stored < args.votes:
        print(f"storing {args.votes:,} votes among {args.models} models in {url.split(':')[0]} ...")
        populate(db, args.votes - stored, args.models)

    def tallies() -> pd.DataFrame:
        with db.session() as s:
            return tallies_frame(s)

    def baseline() -> pd.DataFrame:
        with db.session() as s:
            rows = s.execute(
                select(Battle.model_a, Battle.model_b, Vote.outcome, func.count())
                .join(Vote, Vote.battle_id == Battle.id)
                .group_by(Battle.model_a, Battle.model_b, Vote.outcome)
            ).all()
        return pd.DataFrame(rows, columns=["model_a", "model_b", "winner", "count"])

    query_s, counts = timed(tallies)
    baseline_s, base_counts = timed(baseline, repeat=3)
    assert int(counts["count"].sum()) == int(base_counts["count"].sum())
    board = ArenaBoard(db)
    cold_s, table = timed(lambda: ArenaBoard(db).table(with_elo=False), repeat=3)
    board.table(with_elo=False)
    warm_s, _ = timed(lambda: board.table(with_elo=False))
    start = time.perf_counter()
    board.wait_for_elo()
    elo_first_s = time.perf_counter() - start
    elo_warm_s, _ = timed(lambda: (board.table(with_elo=True), board.wait_for_elo()))
    # Votes arriving one by one, as the app stores them: with the tally upsert (the app) and without it.
    def arriving(n: int, with_tally: bool, seed: int) -> float:
        rng = np.random.default_rng(seed)
        names = sorted(set(counts["model_a"]) | set(counts["model_b"]))
        now = dt.datetime.now(dt.timezone.utc)
        start = time.perf_counter()
        for _ in range(n):
            a, b = rng.choice(len(names), 2, replace=False)
            outcome = VOTE_OUTCOMES[int(rng.integers(0, 4))]
            battle_id = secrets.token_urlsafe(24)
            with db.write_session() as s:
                s.execute(insert(Battle).values(id=battle_id, kind="generate", model_a=names[a], model_b=names[b], prompt="p",
                                                image_a="a.png", image_b="b.png", image_source="samples", created_at=now,
                                                expires_at=now))
                s.execute(insert(Vote).values(battle_id=battle_id, outcome=outcome, created_at=now))
                if with_tally:
                    bump_tally(s, names[a], names[b], outcome)
        return (time.perf_counter() - start) / n

    plain_vote_s = arriving(args.new_votes, with_tally=False, seed=1)
    app_vote_s = arriving(args.new_votes, with_tally=True, seed=2)
    with db.write_session() as s:  # the plain votes were stored without their tallies: count them now
        rebuild_tallies(s)
    fresh_s, fresh = timed(tallies)
    _, truth = timed(baseline, repeat=1)
    assert int(fresh["count"].sum()) == int(truth["count"].sum()) == int(counts["count"].sum()) + 2 * args.new_votes
    upkeep_s = app_vote_s - plain_vote_s
    print(f"{int(counts['count'].sum()):,} votes, {len(counts)} tally rows, {len(table)} models")
    print(f"board query (vote_tallies):            {query_s * 1000:8.1f} ms  [goal <= 200 ms]")
    print(f"baseline query (GROUP BY over votes):  {baseline_s * 1000:8.1f} ms")
    print(f"ratio (baseline / board query):        {baseline_s / query_s:8.1f}x")
    print(f"whole board, cold (query + BT, 100 bootstrap rounds): {cold_s * 1000:.1f} ms; warm (cached fit): {warm_s * 1000:.1f} ms")
    print(f"display Elo (background thread): first replay of all votes {elo_first_s * 1000:.0f} ms, "
          f"then board + incremental update {elo_warm_s * 1000:.1f} ms")
    print(f"a vote as the app stores it (vote + tally upsert, own transaction): {app_vote_s * 1000:.2f} ms; "
          f"without the upsert {plain_vote_s * 1000:.2f} ms; upkeep {upkeep_s * 1000:.2f} ms a vote")
    # The fair comparison: a board read on tallies plus the upkeep of every vote since the last read,
    # against the GROUP BY read. Break-even: how many votes may arrive between two board reads.
    break_even = (baseline_s - fresh_s) / max(upkeep_s, 1e-6)
    print(f"board read after {2 * args.new_votes:,} more votes (every one counted): {fresh_s * 1000:.1f} ms; "
          f"the tallies pay off while fewer than {break_even:,.0f} votes arrive between two board reads")
    db.dispose()
    from _hub import Goals

    goals = Goals()
    goals.check("board query with 1M votes", query_s * 1000, 200, at_least=False, unit=" ms")
    # Goals near the measured values / 1.5 (222x and about 1.1x at 1M votes on 2 cores; the break-even
    # grows with the stored votes, about 1.7% of them measured, so the goal is 1%).
    goals.check("faster than GROUP BY over every vote", baseline_s / query_s, 150 if args.votes >= 1_000_000 else 10,
                at_least=True, unit="x")
    goals.check("tally upkeep per vote vs the vote's own write", app_vote_s / plain_vote_s, 1.5, at_least=False, unit="x")
    goals.check("votes between board reads before GROUP BY would win (1% of the stored votes)", break_even,
                args.votes / 100, at_least=True, unit="")
    goals.exit()


if __name__ == "__main__":
    main()
