"""Arena boards beyond the main one: per category (prompt language, character tier) and personal.

- `category_board(db, language=..., tier=...)`: the arena board (same Bradley–Terry fit, 95% bootstrap
  intervals, rank rule and columns as `boards.arena_board_from_counts`) on the counted votes of the
  battles in one category. The category is recorded on the battle when it is served: the language and
  tier of the stored eval samples it reuses, or language 'custom' / no tier for typed prompts.
- `arena_categories(db)`: which (language, tier) categories have counted votes, and how many.
- `personal_board(db, session_hash)`: a Bradley–Terry fit of one session's own live votes beside the
  community's, available after PERSONAL_MIN_VOTES votes. It takes the *hashed* session and is meant to
  be called with the caller's own session only (the app passes its request's session; no endpoint
  accepts a session id from the caller).
"""

from __future__ import annotations

import warnings

import pandas as pd
from sqlalchemy import func, select

from core.errors import InputError as HubInputError
from leaderboards.arena_votes import TALLIED_KIND, counted, grouped_votes, rows_frame, tallies_frame
from leaderboards.boards import arena_board_from_counts
from leaderboards.db import Database
from leaderboards.ratings import DEFAULT_MIN_BATTLES, DisconnectedComparisonWarning, bradley_terry, bradley_terry_from_counts
from leaderboards.schema import Battle, Checkpoint, Vote

PERSONAL_MIN_VOTES = 20
NO_TIER = "none"  # selects battles without a tier (typed prompts, non-character suites)
PERSONAL_COLUMNS = [
    "checkpoint", "name", "your_rank", "your_rating", "your_interval", "your_battles",
    "community_rank", "community_rating", "community_interval",
]


def _names(db: Database) -> dict[str, str]:
    with db.session() as session:
        return dict(session.execute(select(Checkpoint.id, Checkpoint.display_name)).all())


def _category_filter(language: str | None, tier: str | None) -> list:
    where = []
    if language:
        where.append(Battle.language == language)
    if tier:
        where.append(Battle.tier.is_(None) if tier == NO_TIER else Battle.tier == tier)
    return where


def category_board(
    db: Database,
    *,
    language: str | None = None,
    tier: str | None = None,
    kind: str = TALLIED_KIND,
    num_bootstrap: int = 100,
    min_battles: int = DEFAULT_MIN_BATTLES,
) -> pd.DataFrame:
    """The arena board of one category (None: any language / any tier; tier NO_TIER: battles without one)."""
    with db.session() as session:
        counts = rows_frame(
            grouped_votes(session, kind, *_category_filter(language, tier)), ["model_a", "model_b", "winner", "count"]
        )
    board = arena_board_from_counts(counts, num_bootstrap, min_battles)
    names = _names(db)
    board["name"] = [names.get(m, m) for m in board["checkpoint"]]
    board.attrs["language"], board.attrs["tier"] = language, tier
    return board


def arena_categories(db: Database, kind: str = TALLIED_KIND) -> pd.DataFrame:
    """(language, tier, votes) for every category with counted votes, most votes first."""
    with db.session() as session:
        rows = session.execute(
            select(Battle.language, Battle.tier, func.count())
            .join(Vote, Vote.battle_id == Battle.id)
            .where(counted(), Battle.kind == kind)
            .group_by(Battle.language, Battle.tier)
        ).all()
    frame = rows_frame([(language, tier or NO_TIER, n) for language, tier, n in rows], ["language", "tier", "votes"])
    if frame.empty:
        return frame
    return frame.sort_values(["votes", "language", "tier"], ascending=[False, True, True]).reset_index(drop=True)


def personal_votes(db: Database, session_hash: str | None) -> pd.DataFrame:
    """(model_a, model_b, winner) of one session's live votes on generation battles."""
    if not session_hash:
        return pd.DataFrame({"model_a": [], "model_b": [], "winner": []})
    with db.session() as session:
        rows = session.execute(
            select(Battle.model_a, Battle.model_b, Vote.outcome)
            .join(Vote, Vote.battle_id == Battle.id)
            .where(Vote.session_hash == session_hash, Vote.undone_at.is_(None), Battle.kind == TALLIED_KIND)
        ).all()
    return rows_frame(rows, ["model_a", "model_b", "winner"])


def _interval(rating: float, lower: float, upper: float) -> str:
    return f"+{round(upper - rating)} / -{round(rating - lower)}"


def personal_board(
    db: Database, session_hash: str | None, *, min_votes: int = PERSONAL_MIN_VOTES, num_bootstrap: int = 100
) -> pd.DataFrame:
    """Your ratings (from your own live votes) beside the community's, best of yours first.

    Raises HubInputError saying how many more votes are needed when there are fewer than `min_votes`."""
    votes = personal_votes(db, session_hash)
    if len(votes) < min_votes:
        missing = min_votes - len(votes)
        raise HubInputError(
            f"Your personal leaderboard opens after {min_votes} votes: "
            f"vote on {missing} more battle{'s' if missing != 1 else ''}."
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DisconnectedComparisonWarning)
        yours = bradley_terry(votes, num_bootstrap=num_bootstrap, min_battles=1)
        with db.session() as session:
            community_counts = tallies_frame(session)
        community = (
            bradley_terry_from_counts(community_counts, num_bootstrap=num_bootstrap)
            if not community_counts.empty
            else None
        )
    names = _names(db)
    rows = []
    for model, row in yours.iterrows():
        theirs = community.loc[model] if community is not None and model in community.index else None
        rows.append(
            {
                "checkpoint": model,
                "name": names.get(model, model),
                "your_rank": int(row["rank"]),
                "your_rating": round(row["rating"]),
                "your_interval": _interval(row["rating"], row["lower"], row["upper"]),
                "your_battles": int(row["battles"]),
                "community_rank": int(theirs["rank"]) if theirs is not None else None,
                "community_rating": round(theirs["rating"]) if theirs is not None else None,
                "community_interval": _interval(theirs["rating"], theirs["lower"], theirs["upper"])
                if theirs is not None
                else "",
            }
        )
    frame = pd.DataFrame(rows, columns=PERSONAL_COLUMNS)
    frame.attrs["votes"] = len(votes)
    return frame
