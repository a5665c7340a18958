"""The Ray Serve replica: today's engine, whole, behind a deployment.

One replica per GPU (`engine.ray.num_gpus_per_replica`). Inside, nothing is new: the replica owns one
`Engine` (one resident checkpoint, LoRAs as named adapters, the two-lane priority queue that batches
compatible jobs, the one worker thread), so every rule the local engine keeps holds per replica:

- **Batching across users.** Serve hands the replica many requests at once (`max_ongoing_requests`);
  each becomes a job in the engine's queue, which merges compatible jobs (same checkpoint, size, steps,
  sampler, LoRAs) into one pipeline call. `@serve.batch` is not used: it batches by arrival only, cannot
  tell compatible requests apart and knows nothing of priorities; the engine's queue does both.
- **Priorities.** Interactive jobs go before eval jobs; an eval job is submitted one batch at a time,
  so a person waits behind at most the one eval call already running on the device.
- **Multiplexing.** `serve.multiplexed` keeps an LRU of `engine.ray.checkpoints_per_replica` checkpoint
  slots and tells Serve's router which replica holds which checkpoint, so requests carrying
  `multiplexed_model_id=<checkpoint>` go where the weights already are. A slot is a claim, not the
  weights: the engine loads lazily on its worker thread; when Serve evicts a slot, the checkpoint is
  dropped from the engine's cache (on the worker thread, between calls).
- **Failures.** Bad input and pipeline failures (out of memory included) come back as values that the
  front end raises as `HubInputError` / `EngineError` with the local engine's message; the engine frees
  memory and serves the next request. A replica whose worker thread died fails its health check and
  Serve replaces it.
- **Batch tasks.** `run_task(fn, payload)` runs `fn(engine, state, payload)` in a thread of the
  replica: the plug-in point for eval shards (`evals.distributed`), which submit their generation to
  this same engine at eval priority. `fn` travels by reference (module and name), so the hub package
  never imports evals.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Any, AsyncIterator, Callable, Iterator

from core import settings
from hub.config import HubConfig
from hub.engine import Engine
from hub.engine.models import free_memory
from hub.engine.requests import INTERACTIVE, EditRequest, Job
from hub.errors import EngineError, HubInputError
from hub.serving import wire

log = logging.getLogger(__name__)

PROGRESS_EVERY_S = 0.1  # progress messages per request: at most ten a second, plus the last step


class LoggedEngine(Engine):
    """The local engine, plus a short log of its pipeline calls: when each job was queued and when its
    call started and ended (monotonic clock, comparable across processes on one host). Tests and the
    stats endpoint read it to check the priority rule; nothing else changes."""

    def __init__(self, config: HubConfig, device: str | None = None):
        self.calls: deque[dict[str, Any]] = deque(maxlen=512)
        super().__init__(config, device)

    def submit(self, job: Job):  # noqa: ANN201 - Future
        job.queued_at = time.monotonic()  # type: ignore[attr-defined]
        return super().submit(job)

    def _run(self, jobs: list[Job]) -> list:
        start = time.monotonic()
        try:
            return super()._run(jobs)
        finally:
            self.calls.append({
                "priority": min(job.priority for job in jobs),
                "checkpoint": jobs[0].spec.id if jobs[0].spec else None,
                "prompts": [job.prompt for job in jobs],
                "queued": [getattr(job, "queued_at", None) for job in jobs],
                "images": sum(job.batch for job in jobs),
                "start": start,
                "end": time.monotonic(),
            })


class CheckpointSlot:
    """One entry of Serve's multiplexing LRU: the claim that this replica serves `checkpoint_id`.
    Serve calls `__del__` when it evicts the slot; the weights then leave the engine's cache."""

    def __init__(self, engine: Engine, checkpoint_id: str):
        self.engine = engine
        self.checkpoint_id = checkpoint_id
        self._released = False

    def __del__(self) -> None:
        # Serve calls this once on eviction (then the garbage collector may call it again): idempotent,
        # and it never waits, since the collector may run it on any thread, the worker's included.
        if self._released:
            return
        self._released = True
        try:
            drop = Job(task="exclusive", spec=None, call=lambda: drop_checkpoint(self.engine, self.checkpoint_id),
                       priority=INTERACTIVE)
            self.engine.submit(drop)
        except Exception:  # noqa: BLE001 - an engine shutting down has nothing left to drop
            pass


def drop_checkpoint(engine: Engine, checkpoint_id: str) -> bool:
    """Forget a loaded checkpoint (runs on the engine's worker thread, between pipeline calls)."""
    models = engine.models
    loaded = models.loaded.pop(checkpoint_id, None)
    if loaded is None:
        return False
    if models.resident == checkpoint_id:
        models.resident = None
    del loaded
    free_memory()
    return True


