"""Eval runs on Ray: the run's plan sharded over the engine replicas, results through one writer.

`EvalRunner` uses this generation step when its engine is a `RemoteEngine` (`engine.backend: ray`, or
`python -m evals run ... --backend ray [--workers N]`); planning before it and scoring after it are
unchanged, so the database records, cache keys and boards are the same as with the local backend.

How a run goes:

1. The driver (the CLI, or the app's eval worker that claimed the run) plans the run as today and lists
   the samples not stored yet (cache key UNIQUE: a rerun generates nothing).
2. Those samples (prompt x language x seed) are cut into shards of `batch_size` and handed out
   dynamically, `workers` shards in flight at a time, each to one Serve replica through
   `RemoteEngine.call_task(run_shard, ...)`. Serve's router spreads them over the replicas by queue
   length (no multiplexing hint: a shard is long work, and spreading it is the point), and queued
   shards make the deployment scale up to `max_replicas`.
3. Each replica holds an engine and, for the run, the judges: `run_shard` builds the plan there once
   (cached per run), checks it is the same plan (checkpoint version, settings hash, sample keys: a
   node with other weights or other prompts is refused), generates the shard through the replica's own
   engine at eval priority (interactive requests on that replica go first; a person waits behind at
   most that one eval call), judges it, and returns PNG bytes (recipe inside) and score values.
4. The driver is the one writer: for each finished shard it writes the PNGs and commits the sample and
   score rows in one transaction, exactly as the local step does. Workers never touch the database.
5. A shard whose replica died (`ReplicaLostError`) goes back to the front of the queue and is retried
   on another replica (up to `max_attempts`); since nothing of it was written, nothing is duplicated
   (and the cache key's UNIQUE constraint would refuse a duplicate anyway). Bad input and engine errors
   fail the run, as locally. The step returns only when every missing sample has been written, and
   the runner's scoring step re-checks that none is missing before the run can be `complete`.

Why Serve replicas and not Ray Data `map_batches` over an actor pool: the replicas already hold the
loaded (possibly compiled) checkpoint, their engine queue is where interactive requests overtake eval
work, and autoscaling already follows their queue length. A separate actor pool would load a second
copy of every model, compete with serving for the same GPUs with no priority between the two, and
need its own failure handling; Ray Data's streaming executor adds start-up cost without adding
anything a run of a few thousand images needs.
"""

from __future__ import annotations

import io
import logging
import os
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from core.keys import sha256_hex
from evals.generate import sample_path, sample_record
from evals.plan import EvalError, PlannedSample, RunOptions, RunPlan, build_plan
from evals.samples import SampleView, ScoreRow
from evals.store import existing_samples, insert_samples
from evals.suites import get_registry
from hub.demo_hooks import load_demo_hooks
from hub.errors import EngineError, HubInputError
from hub.recipe import png_info
from hub.serving import wire
from hub.serving.wire import ReplicaLostError

log = logging.getLogger(__name__)

PLANS_KEPT = 2
RETRY_BACKOFF_S = 0.5  # plans (with their judges) a replica keeps, for runs whose shards keep arriving


# ------------------------------------------------------------------------------------- in a replica


def _cached_plan(engine: Any, state: dict[str, Any], payload: dict[str, Any]) -> RunPlan:
    """The run's plan on this replica, built once (judges loaded once) and checked against the driver's."""
    plans: OrderedDict[str, RunPlan] = state.setdefault("eval_plans", OrderedDict())
    lock: threading.Lock = state.setdefault("eval_plans_lock", threading.Lock())
    key = payload["plan_key"]
    with lock:  # two shards of one run arriving together build it once
        plan = plans.get(key)
        if plan is None:
            options = RunOptions(**{**payload["options"], "adapters": tuple(tuple(a) for a in payload["options"]["adapters"]),
                                    "languages": tuple(payload["options"]["languages"]) if payload["options"]["languages"] else None,
                                    "judges": tuple(payload["options"]["judges"])})
            config = engine.config
            plan = build_plan(options, engine=engine, config=config, data_dir=Path(config.data_path),
                              prompts_dir=payload["prompts_dir"], judge_device=payload["judge_device"],
                              render_input=load_demo_hooks(config).render_input)
            expected = payload["expect"]
            found = {"version": plan.version, "settings_hash": plan.settings_hash, "adapters": plan.adapters,
                     "samples": len(plan.samples)}
            if found != expected:
                raise EvalError(
                    f"a replica planned this run differently ({found} here, {expected} at the driver): every node "
                    "needs the same weights, prompts and config"
                )
            plans[key] = plan
            while len(plans) > PLANS_KEPT:
                plans.popitem(last=False)
        plans.move_to_end(key)
        return plan


