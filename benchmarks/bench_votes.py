"""Benchmark: vote throughput over HTTP with 16 concurrent gradio_client clients against the real app
(votes/s, p50/p99 latency), with the in-process `Arena.record_vote` rate measured in the same run as the
baseline (the HTTP/queue overhead is the ratio).

    python benchmarks/bench_votes.py [--votes 2000] [--clients 16] [--db URL]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def percentiles(latencies: list[float]) -> str:
    p50, p99 = np.percentile(np.array(latencies) * 1000, [50, 99])
    return f"p50 {p50:.0f} ms, p99 {p99:.0f} ms"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--votes", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--db", default=None, help="database URL (default: a fresh SQLite file)")
    args = parser.parse_args()

    from gradio_client import Client
    from hub_app import running_app

    tmp = Path(tempfile.mkdtemp(prefix="bench-votes-"))
    url = args.db or f"sqlite:///{tmp / 'votes.sqlite3'}"
    with running_app(tmp / "data", url, votes_per_minute=10**7) as (app_url, ctx):
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

        clients = [Client(app_url, verbose=False, ssl_verify=False) for _ in range(args.clients)]
        work = [[] for _ in clients]
        for i in range(args.votes):
            k = i % args.clients
            work[k].append(arena.record_battle(a, b, "p", "a", "b", session_hash=arena.hasher.hash(clients[k].session_hash)))
        lat_http: list[float] = []

        def vote_http(k: int) -> None:
            for battle_id in work[k]:
                start = time.perf_counter()
                clients[k].predict(battle_id, "tie", api_name="/vote")
                lat_http.append(time.perf_counter() - start)

        threads = [threading.Thread(target=vote_http, args=(k,)) for k in range(args.clients)]
        start = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        http_rate = args.votes / (time.perf_counter() - start)

    backend = url.split(":", 1)[0]
    print(f"{args.votes} votes, {args.clients} concurrent clients, {backend}")
    print(f"in-process Arena.record_vote: {direct_rate:.0f} votes/s ({percentiles(lat_direct)})")
    print(f"HTTP /vote via gradio_client: {http_rate:.0f} votes/s ({percentiles(lat_http)})")
    print(f"ratio (in-process / HTTP): {direct_rate / http_rate:.1f}x")


if __name__ == "__main__":
    main()
