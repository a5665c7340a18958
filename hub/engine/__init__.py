"""The one engine per process that owns the accelerator.

- `requests.py`: request types and their checks (`GenerationRequest`, `EditRequest` -> `Job`).
- `registry.py`: what may be loaded (checkpoints, LoRAs) and each checkpoint's version.
- `models.py`: loaded models (one resident, LRU in CPU memory), derived task pipelines, LoRAs, compile.
- `call.py`: one pipeline call; the family builds its arguments; recipes; inpainting paste-back.
- `worker.py`: the priority queue with batching and interleaving, and the one worker thread.
- `costs.py`: how long a job will take here, learned from real calls (admission, waits, eval batches).

Between denoising steps (`Engine._between_steps`) the engine counts the step, stops a call whose
callers have all gone (a `CancelToken` set by a disconnect, Stop or the watchdog), and runs waiting
interactive work nested in a long call. A watchdog thread stops any call past `limits.max_call_seconds`.

No gradio here: the CLI, the eval runner and batch workers use the engine directly. `hub.remote`
offers the same methods over Ray Serve (engine.backend: ray).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Callable

from hub.checkpoints import HashCache, pick_device
from hub.config import HubConfig
from hub.engine.call import make_scheduler, restore_model, run_jobs
from hub.engine.costs import CostModel, work_of
from hub.engine.interface import EngineInterface
from hub.engine.models import ModelCache, adapter_name
from hub.engine.registry import ModelRegistry
from hub.engine.requests import (
    EVAL,
    INTERACTIVE,
    CancelToken,
    EditRequest,
    GeneratedImage,
    GenerationRequest,
    Job,
    ProgressCallback,
)
from hub.engine.worker import JobQueue, Worker, execute
from hub.errors import JobCancelled, OverBudget

log = logging.getLogger(__name__)

__all__ = [
    "EVAL",
    "INTERACTIVE",
    "CancelToken",
    "EditRequest",
    "Engine",
    "GeneratedImage",
    "GenerationRequest",
    "adapter_name",
    "make_scheduler",
]


@dataclass
class RunningCall:
    """The call on the device now (the outermost one, when calls are nested)."""

    jobs: list[Job]
    estimate: float
    started: float = field(default_factory=time.monotonic)
    nested_seconds: float = 0.0  # time spent on calls nested in this one
    step: int = 0
    total: int = 1

    def own_seconds(self, now: float) -> float:
        return now - self.started - self.nested_seconds

    def remaining(self) -> float:
        return self.estimate * max(0.0, 1 - self.step / max(self.total, 1))


def device_name(device: str) -> str:
    """The device as the cost model knows it: rates measured on one GPU model do not hold on another."""
    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        return f"cuda:{torch.cuda.get_device_name()}"
    return device


class Engine(EngineInterface):
    def __init__(self, config: HubConfig, device: str | None = None):
        self.config = config
        self.device, self.dtype = pick_device(device or config.engine.device)
        self.stats = {"pipeline_calls": 0, "images": 0, "checkpoint_loads": 0, "lora_loads": 0, "steps": 0,
                      "interleaved_calls": 0, "cancelled_calls": 0, "watchdog_stops": 0}
        self.registry = ModelRegistry(config, self.device, HashCache(config.data_path / "hash_cache.json"))
        self.models = ModelCache(config, self.registry, self.device, self.dtype, self.stats)
        self.costs = CostModel(config, device_name(self.device), config.data_path / "cost_model.json")
        # Held by the worker for each pipeline call and by direct pipeline access (tests, tools).
        self._gpu_lock = threading.RLock()
        self.queue = JobQueue(max_batch_images=config.engine.max_batch_images, batch_window_ms=config.engine.batch_window_ms,
                              estimate=self.costs.estimate, max_eval_batch_seconds=config.limits.max_eval_batch_seconds)
        self._running: RunningCall | None = None
        self._exclusive: tuple[Job, float] | None = None  # exclusive work on the device now, since when
        self._nested = False
        self.healthy = True  # false once a call ignored the watchdog (stuck inside one step)
        # On ZeroGPU the GPU exists only inside the request's `spaces.GPU` call: run work inline
        # there. Everywhere else one worker thread owns the device and batches the queue.
        self.inline = bool(os.environ.get("SPACES_ZERO_GPU"))
        self._worker = Worker(self.queue, self._run, self._gpu_lock)
        self._watchdog = threading.Thread(target=self._watch, name="hub-engine-watchdog", daemon=True)
        if not self.inline:
            self._worker.start()
        self._watchdog.start()

    # -- one call on the device -------------------------------------------------------------------
    def _run(self, jobs: list[Job]) -> list[list[GeneratedImage]]:
        outer = not self._nested and self._running is None
        call = RunningCall(jobs, self.costs.estimate(jobs))
        if outer:
            self._running = call
        started, loads = time.monotonic(), self.stats["checkpoint_loads"]
        checkpoint_id = jobs[0].spec.id if jobs[0].spec else ""
        self.models.in_use[checkpoint_id] += 1
        try:
            results = run_jobs(self.models, jobs, mask_blur=self.config.engine.mask_blur,
                               between_steps=lambda running, step, total: self._between_steps(call, step, total))
        finally:
            self.models.in_use[checkpoint_id] -= 1
            if outer:
                self._running = None
        if self.stats["checkpoint_loads"] == loads:  # a load is not the model's speed
            self.costs.observe(jobs, time.monotonic() - started - call.nested_seconds)
        return results

    def _between_steps(self, call: RunningCall, step: int, total: int) -> None:
        """After each denoising step: count it, stop a call nobody waits for, serve who waits."""
        self.stats["steps"] += 1
        call.step, call.total = step, total
        if all(job.cancel.is_set() for job in call.jobs):
            self.stats["cancelled_calls"] += 1
            raise JobCancelled(call.jobs[0].cancel.reason)
        if self._nested or not self.config.engine.interleave or not call.jobs[0].family.interleaves:
            return
        started = time.monotonic()
        ran = False
        self._nested = True
        try:
            while (batch := self.queue.take_urgent(call.jobs, call.remaining())) is not None:
                ran = True
                self.stats["interleaved_calls"] += 1
                execute(batch, self._run, self._gpu_lock)
        finally:
            self._nested = False
            if ran:
                restore_model(self.models, call.jobs)
                call.nested_seconds += time.monotonic() - started

    # -- the watchdog -----------------------------------------------------------------------------
    def _watch(self) -> None:
        """Stop (at its next step) any call past `limits.max_call_seconds` of its own time; a call
        that does not stop within another such period is stuck inside a step: the engine reports
        itself unhealthy (on Ray, Serve then replaces the replica)."""
        while not self.queue.closed:
            time.sleep(0.25)
            limit = self.config.limits.max_call_seconds
            now = time.monotonic()
            running, exclusive = self._running, self._exclusive
            if running is not None:
                jobs, elapsed = running.jobs, running.own_seconds(now)
            elif exclusive is not None:
                jobs, elapsed = [exclusive[0]], now - exclusive[1]
            else:
                continue
            if elapsed > limit and not all(job.cancel.is_set() for job in jobs):
                self.stats["watchdog_stops"] += 1
                log.error("watchdog: stopping a %s call after %.0f s (limit %.0f s)", jobs[0].task, elapsed, limit)
                for job in jobs:
                    job.cancel.cancel(f"Stopped after {elapsed:.0f} s: the limit for one call here is {limit:g} s.")
            elif elapsed > 2 * limit and self.healthy:
                self.healthy = False
                log.error("watchdog: a %s call ignores its stop (%.0f s); the engine is unhealthy", jobs[0].task, elapsed)

    # -- admission and waits ----------------------------------------------------------------------
    def admit(self, job: Job) -> None:
        """Refuse interactive work estimated over `limits.max_request_seconds` on this device. Until a
        checkpoint's speed here is measured, its estimate is only the device's prior: then no more
        than its own default request (size, steps, one image) is admitted over the limit, so the
        first call measures it and the prior never locks a checkpoint out."""
        if job.task == "exclusive" or job.spec is None or job.priority > INTERACTIVE:
            return
        seconds, limit = self.costs.estimate(job), self.config.limits.max_request_seconds
        if seconds > limit and not self.costs.measured(job):
            d = job.spec.defaults
            if work_of(job) <= d.steps * d.width * d.height / 1e6:
                return
        if seconds > limit:
            raise OverBudget(
                f"This request would take about {seconds:.0f} s on this hub's {self.device.split(':')[0].upper()} "
                f"with {job.spec.id!r} (the limit is {limit:g} s): use fewer steps, a smaller size or a smaller batch."
            )

    def estimated_wait(self, priority: int = INTERACTIVE) -> float:
        """Seconds before a new job of `priority` would start: what is left of the running call (at
        most one step of it for interactive work, which interleaves) plus the work queued ahead."""
        running = self._running
        ahead = 0.0
        if running is not None:
            left = running.remaining()
            per_step = running.estimate / max(running.total, 1)
            ahead += min(left, per_step) if priority <= INTERACTIVE and self.config.engine.interleave else left
        return ahead + sum(self.costs.estimate(job) for job in self.queue.waiting(priority) if job.spec is not None)

    # -- submitting -------------------------------------------------------------------------------
    def submit(self, job: Job) -> Future:
        self.admit(job)
        if self.inline:
            execute([job], self._run, self._gpu_lock)
            return job.future
        return self.queue.put(job)

    def _run_job(self, job: Job, progress: ProgressCallback | None, cancel: CancelToken | None) -> list[GeneratedImage]:
        job.progress = progress
        job.cancel = cancel or job.cancel
        return self.submit(job).result()

    def _run_jobs(self, jobs: list[Job], cancel: CancelToken | None) -> list[list[GeneratedImage]]:
        for job in jobs:
            job.cancel = cancel or job.cancel
        futures = [self.submit(job) for job in jobs]  # all queued before the first runs: they batch
        return [future.result() for future in futures]

    def run_exclusive(self, fn: Callable[[], Any], priority: int = INTERACTIVE, cancel: CancelToken | None = None) -> Any:
        """Run `fn` on the engine's worker, between pipeline calls (e.g. LoRA training). `fn` checks
        `cancel` itself (the watchdog sets it too)."""
        job = Job(task="exclusive", spec=None, priority=priority, cancel=cancel or CancelToken())

        def timed() -> Any:
            self._exclusive = (job, time.monotonic())
            try:
                return fn()
            finally:
                self._exclusive = None

        job.call = timed
        return self.submit(job).result()

    def pipeline(self, checkpoint_id: str, task: str = "text2img") -> Any:
        """The task pipeline for a checkpoint (loading it if needed). For tools and tests."""
        with self._gpu_lock:
            loaded = self.models.ensure_loaded(self.spec(checkpoint_id))
            return self.models.task_pipeline(loaded, task)

    def shutdown(self) -> None:
        self.queue.close()
        self._worker.join(timeout=30)
        self.costs.save()
