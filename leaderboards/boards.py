"""Leaderboards as data: `BOARDS` declares every board once (its table, display, plot and filters);
the Leaderboard tab and `python -m leaderboards boards|export` loop over it. Adding a board is one
entry here (eval boards: an `EvalBoardSpec`, see `leaderboards/eval_boards.py`).

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
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure
from sqlalchemy import select

from leaderboards import plots
from leaderboards.arena_sampling import sampling_rates
from leaderboards.arena_votes import TALLIED_KIND, counted, vote_counts
from leaderboards.csv_safe import write_csv
from leaderboards.db import Database
from leaderboards.eval_boards import (
    CHARACTER_BOARD,
    EDITING_BOARD,
    MULTILINGUAL_BOARD,
    REFERENCE_BOARD,
    EvalBoardSpec,
    build_eval_board,
    display_eval_board,
)
from leaderboards.ratings import DEFAULT_MIN_BATTLES, DisconnectedComparisonWarning, bradley_terry_from_counts, online_elo
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
                    .where(Vote.id > last_id, Battle.kind == self.kind, counted())
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


def sampling_table(db: Database, kind: str = TALLIED_KIND) -> pd.DataFrame:
    with db.session() as session:
        return sampling_rates(session, kind)


# ----------------------------------------------------------------------------- the boards, as data

class BoardSource:
    """Where boards read from: one database, with the arena boards' caches (one per app)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.arena = ArenaBoard(db)
        self.edit_arena = ArenaBoard(db, kind="edit")

    def hidden_checkpoints(self) -> set[str]:
        """Checkpoints a maintainer hid: off every board (their rows and votes stay on record)."""
        with self.db.session() as session:
            return set(session.execute(select(Checkpoint.id).where(Checkpoint.hidden.is_(True))).scalars())


@dataclass(frozen=True)
class BoardSpec:
    """One leaderboard: the full-precision table (CSV, CLI), what the page shows, its plot, filters."""

    id: str
    title: str
    description: str
    empty: str
    build: Callable[[BoardSource], pd.DataFrame]
    display: Callable[[pd.DataFrame], pd.DataFrame]
    plot: Callable[[pd.DataFrame], Figure]
    filters: tuple[str, ...] = ()  # columns of the table the page filters on

    def table(self, source: BoardSource) -> pd.DataFrame:
        """The board (`build`) without the checkpoints a maintainer hid."""
        frame = self.build(source)
        hidden = source.hidden_checkpoints()
        if hidden and "checkpoint" in frame.columns:
            frame = frame[~frame["checkpoint"].isin(hidden)].reset_index(drop=True)
        return frame


def _arena_display(board: pd.DataFrame) -> pd.DataFrame:
    if board.empty or "component" not in board or board["component"].nunique() <= 1:
        return board.drop(columns=["component"], errors="ignore")
    return board


def _eval_board(board_id: str, title: str, description: str, empty: str, spec: EvalBoardSpec,
                plot: Callable[[pd.DataFrame], Figure], filters: tuple[str, ...]) -> BoardSpec:
    return BoardSpec(board_id, title, description, empty, build=lambda source: build_eval_board(source.db, spec),
                     display=lambda long: display_eval_board(long, spec), plot=plot, filters=filters)


ARENA_NOTE = (
    "Bradley–Terry fit of blind votes (400 points = 10× odds, average 1000); ties and “both bad” count half a "
    "win each. Interval: 95% bootstrap. **Rank** = 1 + the number of models whose interval lies entirely above "
    "this one, so models whose intervals overlap share a rank. *Provisional*: too few battles yet. Elo (K=4) "
    "is shown for reference only."
)

