"""Background worker: executes queued eval runs (`eval_runs.status = 'queued'`), oldest first.

The Submit tab only records a queued run (`EvalRunner.queue`); this thread claims it with a conditional
UPDATE (queued -> running, so two workers never take the same run) and runs it through the same
`EvalRunner` as the CLI. Queued runs live in the database, so they survive restarts; a run left
'running' by a process that died is put back in the queue when a worker starts (`requeue_stale`), and
resumes from its cached samples. With several replicas sharing one PostgreSQL database, pass
`requeue_stale=False` (a run 'running' there may belong to a live replica).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from sqlalchemy import select, update

from evals.runner import EvalRunner, RunOptions
from hub.errors import HubInputError

log = logging.getLogger(__name__)


class EvalWorker:
    def __init__(self, runner: EvalRunner, *, poll_seconds: float = 5.0, requeue_stale: bool = True):
        self.runner = runner
        self.poll_seconds = poll_seconds
        self.requeue_stale = requeue_stale
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.current_run: int | None = None

    # ------------------------------------------------------------------------------- lifecycle
    def start(self) -> "EvalWorker":
        if self._thread is not None and self._thread.is_alive():
            return self
        if self.requeue_stale:
            self.requeue_running()
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

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # ---------------------------------------------------------------------------------- queue
    def requeue_running(self) -> int:
        from leaderboards.schema import EvalRun

        with self.runner.db.write_session() as session:
            result = session.execute(
                update(EvalRun).where(EvalRun.status == "running").values(status="queued", started_at=None)
            )
            return int(result.rowcount or 0)

    def claim_next(self) -> Any | None:
        """Atomically move the oldest queued run to 'running'; None when the queue is empty."""
        from leaderboards.schema import EvalRun

        while True:
            with self.runner.db.write_session() as session:
                run = session.execute(
                    select(EvalRun).where(EvalRun.status == "queued").order_by(EvalRun.created_at, EvalRun.id).limit(1)
                ).scalar_one_or_none()
                if run is None:
                    return None
                claimed = session.execute(
                    update(EvalRun).where(EvalRun.id == run.id, EvalRun.status == "queued").values(status="running")
                )
                if claimed.rowcount == 1:
                    return run
            # another worker took it first: try the next one

    def run_once(self) -> int | None:
        """Execute one queued run, if any; returns its id."""
        run = self.claim_next()
        if run is None:
            return None
        self.current_run = run.id
        try:
            options = RunOptions.from_run_row(run)
            self.runner.run(options, run_id=run.id, progress=False)
        except HubInputError as exc:
            log.warning("eval run %s failed: %s", run.id, exc)
        except Exception:  # recorded as failed by the runner; the worker keeps going
            log.exception("eval run %s failed", run.id)
        finally:
            self.current_run = None
        return run.id

    def drain(self) -> list[int]:
        """Run everything queued now, in this thread (tests, CLI)."""
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
