"""Writing eval results, and reading back the rows that count (the API evals and the boards share).

Writers are idempotent and safe when two processes write the same thing at once (INSERT ... ON CONFLICT
DO NOTHING, then read back).

Which rows count. For each (checkpoint, adapters, suite name) the latest complete run decides: its
samples are those of the same suite name, checkpoint version and settings hash, scored by that run's
judges. `current_rows` returns them as plain records; the Leaderboard tab, the CSV exports, the CLI and
`python -m evals report` all summarise these records with `leaderboards.intervals`, so the same data
always gives the same numbers and intervals.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from leaderboards.schema import Checkpoint, EvalRun, Prompt, PromptSuite, Sample, Score


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
    revision: str | None = None,
) -> Checkpoint:
    """Create or update a checkpoint row (never deleted). New rows get `status` or 'available'."""
    insert_ignore(
        session,
        Checkpoint.__table__,
        [{"id": id, "display_name": display_name, "family": family, "source": source, "sha256": sha256,
          "is_demo": bool(is_demo), "status": status or "available", "revision": revision}],
        ["id"],
    )
    row = session.get(Checkpoint, id, populate_existing=True)
    assert row is not None
    row.display_name, row.family, row.is_demo = display_name, family, bool(is_demo)
    if row.source != source:
        row.source = source
        row.revision = None  # a new source is pinned afresh
    if sha256 is not None:
        row.sha256 = sha256
    if status is not None:
        row.status = status
    if revision is not None:
        row.revision = revision
    session.flush()
    return row


class DatabaseRevisionStore:
    """Pinned `hub:` revisions on the checkpoints table (the engine's `revision_store`)."""

    def __init__(self, db: Any):
        self.db = db

    def get(self, checkpoint_id: str) -> str | None:
        with self.db.session() as session:
            row = session.get(Checkpoint, checkpoint_id)
            return row.revision if row is not None else None

    def set(self, checkpoint_id: str, revision: str) -> None:
        with self.db.write_session() as session:
            row = session.get(Checkpoint, checkpoint_id)
            if row is not None:
                row.revision = revision


def get_or_create_suite(session: Session, name: str, version_hash: str, prompts: Iterable[dict[str, Any]]) -> PromptSuite:
    """The suite row for (name, version_hash), created with its prompts if new (missing prompts of an
    existing version are added: same version hash means same content, so this only fills a partial write)."""
    insert_ignore(session, PromptSuite.__table__, [{"name": name, "version_hash": version_hash}], ["name", "version_hash"])
    suite = session.execute(
        select(PromptSuite).where(PromptSuite.name == name, PromptSuite.version_hash == version_hash)
    ).scalar_one()
    rows = [
        {"suite_id": suite.id, "item_id": str(p["item_id"]), "language": str(p["language"]), "text": str(p["text"]),
         "meta": dict(p.get("meta") or {})}
        for p in prompts
    ]
    insert_ignore(session, Prompt.__table__, rows, ["suite_id", "item_id", "language"])
    session.flush()
    return suite


def checkpoint_label(checkpoint_id: str, adapters: str) -> str:
    """Board label: the checkpoint, plus its adapters when a LoRA was applied."""
    return f"{checkpoint_id} + {adapters}" if adapters else checkpoint_id


@dataclass(frozen=True)
class CurrentRun:
    run_id: int
    checkpoint_id: str
    adapters: str
    suite_name: str
    kind: str
    version: str
    settings_hash: str | None
    judge_ids: frozenset[str]
    settings: dict[str, Any]


def current_runs(session: Session, *, kinds: Sequence[str] | None = None, checkpoint: str | None = None,
                 suite: str | None = None, adapters: str | None = None) -> list[CurrentRun]:
    """The latest complete run of each (checkpoint, adapters, suite), optionally filtered."""
    query = select(EvalRun).where(EvalRun.status == "complete")
    if checkpoint is not None:
        query = query.where(EvalRun.checkpoint_id == checkpoint)
    if suite is not None:
        query = query.where(EvalRun.suite_name == suite)
    if adapters is not None:
        query = query.where(EvalRun.adapters == adapters)
    latest: dict[tuple[str, str, str], EvalRun] = {}
    for run in session.execute(query.order_by(EvalRun.finished_at, EvalRun.id)).scalars():
        latest[(run.checkpoint_id, run.adapters or "", run.suite_name)] = run
    out = []
    for key in sorted(latest):
        run = latest[key]
        settings = dict(run.settings or {})
        kind = str(settings.get("kind") or "")
        if kinds is not None and kind not in kinds:
            continue
        judges = settings.get("judge_set") or {}
        out.append(CurrentRun(
            run_id=run.id, checkpoint_id=run.checkpoint_id, adapters=run.adapters or "", suite_name=run.suite_name,
            kind=kind, version=run.checkpoint_version or "", settings_hash=run.settings_hash,
            judge_ids=frozenset(j["id"] for j in judges.values() if isinstance(j, dict) and "id" in j), settings=settings,
        ))
    return out


def current_rows(session: Session, run: CurrentRun, metrics: Sequence[str] | None = None,
                 group_field: str | None = None, item_ids: set[str] | None = None) -> list[dict[str, Any]]:
    """Score records of one current run: {sample_id, item_id, language, group, metric, value, judge_id}."""
    query = (
        select(Sample.id, Sample.item_id, Sample.language, Sample.prompt_id, Score.judge_id, Score.metric, Score.value)
        .join(Score, Score.sample_id == Sample.id)
        .join(PromptSuite, PromptSuite.id == Sample.suite_id)
        .where(
            Sample.checkpoint_id == run.checkpoint_id,
            # By name, not id: samples of an earlier version of the suite count while their items remain.
            PromptSuite.name == run.suite_name,
            Sample.adapters == run.adapters,
            Sample.settings_hash == run.settings_hash,
            Sample.checkpoint_version == run.version,
        )
    )
    if metrics is not None:
        query = query.where(Score.metric.in_(list(metrics)))
    groups: dict[int, str] = {}
    if group_field:
        groups = {pid: str((meta or {}).get(group_field) or "unknown") for pid, meta in session.execute(
            select(Prompt.id, Prompt.meta).join(PromptSuite, PromptSuite.id == Prompt.suite_id).where(PromptSuite.name == run.suite_name))}
    records = []
    for sid, item, lang, pid, jid, metric, value in session.execute(query):
        if run.judge_ids and jid not in run.judge_ids:
            continue
        if item_ids is not None and item not in item_ids:
            continue
        if value is None or value != value:  # NaN
            continue
        records.append({"sample_id": sid, "item_id": item, "language": lang, "group": groups.get(pid, "unknown") if group_field else None,
                        "metric": metric, "value": float(value), "judge_id": jid})
    return records


def sampled_items(session: Session, run: CurrentRun) -> set[str]:
    """Items the run generated samples for (scored or not)."""
    return set(session.execute(
        select(Sample.item_id).join(PromptSuite, PromptSuite.id == Sample.suite_id).where(
            Sample.checkpoint_id == run.checkpoint_id, PromptSuite.name == run.suite_name, Sample.adapters == run.adapters,
            Sample.settings_hash == run.settings_hash, Sample.checkpoint_version == run.version,
        ).distinct()
    ).scalars())
