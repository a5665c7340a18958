"""Leaderboard tables as pandas DataFrames, and CSV export.

The arena board reads `vote_tallies` (a few rows per pair of models, whatever the number of votes) and
fits Bradley–Terry on those counts; the result is cached until the tallies change. The edit arena board
(`ArenaBoard(db, kind="edit")`) fits the same model on the votes of edit battles only. Online Elo (display
only) is updated incrementally, in a background thread, from votes newer than the last one seen.
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

from leaderboards import results
from leaderboards.arena import TALLIED_KIND, sampling_rates, vote_counts
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
    ordered = counts.sort_values(["model_a", "model_b", "winner"]).reset_index(drop=True)
    return hashlib.sha256(pd.util.hash_pandas_object(ordered, index=False).to_numpy().tobytes()).hexdigest()


@dataclass
class _EloState:
    last_vote_id: int = 0
    ratings: dict[str, float] = field(default_factory=dict)


class ArenaBoard:
    """Cached arena board for one database and one battle kind ('generate' or 'edit'; thread-safe)."""

    def __init__(
        self,
        db: Database,
        *,
        min_battles: int = DEFAULT_MIN_BATTLES,
        num_bootstrap: int = 100,
        kind: str = TALLIED_KIND,
    ) -> None:
        self.db = db
        self.kind = kind
        self.min_battles = min_battles
        self.num_bootstrap = num_bootstrap
        self._lock = threading.Lock()
        self._cached: tuple[str, pd.DataFrame] | None = None
        self._elo = _EloState()
        self._elo_thread: threading.Thread | None = None

    def table(self, *, with_elo: bool = True, elo_wait_s: float = 0.5) -> pd.DataFrame:
        """The board; Elo is brought up to date in the background (waiting at most `elo_wait_s`)."""
        with self.db.session() as session:
            counts = vote_counts(session, self.kind)
            names = dict(session.execute(select(Checkpoint.id, Checkpoint.display_name)).all())
        key = _fingerprint(counts)
        with self._lock:
            if self._cached is not None and self._cached[0] == key:
                board = self._cached[1]
            else:
                board = arena_board_from_counts(counts, self.num_bootstrap, self.min_battles)
                self._cached = (key, board)
        if with_elo:
            self._start_elo_update()
            if elo_wait_s > 0 and self._elo_thread is not None:
                self._elo_thread.join(elo_wait_s)
        elo = self.elo_snapshot()
        attrs = dict(board.attrs)
        board = board.copy()
        board["name"] = [names.get(m, m) for m in board["checkpoint"]]
        board["elo"] = [round(elo[m]) if m in elo else None for m in board["checkpoint"]]
        board = board[ARENA_COLUMNS]
        board.attrs.update(attrs)
        return board

    # Online Elo is display-only and sequential over all votes (seconds for millions), so it is
    # brought up to date in a background thread; the board shows the latest snapshot meanwhile.
    # With several writers a vote committed late with a smaller id is skipped (display only).
    def elo_snapshot(self) -> dict[str, float]:
        with self._lock:
            return dict(self._elo.ratings)

    def _start_elo_update(self) -> None:
        with self._lock:
            if self._elo_thread is not None and self._elo_thread.is_alive():
                return
            self._elo_thread = threading.Thread(target=self._update_elo, name="arena-elo", daemon=True)
            self._elo_thread.start()

    def wait_for_elo(self, timeout: float | None = None) -> None:
        """Start an Elo update if none is running and wait for it (tests, CLI)."""
        self._start_elo_update()
        thread = self._elo_thread
        if thread is not None:
            thread.join(timeout)

    def _update_elo(self, chunk: int = 200_000) -> None:
        while True:
            with self._lock:
                last_id, ratings = self._elo.last_vote_id, dict(self._elo.ratings)
            with self.db.session() as session:
                rows = session.execute(
                    select(Vote.id, Battle.model_a, Battle.model_b, Vote.outcome)
                    .join(Battle, Battle.id == Vote.battle_id)
                    .where(Vote.id > last_id, Battle.kind == self.kind)
                    .order_by(Vote.id)
                    .limit(chunk)
                ).all()
            if not rows:
                return
            ratings = online_elo(((a, b, o) for _, a, b, o in rows), initial=ratings)
            with self._lock:
                self._elo = _EloState(last_vote_id=rows[-1][0], ratings=ratings)
            if len(rows) < chunk:
                return


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
    """One-off (uncached) arena board, Elo included."""
    board = ArenaBoard(db, num_bootstrap=num_bootstrap, min_battles=min_battles)
    board.wait_for_elo()
    return board.table()


def character_board(db: Database, **kwargs) -> pd.DataFrame:  # noqa: ANN003
    with db.session() as session:
        return results.character_board(session, **kwargs)


def multilingual_board(db: Database, **kwargs) -> pd.DataFrame:  # noqa: ANN003
    with db.session() as session:
        return results.multilingual_board(session, **kwargs)


def sampling_table(db: Database, kind: str = TALLIED_KIND) -> pd.DataFrame:
    with db.session() as session:
        return sampling_rates(session, kind)


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
