"""What maintainers do, as data: approve or reject checkpoints, hide them, cancel or requeue runs, void
votes, ban sessions and IPs; every action is written to `audit_log` in the same transaction.

`actor` is who did it (`hf:<name>`, `token:<id>`, `local`). Hashes are the arena's salted hashes
(`votes.session_hash`, `votes.ip_hash`); the maintainer view lists them, never a raw session or IP.

Voiding keeps the votes (`voided_at` set) and rebuilds `vote_tallies` from the votes that still count,
so the board afterwards is exactly the fit without them.
"""

from __future__ import annotations

import re
import threading
import time

import pandas as pd
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from core.errors import InputError
from leaderboards.arena_votes import counted, rebuild_tallies, rows_frame
from leaderboards.db import Database
from leaderboards.schema import AuditEntry, Ban, Checkpoint, EvalRun, Sample, Score, Vote, utcnow

HASH_PATTERN = re.compile(r"^[0-9a-f]{64}$")
BAN_KINDS = ("session", "ip")
AUDIT_COLUMNS = ["time", "actor", "action", "target", "detail"]
VOTER_COLUMNS = ["session_hash", "ip_hash", "votes", "counted", "last_vote"]


def audit(session: Session, actor: str, action: str, target: str, detail: str = "") -> None:
    session.add(AuditEntry(actor=actor[:200], action=action[:64], target=str(target)[:500], detail=detail[:2000],
                           created_at=utcnow()))


def check_hash(value: str, what: str = "hash") -> str:
    value = (value or "").strip().lower()
    if not HASH_PATTERN.match(value):
        raise InputError(f"A {what} is 64 hexadecimal characters (copy it from the voters table).")
    return value


def _checkpoint(session: Session, checkpoint_id: str) -> Checkpoint:
    row = session.get(Checkpoint, (checkpoint_id or "").strip(), with_for_update=True)
    if row is None:
        raise InputError(f"Unknown checkpoint {str(checkpoint_id)[:80]!r}.")
    return row


# -------------------------------------------------------------------------------------- checkpoints


def set_approval(db: Database, actor: str, checkpoint_id: str, approve: bool, note: str = "") -> str:
    """Approve (its queued runs may start) or reject a pending checkpoint. Returns the new approval."""
    with db.write_session() as session:
        row = _checkpoint(session, checkpoint_id)
        if row.approval != "pending":
            raise InputError(f"Checkpoint {row.id!r} is not waiting for approval (it is {row.approval}).")
        row.approval = "approved" if approve else "rejected"
        if not approve:  # its queued runs will never run
            session.execute(
                update(EvalRun).where(EvalRun.checkpoint_id == row.id, EvalRun.status == "queued")
                .values(status="failed", error="The checkpoint was rejected by a maintainer.", finished_at=utcnow())
            )
        audit(session, actor, "approve_checkpoint" if approve else "reject_checkpoint", row.id, note)
        return row.approval


def hide_checkpoint(db: Database, actor: str, checkpoint_id: str, purge_samples: bool = False) -> list[str]:
    """Take a checkpoint off every board, picker and battle (rows and votes kept). With
    `purge_samples`, its samples and scores are deleted too; returns their image paths (the caller
    deletes the files, which live outside the database)."""
    with db.write_session() as session:
        row = _checkpoint(session, checkpoint_id)
        if row.is_demo:
            raise InputError("The demo checkpoints come from the config: remove them there.")
        row.hidden = True
        session.execute(
            update(EvalRun).where(EvalRun.checkpoint_id == row.id, EvalRun.status == "queued")
            .values(status="failed", error="The checkpoint was hidden by a maintainer.", finished_at=utcnow())
        )
        paths: list[str] = []
        if purge_samples:
            sample_ids = select(Sample.id).where(Sample.checkpoint_id == row.id)
            paths = list(session.execute(select(Sample.image_path).where(Sample.checkpoint_id == row.id)).scalars())
            session.execute(delete(Score).where(Score.sample_id.in_(sample_ids)))
            session.execute(delete(Sample).where(Sample.checkpoint_id == row.id))
        audit(session, actor, "hide_checkpoint", row.id, f"purged {len(paths)} samples" if purge_samples else "samples kept")
        return paths


def moderation_table(db: Database) -> pd.DataFrame:
    """Authors' checkpoints with their owner, approval and visibility (the maintainer's list)."""
    columns = ["checkpoint", "name", "family", "owner", "approval", "hidden", "registered"]
    with db.session() as session:
        rows = session.execute(
            select(Checkpoint.id, Checkpoint.display_name, Checkpoint.family, Checkpoint.owner, Checkpoint.approval,
                   Checkpoint.hidden, Checkpoint.created_at)
            .where(Checkpoint.is_demo.is_(False))
            .order_by(Checkpoint.approval != "pending", Checkpoint.created_at)
        ).all()
    return rows_frame(rows, columns)


# --------------------------------------------------------------------------------------------- runs


def cancel_run(db: Database, actor: str, run_id: int) -> None:
    """A queued or running run is marked failed ("cancelled"); a worker holding it loses its lease."""
    with db.write_session() as session:
        run = session.get(EvalRun, int(run_id), with_for_update=True)
        if run is None:
            raise InputError(f"Unknown run {run_id}.")
        if run.status not in ("queued", "running"):
            raise InputError(f"Run {run.id} is {run.status}: only queued or running runs can be cancelled.")
        run.status, run.error, run.finished_at = "failed", "Cancelled by a maintainer.", utcnow()
        run.worker_id, run.lease_expires_at = None, None
        audit(session, actor, "cancel_run", str(run.id), f"{run.checkpoint_id} / {run.suite_name}")