class EngineReplica:
    """The deployment's class (wrapped by `serve.deployment` in `hub.serving.cluster`)."""

    def __init__(self, config_data: dict[str, Any], replica: dict[str, Any]):
        import torch
        from ray import serve

        # The data folder: the front end's, unless this node mounts the shared folder elsewhere.
        data_dir = os.environ.get("HUB_REPLICA_DATA_DIR") or replica["data_dir"]
        os.environ[settings.DATA_DIR_ENV] = data_dir  # code that resolves the data folder itself sees ours
        if replica.get("torch_threads"):
            torch.set_num_threads(int(replica["torch_threads"]))
        config = HubConfig.model_validate({**config_data, "data_dir": data_dir})
        self.config = config
        self.engine = LoggedEngine(config, device=replica.get("device"))
        self.state: dict[str, Any] = {}  # batch tasks keep what they reuse here (eval plans and judges)
        self.tasks = ThreadPoolExecutor(max_workers=int(replica.get("task_threads", 8)), thread_name_prefix="replica-task")
        self.started = time.time()

        engine = self.engine

        async def open_slot(checkpoint_id: str) -> CheckpointSlot:
            return CheckpointSlot(engine, checkpoint_id)

        # Wrapped here, not at class level, so the LRU size can come from the config.
        self.checkpoint_slot = serve.multiplexed(max_num_models_per_replica=int(replica["checkpoints_per_replica"]))(open_slot)

    # -- requests ---------------------------------------------------------------------------------
    def _job(self, payload: dict[str, Any]) -> Job:
        wire.apply_registry(self.engine.registry, payload.get("registry"))
        request = wire.request_from_wire(payload["request"])
        if isinstance(request, EditRequest):
            return self.engine.resolve_edit(request)
        return self.engine.resolve_generation(request)

    async def _claim(self, checkpoint_id: str) -> None:
        await self.checkpoint_slot(checkpoint_id)

    @staticmethod
    @contextlib.contextmanager
    def _cancelled_if_abandoned(jobs: list[Job]) -> Iterator[None]:
        """Serve cancels a request whose caller left (or cancelled it) by cancelling this coroutine:
        the jobs' tokens are set, so the engine drops them or stops their call at the next step."""
        finished = False
        try:
            yield
            finished = True
        except (HubInputError, EngineError):
            finished = True
            raise
        finally:
            if not finished:
                for job in jobs:
                    job.cancel.cancel("Cancelled: the caller left.")

    async def generate(self, payload: dict[str, Any]) -> dict[str, Any]:
        """One generation or edit request; the reply carries its images or its error."""
        try:
            job = self._job(payload)
            with self._cancelled_if_abandoned([job]):
                await self._claim(job.spec.id)
                images = await asyncio.wrap_future(self.engine.submit(job))
        except (HubInputError, EngineError) as err:
            return wire.error_to_wire(err)
        return {"images": wire.images_to_wire(images), "pid": os.getpid()}

    async def generate_stream(self, payload: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """The same, streamed: `{"progress": [step, total]}` items, then the reply."""
        loop = asyncio.get_running_loop()
        updates: asyncio.Queue[tuple[int, int]] = asyncio.Queue()
        last = [0.0]

        def progress(step: int, total: int) -> None:
            now = time.monotonic()
            if step >= total or now - last[0] >= PROGRESS_EVERY_S:
                last[0] = now
                loop.call_soon_threadsafe(updates.put_nowait, (step, total))

        try:
            job = self._job(payload)
            job.progress = progress
            with self._cancelled_if_abandoned([job]):
                await self._claim(job.spec.id)
                done = asyncio.wrap_future(self.engine.submit(job))
                while True:
                    update = asyncio.ensure_future(updates.get())
                    finished, _ = await asyncio.wait({update, done}, return_when=asyncio.FIRST_COMPLETED)
                    if update in finished:
                        yield {"progress": list(update.result())}
                        continue
                    update.cancel()
                    break
                images = done.result()
        except (HubInputError, EngineError) as err:
            yield wire.error_to_wire(err)
            return
        yield {"images": wire.images_to_wire(images), "pid": os.getpid()}

    async def run_many(self, payloads: list[dict[str, Any]]) -> dict[str, Any]:
        """Several requests submitted together (compatible ones share pipeline calls), in order."""
        try:
            jobs = [self._job(payload) for payload in payloads]
            with self._cancelled_if_abandoned(jobs):
                for checkpoint_id in dict.fromkeys(job.spec.id for job in jobs):
                    await self._claim(checkpoint_id)
                futures = [asyncio.wrap_future(self.engine.submit(job)) for job in jobs]
                results = [await future for future in futures]
        except (HubInputError, EngineError) as err:
            return wire.error_to_wire(err)
        return {"results": [wire.images_to_wire(images) for images in results], "pid": os.getpid()}

    async def run_task(self, fn: Callable[[Engine, dict[str, Any], Any], Any], payload: Any) -> Any:
        """Run `fn(engine, state, payload)` in a thread of this replica (eval shards, tools)."""
        loop = asyncio.get_running_loop()
        checkpoint_id = payload.get("checkpoint_id") if isinstance(payload, dict) else None
        if checkpoint_id:
            await self._claim(checkpoint_id)
        return await loop.run_in_executor(self.tasks, fn, self.engine, self.state, payload)

    # -- health and stats -------------------------------------------------------------------------
    async def stats(self) -> dict[str, Any]:
        models = self.engine.models
        return {
            "pid": os.getpid(),
            "engine": dict(self.engine.stats),
            "device": self.engine.device,
            "loaded": list(models.loaded),
            "resident": models.resident,
            "pending": self.engine.queue.pending(),
            "healthy": self.engine.healthy,
            "calls": list(self.engine.calls),
            "uptime_s": time.time() - self.started,
        }

    def check_health(self) -> None:
        """Serve's health check: a replica whose engine thread died is replaced."""
        if self.engine.queue.closed or not self.engine._worker.thread.is_alive():
            raise RuntimeError("the engine's worker thread is not running")
        if not self.engine.healthy:
            raise RuntimeError("a call ignored the watchdog's stop: the engine is stuck")

    def __del__(self) -> None:
        try:
            self.engine.shutdown()
            self.tasks.shutdown(wait=False, cancel_futures=True)
        except Exception:  # noqa: BLE001 - shutting down
            pass
