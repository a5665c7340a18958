"""Reading and writing samples and scores (one transaction per batch; idempotent inserts)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select

from evals.samples import ScoreRow
from leaderboards.db import Database
from leaderboards.results import insert_ignore
from leaderboards.schema import Sample, Score

CHUNK = 500


def existing_samples(db: Database, keys: Sequence[str]) -> dict[str, Sample]:
    found: dict[str, Sample] = {}
    with db.session() as session:
        for start in range(0, len(keys), CHUNK):
            chunk = list(keys[start : start + CHUNK])
            for sample in session.execute(select(Sample).where(Sample.cache_key.in_(chunk))).scalars():
                found[sample.cache_key] = sample
    return found


def insert_samples(db: Database, records: Sequence[dict[str, Any]], scores: Sequence[tuple[str, ScoreRow]]) -> None:
    """Sample rows and their scores in one transaction; a score names its sample by cache key."""
    with db.write_session() as session:
        insert_ignore(session, Sample.__table__, records, ["cache_key"])
        keys = [r["cache_key"] for r in records]
        ids = dict(session.execute(select(Sample.cache_key, Sample.id).where(Sample.cache_key.in_(keys))).all())
        rows = [{**score.as_dict(), "sample_id": ids[key]} for key, score in scores]
        insert_ignore(session, Score.__table__, rows, ["sample_id", "judge_id", "metric"])


def have_scores(db: Database, sample_ids: Sequence[int]) -> set[tuple[int, str, str]]:
    have: set[tuple[int, str, str]] = set()
    ids = sorted(set(sample_ids))
    with db.session() as session:
        for start in range(0, len(ids), CHUNK):
            for sid, jid, metric in session.execute(
                select(Score.sample_id, Score.judge_id, Score.metric).where(Score.sample_id.in_(ids[start : start + CHUNK]))
            ):
                have.add((sid, jid, metric))
    return have


def score_values(db: Database, sample_ids: Sequence[int], judge_id: str, metric: str) -> dict[int, float]:
    out: dict[int, float] = {}
    ids = sorted(set(sample_ids))
    with db.session() as session:
        for start in range(0, len(ids), CHUNK):
            for sid, value in session.execute(
                select(Score.sample_id, Score.value).where(
                    Score.sample_id.in_(ids[start : start + CHUNK]), Score.judge_id == judge_id, Score.metric == metric
                )
            ):
                out[sid] = value
    return out


def write_scores(db: Database, rows: Sequence[ScoreRow]) -> None:
    if rows:
        with db.write_session() as session:
            insert_ignore(session, Score.__table__, [r.as_dict() for r in rows], ["sample_id", "judge_id", "metric"])
