"""Benchmark: vote throughput over HTTP with 16 concurrent gradio_client clients against the real app
(votes/s, p50/p99 latency), with the in-process `Arena.record_vote` rate measured in the same run as the
baseline (the HTTP/queue overhead is the ratio). The HTTP clients run in 4 worker processes, not in the
server's process, so their work does not compete with the app for one interpreter lock.

Signed sessions: the HTTP votes go to the app as it serves (every request through the signed-cookie
middleware, every vote's session checked against its battle); the same votes, in the same run, also go
to the app served without the middleware (votes not bound to a session: what a vote cost before
signed sessions). The signed run must keep >= 1/1.2 of that throughput and <= 1.2x its p99.

    python benchmarks/bench_votes.py [--votes 2000] [--clients 16] [--db URL]

Goals (2 cores, SQLite): >= 25 votes/s over HTTP, p99 <= 1500 ms; signed sessions within 1.2x.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from _hub import Goals

PROCESSES = 4


def percentiles(latencies: list[float]) -> tuple[float, float]:
    p50, p99 = np.percentile(np.array(latencies) * 1000, [50, 99])
    return float(p50), float(p99)


def vote_from_process(url: str, work: list[tuple[str | None, list[str]]]) -> list[float]:
    """In a worker process: one client per (session cookie or None, battle ids), each in its own thread."""
    from gradio_client import Client

    latencies: list[float] = []
    lock = threading.Lock()

    def run(cookie: str | None, battle_ids: list[str]) -> None:
        cookies = {"hub_session": cookie} if cookie else {}
        client = Client(url, verbose=False, ssl_verify=False, httpx_kwargs={"cookies": cookies})
        for battle_id in battle_ids:
            start = time.perf_counter()
            client.predict(battle_id, "tie", api_name="/vote")
            with lock:
                latencies.append(time.perf_counter() - start)

    threads = [threading.Thread(target=run, args=item) for item in work]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies


def http_votes(url: str, signed: bool, votes: int, clients: int, tmp: Path) -> tuple[float, list[float]]:
    """(votes/s, latencies) of `votes` HTTP votes from `clients` clients, against a fresh app with the
    signed-session middleware (`signed`) or without it."""
    from tests.hub_app import running_app, session_cookie

    folder = tmp / ("signed" if signed else "unsigned")
    db_url = url if url.startswith("postgresql") else f"sqlite:///{folder / 'votes.sqlite3'}"
    with running_app(folder / "data", db_url, votes_per_minute=10**7, session_cookies=signed) as (app_url, ctx):
        from hub.ui.arena_tab import make_arena

        arena = make_arena(ctx)
        a, b = [c.id for c in ctx.config.checkpoints][:2]
        sessions = [f"bench-session-{k}" for k in range(clients)]
        work: list[list[str]] = [[] for _ in sessions]
        for i in range(votes):
            k = i % clients
            owner = arena.hasher.hash(sessions[k], "session") if signed else None
            work[k].append(arena.record_battle(a, b, "p", "a", "b", session_hash=owner))
        cookies = [session_cookie(ctx.data_dir, s) if signed else None for s in sessions]
        per_process = [[(cookies[k], work[k]) for k in range(p, clients, PROCESSES)] for p in range(PROCESSES)]
        with ProcessPoolExecutor(PROCESSES) as pool:
            start = time.perf_counter()
            results = list(pool.map(vote_from_process, [app_url] * PROCESSES, per_process))
            rate = votes / (time.perf_counter() - start)
    return rate, [x for chunk in results for x in chunk]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--votes", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--db", default=None, help="database URL (default: a fresh SQLite file)")
    args = parser.parse_args()

    from tests.hub_app import running_app

    tmp = Path(tempfile.mkdtemp(prefix="bench-votes-"))
    url = args.db or f"sqlite:///{tmp / 'votes.sqlite3'}"
    with running_app(tmp / "data", url, votes_per_minute=10**7) as (_, ctx):
        from hub.ui.arena_tab import make_arena

        arena = make_arena(ctx)
        a, b = [c.id for c in ctx.config.checkpoints][:2]

        # Baseline: the same votes through Arena.record_vote in process, same thread count.
        direct = [arena.record_battle(a, b, "p", "a", "b", session_hash=None) for _ in range(args.votes)]
        lat_direct: list[float] = []

        def vote_direct(chunk: list[str]) -> None:
            for battle_id in chunk:
                start = time.perf_counter()
                arena.record_vote(battle_id, "model_a")
                lat_direct.append(time.perf_counter() - start)

        threads = [threading.Thread(target=vote_direct, args=(direct[k :: args.clients],)) for k in range(args.clients)]
        start = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        direct_rate = args.votes / (time.perf_counter() - start)

    # Unsigned first, then signed: a later run on a warmer machine would favour the signed one, not the baseline.
    unsigned_rate, lat_unsigned = http_votes(url, False, args.votes, args.clients, tmp)
    http_rate, lat_http = http_votes(url, True, args.votes, args.clients, tmp)

    backend = url.split(":", 1)[0]
    d50, d99 = percentiles(lat_direct)
    u50, u99 = percentiles(lat_unsigned)
    h50, h99 = percentiles(lat_http)
    print(f"{args.votes} votes, {args.clients} concurrent clients in {PROCESSES} processes, {backend}")
    print(f"in-process Arena.record_vote: {direct_rate:.0f} votes/s (p50 {d50:.0f} ms, p99 {d99:.0f} ms)")
    print(f"HTTP /vote without session middleware: {unsigned_rate:.0f} votes/s (p50 {u50:.0f} ms, p99 {u99:.0f} ms)")
    print(f"HTTP /vote with signed sessions: {http_rate:.0f} votes/s (p50 {h50:.0f} ms, p99 {h99:.0f} ms)")
    print(f"ratio (in-process / HTTP): {direct_rate / http_rate:.1f}x; signed sessions cost "
          f"{unsigned_rate / http_rate:.2f}x throughput, {h99 / u99:.2f}x p99")
    goals = Goals()
    goals.check("HTTP vote throughput", http_rate, 25, at_least=True, unit=" votes/s")
    goals.check("HTTP vote p99", h99, 1500, at_least=False, unit=" ms")
    goals.check("signed-session throughput vs without", http_rate / unsigned_rate, 1 / 1.2, at_least=True, unit="x")
    goals.check("signed-session p99 vs without", h99 / u99, 1.2, at_least=False, unit="x")
    goals.exit()


if __name__ == "__main__":
    main()