BOARDS: list[BoardSpec] = [
    BoardSpec(
        "arena", "Arena ratings", ARENA_NOTE, "No arena votes yet: cast some in the Arena tab.",
        build=lambda source: source.arena.table(), display=_arena_display,
        plot=lambda board: plots.rating_interval_plot(board, title="Arena rating (95% interval)"), filters=("checkpoint",),
    ),
    BoardSpec(
        "edit-arena", "Edit arena",
        "Blind votes on edits of the same image with the same instruction and seed; rated like the arena, from "
        "edit battles only.",
        "No edit arena votes yet: cast some in Arena → Edit arena.",
        build=lambda source: source.edit_arena.table(), display=_arena_display,
        plot=lambda board: plots.rating_interval_plot(board, title="Edit arena rating (95% interval)"), filters=("checkpoint",),
    ),
    _eval_board(
        "characters", "Character recognition",
        "Hit rate: share of images in which the judge recognises the prompted character, per tier and prompt "
        "language, with a 95% interval over characters (seeds and languages of one character resampled "
        "together). *judged by*: the judges that decided; *unjudged items*: characters no judge here can tell.",
        "No character-recognition results yet: they appear as the eval runs finish.",
        CHARACTER_BOARD, lambda long: plots.group_bars(long, "hit_rate", "tier"), ("checkpoint", "group", "language"),
    ),
    _eval_board(
        "multilingual", "Multilingual fidelity",
        "The same scenes prompted in many languages: tag recall, scene tag recall (only the tags the scene's own "
        "words ask for, such as an expression or a background, not the subject's look), anchored alignment (the language-L image "
        "scored against the English text, relative to the English image) and cross-lingual consistency (image "
        "cosine to the English image). The plot shows each language's gap to English.",
        "No multilingual results yet: they appear as the eval runs finish.",
        MULTILINGUAL_BOARD, lambda long: plots.language_heatmap(long, "tag_recall"), ("checkpoint", "metric", "language"),
    ),
    _eval_board(
        "editing", "Editing",
        "Instruction edits and inpainting per language: **success** = the tagger sees what was asked; "
        "**identity_kept** = the character is still recognised and judged the same as in the input; outside-mask "
        "change for inpainting (lower is better). 95% intervals over edit cases.",
        "No editing results yet: they appear as the eval runs finish.",
        EDITING_BOARD, lambda long: plots.language_heatmap(long, "success", value="value"), ("checkpoint", "metric", "language"),
    ),
    _eval_board(
        "references", "Character reference",
        "A character drawn from reference images in a new scene: **hit_rate** = the character is recognised, "
        "**reference_same** = judged the same character as its references, **success** = the scene is there.",
        "No character-reference results yet: they appear as the eval runs finish.",
        REFERENCE_BOARD, lambda long: plots.group_bars(long, "hit_rate", "tier"), ("checkpoint", "metric", "language"),
    ),
]


def register_board(spec: BoardSpec) -> BoardSpec:
    """Add a board: the Leaderboard tab built after this, the CLI and the report cards show it."""
    if any(existing.id == spec.id for existing in BOARDS):
        raise ValueError(f"board {spec.id!r} is already registered")
    BOARDS.append(spec)
    return spec


def board(board_id: str) -> BoardSpec:
    for spec in BOARDS:
        if spec.id == board_id:
            return spec
    raise KeyError(board_id)


def filter_rows(frame: pd.DataFrame, **allowed: list[str] | None) -> pd.DataFrame:
    """Keep rows whose column value is in the given list (None or [] keeps everything)."""
    for column, values in allowed.items():
        if values and column in frame.columns:
            frame = frame[frame[column].isin(values)]
    return frame.reset_index(drop=True)


_SAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]+")


def export_csv(frame: pd.DataFrame, directory: str | Path, name: str) -> Path:
    """Write `frame` as `<directory>/<name>.csv` (name sanitised) and return the path. Display names are
    user text: cells a spreadsheet would run as formulas are neutralized (`csv_safe`)."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{_SAFE_NAME.sub('_', name).strip('._') or 'board'}.csv"
    write_csv(frame, path, index=False)
    return path
