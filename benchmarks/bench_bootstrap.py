"""A fresh hub fills its boards by itself: the `bootstrap_evals` of spaces_config.yaml, run by the app's
own worker on a new SQLite database (goal: all finished within 15 minutes on 2 CPU cores).

    python benchmarks/bench_bootstrap.py [--goal-s 900]

Starts the real app (as `python app.py` builds it, on a free port, in a temporary folder), waits for every
bootstrap run while printing "N of M runs done", then, as the baseline in the same process, times the
same engine generating one batch of the most common request directly (no queue, database or judges):
the ratio says how much of the wall time is the pipeline itself and how much the run's bookkeeping.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from _hub import Goals  # noqa: E402  (puts the repository on sys.path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--goal-s", type=float, default=900.0)
    args = parser.parse_args()

    from sqlalchemy import func, select

    from hub.config import load_config
    from hub.engine import EVAL, GenerationRequest
    from leaderboards.schema import EvalRun, Sample
    from tests.hub_app import running_app

    plan = load_config().bootstrap_evals
    goals = Goals()
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        with running_app(Path(folder) / "data", f"sqlite:///{folder}/hub.sqlite3", start_worker=True,
                         bootstrap_evals=plan) as (_, ctx):
            done, last = 0, -1
            while True:
                with ctx.db.session() as s:
                    statuses = [status for (status,) in s.execute(select(EvalRun.status)).all()]
                done = sum(status in ("complete", "failed") for status in statuses)
                if done != last:
                    print(f"{time.perf_counter() - start:7.1f} s: {done} of {len(statuses)} runs done", flush=True)
                    last = done
                if statuses and done == len(statuses):
                    break
                time.sleep(1.0)
            wall = time.perf_counter() - start
            with ctx.db.session() as s:
                images = s.scalar(select(func.count()).select_from(Sample))
                failed = s.scalar(select(func.count()).select_from(EvalRun).where(EvalRun.status == "failed"))
            # Baseline: the same engine, one batch of a demo checkpoint's default request, nothing else.
            batch = ctx.config.engine.max_batch_images
            first = plan[0].checkpoint
            ctx.engine.generate(GenerationRequest(prompt="warm-up", checkpoint=first, seed=1, priority=EVAL))
            t0 = time.perf_counter()
            ctx.engine.generate(GenerationRequest(prompt="a portrait", checkpoint=first, seed=2, batch=min(batch, 4), priority=EVAL))
            per_image = (time.perf_counter() - t0) / min(batch, 4)
    print(f"{len(statuses)} runs ({failed} failed), {images} images in {wall:.0f} s: {images / wall:.2f} images/s")
    print(f"baseline: {per_image * 1000:.0f} ms per image generated directly; pipeline share of the wall time "
          f"{images * per_image / wall:.2f}")
    goals.check("every bootstrap run finished", wall, args.goal_s, at_least=False, unit=" s")
    goals.check("runs failed", failed, 0, at_least=False)
    goals.exit()


if __name__ == "__main__":
    main()
