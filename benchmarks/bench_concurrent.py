"""8 concurrent /generate requests vs the same 8 one after another, over HTTP, on demo-random.

The engine batches compatible requests that wait together. Goal: >= 1.3x throughput on CPU.
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ThreadPoolExecutor

from _hub import Goals, hub_app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    from gradio_client import Client

    with hub_app() as (url, ctx):
        clients = [Client(url, verbose=False, ssl_verify=False) for _ in range(args.requests)]

        def call(index: int) -> None:
            clients[index].predict(f"1girl, scene {index}", seed=index, api_name="/generate")

        call(0)
        best_seq, best_par = float("inf"), float("inf")
        for _ in range(args.rounds):
            start = time.perf_counter()
            for index in range(args.requests):
                call(index)
            best_seq = min(best_seq, time.perf_counter() - start)
            calls_before = ctx.engine.stats["pipeline_calls"]
            start = time.perf_counter()
            with ThreadPoolExecutor(args.requests) as pool:
                list(pool.map(call, range(args.requests)))
            best_par = min(best_par, time.perf_counter() - start)
            calls = ctx.engine.stats["pipeline_calls"] - calls_before
        print(f"device={ctx.engine.device}")
        print(f"{args.requests} sequential: {best_seq:.2f} s; {args.requests} concurrent: {best_par:.2f} s ({calls} pipeline calls)")
        goals = Goals()
        goals.check("throughput concurrent/sequential", best_seq / best_par, 1.3, at_least=True, unit="x")
    goals.exit()


if __name__ == "__main__":
    main()
