"""Arena sessions and budgets: the salt, salted hashes of sessions and IPs, the limits, and the locks
that make the limits exact.

Only salted HMAC-SHA256 hashes of session ids and client IPs are ever stored. The salt comes from
`HUB_SESSION_SALT`, else from `<data_dir>/session_salt` (created, mode 0600, on first use); replicas that
share one database must share the salt.

Exact limits: a budget check and the insert that spends it run in one write transaction that first
serialises on the budget's owners (`advisory_lock`): on PostgreSQL, transaction-scoped advisory locks
keyed by (action, hashed session) and (action, hashed IP), taken in sorted key order before any row
lock, so requests cannot deadlock; on SQLite nothing more is needed, as write transactions begin
IMMEDIATE (one writer at a time).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from core.errors import InputError as HubInputError

SALT_ENV = "HUB_SESSION_SALT"
SALT_FILE = "session_salt"
RATE_WINDOW = dt.timedelta(minutes=1)


@dataclass(frozen=True)
class ArenaLimits:
    votes_per_minute: int = 30
    battles_per_minute: int = 10
    battle_ttl_minutes: int = 60
    # Per-IP limits are this many times the per-session ones (many users can share one IP).
    ip_multiplier: int = 10
    max_prompt_chars: int = 1000
    undo_seconds: int = 30  # how long a voter may take back their last vote
    personal_board_min_votes: int = 20  # votes before a session's own board is shown

    @classmethod
    def from_config(cls, limits: Any) -> ArenaLimits:
        """From `hub.config.Limits` (or anything with the same attribute names)."""
        defaults = cls()
        return cls(
            votes_per_minute=int(getattr(limits, "votes_per_minute", defaults.votes_per_minute)),
            battles_per_minute=int(getattr(limits, "battles_per_minute", defaults.battles_per_minute)),
            battle_ttl_minutes=int(getattr(limits, "battle_ttl_minutes", defaults.battle_ttl_minutes)),
            max_prompt_chars=int(getattr(limits, "max_prompt_chars", defaults.max_prompt_chars)),
            undo_seconds=int(getattr(limits, "undo_seconds", defaults.undo_seconds)),
            personal_board_min_votes=int(getattr(limits, "personal_board_min_votes", defaults.personal_board_min_votes)),
        )


def load_salt(data_dir: str | Path | None = None) -> bytes:
    """The hashing salt: `HUB_SESSION_SALT`, else `<data_dir>/session_salt` (created on first use)."""
    env = os.environ.get(SALT_ENV, "")
    if env:
        return env.encode()
    if data_dir is None:
        raise ValueError(f"no salt: set {SALT_ENV} or give a data dir")
    path = Path(data_dir) / SALT_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # O_EXCL: two processes starting together agree on one salt (the loser reads the winner's).
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32))
    for _ in range(100):
        text = path.read_text().strip()
        if text:
            return text.encode()
        threading.Event().wait(0.01)  # the creator is still writing
    raise RuntimeError(f"{path} is empty")


class SessionHasher:
    """Salted HMAC-SHA256 of session ids and IPs (only these hashes are stored)."""

    def __init__(self, salt: bytes) -> None:
        if not salt:
            raise ValueError("empty salt")
        self._salt = salt

    def hash(self, value: str | None, kind: str = "session") -> str | None:
        if not value:
            return None
        return hmac.new(self._salt, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()


def advisory_key(action: str, owner: str) -> int:
    """A signed 64-bit PostgreSQL advisory-lock key for (action, hashed owner)."""
    digest = hashlib.sha256(f"sakuga-arena:{action}:{owner}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def advisory_lock(session: Session, action: str, *owners: str | None) -> None:
    """PostgreSQL: hold transaction-scoped advisory locks on (action, owner) for each owner, in sorted
    key order. Elsewhere nothing: SQLite write transactions already begin IMMEDIATE (one writer)."""
    if session.get_bind().dialect.name != "postgresql":
        return
    for key in sorted({advisory_key(action, owner) for owner in owners if owner}):
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})


def check_rate(
    session: Session,
    table: Any,
    session_hash: str | None,
    ip_hash: str | None,
    now: dt.datetime,
    per_minute: int,
    ip_multiplier: int,
    what: str,
) -> None:
    """Refuse when `table` (BattleRequest or Vote: columns session_hash, ip_hash, created_at) already
    holds `per_minute` rows of this session, or `per_minute * ip_multiplier` of this IP, in the last
    minute. Exact only under `advisory_lock` (PostgreSQL) or a SQLite write transaction."""
    since = now - RATE_WINDOW
    checks = ((table.session_hash, session_hash, per_minute), (table.ip_hash, ip_hash, per_minute * ip_multiplier))
    for column, value, limit in checks:
        if value is None:
            continue
        recent = session.execute(
            select(func.count()).select_from(table).where(column == value, table.created_at > since)
        ).scalar_one()
        if recent >= limit:
            raise HubInputError(f"Too many {what}: at most {limit} per minute. Please wait a moment.")
