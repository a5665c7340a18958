"""Clean-up of expired arena battles: their images go, their rows stay (marked).

`cleanup_expired_battles(db, data_dir, now)` settles every battle whose voting window closed more than
CLEANUP_GRACE ago and that the job has not seen yet (`expired_at IS NULL`):

- without a live vote: both image files are deleted and the row is marked `expired_at = now`,
  `images_deleted = true` (the battle stays on record: every checkpoint ever shown is kept);
- with a live vote: the images are kept and the row is only marked `expired_at = now`, so the next
  run does not look at it again.

Safe to run from several replicas at once: each batch is claimed by an UPDATE ... WHERE
expired_at IS NULL ... RETURNING, so every battle is claimed by exactly one run (PostgreSQL re-checks
the condition after waiting on the row lock; SQLite serialises writers), and on PostgreSQL the batch
transactions of concurrent runs take turns on an advisory lock (no lock-order deadlocks). Files are deleted after the
claim commits, and only inside `data_dir`; a missing file is not an error. The grace period (longer
than any vote transaction, and than the 30 s undo window) means no vote can still be in flight on a
battle the job claims. Images must lie on storage that every replica running the job sees under the
same path (one shared data folder); a battle whose images lie outside this `data_dir` is not claimed.

Rows of `battle_requests` (the battle budget) older than REQUEST_RETENTION are deleted too.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from pathlib import Path

from sqlalchemy import delete, exists, select, update

from leaderboards.arena_sessions import advisory_lock
from leaderboards.db import Database
from leaderboards.schema import Battle, BattleRequest, UsageEvent, Vote, utcnow

log = logging.getLogger(__name__)

CLEANUP_GRACE = dt.timedelta(minutes=5)
REQUEST_RETENTION = dt.timedelta(days=1)
BATCH_SIZE = 500


def _inside(path: str, root: Path) -> Path | None:
    """`path` resolved, if it is an absolute path inside `root` (resolved); else None."""
    candidate = Path(path)
    if not candidate.is_absolute():
        return None
    resolved = candidate.resolve()
    return resolved if resolved.is_relative_to(root.resolve()) else None


def cleanup_expired_battles(db: Database, data_dir: str | Path, now: dt.datetime | None = None) -> int:
    """Delete the images of expired, unvoted battles and mark them expired; returns how many battles
    had their images deleted by this call (0 when another run got there first). Idempotent."""
    now = now or utcnow()
    cutoff = now - CLEANUP_GRACE
    root = Path(data_dir).absolute()
    prefix = str(root).rstrip("/") + "/"
    table = Battle.__table__
    live_vote = exists().where(Vote.battle_id == table.c.id, Vote.undone_at.is_(None))
    cleaned = 0
    while True:
        with db.write_session() as session:
            # Replicas take turns per batch (PostgreSQL; SQLite has one writer anyway): two UPDATEs
            # locking the same rows in different orders could otherwise deadlock.
            advisory_lock(session, "cleanup", "battles")
            ids = session.scalars(
                select(table.c.id)
                .where(table.c.expired_at.is_(None), table.c.expires_at <= cutoff, table.c.image_a.startswith(prefix, autoescape=True))
                .order_by(table.c.expires_at)
                .limit(BATCH_SIZE)
            ).all()
            if not ids:
                break
            pending = (table.c.id.in_(ids), table.c.expired_at.is_(None))
            session.execute(update(table).where(*pending, live_vote).values(expired_at=now, images_deleted=False))
            claimed = session.execute(
                update(table)
                .where(*pending, ~live_vote)
                .values(expired_at=now, images_deleted=True)
                .returning(table.c.image_a, table.c.image_b)
            ).all()
        for image_a, image_b in claimed:
            for name in (image_a, image_b):
                path = _inside(name, root)
                if path is not None:
                    path.unlink(missing_ok=True)
        cleaned += len(claimed)
        if len(ids) < BATCH_SIZE:
            break
    with db.write_session() as session:
        session.execute(delete(BattleRequest).where(BattleRequest.created_at < now - REQUEST_RETENTION))
        # Quotas look back one day and image rates one minute: older spending counts for nothing.
        session.execute(delete(UsageEvent).where(UsageEvent.created_at < now - 2 * REQUEST_RETENTION))
    return cleaned


class CleanupThread(threading.Thread):
    """Runs `cleanup_expired_battles` now and then every `interval_s` seconds until `stop()`."""

    def __init__(self, db: Database, data_dir: str | Path, interval_s: float) -> None:
        super().__init__(name="arena-cleanup", daemon=True)
        if interval_s <= 0:
            raise ValueError("interval_s must be positive")
        self.db = db
        self.data_dir = Path(data_dir)
        self.interval_s = float(interval_s)
        self.runs = 0
        self.cleaned = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            try:
                self.cleaned += cleanup_expired_battles(self.db, self.data_dir)
            except Exception:  # noqa: BLE001 - a failed run (database away) must not end the thread
                log.exception("arena clean-up failed; retrying in %.0f s", self.interval_s)
            self.runs += 1
            self._stop_event.wait(self.interval_s)

    def stop(self, timeout: float | None = 10.0) -> None:
        self._stop_event.set()
        if self.is_alive():
            self.join(timeout)


def start_cleanup_thread(db: Database, data_dir: str | Path, interval_s: float = 600.0) -> CleanupThread:
    """Start the clean-up daemon thread (first run at once); `.stop()` ends it."""
    thread = CleanupThread(db, data_dir, interval_s)
    thread.start()
    return thread
