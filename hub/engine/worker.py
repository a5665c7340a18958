"""The queue in front of the accelerator and the one thread that works it.

Jobs wait in arrival order within two priorities: interactive (a person waits) before eval work.
The worker takes the first job of the most urgent priority, waits a few milliseconds for compatible
jobs (same checkpoint and settings; see `Job.batch_key`) and runs them as one pipeline call. An eval
run therefore never makes a person wait behind more than the one eval batch already running.
Failures (out of memory included) reach every waiting caller as a short `EngineError`; the engine
frees memory and takes the next job.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future

import torch

from hub.engine.models import free_memory
from hub.engine.requests import EVAL, INTERACTIVE, Job
from hub.errors import EngineError, HubInputError

log = logging.getLogger(__name__)


def is_out_of_memory(err: BaseException) -> bool:
    text = str(err).lower()
    return isinstance(err, torch.OutOfMemoryError) or "out of memory" in text or "can't allocate memory" in text


def engine_error(err: BaseException, job: Job) -> EngineError:
    """A short message for a failed call; memory is freed so the next call can run."""
    free_memory()
    if is_out_of_memory(err):
        if job.task == "exclusive" or job.spec is None:
            return EngineError("Out of memory; try again with less work.")
        return EngineError(
            f"Out of memory generating {job.batch} image(s) at {job.width}x{job.height} with {job.spec.id!r}; "
            "try a smaller size or batch."
        )
    log.error("pipeline call failed", exc_info=err)
    message = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
    return EngineError(f"The {job.task} pipeline failed: {message}")


class JobQueue:
    """Two FIFO lanes (interactive, eval) with batching of compatible jobs."""

    def __init__(self, *, max_batch_images: int, batch_window_ms: int):
        self.max_batch_images = max_batch_images
        self.batch_window_s = batch_window_ms / 1000
        self._lanes: dict[int, deque[Job]] = {INTERACTIVE: deque(), EVAL: deque()}
        self._cond = threading.Condition()
        self.closed = False

    def put(self, job: Job) -> Future:
        with self._cond:
            if self.closed:
                raise EngineError("The engine is shut down.")
            self._lanes[INTERACTIVE if job.priority <= INTERACTIVE else EVAL].append(job)
            self._cond.notify()
        return job.future

    def close(self) -> None:
        with self._cond:
            self.closed = True
            self._cond.notify_all()

    def pending(self) -> dict[int, int]:
        with self._cond:
            return {lane: len(jobs) for lane, jobs in self._lanes.items()}

    def _first(self) -> Job | None:
        for lane in (INTERACTIVE, EVAL):
            if self._lanes[lane]:
                return self._lanes[lane].popleft()
        return None

    def take_batch(self) -> list[Job] | None:
        """Block for the next batch; None once closed and drained."""
        with self._cond:
            while not any(self._lanes.values()) and not self.closed:
                self._cond.wait()
            first = self._first()
            if first is None:
                return None
            key = first.batch_key
            if key is None:
                return [first]
            batch, images = [first], first.batch
            deadline = time.monotonic() + self.batch_window_s
            while True:
                for lane in self._lanes.values():
                    for job in list(lane):
                        if job.batch_key == key and images + job.batch <= self.max_batch_images:
                            lane.remove(job)
                            batch.append(job)
                            images += job.batch
                remaining = deadline - time.monotonic()
                if images >= self.max_batch_images or remaining <= 0 or self.closed:
                    return batch
                self._cond.wait(timeout=remaining)


def execute(batch: list[Job], run: Callable[[list[Job]], list], lock: threading.RLock) -> None:
    """Run one batch under the device lock and settle every job's future."""
    live = [job for job in batch if job.future.set_running_or_notify_cancel()]
    if not live:
        return
    try:
        with lock:
            if live[0].task == "exclusive":
                assert live[0].call is not None
                live[0].future.set_result(live[0].call())
                return
            results = run(live)
        for job, images in zip(live, results):
            job.future.set_result(images)
    except BaseException as err:  # every waiting caller must hear back
        error = err if isinstance(err, (HubInputError, EngineError)) else engine_error(err, live[0])
        for job in live:
            if not job.future.done():
                job.future.set_exception(error)


class Worker:
    """The thread that owns the device: takes batches from the queue and runs them."""

    def __init__(self, queue: JobQueue, run: Callable[[list[Job]], list], lock: threading.RLock):
        self.queue = queue
        self.run = run
        self.lock = lock
        self.thread = threading.Thread(target=self._loop, name="hub-engine", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _loop(self) -> None:
        while (batch := self.queue.take_batch()) is not None:
            execute(batch, self.run, self.lock)

    def join(self, timeout: float) -> None:
        if self.thread.is_alive():
            self.thread.join(timeout=timeout)