def run_shard(engine: Any, state: dict[str, Any], payload: dict[str, Any]) -> dict[str, Any]:
    """Generate and judge one shard in a replica (`EngineReplica.run_task`); never writes the database."""
    try:
        wire.apply_registry(engine.registry, payload["registry"])
        plan = _cached_plan(engine, state, payload)
        shard: list[PlannedSample] = []
        for index, key in payload["samples"]:
            planned = plan.samples[index]
            if planned.cache_key != key:
                raise EvalError(f"sample {index} of the plan has key {planned.cache_key[:12]} here, {key[:12]} at the driver")
            shard.append(planned)
        outputs = engine.run_many([planned.request for planned in shard])  # eval priority: the requests carry it
        samples, views = [], []
        data_dir = Path(engine.config.data_path)
        for position, (planned, images) in enumerate(zip(shard, outputs)):
            image = images[0]
            buffer = io.BytesIO()
            image.image.save(buffer, format="PNG", pnginfo=png_info(image.recipe))
            samples.append({"key": planned.cache_key, "png": buffer.getvalue()})
            views.append(SampleView(position, planned.row.item_id, planned.row.language, planned.seed, planned.row.text,
                                    str(sample_path(data_dir, plan.checkpoint.id, planned.cache_key)), plan.meta(planned),
                                    image.image))
        scores = plan.kind.score_samples(views, plan.judges)
    except (HubInputError, EngineError) as err:
        return wire.error_to_wire(err)
    return {"samples": samples, "scores": [(s.sample_id, s.judge_id, s.metric, float(s.value)) for s in scores],
            "pid": os.getpid()}


# -------------------------------------------------------------------------------------- the driver


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)  # a reader never sees half a file


