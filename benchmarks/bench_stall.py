"""Does one big request stall the hub? Small-request latency while the largest admissible job runs.

    python benchmarks/bench_stall.py [--requests 7] [--skip-ray]

For the local engine and for the Ray backend (one replica on a local Ray instance, 2 CPUs), in this
one process:
1. the idle p50 of a small request (the builtin `demo-random` checkpoint at its defaults: 128 px,
   20 steps, one image);
2. the p50 of the same small request, from another person, while the largest job the hub admits for
   that checkpoint runs: its own size limit (2x its area), batch 4, and as many steps as fit under
   `limits.max_request_seconds` by the engine's measured cost model (at most `limits.max_steps`).
The ratio loaded / idle is the stall; goal <= 3x on both backends (without interleaving the small
request would wait for the whole long job: tens of times its own time). Prints the numbers and a
JSON summary; exits 1 when a goal is missed.
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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._hub import Goals  # noqa: E402
from benchmarks.bench_ray_eval import World  # noqa: E402

GOAL_STALL = 3.0


def largest_admissible(engine: Any, local: Any) -> Any:
    """The biggest demo-random request the hub admits: its size limit, batch 4, the most steps that fit.
    `local` is a local engine whose cost model has measured the checkpoint (the remote front end has none)."""
    from hub.engine import GenerationRequest
    from hub.errors import HubInputError

    spec = engine.checkpoint_spec("demo-random")
    limits = spec.limits_within(engine.config.limits)
    width = limits.max_size
    height = max(limits.min_size, (limits.max_pixels // width) // 8 * 8)
    best = None
    for steps in range(limits.max_steps, 0, -5):
        request = GenerationRequest("the long one", checkpoint="demo-random", width=width, height=height, batch=4,
                                    steps=steps, owner="long")
        try:
            local.admit(local.resolve_generation(request))
        except HubInputError:
            continue
        best = request
        break
    assert best is not None, "no admissible long request"
    return best


def small_p50(engine: Any, requests: int, busy: threading.Event | None = None) -> list[float]:
    from hub.engine import GenerationRequest

    times = []
    for index in range(requests):
        if busy is not None and not busy.is_set():
            break
        start = time.perf_counter()
        engine.generate(GenerationRequest("a small one", checkpoint="demo-random", seed=index, owner="small"))
        times.append(time.perf_counter() - start)
    return times


def stall(engine: Any, local: Any, requests: int) -> dict[str, float]:
    from hub.engine import GenerationRequest

    for seed in range(3):  # warm-up: load, measure
        engine.generate(GenerationRequest("warm", checkpoint="demo-random", seed=seed))
        local.generate(GenerationRequest("warm", checkpoint="demo-random", seed=seed, steps=40))
    idle = small_p50(engine, requests)
    long_request = largest_admissible(engine, local)
    busy = threading.Event()
    long_seconds: list[float] = []

    def run_long() -> None:
        busy.set()
        start = time.perf_counter()
        try:
            engine.generate(long_request)
        finally:
            long_seconds.append(time.perf_counter() - start)
            busy.clear()

    thread = threading.Thread(target=run_long)
    thread.start()
    busy.wait()
    time.sleep(1.0)  # into its denoising steps
    loaded = small_p50(engine, requests, busy)
    thread.join()
    if len(loaded) < 3:
        raise SystemExit(f"the long job ended after {len(loaded)} small requests: raise its size")
    return {"idle_p50_s": statistics.median(idle), "loaded_p50_s": statistics.median(loaded), "loaded_n": len(loaded),
            "long_s": long_seconds[0], "long_steps": long_request.steps,
            "long_size": f"{long_request.width}x{long_request.height}x{long_request.batch}"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=7, help="small requests timed per phase")
    parser.add_argument("--skip-ray", action="store_true", help="the local engine only")
    args = parser.parse_args(argv)
    import torch

    from hub.engine import Engine

    world = World()
    results: dict[str, dict[str, float]] = {}
    try:
        torch.set_num_threads(1)  # the replica's thread count (num_cpus_per_replica 0.5): a fair comparison
        local = Engine(world.config(backend="local"))
        results["local"] = stall(local, local, args.requests)
        if not args.skip_ray:
            from hub.remote import RemoteEngine

            remote = RemoteEngine(world.config(backend="ray"))
            try:
                results["ray"] = stall(remote, local, args.requests)
            finally:
                remote.cluster.delete()
                remote.shutdown()
        local.shutdown()
    finally:
        world.close()
    goals = Goals()
    for backend, numbers in results.items():
        ratio = numbers["loaded_p50_s"] / numbers["idle_p50_s"]
        numbers["stall"] = ratio
        print(f"{backend}: small request idle p50 {numbers['idle_p50_s'] * 1000:.0f} ms, while a {numbers['long_size']} "
              f"{numbers['long_steps']}-step job runs ({numbers['long_s']:.1f} s) p50 {numbers['loaded_p50_s'] * 1000:.0f} ms "
              f"over {numbers['loaded_n']} requests")
        goals.check(f"{backend} stall (loaded / idle p50)", ratio, GOAL_STALL, at_least=False, unit="x")
    print(json.dumps(results))
    goals.exit()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
