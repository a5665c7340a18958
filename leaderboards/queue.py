"""The eval queue: the one way to queue, claim, lease and finish eval runs.

The Submit tab, `python -m evals queue`, `python -m evals run`, the app's bootstrap runs and
every worker (local thread or Ray) go through these functions, so a run is recorded one way only.

Claiming. A worker claims the oldest claimable run: one that is `queued`, or `running` under a lease
that has expired (its worker died). On PostgreSQL the candidate row is locked with
`SELECT ... FOR UPDATE SKIP LOCKED`, so replicas claiming at once each get a different run; on SQLite
the write transaction (BEGIN IMMEDIATE) serialises claimers. Either way a conditional UPDATE moves the
run to `running` under the claimer's `worker_id` with a fresh lease.

Leases. While it works, the worker renews the lease (`renew_lease`, a heartbeat every lease/3). When
a replica dies mid-run, its lease runs out and the run is taken over; the cached samples make the
takeover resume where the dead worker stopped. Nothing is taken over at another replica's start: only
an expired lease frees a run, and never to the worker that holds it.

Takeovers on time. `claim_next_run` takes orphans too, but a worker calls it only between runs, so a
busy worker once left an orphan waiting for its own long run (issue 23). Each worker therefore also
runs a lease watch, a timer every lease/3 that calls `claim_expired_run` (orphans only) and executes
what it claims beside its current run (`evals.worker`): an orphan is taken over within a lease/3 of
its expiry (while the worker has a takeover slot free). Both claims share one conditional UPDATE (`_claim`), which counts `eval_runs.takeovers`;
the board shows a running run that was taken over, or whose lease expired, as "resuming"
(`shown_status`).
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, or_, select, update

from core.errors import InputError
from core.keys import canonical_adapters
from leaderboards.db import Database
from leaderboards.quotas import spend
from leaderboards.schema import Checkpoint, EvalRun, as_utc, utcnow

DEFAULT_LEASE_SECONDS = 90.0


def new_worker_id() -> str:
    """Unique per worker: host, process and a random part (two threads of one process differ)."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class ClaimedRun:
    id: int
    checkpoint_id: str
    suite_name: str
    adapters: str
    settings: dict[str, Any]
    worker_id: str


def queue_run(
    db: Database,
    checkpoint_id: str,
    suite_name: str,
    *,
    adapters: str = "",
    settings: dict[str, Any] | None = None,
    known_suites: Collection[str] | None = None,
    owner: str | None = None,
    gpu_seconds: float = 0.0,
    quota_seconds: float | None = None,
) -> int:
    """Record a queued run; refuses unknown/retired/rejected/hidden checkpoints, unknown suites and a
    duplicate of a run that is already queued or running. Returns the run id.

    `owner` is who queued it; with `quota_seconds`, the run's estimated `gpu_seconds` is spent from
    the owner's daily eval quota in the same transaction (`leaderboards.quotas`). A run of a pending
    checkpoint waits in the queue until a maintainer approves the checkpoint."""
    suite_name = (suite_name or "").strip()
    if not suite_name:
        raise InputError("Choose a suite.")
    if known_suites is not None and suite_name not in known_suites:
        raise InputError(f"Unknown suite {suite_name[:60]!r}: choose one of {', '.join(sorted(known_suites))}.")
    adapters = canonical_adapters(adapters)
    settings = dict(settings or {})
    with db.write_session() as session:
        checkpoint = session.get(Checkpoint, checkpoint_id)
        if checkpoint is None:
            raise InputError(f"Unknown checkpoint {str(checkpoint_id)[:80]!r}: register it first.")
        if checkpoint.status == "retired":
            raise InputError(f"Checkpoint {checkpoint_id!r} is retired.")
        if checkpoint.hidden or checkpoint.approval == "rejected":
            raise InputError(f"Checkpoint {checkpoint_id!r} is not accepted on this hub.")
        pending = session.execute(
            select(EvalRun.id, EvalRun.settings).where(
                EvalRun.checkpoint_id == checkpoint_id,
                EvalRun.suite_name == suite_name,
                EvalRun.adapters == adapters,
                EvalRun.status.in_(("queued", "running")),
            )
        ).all()
        for run_id, run_settings in pending:
            if _request_part(run_settings) == _request_part(settings):
                raise InputError(f"The same run is already queued or running (run {run_id}).")
        if owner is not None and quota_seconds is not None:
            spend(session, owner, "eval_gpu_seconds", gpu_seconds, quota_seconds, target=f"{checkpoint_id}/{suite_name}")
        run = EvalRun(checkpoint_id=checkpoint_id, suite_name=suite_name, adapters=adapters, settings=settings, status="queued",
                      owner=owner, gpu_seconds=float(gpu_seconds))
        session.add(run)
        session.flush()
        return int(run.id)


def _request_part(settings: dict[str, Any] | None) -> dict[str, Any]:
    """The part of a run's settings that the requester chose (the runner adds what it resolved)."""
    return {k: v for k, v in (settings or {}).items() if k in REQUEST_KEYS}


# Settings a requester may give; everything else in `eval_runs.settings` is written by the runner.
REQUEST_KEYS = ("seeds", "limit", "languages", "judges", "batch_size", "overrides")


def start_run(db: Database, checkpoint_id: str, suite_name: str, adapters: str, settings: dict[str, Any], worker_id: str,
              lease_seconds: float = DEFAULT_LEASE_SECONDS) -> ClaimedRun:
    """Record a run that starts now in this worker (the CLI's `evals run`), already leased to it."""
    now = utcnow()
    with db.write_session() as session:
        run = EvalRun(checkpoint_id=checkpoint_id, suite_name=suite_name, adapters=canonical_adapters(adapters),
                      settings=dict(settings), status="running", started_at=now, worker_id=worker_id,
                      lease_expires_at=now + dt.timedelta(seconds=lease_seconds))
        session.add(run)
        session.flush()
        return ClaimedRun(int(run.id), run.checkpoint_id, run.suite_name, run.adapters, dict(run.settings or {}), worker_id)