@dataclass
class DistributedGenerate:
    """The generation step of a run on Ray (same signature and result as `generate_missing`)."""

    prompts_dir: str | Path | None = None
    judge_device: Any = None
    workers: int | None = None  # shards in flight; None: engine.ray.eval_workers
    max_attempts: int = 4  # per shard, counting the first
    task: Callable[[Any, dict[str, Any], dict[str, Any]], dict[str, Any]] = run_shard  # what a replica runs per shard
    on_shard: Callable[[dict[str, Any]], None] | None = None  # called with each written shard's info (tools, tests)
    lost_shards: int = field(default=0, init=False)  # shards whose replica died under them (retried)

    def __call__(self, plan: RunPlan, *, engine: Any, db: Any, data_dir: Path, on_batch: Callable[[int, int], None],
                 progress: Callable[[int, str], Any]) -> tuple[int, int, int]:
        existing = existing_samples(db, [p.cache_key for p in plan.samples])
        todo: dict[str, tuple[int, PlannedSample]] = {}
        for index, planned in enumerate(plan.samples):
            if planned.cache_key not in existing:
                todo.setdefault(planned.cache_key, (index, planned))  # one image for coinciding texts
        reused = len(plan.samples) - sum(1 for p in plan.samples if p.cache_key not in existing)
        pending = list(todo.values())
        size = plan.options.batch_size
        shards: deque[list[tuple[int, PlannedSample]]] = deque(pending[i : i + size] for i in range(0, len(pending), size))
        workers = max(1, int(self.workers or getattr(getattr(engine, "ray_settings", None), "eval_workers", 1)))
        base = self._payload_base(plan, engine)
        generated = scored = 0
        attempts: dict[int, int] = {}
        bar = progress(len(pending), f"generate {plan.checkpoint.id} on {workers} workers")
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="eval-shard")
        running: dict[Future, list[tuple[int, PlannedSample]]] = {}
        try:
            while shards or running:
                while shards and len(running) < workers:
                    shard = shards.popleft()
                    payload = {**base, "samples": [(index, planned.cache_key) for index, planned in shard]}
                    running[pool.submit(engine.call_task, self.task, payload)] = shard
                done, _ = wait(list(running), return_when=FIRST_COMPLETED)
                for future in done:
                    shard = running.pop(future)
                    try:
                        reply = future.result()
                    except ReplicaLostError as err:
                        self.lost_shards += 1
                        tries = attempts[id(shard)] = attempts.get(id(shard), 1) + 1
                        if tries > self.max_attempts:
                            raise EngineError(f"a shard of {len(shard)} samples failed {self.max_attempts} times: {err}") from None
                        log.warning("eval shard lost with its replica (%s); retrying it (attempt %d)", err, tries)
                        time.sleep(RETRY_BACKOFF_S * (tries - 1))  # let the router drop the dead replica
                        shards.appendleft(shard)
                        continue
                    wire.raise_if_error(reply)
                    scored += self._write(plan, shard, reply, db, data_dir)
                    generated += len(shard)
                    on_batch(generated, reused)
                    bar.update(len(shard))
                    if self.on_shard is not None:
                        self.on_shard({"pid": reply.get("pid"), "keys": [planned.cache_key for _, planned in shard]})
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
            bar.close()
        missing = [key for key in todo if key not in existing_samples(db, list(todo))]
        if missing:  # cannot happen unless a write was lost: never let the run look complete
            raise EvalError(f"{len(missing)} samples missing after generation")
        return generated, reused, scored

    def _payload_base(self, plan: RunPlan, engine: Any) -> dict[str, Any]:
        options = asdict(plan.options)
        options["adapters"] = [list(item) for item in plan.options.adapters]
        options["languages"] = list(plan.options.languages) if plan.options.languages else None
        options["judges"] = list(plan.options.judges)

        # The driver's prompts folder, resolved here (HUB_PROMPTS_DIR included): replicas read the same one.
        prompts_dir = str(Path(get_registry(self.prompts_dir).prompts_dir).resolve())
        expect = {"version": plan.version, "settings_hash": plan.settings_hash, "adapters": plan.adapters,
                  "samples": len(plan.samples)}
        return {
            "options": options,
            "prompts_dir": prompts_dir,
            "judge_device": None if self.judge_device is None else str(self.judge_device),
            "expect": expect,
            "plan_key": sha256_hex({"options": options, "prompts": prompts_dir, "expect": expect}),
            "checkpoint_id": plan.checkpoint.id,
            "registry": engine.registry_payload(plan.checkpoint, [name for name, _ in plan.options.adapters]),
        }

    @staticmethod
    def _write(plan: RunPlan, shard: list[tuple[int, PlannedSample]], reply: dict[str, Any], db: Any, data_dir: Path) -> int:
        """PNGs, then the shard's sample and score rows in one transaction (the same rows as locally);
        returns the number of score rows."""
        produced = reply["samples"]
        if [item["key"] for item in produced] != [planned.cache_key for _, planned in shard]:
            raise EvalError("a replica returned other samples than the shard it was given")
        records = []
        for (_, planned), item in zip(shard, produced):
            path = sample_path(data_dir, plan.checkpoint.id, planned.cache_key)
            _write_atomic(path, item["png"])
            records.append(sample_record(plan, planned, path))
        scores = [(shard[position][1].cache_key, ScoreRow(position, judge_id, metric, value))
                  for position, judge_id, metric, value in reply["scores"]]
        insert_samples(db, records, scores)
        return len(scores)


def ray_config(config: Any, *, workers: int | None = None) -> Any:
    """`config` with `engine.backend: ray`; with `workers`, N shards in flight and at least N replicas
    (the CLI's `--backend ray --workers N`)."""
    ray = config.engine.ray
    if workers is not None:
        if workers < 1:
            raise HubInputError(f"--workers must be at least 1, got {workers}")
        ray = ray.model_copy(update={"eval_workers": workers, "min_replicas": max(ray.min_replicas, workers),
                                     "max_replicas": max(ray.max_replicas, workers)})
    engine = config.engine.model_copy(update={"backend": "ray", "ray": ray})
    return config.model_copy(update={"engine": engine})
