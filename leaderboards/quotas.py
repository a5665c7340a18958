"""Per-user quotas over a sliding day, exact under concurrency.

`spend(session, user, action, amount, limit)` runs inside the write transaction of the action it pays
for: it serialises on (action, user) with the arena's advisory locks (PostgreSQL; SQLite write
transactions are already one at a time), sums what the user spent in the last 24 hours, refuses when
`amount` would pass `limit`, and records the spending. If the action then fails, its transaction rolls
back and takes the spending with it, so refused or failed actions cost nothing and a burst from many
replicas admits exactly `limit`.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.errors import InputError
from leaderboards.arena_sessions import advisory_lock
from leaderboards.schema import UsageEvent, as_utc, utcnow

QUOTA_WINDOW = dt.timedelta(days=1)
# How each action's quota reads in a refusal (each is also a template of the page's translations).
QUOTA_PHRASES = {
    "register": "{limit} checkpoint registrations a day",
    "eval_gpu_seconds": "{limit} GPU-hours of queued evals a day",
    "gallery": "{limit} gallery uploads a day",
    "lora_training": "{limit} LoRA trainings a day",
}


class QuotaExceeded(InputError):
    """Over quota: the message names the quota and when room opens again."""


def _amount_text(action: str, value: float) -> str:
    return f"{value / 3600:.2f}" if action == "eval_gpu_seconds" else f"{value:g}"


def spend(session: Session, user: str, action: str, amount: float, limit: float, *, target: str = "",
          now: dt.datetime | None = None) -> UsageEvent:
    """Record `amount` of `action` for `user` (the row, flushed), or raise QuotaExceeded (see the module docstring)."""
    now = now or utcnow()
    advisory_lock(session, f"quota:{action}", user)
    since = now - QUOTA_WINDOW
    rows = session.execute(
        select(UsageEvent.amount, UsageEvent.created_at)
        .where(UsageEvent.user == user, UsageEvent.action == action, UsageEvent.created_at > since)
        .order_by(UsageEvent.created_at)
    ).all()
    used = float(sum(amount_ for amount_, _ in rows))
    if used + amount > limit + 1e-9:
        if amount > limit:
            raise QuotaExceeded(f"Over quota: this run needs {_amount_text(action, amount)} GPU-hours, more than the daily "
                                f"quota of {_amount_text(action, limit)}." if action == "eval_gpu_seconds" else
                                f"Over quota: the daily quota is {_amount_text(action, limit)}.")
        # Room opens when enough of the oldest spending leaves the window.
        need, freed, reset = used + amount - limit, 0.0, now + QUOTA_WINDOW
        for spent, at in rows:
            freed += float(spent)
            if freed >= need - 1e-9:
                reset = as_utc(at) + QUOTA_WINDOW
                break
        phrase = QUOTA_PHRASES.get(action, action + " {limit} a day").format(limit=_amount_text(action, limit))
        raise QuotaExceeded(f"Over quota: {phrase}, {_amount_text(action, used)} used; room again at "
                            f"{reset.strftime('%Y-%m-%d %H:%M')} UTC.")
    event = UsageEvent(user=user, action=action, amount=float(amount), target=target[:200], created_at=now)
    session.add(event)
    session.flush()
    return event


def used(session: Session, user: str, action: str, now: dt.datetime | None = None) -> float:
    """What `user` spent on `action` in the last day."""
    now = now or utcnow()
    total = session.execute(
        select(func.coalesce(func.sum(UsageEvent.amount), 0.0)).where(
            UsageEvent.user == user, UsageEvent.action == action, UsageEvent.created_at > now - QUOTA_WINDOW
        )
    ).scalar_one()
    return float(total)


RATE_WINDOW = dt.timedelta(minutes=1)


def spend_rate(session: Session, action: str, owners: list[tuple[str, float]], amount: float, *,
               now: dt.datetime | None = None) -> None:
    """A per-minute budget for several owners at once (a session and its address): refuse when
    `amount` would pass any owner's limit in the last minute, else record it for each. Exact under
    the same locks as `spend`."""
    now = now or utcnow()
    owners = [(owner, limit) for owner, limit in owners if owner]
    for owner, _ in sorted(owners):
        advisory_lock(session, f"rate:{action}", owner)
    for owner, limit in owners:
        recent = session.execute(
            select(func.coalesce(func.sum(UsageEvent.amount), 0.0)).where(
                UsageEvent.user == owner, UsageEvent.action == action, UsageEvent.created_at > now - RATE_WINDOW
            )
        ).scalar_one()
        if float(recent) + amount > limit + 1e-9:
            raise QuotaExceeded(f"Too many images: at most {limit:g} a minute. Please wait a moment.")
    for owner, _ in owners:
        session.add(UsageEvent(user=owner, action=action, amount=float(amount), created_at=now))