def requeue_run(db: Database, actor: str, run_id: int) -> None:
    """A failed run goes back to the queue (its stored samples are reused when it runs)."""
    with db.write_session() as session:
        run = session.get(EvalRun, int(run_id), with_for_update=True)
        if run is None:
            raise InputError(f"Unknown run {run_id}.")
        if run.status != "failed":
            raise InputError(f"Run {run.id} is {run.status}: only failed runs can be requeued.")
        run.status, run.error, run.finished_at, run.started_at = "queued", None, None, None
        run.takeovers = 0  # a fresh start, not a resumption
        run.worker_id, run.lease_expires_at = None, None
        audit(session, actor, "requeue_run", str(run.id), f"{run.checkpoint_id} / {run.suite_name}")


# -------------------------------------------------------------------------------------------- votes


def void_votes(db: Database, actor: str, *, session_hash: str | None = None, ip_hash: str | None = None) -> int:
    """Void every vote of one session or one IP hash; returns how many were voided."""
    if bool(session_hash) == bool(ip_hash):
        raise InputError("Give a session hash or an IP hash (one of them).")
    column, value = (Vote.session_hash, check_hash(session_hash, "session hash")) if session_hash else (
        Vote.ip_hash, check_hash(ip_hash or "", "IP hash"))
    with db.write_session() as session:
        changed = session.execute(
            update(Vote).where(column == value, Vote.voided_at.is_(None)).values(voided_at=utcnow())
            .execution_options(synchronize_session=False)
        ).rowcount
        rebuild_tallies(session)
        audit(session, actor, "void_votes", f"{'session' if session_hash else 'ip'}:{value}", f"{changed} votes voided")
    return int(changed)


def voters_table(db: Database, limit: int = 100) -> pd.DataFrame:
    """The most active voters (by salted session hash and IP hash), for spotting vote stuffing."""
    with db.session() as session:
        rows = session.execute(
            select(Vote.session_hash, Vote.ip_hash, func.count(), func.count().filter(counted()), func.max(Vote.created_at))
            .group_by(Vote.session_hash, Vote.ip_hash)
            .order_by(func.count().desc())
            .limit(limit)
        ).all()
    return rows_frame(rows, VOTER_COLUMNS)


# --------------------------------------------------------------------------------------------- bans


def ban(db: Database, actor: str, kind: str, value_hash: str, reason: str = "") -> None:
    if kind not in BAN_KINDS:
        raise InputError(f"Ban a session or an ip, not {str(kind)[:20]!r}.")
    value_hash = check_hash(value_hash, f"{kind} hash")
    with db.write_session() as session:
        if session.execute(select(Ban.id).where(Ban.kind == kind, Ban.value_hash == value_hash)).scalar():
            raise InputError(f"That {kind} is already banned.")
        session.add(Ban(kind=kind, value_hash=value_hash, reason=reason[:500], created_by=actor[:200], created_at=utcnow()))
        audit(session, actor, "ban", f"{kind}:{value_hash}", reason)
    _ban_version[0] += 1


class BanList:
    """The bans, read once every `refresh_s` seconds (votes are the hot path; bans are rare). A ban made
    in this process applies at once; one made by another replica within `refresh_s`."""

    def __init__(self, db: Database, refresh_s: float = 5.0) -> None:
        self.db = db
        self.refresh_s = refresh_s
        self._lock = threading.Lock()
        self._loaded_at = -1e18
        self._version = -1
        self._banned: frozenset[tuple[str, str]] = frozenset()

    def _current(self) -> frozenset[tuple[str, str]]:
        now = time.monotonic()
        with self._lock:
            if now - self._loaded_at > self.refresh_s or self._version != _ban_version[0]:
                with self.db.session() as session:
                    self._banned = frozenset(session.execute(select(Ban.kind, Ban.value_hash)).tuples().all())
                self._loaded_at, self._version = now, _ban_version[0]
            return self._banned

    def contains(self, session_hash: str | None, ip_hash: str | None) -> bool:
        banned = self._current()
        return bool(banned) and (("session", session_hash) in banned or ("ip", ip_hash) in banned)


_ban_version = [0]  # bumped by `ban`, so this process's ban lists reload at once


# -------------------------------------------------------------------------------------------- audit


def audit_table(db: Database, limit: int = 500) -> pd.DataFrame:
    with db.session() as session:
        rows = session.execute(
            select(AuditEntry.created_at, AuditEntry.actor, AuditEntry.action, AuditEntry.target, AuditEntry.detail)
            .order_by(AuditEntry.id.desc()).limit(limit)
        ).all()
    return rows_frame(rows, AUDIT_COLUMNS)


def record(db: Database, actor: str, action: str, target: str, detail: str = "") -> None:
    """An audit entry for an action done elsewhere (a gallery accepted, files deleted)."""
    with db.write_session() as session:
        audit(session, actor, action, target, detail)


__all__ = [
    "AUDIT_COLUMNS", "BanList", "audit", "audit_table", "ban", "cancel_run", "hide_checkpoint", "moderation_table",
    "record", "requeue_run", "set_approval", "void_votes", "voters_table",
]
