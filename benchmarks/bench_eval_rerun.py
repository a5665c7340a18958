"""Rerun of a finished eval: goal 0 generations and <= 5% of the first run's time.

Builds a throw-away world (tmp data dir and SQLite file; the tiny random demo pipeline and demo tagger),
runs a slice of the shipped `characters` and `multilingual` suites once, then runs them again in the
same process, and prints both times and the ratio. The first run's time includes loading the
pipeline and the judge, as a real first run would.

    python benchmarks/bench_eval_rerun.py [--limit 6] [--seeds 2] [--steps 4] [--size 64]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

CONFIG = """\
default_checkpoint: demo-random
data_dir: {data}
checkpoints:
  - id: demo-random
    name: Demo (random)
    family: sd15
    source: builtin:demo-random
    is_demo: true
    defaults: {{width: {size}, height: {size}, steps: {steps}, cfg: 5.0, sampler: euler_a}}
judges:
  - id: demo-random-tagger
    kind: tagger
    source: builtin:demo-random-tagger
    version: random-1
default_judges:
  tagger: demo-random-tagger
"""


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--limit", type=int, default=6, help="items per suite")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        os.environ["HUB_DATA_DIR"] = str(root / "data")
        os.environ.pop("HUB_DATABASE_URL", None)
        (root / "config.yaml").write_text(CONFIG.format(data=root / "data", size=args.size, steps=args.steps))

        from evals.runner import RunOptions, build_runner

        start = time.perf_counter()
        runner = build_runner(str(root / "config.yaml"), f"sqlite:///{root / 'bench.sqlite3'}")
        setup = time.perf_counter() - start
        results = {}
        for suite in ("characters", "multilingual"):
            options = RunOptions("demo-random", suite, seeds=args.seeds, limit=args.limit, batch_size=args.batch_size)
            t0 = time.perf_counter()
            first = runner.run(options, progress=False)
            t1 = time.perf_counter()
            again = runner.run(options, progress=False)
            t2 = time.perf_counter()
            results[suite] = (first, t1 - t0, again, t2 - t1)
        runner.engine.shutdown()

    print(f"setup (config, database migrations, engine object): {setup:.2f}s")
    ok = True
    for suite, (first, t_first, again, t_again) in results.items():
        ratio = t_again / t_first
        ok &= again.generated == 0 and ratio <= 0.05
        print(
            f"{suite}: first run generated={first.generated} scored={first.scored} in {t_first:.2f}s; "
            f"rerun generated={again.generated} reused={again.reused} scored={again.scored} in {t_again:.3f}s "
            f"({100 * ratio:.1f}% of the first run)"
        )
    print(f"goal (rerun: 0 generations, <= 5% of the first run's time): {'met' if ok else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
