"""Leaderboard tables as pandas DataFrames, and CSV export.

The arena board reads `vote_tallies` (a few rows per pair of models, whatever the number of votes) and
fits Bradley–Terry on those counts; the result is cached until the tallies change. Online Elo (display
only) is updated incrementally from votes newer than the last one seen by this process.
"""

from __future__ import annotations

import hashlib
import re
import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from leaderboards import results
from leaderboards.arena import sampling_rates, tallies_frame
from leaderboards.db import Database
from leaderboards.ratings import (
    DEFAULT_MIN_BATTLES,
    DisconnectedComparisonWarning,
    bradley_terry_from_counts,
    online_elo,
)
from leaderboards.schema import Battle, Checkpoint, Vote

ARENA_COLUMNS = [
    "rank",
    "checkpoint",
    "name",
    "rating",
    "lower",
    "upper",
    "interval",
    "battles",
    "provisional",
    "elo",
    "component",
]


def _fingerprint(counts: pd.DataFrame) -> str:
    digest = hashlib.sha256()
    ordered = counts.sort_values(["model_a", "model_b", "winner"])
    for row in ordered.itertuples(index=False):
        digest.update(f"{row.model_a}\x1f{row.model_b}\x1f{row.winner}\x1f{row.count}\x1e".encode())
    return digest.hexdigest()


@dataclass
class _EloState:
    last_vote_id: int = 0
    ratings: dict[str, float] = field(default_factory=dict)


class ArenaBoard:
    """Cached arena board for one database (thread-safe)."""

    def __init__(self, db: Database, *, min_battles: int = DEFAULT_MIN_BATTLES, num_bootstrap: int = 100) -> None:
        self.db = db
        self.min_battles = min_battles
        self.num_bootstrap = num_bootstrap
        self._lock = threading.Lock()
        self._cached: tuple[str, pd.DataFrame] | None = None
        self._elo = _EloState()

    def table(self, *, with_elo: bool = True) -> pd.DataFrame:
        with self.db.session() as session:
            counts = tallies_frame(session)
            names = dict(session.execute(select(Checkpoint.id, Checkpoint.display_name)).all())
            elo = self._update_elo(session) if with_elo else {}
        key = _fingerprint(counts)
        with self._lock:
            if self._cached is not None and self._cached[0] == key:
                board = self._cached[1]
            else:
                board = arena_board_from_counts(counts, self.num_bootstrap, self.min_battles)
                self._cached = (key, board)
        board = board.copy()
        board["name"] = [names.get(m, m) for m in board["checkpoint"]]
        board["elo"] = [round(elo[m]) if m in elo else None for m in board["checkpoint"]]
        return board[ARENA_COLUMNS]

    def _update_elo(self, session: Session) -> dict[str, float]:
        # Incremental: only votes after the last one seen. (With several writers a vote committed late
        # with a smaller id is skipped here; Elo is display-only, the ranked board is Bradley–Terry.)
        with self._lock:
            rows = session.execute(
                select(Vote.id, Battle.model_a, Battle.model_b, Vote.outcome)
                .join(Battle, Battle.id == Vote.battle_id)
                .where(Vote.id > self._elo.last_vote_id)
                .order_by(Vote.id)
            ).all()
            if rows:
                self._elo.ratings = online_elo(((a, b, o) for _, a, b, o in rows), initial=self._elo.ratings)
                self._elo.last_vote_id = rows[-1][0]
            return dict(self._elo.ratings)


def arena_board_from_counts(
    counts: pd.DataFrame, num_bootstrap: int = 100, min_battles: int = DEFAULT_MIN_BATTLES
) -> pd.DataFrame:
    """The arena board (without names/Elo) from (model_a, model_b, winner, count) rows."""
    if counts.empty:
        return pd.DataFrame(columns=[c for c in ARENA_COLUMNS])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DisconnectedComparisonWarning)
        ratings = bradley_terry_from_counts(counts, num_bootstrap=num_bootstrap, min_battles=min_battles)
    for warning in caught:  # re-emit other warnings; the disconnection is shown in the board itself
        if not issubclass(warning.category, DisconnectedComparisonWarning):
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    board = ratings.reset_index().rename(columns={"model": "checkpoint"})
    # Show ratings no more precisely than the intervals allow: whole points, interval as +/-.
    board["interval"] = [
        f"+{round(u - r)} / -{round(r - lo)}" for r, lo, u in zip(board["rating"], board["lower"], board["upper"], strict=True)
    ]
    for column in ("rating", "lower", "upper"):
        board[column] = board[column].round().astype(int)
    board["name"] = board["checkpoint"]
    board["elo"] = None
    board.attrs["disconnected"] = ratings.attrs.get("disconnected", False)
    return board[ARENA_COLUMNS]


def arena_board(db: Database, *, num_bootstrap: int = 100, min_battles: int = DEFAULT_MIN_BATTLES) -> pd.DataFrame:
    """One-off (uncached) arena board."""
    return ArenaBoard(db, num_bootstrap=num_bootstrap, min_battles=min_battles).table()


def character_board(db: Database, **kwargs) -> pd.DataFrame:  # noqa: ANN003
    with db.session() as session:
        return results.character_board(session, **kwargs)


def multilingual_board(db: Database, **kwargs) -> pd.DataFrame:  # noqa: ANN003
    with db.session() as session:
        return results.multilingual_board(session, **kwargs)


def sampling_table(db: Database) -> pd.DataFrame:
    with db.session() as session:
        return sampling_rates(session)


def filter_rows(frame: pd.DataFrame, **allowed: list[str] | None) -> pd.DataFrame:
    """Keep rows whose column value is in the given list (None or [] keeps everything)."""
    for column, values in allowed.items():
        if values and column in frame.columns:
            frame = frame[frame[column].isin(values)]
    return frame.reset_index(drop=True)


_SAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]+")


def export_csv(frame: pd.DataFrame, directory: str | Path, name: str) -> Path:
    """Write `frame` as `<directory>/<name>.csv` (name sanitised) and return the path."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{_SAFE_NAME.sub('_', name).strip('._') or 'board'}.csv"
    frame.to_csv(path, index=False)
    return path