def claim_next_run(db: Database, worker_id: str, *, lease_seconds: float = DEFAULT_LEASE_SECONDS,
                   now: dt.datetime | None = None) -> ClaimedRun | None:
    """Claim the oldest queued run, or a running run whose lease expired; None when there is none."""
    now = now or utcnow()
    return _claim(db, worker_id, (EvalRun.status == "queued") | _expired(worker_id, now), lease_seconds, now)


def claim_expired_run(db: Database, worker_id: str, *, lease_seconds: float = DEFAULT_LEASE_SECONDS,
                      now: dt.datetime | None = None) -> ClaimedRun | None:
    """Claim the oldest running run whose lease expired (an orphan), never a queued one: what a
    worker's lease watch takes over while its main loop is busy. None when there is none."""
    now = now or utcnow()
    return _claim(db, worker_id, _expired(worker_id, now), lease_seconds, now)


def _expired(worker_id: str, now: dt.datetime) -> ColumnElement[bool]:
    """Running runs whose lease ran out. Not this worker's own: it is still executing those (a lagging
    heartbeat), since worker ids are unique per worker (`new_worker_id`)."""
    return ((EvalRun.status == "running") & EvalRun.lease_expires_at.is_not(None) & (EvalRun.lease_expires_at < now)
            & or_(EvalRun.worker_id.is_(None), EvalRun.worker_id != worker_id))


def _claim(db: Database, worker_id: str, claimable: ColumnElement[bool], lease_seconds: float,
           now: dt.datetime) -> ClaimedRun | None:
    """The one claim: lock the oldest claimable run, move it to `running` under `worker_id` with a fresh
    lease, and count a takeover when it was running (its lease expired)."""
    # Nothing runs (no download, no GPU time) for a checkpoint a maintainer has not approved, or hid.
    accepted = EvalRun.checkpoint_id.in_(
        select(Checkpoint.id).where(Checkpoint.approval == "approved", Checkpoint.hidden.is_(False))
    )
    claimable = claimable & accepted
    for _ in range(50):  # another claimer may win a row between our read and our update: try the next
        with db.write_session() as session:
            query = select(EvalRun).where(claimable).order_by(EvalRun.created_at, EvalRun.id).limit(1)
            if not db.is_sqlite:
                query = query.with_for_update(skip_locked=True)
            run = session.execute(query).scalar_one_or_none()
            if run is None:
                return None
            previous = (run.status, run.worker_id, run.lease_expires_at)
            claimed = session.execute(
                update(EvalRun)
                .where(
                    EvalRun.id == run.id,
                    EvalRun.status == previous[0],
                    EvalRun.worker_id.is_(None) if previous[1] is None else EvalRun.worker_id == previous[1],
                )
                .values(status="running", worker_id=worker_id, started_at=now,
                        lease_expires_at=now + dt.timedelta(seconds=lease_seconds), error=None, finished_at=None,
                        takeovers=EvalRun.takeovers + (1 if previous[0] == "running" else 0))
            ).rowcount
            if claimed == 1:
                return ClaimedRun(int(run.id), run.checkpoint_id, run.suite_name, run.adapters or "",
                                  dict(run.settings or {}), worker_id)
    return None


def renew_lease(db: Database, run_id: int, worker_id: str, *, lease_seconds: float = DEFAULT_LEASE_SECONDS) -> bool:
    """Extend this worker's lease on a running run; False when the run is no longer ours."""
    with db.write_session() as session:
        renewed = session.execute(
            update(EvalRun)
            .where(EvalRun.id == run_id, EvalRun.worker_id == worker_id, EvalRun.status == "running")
            .values(lease_expires_at=utcnow() + dt.timedelta(seconds=lease_seconds))
        ).rowcount
    return renewed == 1


def update_run(db: Database, run_id: int, **values: Any) -> None:
    """Write progress or results of a run (counts, settings the runner resolved, version)."""
    with db.write_session() as session:
        session.execute(update(EvalRun).where(EvalRun.id == run_id).values(**values))


def finish_run(db: Database, run_id: int, *, status: str, error: str | None = None, worker_id: str | None = None,
               **values: Any) -> bool:
    """Mark a run complete or failed and release its lease. With `worker_id`, only while that worker
    still holds it: a run a maintainer cancelled (or another worker took over) keeps what it says.
    Returns whether the run was written."""
    if status not in ("complete", "failed"):
        raise ValueError(f"a run finishes complete or failed, not {status!r}")
    query = update(EvalRun).where(EvalRun.id == run_id)
    if worker_id is not None:
        query = query.where(EvalRun.worker_id == worker_id, EvalRun.status == "running")
    with db.write_session() as session:
        written = session.execute(
            query.values(status=status, error=(error or None) and error[:4000], finished_at=utcnow(), lease_expires_at=None,
                         **values)
        ).rowcount
    return written == 1


def lease_expired(run: EvalRun, now: dt.datetime | None = None) -> bool:
    return run.lease_expires_at is not None and as_utc(run.lease_expires_at) < (now or utcnow())


def shown_status(run: EvalRun, now: dt.datetime | None = None) -> str:
    """A run's status as the hub shows it: a running run that was taken over, or whose worker stopped
    renewing its lease (a watch takes it over shortly), is "resuming" (from its cached samples)."""
    if run.status == "running" and (run.takeovers or lease_expired(run, now)):
        return "resuming"
    return run.status
