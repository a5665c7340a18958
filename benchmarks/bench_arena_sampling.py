"""Benchmark: the cost of drawing an arena pair by the uncertainty rule (leaderboards.arena_sampling),
against a plain uniform draw over the same pairs measured in the same process (the baseline).

For M models with votes on every pair it times: one uniform draw (baseline), one `PairSampler.draw`
from the cached state (every draw between refreshes), and one state refresh (read the tallies and fit
Bradley–Terry with bootstrap intervals; at most once per `refresh_s`, 10 s by default).

    python benchmarks/bench_arena_sampling.py [--models 7 20 50] [--draws 2000]

Goals (exit 1 on a miss): a cached draw costs at most 1 ms (a battle request must not wait on the rule),
and a refresh at most 10% of its 10 s period (the rule may not cost a core).
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._hub import Goals  # noqa: E402

GOAL_DRAW_S = 1e-3
GOAL_REFRESH_S = 1.0  # 10% of the default refresh period


def per_call(fn, n: int) -> float:  # noqa: ANN001
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", type=int, nargs="+", default=[7, 20, 50])
    parser.add_argument("--draws", type=int, default=2000)
    args = parser.parse_args()

    from leaderboards.arena_sampling import PairSampler
    from leaderboards.arena_votes import bump_tally
    from leaderboards.db import init_db
    from leaderboards.results import upsert_checkpoint

    rng = random.Random(0)
    goals = Goals()
    for m in args.models:
        folder = Path(tempfile.mkdtemp(prefix="bench-sampling-"))
        db = init_db(f"sqlite:///{folder / 'bench.sqlite3'}")
        models = [f"model-{i:03d}" for i in range(m)]
        with db.session() as s:
            for model in models:
                upsert_checkpoint(s, model, model, "sdxl", f"builtin:{model}")
            for i, a in enumerate(models):
                for b in models[i + 1 :]:
                    for outcome in ("model_a", "model_b", "tie"):
                        bump_tally(s, a, b, outcome, by=rng.randrange(1, 200))
        pairs = [(a, b) for i, a in enumerate(models) for b in models[i + 1 :]]
        sampler = PairSampler("generate", refresh_s=3600)
        with db.session() as s:
            refresh = per_call(lambda: sampler.state(s, fresh=True), 5)
            cached = per_call(lambda: sampler.draw(s, models, rng), args.draws)
        baseline = per_call(lambda: rng.choice(pairs), args.draws)
        print(
            f"{m:>3} models ({len(pairs)} pairs): uniform draw {baseline * 1e6:7.1f} us | rule, cached "
            f"{cached * 1e6:8.1f} us ({cached / baseline:6.0f}x) | state refresh {refresh * 1e3:7.1f} ms "
            f"({refresh / baseline:8.0f}x)"
        )
        db.dispose()
        goals.check(f"{m} models: cached draw", cached * 1e3, GOAL_DRAW_S * 1e3, at_least=False, unit=" ms")
        goals.check(f"{m} models: state refresh", refresh, GOAL_REFRESH_S, at_least=False, unit=" s")
    goals.exit()


if __name__ == "__main__":
    main()
