"""Interactive latency while an eval run is in progress, on both backends.

    python benchmarks/bench_priority.py [--requests 12]

For each backend (the local engine in this process; one engine replica on a local Ray instance of
2 CPUs), measures the p50 latency of interactive requests (the demo checkpoint at its default 128 px,
20 steps: what a person asks for) when the engine is idle, then while an eval run generates and judges
(the demo suite's 64 px samples, 20 steps, one image per batch, one worker). The engine serves
interactive requests first, so a person waits behind at most the eval call already running.
Goal: busy p50 <= 1.5x idle p50 on both backends. Also prints the ratio when the eval batches are as
large as the interactive requests (128 px), for information. Exits 1 when a goal is missed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_ray_eval import World  # noqa: E402

GOAL = 1.5


def latencies(engine: Any, count: int, gap_s: float = 0.05) -> list[float]:
    from hub.engine import GenerationRequest

    times = []
    for index in range(count):
        start = time.perf_counter()
        engine.generate(GenerationRequest(f"1girl, smile, request {index}", seed=index))
        times.append(time.perf_counter() - start)
        time.sleep(gap_s)  # a person does not send the next request the same millisecond
    return times


def p50_while_evaluating(world: World, engine: Any, config: Any, count: int, eval_size: int) -> tuple[float, int]:
    """p50 of `count` interactive requests sent while an eval run is generating; (p50, eval images)."""
    from evals.plan import RunOptions
    from evals.runner import EvalRunner

    db = world.database()
    runner = EvalRunner(engine, db, config, data_dir=world.root / "data", prompts_dir=world.prompts)
    options = RunOptions("demo-random", "bench-chars", seeds=16, batch_size=1, overrides={"width": eval_size, "height": eval_size})
    progress: dict[str, int] = {"generated": 0}
    stop = threading.Event()
    original = runner._generate_step()

    def generate(plan: Any, *, on_batch: Any, **kwargs: Any) -> tuple[int, int]:
        def counted(generated: int, reused: int) -> None:
            progress["generated"] = generated
            on_batch(generated, reused)
            if stop.is_set():
                raise KeyboardInterrupt("benchmark done")  # end the run early: the measurement is over

        return original(plan, on_batch=counted, **kwargs)

    runner.generate_step = generate
    thread = threading.Thread(target=lambda: _quietly(runner.run, options), daemon=True)
    thread.start()
    while progress["generated"] < 2:  # the run is generating (models and judges loaded)
        time.sleep(0.02)
    times = latencies(engine, count)
    still_running = thread.is_alive()
    stop.set()
    thread.join(timeout=300)
    db.dispose()
    if not still_running:
        raise RuntimeError("the eval run ended before the interactive requests did: raise --seeds")
    return statistics.median(times), progress["generated"]


def _quietly(fn: Any, *args: Any) -> None:
    try:
        fn(args[0], progress=False)
    except BaseException:  # noqa: BLE001 - the benchmark stops the run on purpose
        pass


def measure(world: World, backend: str, count: int) -> dict[str, float]:
    import torch

    from hub.engine import Engine
    from hub.remote import RemoteEngine

    config = world.config(backend=backend)
    if backend == "local":
        torch.set_num_threads(1)  # like the replica: one torch thread (num_cpus_per_replica below 2)
        engine: Any = Engine(config)
    else:
        engine = RemoteEngine(config)
    try:
        latencies(engine, 2)  # warm-up: load the checkpoint
        # Idle latency measured before and after the busy runs (the machine is shared: load drifts).
        idle_times = latencies(engine, count)
        busy, generated = p50_while_evaluating(world, engine, config, count, eval_size=64)
        same_size, _ = p50_while_evaluating(world, engine, config, count, eval_size=128)
        idle = statistics.median(idle_times + latencies(engine, count))
    finally:
        if backend == "ray":
            engine.cluster.delete()
        engine.shutdown()
    return {"idle_p50_s": idle, "busy_p50_s": busy, "ratio": busy / idle, "eval_images_meanwhile": generated,
            "busy_p50_same_size_s": same_size, "ratio_same_size": same_size / idle}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=12, help="interactive requests per measurement")
    args = parser.parse_args(argv)
    import logging

    logging.getLogger("evals.runner").setLevel(logging.CRITICAL)  # the runs are stopped on purpose
    world = World()
    results = {}
    try:
        for backend in ("local", "ray"):
            results[backend] = measure(world, backend, args.requests)
    finally:
        world.close()
    missed = False
    for backend, r in results.items():
        ok = r["ratio"] <= GOAL
        missed |= not ok
        print(f"{backend:5s}: interactive p50 idle {r['idle_p50_s'] * 1000:.0f} ms, during an eval run "
              f"{r['busy_p50_s'] * 1000:.0f} ms -> {r['ratio']:.2f}x (goal <= {GOAL}x){'' if ok else '  MISSED'}; "
              f"eval batches as large as the requests: {r['ratio_same_size']:.2f}x")
    print(json.dumps(results))
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
