"""Writing eval results and reading the eval boards (the API evals uses).

Writers are idempotent and safe when two processes write the same thing at once (INSERT ... ON CONFLICT
DO NOTHING, then read back). Readers return pandas DataFrames:

- `character_board`: per checkpoint (with its adapters), tier and prompt language, the hit rate of the
  `character_hit` metric (0/1 per sample) with a 95% bootstrap interval.
- `multilingual_board`: per checkpoint, language and metric (`tag_recall`, `anchored_alignment`,
  `crosslingual_cosine`), the mean, its 95% bootstrap interval, and the gap to the English value.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Select, insert, select
from sqlalchemy.orm import Session

from leaderboards.schema import Checkpoint, Prompt, PromptSuite, Sample, Score

CHARACTER_METRIC = "character_hit"
MULTILINGUAL_METRICS = ("tag_recall", "anchored_alignment", "crosslingual_cosine")
ANCHOR_LANGUAGE = "en"
CHARACTER_COLUMNS = ["checkpoint", "tier", "language", "hit_rate", "lower", "upper", "n"]
MULTILINGUAL_COLUMNS = ["checkpoint", "language", "metric", "value", "gap_to_english", "lower", "upper"]
ALL = "all"
SCORE_ROW_COLUMNS = ["checkpoint_id", "adapters", "item_id", "language", "suite_id", "prompt_id", "metric", "value"]


def _rows_frame(rows: Sequence[Any], columns: list[str]) -> pd.DataFrame:
    """DataFrame from result rows, column by column (pandas is slow on a list of Row objects)."""
    if not rows:
        return pd.DataFrame({c: [] for c in columns})
    return pd.DataFrame(dict(zip(columns, (list(col) for col in zip(*rows)), strict=True)))


def insert_ignore(session: Session, table: Any, rows: Sequence[dict[str, Any]], keys: Sequence[str]) -> None:
    """INSERT rows, skipping those that collide on the unique columns `keys` (SQLite and PostgreSQL)."""
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    else:  # generic fallback: check first (racy across processes, fine for single-writer backends)
        for row in rows:
            where = [getattr(table.c, k) == row[k] for k in keys]
            if session.execute(select(table).where(*where)).first() is None:
                session.execute(insert(table).values(**row))
        return
    stmt = dialect_insert(table).on_conflict_do_nothing(index_elements=list(keys))
    session.execute(stmt, list(rows))


def upsert_checkpoint(
    session: Session,
    id: str,  # noqa: A002 - the column is called id
    display_name: str,
    family: str,
    source: str,
    sha256: str | None = None,
    is_demo: bool = False,
    status: str | None = None,
) -> Checkpoint:
    """Create or update a checkpoint row (never deleted). New rows get `status` or 'available'."""
    insert_ignore(
        session,
        Checkpoint.__table__,
        [
            {
                "id": id,
                "display_name": display_name,
                "family": family,
                "source": source,
                "sha256": sha256,
                "is_demo": bool(is_demo),
                "status": status or "available",
            }
        ],
        ["id"],
    )
    row = session.get(Checkpoint, id, populate_existing=True)
    assert row is not None
    row.display_name, row.family, row.source, row.is_demo = display_name, family, source, bool(is_demo)
    if sha256 is not None:
        row.sha256 = sha256
    if status is not None:
        row.status = status
    session.flush()
    return row


def get_or_create_suite(
    session: Session, name: str, version_hash: str, prompts: Iterable[dict[str, Any]]
) -> PromptSuite:
    """The suite row for (name, version_hash), created with its prompts if new.

    prompts: dicts with item_id, language, text and optional meta. Missing prompts are added to an
    existing suite too (same version hash means same content, so this only fills a partial write).
    """
    insert_ignore(session, PromptSuite.__table__, [{"name": name, "version_hash": version_hash}], ["name", "version_hash"])
    suite = session.execute(
        select(PromptSuite).where(PromptSuite.name == name, PromptSuite.version_hash == version_hash)
    ).scalar_one()
    rows = [
        {
            "suite_id": suite.id,
            "item_id": str(p["item_id"]),
            "language": str(p["language"]),
            "text": str(p["text"]),
            "meta": dict(p.get("meta") or {}),
        }
        for p in prompts
    ]
    insert_ignore(session, Prompt.__table__, rows, ["suite_id", "item_id", "language"])
    session.flush()
    return suite


def checkpoint_label(checkpoint_id: str, adapters: str) -> str:
    """Board label: the checkpoint, plus its adapters when a LoRA was applied."""
    return f"{checkpoint_id} + {adapters}" if adapters else checkpoint_id


def _scores_query(metrics: Sequence[str], judge_id: str | None, suite_name: str | None) -> Select:
    query = (
        select(
            Sample.checkpoint_id,
            Sample.adapters,
            Sample.item_id,
            Sample.language,
            Sample.suite_id,
            Sample.prompt_id,
            Score.metric,
            Score.value,
        )
        .join(Score, Score.sample_id == Sample.id)
        .where(Score.metric.in_(list(metrics)))
    )
    if judge_id is not None:
        query = query.where(Score.judge_id == judge_id)
    if suite_name is not None:
        query = query.join(PromptSuite, PromptSuite.id == Sample.suite_id).where(PromptSuite.name == suite_name)
    return query


def _bootstrap_mean_interval(
    values: np.ndarray, rng: np.random.Generator, rounds: int, binary: bool
) -> tuple[float, float]:
    n = len(values)
    if n == 0:
        return (float("nan"), float("nan"))
    if binary:  # resampling 0/1 values: the resampled mean is Binomial(n, p)/n exactly
        means = rng.binomial(n, values.mean(), size=rounds) / n
    else:
        means = values[rng.integers(0, n, size=(rounds, n))].mean(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return float(lo), float(hi)


def character_board(
    session: Session,
    *,
    judge_id: str | None = None,
    suite_name: str | None = None,
    include_totals: bool = False,
    num_bootstrap: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """Hit rate of `character_hit` per (checkpoint [+ adapters], tier, language) with a 95% interval.

    `include_totals` adds rows with language 'all' (per tier) and tier 'all' (per language and overall).
    """
    frame = _rows_frame(session.execute(_scores_query([CHARACTER_METRIC], judge_id, suite_name)).all(), SCORE_ROW_COLUMNS)
    if frame.empty:
        return pd.DataFrame(columns=CHARACTER_COLUMNS)
    frame["tier"] = _tiers(session, frame)
    frame["checkpoint"] = [checkpoint_label(c, a or "") for c, a in zip(frame["checkpoint_id"], frame["adapters"], strict=True)]
    groupings: list[tuple[str, str]] = [("tier", "language")]
    if include_totals:
        groupings += [("tier", ALL), (ALL, "language"), (ALL, ALL)]
    rng = np.random.default_rng(seed)
    out = []
    for tier_col, lang_col in groupings:
        data = frame.assign(**{"_t": frame["tier"] if tier_col == "tier" else ALL, "_l": frame["language"] if lang_col == "language" else ALL})
        for (checkpoint, tier, language), group in data.groupby(["checkpoint", "_t", "_l"], sort=True):
            values = group["value"].to_numpy(dtype=float)
            lo, hi = _bootstrap_mean_interval(values, rng, num_bootstrap, binary=True)
            out.append((checkpoint, tier, language, float(values.mean()), lo, hi, len(values)))
    board = pd.DataFrame(out, columns=CHARACTER_COLUMNS)
    return board.drop_duplicates(subset=["checkpoint", "tier", "language"]).reset_index(drop=True)


def _tiers(session: Session, frame: pd.DataFrame) -> list[str]:
    """Tier of each sample from its prompt's meta (by prompt_id, else by suite, item and language)."""
    suite_ids = sorted({int(s) for s in frame["suite_id"].dropna()})
    by_id: dict[int, str] = {}
    by_key: dict[tuple[int, str, str], str] = {}
    if suite_ids:
        for pid, sid, item, lang, meta in session.execute(
            select(Prompt.id, Prompt.suite_id, Prompt.item_id, Prompt.language, Prompt.meta).where(
                Prompt.suite_id.in_(suite_ids)
            )
        ):
            tier = str((meta or {}).get("tier") or "unknown")
            by_id[pid] = tier
            by_key[(sid, item, lang)] = tier
    tiers = []
    for pid, sid, item, lang in zip(frame["prompt_id"], frame["suite_id"], frame["item_id"], frame["language"], strict=True):
        tier = by_id.get(int(pid)) if pd.notna(pid) else None
        tiers.append(tier or by_key.get((int(sid), item, lang), "unknown"))
    return tiers


