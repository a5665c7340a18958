"""Character probes on record: the cached answers of "who can draw X?" and how often each name is asked.

A probe answer is keyed by (typed name, language, checkpoint version, seeds, judge): the second person
asking the same question reads it back and nothing is generated. `evals.probe` makes the answers; this
module only stores and reads them (plain SQLAlchemy, no model code).
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from dataclasses import dataclass
from typing import Any

import pandas as pd
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from leaderboards.db import Database
from leaderboards.results import insert_ignore
from leaderboards.schema import ProbeAsk, ProbeResult, utcnow


def name_key(name: str) -> str:
    """The cache key of a typed name: NFKC, casefolded, inner whitespace collapsed ("Green  ogre" and
    "green ogre" are one question; "Ｇｒｅｅｎ Ogre" too)."""
    return " ".join(unicodedata.normalize("NFKC", name).casefold().split())


@dataclass(frozen=True)
class ProbeKey:
    name_key: str
    language: str
    checkpoint_id: str
    checkpoint_version: str
    seeds: int
    judge_id: str


def cached_result(session: Session, key: ProbeKey) -> ProbeResult | None:
    return session.execute(select(ProbeResult).where(
        ProbeResult.name_key == key.name_key, ProbeResult.language == key.language,
        ProbeResult.checkpoint_id == key.checkpoint_id, ProbeResult.checkpoint_version == key.checkpoint_version,
        ProbeResult.seeds == key.seeds, ProbeResult.judge_id == key.judge_id)).scalar_one_or_none()


def record_result(session: Session, key: ProbeKey, *, decided_by: str, prompt: str, samples: list[dict[str, Any]]) -> None:
    """Store one answer; a concurrent identical probe that stored first wins (same key, same answer)."""
    hits = sum(int(s["hit"]) for s in samples)
    insert_ignore(session, ProbeResult.__table__, [{
        "name_key": key.name_key, "language": key.language, "checkpoint_id": key.checkpoint_id,
        "checkpoint_version": key.checkpoint_version, "seeds": key.seeds, "judge_id": key.judge_id,
        "decided_by": decided_by, "prompt": prompt, "hits": hits, "n": len(samples), "samples": samples,
        "created_at": utcnow(),
    }], keys=["name_key", "language", "checkpoint_id", "checkpoint_version", "seeds", "judge_id"])


def answers_on_record(db: Database, name: str, language: str) -> list[dict[str, Any]]:
    """Every stored answer for a typed name in a language (all checkpoints, versions and seed counts)."""
    with db.session() as session:
        rows = session.execute(select(ProbeResult).where(ProbeResult.name_key == name_key(name), ProbeResult.language == language)
                               .order_by(ProbeResult.checkpoint_id, ProbeResult.created_at)).scalars().all()
        return [{"checkpoint": r.checkpoint_id, "version": r.checkpoint_version[:12], "seeds": r.seeds, "hits": r.hits,
                 "n": r.n, "judge": r.judge_id, "decided_by": r.decided_by, "prompt": r.prompt} for r in rows]


def count_ask(session: Session, name: str, language: str, now: dt.datetime | None = None) -> None:
    """One more request for `name` in `language` (created on the first)."""
    now = now or utcnow()
    key = name_key(name)
    insert_ignore(session, ProbeAsk.__table__, [{"name_key": key, "language": language, "name": name.strip(), "count": 0,
                                                 "last_asked_at": now}], keys=["name_key", "language"])
    session.execute(update(ProbeAsk).where(ProbeAsk.name_key == key, ProbeAsk.language == language)
                    .values(count=ProbeAsk.count + 1, last_asked_at=now))


ASKED_COLUMNS = ["name", "languages", "asks", "last_asked", "promoted"]


def most_asked(db: Database, limit: int = 20) -> pd.DataFrame:
    """The most-asked names (all languages of one name together), most asked first."""
    with db.session() as session:
        rows = session.execute(select(ProbeAsk)).scalars().all()
        by_key: dict[str, dict[str, Any]] = {}
        for row in rows:
            entry = by_key.setdefault(row.name_key, {"name": row.name, "languages": set(), "asks": 0, "last_asked": row.last_asked_at,
                                                     "promoted": False})
            entry["languages"].add(row.language)
            entry["asks"] += row.count
            entry["last_asked"] = max(entry["last_asked"], row.last_asked_at)
            entry["promoted"] = entry["promoted"] or row.promoted_at is not None
    ranked = sorted(by_key.values(), key=lambda e: (-e["asks"], e["name"]))[:limit]
    return pd.DataFrame([{**e, "languages": ", ".join(sorted(e["languages"])),
                          "last_asked": e["last_asked"].strftime("%Y-%m-%d %H:%M")} for e in ranked], columns=ASKED_COLUMNS)


def asked_languages(session: Session, name: str) -> dict[str, str]:
    """language -> the name as typed in it, for every language `name` was asked in."""
    rows = session.execute(select(ProbeAsk).where(ProbeAsk.name_key == name_key(name))).scalars().all()
    return {row.language: row.name for row in rows}


def mark_promoted(session: Session, name: str) -> int:
    """Record that `name` went into the characters suite; returns how many ask rows it marked."""
    result = session.execute(update(ProbeAsk).where(ProbeAsk.name_key == name_key(name), ProbeAsk.promoted_at.is_(None))
                             .values(promoted_at=utcnow()))
    return int(result.rowcount or 0)
