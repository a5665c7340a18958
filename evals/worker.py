"""Background worker: executes queued eval runs, oldest first, through `leaderboards.queue`.

Claims go through the one claim path (`claim_next_run`: FOR UPDATE SKIP LOCKED on PostgreSQL), so with
several app replicas a run is executed once; a run whose worker died is taken over when its lease
expires (the runner's heartbeat renews it while the run works). Queued runs live in the database, so
they survive restarts; a taken-over run resumes from its cached samples.
"""

from __future__ import annotations

import logging
import threading

from evals.plan import RunOptions
from evals.runner import EvalRunner
from hub.errors import HubInputError
from leaderboards import queue

log = logging.getLogger(__name__)


class EvalWorker:
    def __init__(self, runner: EvalRunner, *, poll_seconds: float = 5.0):
        self.runner = runner
        self.poll_seconds = poll_seconds
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.current_run: int | None = None

    def start(self) -> "EvalWorker":
        if self._thread is not None and self._thread.is_alive():
            return self
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="eval-worker", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float | None = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

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
            options = RunOptions.from_run(claimed.checkpoint_id, claimed.suite_name, claimed.adapters, claimed.settings)
            self.runner.run(options, claimed=claimed, progress=False)
        except HubInputError as exc:
            log.warning("eval run %s failed: %s", claimed.id, exc)
        except Exception:  # recorded as failed by the runner; the worker keeps going
            log.exception("eval run %s failed", claimed.id)
        finally:
            self.current_run = None
        return claimed.id

    def drain(self) -> list[int]:
        """Run everything claimable now, in this thread (tests, CLI)."""
        done = []
        while (run_id := self.run_once()) is not None:
            done.append(run_id)
        return done

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                ran = self.run_once()
            except Exception:  # database hiccup: log and retry after the poll interval
                log.exception("eval worker: cannot read the queue")
                ran = None
            if ran is None:
                self._wake.wait(self.poll_seconds)
                self._wake.clear()
