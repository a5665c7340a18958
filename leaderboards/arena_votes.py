"""Arena votes as data: which votes count, the running tallies, and the public votes download.

A vote *counts* (tallies, ratings, boards, the download) when it is live (not undone), blind (cast
before the battle's names were shown to that voter; only a vote cast again after an undo is not) and
not voided by a maintainer (`leaderboards.moderation.void_votes`).
`vote_tallies` holds the counted votes of 'generate' battles and is kept in step by the vote and undo
transactions; `rebuild_tallies` recomputes it from `votes` (repair tool).

Download (`votes_frame` / `export_votes`): one row per counted vote, columns
battle, model_a, model_b, outcome, prompt, language, tier, kind, time. Undone votes and non-blind
votes are left out, so the file reproduces the board exactly. Never a session or IP hash; `battle` is
a one-way hash of the battle id (the id itself is a capability: whoever holds it could try to vote).
In the CSV, text starting like a spreadsheet formula gets a leading `'` (`leaderboards.csv_safe`).
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import ColumnElement, and_, bindparam, delete, func, insert, select, update
from sqlalchemy.orm import Session

from core.errors import InputError as HubInputError
from leaderboards.csv_safe import write_csv
from leaderboards.db import Database
from leaderboards.schema import Battle, Vote, VoteTally

# Which battles feed `vote_tallies` (the generation arena board).
TALLIED_KIND = "generate"
EXPORT_COLUMNS = ["battle", "model_a", "model_b", "outcome", "prompt", "language", "tier", "kind", "time"]
EXPORT_FORMATS = ("csv", "parquet")
COUNT_COLUMNS = ["model_a", "model_b", "winner", "count"]


def counted() -> ColumnElement[bool]:
    """The votes that count: live (not undone), blind, and not voided by a maintainer."""
    return and_(Vote.undone_at.is_(None), Vote.blind.is_(True), Vote.voided_at.is_(None))


def rows_frame(rows: Sequence[Any], columns: list[str]) -> pd.DataFrame:
    """DataFrame from result rows, column by column (pandas is slow on a list of Row objects)."""
    if not rows:
        return pd.DataFrame({c: [] for c in columns})
    return pd.DataFrame(dict(zip(columns, (list(col) for col in zip(*rows)), strict=True)))


@functools.cache
def _tally_upsert(dialect: str) -> Any:
    """The upsert statement for one dialect, built once: building it per vote cost more than running it."""
    table = VoteTally.__table__
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    else:
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    stmt = dialect_insert(table).values(model_a=bindparam("a"), model_b=bindparam("b"), outcome=bindparam("o"), n=bindparam("by"))
    return stmt.on_conflict_do_update(index_elements=["model_a", "model_b", "outcome"], set_={"n": table.c.n + stmt.excluded.n})


def bump_tally(session: Session, model_a: str, model_b: str, outcome: str, by: int = 1) -> None:
    """vote_tallies[(a, b, outcome)] += by, as one upsert statement (by = -1 for an undo)."""
    dialect = session.get_bind().dialect.name
    if dialect in ("sqlite", "postgresql"):
        session.execute(_tally_upsert(dialect), {"a": model_a, "b": model_b, "o": outcome, "by": by})
        return
    table = VoteTally.__table__
    values = {"model_a": model_a, "model_b": model_b, "outcome": outcome, "n": by}
    where = (table.c.model_a == model_a, table.c.model_b == model_b, table.c.outcome == outcome)
    if session.execute(update(table).where(*where).values(n=table.c.n + by)).rowcount == 0:
        session.execute(insert(table).values(**values))


def grouped_votes(
    session: Session, kind: str | None, *where: ColumnElement[bool]
) -> Sequence[Any]:
    """(model_a, model_b, outcome, count) over the counted votes on battles of one kind (None: all)."""
    query = (
        select(Battle.model_a, Battle.model_b, Vote.outcome, func.count())
        .join(Vote, Vote.battle_id == Battle.id)
        .where(counted(), *where)
        .group_by(Battle.model_a, Battle.model_b, Vote.outcome)
    )
    if kind is not None:
        query = query.where(Battle.kind == kind)
    return session.execute(query).all()


def rebuild_tallies(session: Session) -> None:
    """Recompute `vote_tallies` from the counted votes on generation battles (repair tool)."""
    session.execute(delete(VoteTally))
    rows = grouped_votes(session, TALLIED_KIND)
    if rows:
        session.execute(
            insert(VoteTally), [{"model_a": a, "model_b": b, "outcome": o, "n": n} for a, b, o, n in rows]
        )


def tallies_frame(session: Session) -> pd.DataFrame:
    """Vote counts as (model_a, model_b, winner, count) rows: the input of `bradley_terry_from_counts`."""
    table = VoteTally.__table__
    rows = session.connection().execute(
        select(table.c.model_a, table.c.model_b, table.c.outcome, table.c.n).where(table.c.n > 0)
    ).all()
    return rows_frame(rows, COUNT_COLUMNS)


def vote_counts(session: Session, kind: str = TALLIED_KIND) -> pd.DataFrame:
    """(model_a, model_b, winner, count) for one battle kind: the tallies for 'generate'; for 'edit'
    (far fewer votes) grouped from `votes` directly."""
    if kind == TALLIED_KIND:
        return tallies_frame(session)
    return rows_frame(grouped_votes(session, kind), COUNT_COLUMNS)


def public_battle_id(battle_id: str) -> str:
    """A stable public name for a battle in the download (the real id is a voting capability)."""
    return hashlib.sha256(battle_id.encode()).hexdigest()[:20]


def votes_frame(session: Session, kind: str | None = None) -> pd.DataFrame:
    """Every counted vote, oldest first, anonymised (see the module docstring)."""
    query = (
        select(
            Battle.id, Battle.model_a, Battle.model_b, Vote.outcome, Battle.prompt, Battle.language,
            Battle.tier, Battle.kind, Vote.created_at,
        )
        .join(Vote, Vote.battle_id == Battle.id)
        .where(counted())
        .order_by(Vote.created_at, Vote.id)
    )
    if kind is not None:
        query = query.where(Battle.kind == kind)
    frame = rows_frame(session.execute(query).all(), EXPORT_COLUMNS)
    frame["battle"] = [public_battle_id(b) for b in frame["battle"]]
    frame["time"] = pd.to_datetime(frame["time"], utc=True)
    return frame


def export_votes(db: Database, out: str | Path, fmt: str = "csv", kind: str | None = None) -> Path:
    """Write the anonymised votes to `out` as CSV or Parquet; returns the path. Prompts are user text:
    the CSV neutralizes cells a spreadsheet would run as formulas (`csv_safe`); Parquet keeps them as is."""
    fmt = str(fmt or "").strip().lower()
    if fmt not in EXPORT_FORMATS:
        raise HubInputError(f"Unknown format {str(fmt)[:20]!r}: choose csv or parquet.")
    with db.session() as session:
        frame = votes_frame(session, kind)
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "csv":
        write_csv(frame, path, index=False)
    else:
        frame.to_parquet(path, index=False)
    return path
