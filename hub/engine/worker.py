"""The queue in front of the accelerator and the one thread that works it.

Jobs wait in two priorities: interactive (a person waits) before eval work. Within the interactive
lane people are served in turn (the owner served longest ago goes first), so four big grids cannot
put a one-image request behind 64 cells. The worker takes the next job, waits a few milliseconds for
compatible jobs (same checkpoint and settings; see `Job.batch_key`) and runs them as one pipeline call;
an eval batch stops growing at `limits.max_eval_batch_seconds` of estimated work.

While a call runs, the engine looks at the queue between denoising steps (`take_urgent`): a waiting
interactive job that is cheaper than what is left of the call runs there and then, nested inside it
(one level), and the long call resumes from its latents. A person therefore waits at most one step
of a long job. A cancelled job leaves the queue unrun; a call whose jobs are all cancelled stops at
the next step. Failures (out of memory included) reach every waiting caller as a short
`EngineError`; the engine frees memory and takes the next job.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future

import torch

from core.errors import first_line
from hub.engine.models import free_memory
from hub.engine.requests import EVAL, INTERACTIVE, Job
from hub.errors import EngineError, HubInputError, JobCancelled

log = logging.getLogger(__name__)

Estimate = Callable[[list[Job]], float]


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
    message = first_line(err)
    return EngineError(f"The {job.task} pipeline failed: {message}")


def _drop_cancelled(job: Job) -> bool:
    """Settle a cancelled job that never ran; True when it was cancelled."""
    if not job.cancel.is_set():
        return False
    if job.future.set_running_or_notify_cancel():
        job.future.set_exception(JobCancelled(job.cancel.reason))
    return True


class JobQueue:
    """Two lanes (interactive, eval): owners in turn within the interactive lane, FIFO for eval work;
    batching of compatible jobs."""

    def __init__(self, *, max_batch_images: int, batch_window_ms: int, estimate: Estimate | None = None,
                 max_eval_batch_seconds: float = float("inf")):
        self.max_batch_images = max_batch_images
        self.batch_window_s = batch_window_ms / 1000
        self.estimate = estimate or (lambda jobs: 0.0)
        self.max_eval_batch_seconds = max_eval_batch_seconds
        self._lanes: dict[int, deque[Job]] = {INTERACTIVE: deque(), EVAL: deque()}
        self._served: dict[str, float] = {}  # owner -> when their last job was taken
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

    def waiting(self, priority: int = EVAL) -> list[Job]:
        """Jobs waiting at `priority` or more urgent, in the order they would be served (roughly)."""
        with self._cond:
            return [job for lane in (INTERACTIVE, EVAL) if lane <= priority for job in self._lanes[lane]]

    # -- choosing the next job (callers hold the condition) ---------------------------------------
    def _purge(self) -> None:
        for lane in self._lanes.values():
            for job in [job for job in lane if job.cancel.is_set()]:
                lane.remove(job)
                _drop_cancelled(job)

    def _next_interactive(self) -> Job | None:
        lane = self._lanes[INTERACTIVE]
        if not lane:
            return None
        # The owner served longest ago (or never) goes first; their oldest job.
        owner = min(dict.fromkeys(job.owner for job in lane), key=lambda o: self._served.get(o, 0.0))
        return next(job for job in lane if job.owner == owner)

    def _take(self, job: Job) -> Job:
        lane = self._lanes[INTERACTIVE if job.priority <= INTERACTIVE else EVAL]
        lane.remove(job)
        if job.priority <= INTERACTIVE:
            self._served[job.owner] = time.monotonic()
            if len(self._served) > 4096:  # forget owners gone for good
                for owner, _ in sorted(self._served.items(), key=lambda item: item[1])[:2048]:
                    del self._served[owner]
        return job

    def _add_compatible(self, batch: list[Job]) -> None:
        key, images = batch[0].batch_key, sum(job.batch for job in batch)
        cap = self.max_eval_batch_seconds if batch[0].priority > INTERACTIVE else float("inf")
        seconds = self.estimate(batch) if cap != float("inf") else 0.0
        for lane in (INTERACTIVE, EVAL):
            for job in list(self._lanes[lane]):
                if job.batch_key != key or images + job.batch > self.max_batch_images:
                    continue
                more = self.estimate([job]) if cap != float("inf") else 0.0
                if seconds + more > cap:
                    continue
                batch.append(self._take(job))
                images += job.batch
                seconds += more

    # -- the worker's side ------------------------------------------------------------------------
    def take_batch(self) -> list[Job] | None:
        """Block for the next batch; None once closed and drained."""
        with self._cond:
            while True:
                self._purge()
                if any(self._lanes.values()) or self.closed:
                    break
                self._cond.wait()
            first = self._next_interactive() or (self._lanes[EVAL][0] if self._lanes[EVAL] else None)
            if first is None:
                return None
            batch = [self._take(first)]
            if first.batch_key is None:
                return batch
            deadline = time.monotonic() + self.batch_window_s
            while True:
                self._add_compatible(batch)
                remaining = deadline - time.monotonic()
                if sum(job.batch for job in batch) >= self.max_batch_images or remaining <= 0 or self.closed:
                    return batch
                self._cond.wait(timeout=remaining)

    def take_urgent(self, running: list[Job], remaining_seconds: float) -> list[Job] | None:
        """A batch of waiting interactive jobs to run now, inside the running call: when the running
        call is eval work, or when the waiting job is cheaper than what is left of the running call."""
        with self._cond:
            self._purge()
            first = self._next_interactive()
            if first is None or first.task == "exclusive" or first.spec is None:
                return None
            if running[0].priority <= INTERACTIVE and self.estimate([first]) >= remaining_seconds:
                return None
            batch = [self._take(first)]
            if first.batch_key is not None:
                self._add_compatible(batch)
            return batch


def execute(batch: list[Job], run: Callable[[list[Job]], list], lock: threading.RLock) -> None:
    """Run one batch under the device lock and settle every job's future."""
    live = [job for job in batch if not _drop_cancelled(job) and job.future.set_running_or_notify_cancel()]
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
            if job.cancel.is_set():  # its caller has gone: what it shared a call with is kept, not it
                job.future.set_exception(JobCancelled(job.cancel.reason))
            else:
                job.future.set_result(images)
    except BaseException as err:  # every waiting caller must hear back
        if isinstance(err, (HubInputError, EngineError)):
            error = err
        else:
            error = engine_error(err, live[0])
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