def multilingual_board(
    session: Session,
    *,
    judge_id: str | None = None,
    suite_name: str | None = None,
    anchor_language: str = ANCHOR_LANGUAGE,
    num_bootstrap: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """Mean of each multilingual metric per (checkpoint [+ adapters], language), with a 95% bootstrap
    interval of that mean (lower/upper) and its gap to the same checkpoint's English value."""
    frame = _rows_frame(session.execute(_scores_query(MULTILINGUAL_METRICS, judge_id, suite_name)).all(), SCORE_ROW_COLUMNS)
    if frame.empty:
        return pd.DataFrame(columns=MULTILINGUAL_COLUMNS)
    frame["checkpoint"] = [checkpoint_label(c, a or "") for c, a in zip(frame["checkpoint_id"], frame["adapters"], strict=True)]
    rng = np.random.default_rng(seed)
    out = []
    for (checkpoint, language, metric), group in frame.groupby(["checkpoint", "language", "metric"], sort=True):
        values = group["value"].to_numpy(dtype=float)
        lo, hi = _bootstrap_mean_interval(values, rng, num_bootstrap, binary=False)
        out.append((checkpoint, language, metric, float(values.mean()), lo, hi))
    board = pd.DataFrame(out, columns=["checkpoint", "language", "metric", "value", "lower", "upper"])
    english = board[board["language"] == anchor_language].set_index(["checkpoint", "metric"])["value"]
    keys = list(zip(board["checkpoint"], board["metric"], strict=True))
    board["gap_to_english"] = [float(board["value"].iloc[i] - english[k]) if k in english.index else float("nan") for i, k in enumerate(keys)]
    return board[MULTILINGUAL_COLUMNS]
