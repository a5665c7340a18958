"""Background worker: executes queued eval runs, oldest first, through `leaderboards.queue`.

Claims go through the one claim path (`leaderboards.queue`: FOR UPDATE SKIP LOCKED on PostgreSQL), so
with several app replicas a run is executed once. Queued runs live in the database, so they survive
restarts; a taken-over run resumes from its cached samples.

Two threads per worker. The main loop claims the next run (`claim_next_run`) and executes it, one at a
time. Beside it, a lease watch wakes every `watch_seconds` (lease/3) and takes over any running run
whose lease expired (its worker died: `claim_expired_run`), executing it in a takeover thread (at most
`max_takeovers` at once) through the same runner, whatever the main loop is doing: an orphan no longer
waits for this worker's current run to finish (issue 23). The engine's queue interleaves both runs'
batches; the runner plans them one at a time.
"""

from __future__ import annotations

import logging
import threading
import time

from evals.plan import RunOptions
from evals.runner import EvalRunner
from hub.errors import HubInputError
from leaderboards import queue

log = logging.getLogger(__name__)


def _import_diffusers() -> None:
    """diffusers resolves its classes lazily on first use, and two threads doing that at once can fail
    (`cannot import name 'AutoencoderKL'`): a takeover's planning beside the main loop's would. Done once,
    by the main loop, before the lease watch may start a second run."""
    import diffusers

    _ = diffusers.DiffusionPipeline, diffusers.AutoencoderKL, diffusers.UNet2DConditionModel


class EvalWorker:
    def __init__(self, runner: EvalRunner, *, poll_seconds: float = 5.0, watch_seconds: float | None = None,
                 max_takeovers: int = 1):
        self.runner = runner
        self.poll_seconds = poll_seconds
        # A lease/3 beat takes an orphan over within a third of a lease of its expiry.
        self.watch_seconds = watch_seconds if watch_seconds is not None else runner.lease_seconds / 3
        self.max_takeovers = max_takeovers
        self._stop = threading.Event()
        self._imported = threading.Event()  # set once the main loop has imported diffusers
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._watch_thread: threading.Thread | None = None
        self._slots = threading.BoundedSemaphore(max_takeovers) if max_takeovers > 0 else None
        self._takeover_threads: list[threading.Thread] = []
        self.current_run: int | None = None
        self.takeover_runs: set[int] = set()  # runs the takeover threads are executing

    def start(self) -> "EvalWorker":
        if self._thread is not None and self._thread.is_alive():
            return self
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="eval-worker", daemon=True)
        self._thread.start()
        if self._slots is not None:
            self._watch_thread = threading.Thread(target=self._watch, name="eval-lease-watch", daemon=True)
            self._watch_thread.start()
        return self

    def stop(self, timeout: float | None = 10.0) -> None:
        """Stop claiming; wait (up to `timeout` in all) for the main loop, the watch and the takeovers."""
        self._stop.set()
        self._wake.set()
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in (self._thread, self._watch_thread, *self._takeover_threads):
            if thread is not None:
                thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))

    def wake(self) -> None:
        """Look at the queue now (call after queueing a run)."""
        self._wake.set()

    def run_once(self) -> int | None:
        """Claim and execute one run, if any; returns its id."""
        claimed = queue.claim_next_run(self.runner.db, self.runner.worker_id, lease_seconds=self.runner.lease_seconds)
        if claimed is None:
            return None
        self.current_run = claimed.id
        try:
            self._execute(claimed)
        finally:
            self.current_run = None
        return claimed.id

    def drain(self) -> list[int]:
        """Run everything claimable now, in this thread (tests, CLI)."""
        done = []
        while (run_id := self.run_once()) is not None:
            done.append(run_id)
        return done

    def take_over_expired(self) -> int | None:
        """One beat of the lease watch: claim an orphan (a running run whose lease expired) if a takeover
        slot is free, and execute it in a takeover thread. Returns its id, None when nothing was claimed."""
        if self._slots is None or not self._slots.acquire(blocking=False):
            return None
        claimed = None
        try:
            claimed = queue.claim_expired_run(self.runner.db, self.runner.worker_id, lease_seconds=self.runner.lease_seconds)
        finally:
            if claimed is None:  # nothing to take over (or the claim failed): the slot stays free
                self._slots.release()
        if claimed is None:
            return None
        log.warning("eval run %s: its worker's lease expired, taking it over", claimed.id)
        self.takeover_runs.add(claimed.id)
        thread = threading.Thread(target=self._take_over, args=(claimed,), name=f"eval-takeover-{claimed.id}", daemon=True)
        self._takeover_threads = [t for t in self._takeover_threads if t.is_alive()] + [thread]
        thread.start()
        return claimed.id

    def _take_over(self, claimed: queue.ClaimedRun) -> None:
        try:
            self._execute(claimed)
        finally:
            self.takeover_runs.discard(claimed.id)
            assert self._slots is not None
            self._slots.release()

    def _execute(self, claimed: queue.ClaimedRun) -> None:
        """Run a claimed run; a failure is recorded by the runner and logged here, never raised."""
        try:
            options = RunOptions.from_run(claimed.checkpoint_id, claimed.suite_name, claimed.adapters, claimed.settings)
            self.runner.run(options, claimed=claimed, progress=False)
        except HubInputError as exc:
            log.warning("eval run %s failed: %s", claimed.id, exc)
        except Exception:  # recorded as failed by the runner; the worker keeps going
            log.exception("eval run %s failed", claimed.id)

    def _loop(self) -> None:
        _import_diffusers()
        self._imported.set()
        while not self._stop.is_set():
            try:
                ran = self.run_once()
            except Exception:  # database hiccup: log and retry after the poll interval
                log.exception("eval worker: cannot read the queue")
                ran = None
            if ran is None:
                self._wake.wait(self.poll_seconds)
                self._wake.clear()

    def _watch(self) -> None:
        """The lease watch: a timer that does not wait for the main loop's run (issue 23)."""
        self._imported.wait()
        while not self._stop.wait(self.watch_seconds):
            try:
                self.take_over_expired()
            except Exception:  # database hiccup: try again at the next beat
                log.exception("eval worker: cannot look for expired leases")
