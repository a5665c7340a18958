"""Votes on arena battles and their undo: the `Arena`'s ballot box (see `leaderboards.arena` for the rules).

`ArenaBallots` is mixed into `Arena`, which gives it the database, the session hasher, the limits, the
ban list and the clock.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from core.errors import InputError as HubInputError
from leaderboards import arena_boards
from leaderboards.arena_sessions import ArenaLimits, SessionHasher, advisory_lock, check_rate
from leaderboards.arena_votes import TALLIED_KIND, bump_tally
from leaderboards.db import Database
from leaderboards.moderation import BanList
from leaderboards.schema import VOTE_OUTCOMES, Battle, Checkpoint, Vote, as_utc

BATTLE_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{20,64}$")
BANNED_MESSAGE = "This session or address is banned from the arena."


@dataclass(frozen=True)
class VoteResult:
    battle_id: str
    outcome: str
    model_a: str
    model_b: str
    name_a: str
    name_b: str
    # False for a vote cast again after an undo (names already shown): kept, but not in the ratings.
    counted: bool = True


@dataclass(frozen=True)
class UndoResult:
    battle_id: str
    outcome: str  # the outcome that was taken back


class ArenaBallots:
    db: Database
    hasher: SessionHasher
    limits: ArenaLimits
    bans: BanList
    _now: Callable[[], dt.datetime]

    def record_vote(
        self, battle_id: str, outcome: str, session_id: str | None = None, client_ip: str | None = None
    ) -> VoteResult:
        """Record one vote; returns both identities. Raises HubInputError with the reason if refused."""
        if outcome not in VOTE_OUTCOMES:
            raise HubInputError(f"Unknown outcome {str(outcome)[:40]!r}: choose one of {', '.join(VOTE_OUTCOMES)}.")
        if not isinstance(battle_id, str) or not BATTLE_ID_PATTERN.match(battle_id):
            raise HubInputError("Unknown battle: start a new battle.")
        session_hash = self.hasher.hash(session_id, "session")
        ip_hash = self.hasher.hash(client_ip, "ip")
        now = self._now()
        try:
            with self.db.write_session() as session:
                advisory_lock(session, "vote", session_hash, ip_hash)
                if self.bans.contains(session_hash, ip_hash):
                    raise HubInputError(BANNED_MESSAGE)
                battle = session.get(Battle, battle_id, with_for_update=True)
                if battle is None:
                    raise HubInputError("Unknown battle: start a new battle.")
                earlier = session.execute(select(Vote.undone_at).where(Vote.battle_id == battle_id)).scalars().all()
                if any(undone is None for undone in earlier):
                    raise HubInputError("This battle already has a vote: start a new battle.")
                if battle.expired_at is not None or as_utc(battle.expires_at) <= now:
                    raise HubInputError("This battle has expired: start a new battle.")
                if battle.session_hash and session_hash and battle.session_hash != session_hash:
                    raise HubInputError("This battle was served to another session.")
                check_rate(session, Vote, session_hash, ip_hash, now, self.limits.votes_per_minute,
                           self.limits.ip_multiplier, "votes")
                blind = not earlier  # a vote after an undo comes after the names were shown
                session.add(
                    Vote(
                        battle_id=battle_id, outcome=outcome, session_hash=session_hash, ip_hash=ip_hash,
                        created_at=now, blind=blind,
                    )
                )
                session.flush()  # the unique index on live votes fires here, before the tally moves
                if blind and battle.kind == TALLIED_KIND:  # edit votes go to the edit board only
                    bump_tally(session, battle.model_a, battle.model_b, outcome)
                names = dict(
                    session.execute(
                        select(Checkpoint.id, Checkpoint.display_name).where(
                            Checkpoint.id.in_([battle.model_a, battle.model_b])
                        )
                    ).all()
                )
                model_a, model_b = battle.model_a, battle.model_b
        except IntegrityError:
            # A concurrent vote on the same battle committed first (unique live vote per battle).
            raise HubInputError("This battle already has a vote: start a new battle.") from None
        return VoteResult(
            battle_id, outcome, model_a, model_b, names.get(model_a, model_a), names.get(model_b, model_b), blind
        )

    def undo_vote(self, battle_id: str, session_id: str | None = None, client_ip: str | None = None) -> UndoResult:
        """Take back this session's last vote (within `limits.undo_seconds`, once per battle); see the docstring."""
        if not isinstance(battle_id, str) or not BATTLE_ID_PATTERN.match(battle_id):
            raise HubInputError("Unknown battle: nothing to undo.")
        session_hash = self.hasher.hash(session_id, "session")
        if session_hash is None:
            raise HubInputError("Only the session that voted can undo its vote.")
        now = self._now()
        with self.db.write_session() as session:
            advisory_lock(session, "vote", session_hash)  # the same lock as this session's votes
            battle = session.get(Battle, battle_id, with_for_update=True)
            if battle is None:
                raise HubInputError("Unknown battle: nothing to undo.")
            votes = session.execute(select(Vote).where(Vote.battle_id == battle_id).order_by(Vote.id)).scalars().all()
            live = [v for v in votes if v.undone_at is None]
            if not live:
                if any(v.session_hash == session_hash for v in votes):
                    raise HubInputError("This vote is already undone.")
                raise HubInputError("This battle has no vote to undo.")
            vote = live[0]
            if vote.session_hash != session_hash:
                raise HubInputError("You can only undo your own vote.")
            if len(votes) > 1:
                raise HubInputError("A battle's vote can be undone only once.")
            last_id = session.scalar(select(func.max(Vote.id)).where(Vote.session_hash == session_hash))
            if vote.id != last_id:
                raise HubInputError("Only your last vote can be undone.")
            if now - as_utc(vote.created_at) > dt.timedelta(seconds=self.limits.undo_seconds):
                raise HubInputError(f"Too late: a vote can be undone within {self.limits.undo_seconds} seconds.")
            changed = session.execute(
                update(Vote)
                .where(Vote.id == vote.id, Vote.undone_at.is_(None))
                .values(undone_at=now)
                .execution_options(synchronize_session=False)
            ).rowcount
            if changed != 1:
                raise HubInputError("This vote is already undone.")
            if vote.blind and battle.kind == TALLIED_KIND:
                bump_tally(session, battle.model_a, battle.model_b, vote.outcome, by=-1)
            outcome = vote.outcome
        return UndoResult(battle_id, outcome)

    def personal_board(self, session_id: str | None, *, num_bootstrap: int = 100) -> pd.DataFrame:
        """Your own ratings beside the community's (see `arena_boards.personal_board`)."""
        return arena_boards.personal_board(self.db, self.hasher.hash(session_id, "session"),
                                           min_votes=self.limits.personal_board_min_votes, num_bootstrap=num_bootstrap)
