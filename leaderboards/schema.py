"""The hub's SQL schema (SQLAlchemy 2 ORM).

One module so Alembic's autogenerate/compare sees every table. Table and column names are a stable
interface: evals writes `prompt_suites`, `prompts`, `eval_runs`, `samples` and `scores`; the arena writes
`battles`, `votes`, `vote_tallies` and `battle_requests`. Add columns through a new migration in
`leaderboards/migrations/versions/`; `tests/test_schema_migrations.py` fails when this file and the
migrations drift apart.

Privacy: sessions and client IPs are stored only as salted hashes (`session_hash`, `ip_hash`).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# Deterministic constraint names: Alembic needs them to alter constraints (SQLite batch mode too).
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

VOTE_OUTCOMES = ("model_a", "model_b", "tie", "tie (bothbad)")
CHECKPOINT_STATUSES = ("registered", "available", "failed", "retired")
APPROVALS = ("pending", "approved", "rejected")
RUN_STATUSES = ("queued", "running", "complete", "failed")
BATTLE_KINDS = ("generate", "edit")
# Battle language for free-text prompts typed by users (not from a stored eval suite).
CUSTOM_LANGUAGE = "custom"


def utcnow() -> dt.datetime:
    """Timezone-aware UTC now (SQLite drops the zone; compare through `as_utc`)."""
    return dt.datetime.now(dt.timezone.utc)


def as_utc(value: dt.datetime) -> dt.datetime:
    """Attach UTC to naive datetimes read back from SQLite."""
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.timezone.utc)


def _in_list(column: str, values: tuple[str, ...]) -> str:
    quoted = ", ".join("'" + v.replace("'", "''") + "'" for v in values)
    return f"{column} IN ({quoted})"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {
        dt.datetime: DateTime(timezone=True),
        dict[str, Any]: JSON,
    }


class Checkpoint(Base):
    """Every checkpoint ever registered or shown. Rows are never deleted (status 'retired' instead)."""

    __tablename__ = "checkpoints"
    __table_args__ = (CheckConstraint(_in_list("status", CHECKPOINT_STATUSES), name="status"),)

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(200))
    family: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(1000))
    sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # The version its samples were made with: a Hub commit for `hub:` sources (pinned when registered
    # or first loaded), else the weights' sha256. A new revision is a new version, never mixed.
    revision: Mapped[str | None] = mapped_column(String(100), nullable=True)
    is_demo: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), default="registered")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # Who registered it (`hf:<name>`, `token:<id>`, `local`; None for the config's own checkpoints).
    owner: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # pending | approved | rejected: nothing is downloaded, loaded or run before a maintainer approves.
    approval: Mapped[str] = mapped_column(String(16), default="approved", server_default="approved")
    # Hidden by a maintainer: off every board, out of the engine and the arena; rows and votes kept.
    hidden: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))


class Adapter(Base):
    """A LoRA (or other adapter) known to the hub."""

    __tablename__ = "adapters"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(200))
    base_family: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(1000))
    sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    trigger_words: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class PromptSuite(Base):
    """A versioned prompt suite: the same name with new content gets a new row (new version_hash)."""

    __tablename__ = "prompt_suites"
    __table_args__ = (UniqueConstraint("name", "version_hash", name="uq_prompt_suites_name_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200))
    version_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    prompts: Mapped[list[Prompt]] = relationship(back_populates="suite")


class Prompt(Base):
    """One prompt of a suite in one language (`meta` carries e.g. {'tier': 'popular'})."""

    __tablename__ = "prompts"
    __table_args__ = (
        UniqueConstraint("suite_id", "item_id", "language", name="uq_prompts_suite_item_language"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    suite_id: Mapped[int] = mapped_column(ForeignKey("prompt_suites.id"))
    item_id: Mapped[str] = mapped_column(String(200))
    language: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text)
    meta: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    suite: Mapped[PromptSuite] = relationship(back_populates="prompts")


class EvalRun(Base):
    """One (checkpoint, suite, adapters, judge, settings) evaluation; queued runs survive restarts."""

    __tablename__ = "eval_runs"
    __table_args__ = (
        CheckConstraint(_in_list("status", RUN_STATUSES), name="status"),
        Index("ix_eval_runs_status_created", "status", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    checkpoint_id: Mapped[str] = mapped_column(ForeignKey("checkpoints.id"), index=True)
    suite_id: Mapped[int | None] = mapped_column(ForeignKey("prompt_suites.id"), nullable=True)
    suite_name: Mapped[str] = mapped_column(String(200))
    adapters: Mapped[str] = mapped_column(String(1000), default="")
    judge_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    judge_version: Mapped[str | None] = mapped_column(String(200), nullable=True)
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    settings_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="queued")
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    n_generated: Mapped[int] = mapped_column(Integer, default=0)
    n_reused: Mapped[int] = mapped_column(Integer, default=0)
    # Which checkpoint version the run measured (see Checkpoint.revision); '' until it starts.
    checkpoint_version: Mapped[str] = mapped_column(String(100), default="", server_default="")
    # The worker holding a running run and until when; a run whose lease ran out (its process died)
    # is claimed again by another worker (leaderboards.queue).
    worker_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    lease_expires_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    # How often a claim took the run over from a worker whose lease expired: the board says "resuming".
    takeovers: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    owner: Mapped[str | None] = mapped_column(String(200), nullable=True)  # who queued it (None: the hub)
    # Estimated GPU seconds (images x the per-image estimate): what the queue quota counts.
    gpu_seconds: Mapped[float] = mapped_column(Float, default=0.0, server_default=text("0"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    started_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    finished_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)


class Sample(Base):
    """One generated image, keyed by `cache_key` (checkpoint hash, adapters, prompt, seed, settings)."""

    __tablename__ = "samples"
    __table_args__ = (
        Index("ix_samples_checkpoint_suite", "checkpoint_id", "suite_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    cache_key: Mapped[str] = mapped_column(String(128), unique=True)
    checkpoint_id: Mapped[str] = mapped_column(ForeignKey("checkpoints.id"))
    adapters: Mapped[str] = mapped_column(String(1000), default="")
    suite_id: Mapped[int] = mapped_column(ForeignKey("prompt_suites.id"))
    prompt_id: Mapped[int | None] = mapped_column(ForeignKey("prompts.id"), nullable=True)
    item_id: Mapped[str] = mapped_column(String(200))
    language: Mapped[str] = mapped_column(String(16))
    prompt_text: Mapped[str] = mapped_column(Text)
    seed: Mapped[int] = mapped_column(BigInteger)
    settings_hash: Mapped[str] = mapped_column(String(64))
    checkpoint_version: Mapped[str] = mapped_column(String(100), default="", server_default="")
    image_path: Mapped[str] = mapped_column(String(1000))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Score(Base):
    """One metric of one sample by one judge."""

    __tablename__ = "scores"
    __table_args__ = (
        UniqueConstraint("sample_id", "judge_id", "metric", name="uq_scores_sample_judge_metric"),
        Index("ix_scores_metric", "metric"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    sample_id: Mapped[int] = mapped_column(ForeignKey("samples.id"))
    judge_id: Mapped[str] = mapped_column(String(200))
    metric: Mapped[str] = mapped_column(String(64))
    value: Mapped[float] = mapped_column(Float)


class Battle(Base):
    """A served arena pair. `model_a` is the left image as served. `id` is an unguessable token.

    Category (recorded when served): `language` is the prompt language of the stored eval samples the
    battle reuses, or 'custom' for free text typed by a user (and edit instructions); `tier` is the
    character tier from `prompts.meta` (character suites only), else NULL.
    Clean-up: `expired_at` is set by the clean-up job once voting has closed; `images_deleted` says
    whether it deleted the two images (battles without a counted vote) or kept them (voted battles).
    """

    __tablename__ = "battles"
    __table_args__ = (
        CheckConstraint(_in_list("kind", BATTLE_KINDS), name="kind"),
        CheckConstraint("model_a <> model_b", name="distinct_models"),
        Index("ix_battles_session_created", "session_hash", "created_at"),
        Index("ix_battles_ip_created", "ip_hash", "created_at"),
        Index("ix_battles_model_a", "model_a"),
        Index("ix_battles_model_b", "model_b"),
        Index("ix_battles_expired_expires", "expired_at", "expires_at"),
        Index("ix_battles_language_tier", "language", "tier"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), default="generate")
    model_a: Mapped[str] = mapped_column(ForeignKey("checkpoints.id"))
    model_b: Mapped[str] = mapped_column(ForeignKey("checkpoints.id"))
    prompt: Mapped[str] = mapped_column(Text)
    image_a: Mapped[str] = mapped_column(String(1000))
    image_b: Mapped[str] = mapped_column(String(1000))
    session_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    ip_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # Where the images came from: 'generated' (engine call) or 'samples' (reused eval samples).
    image_source: Mapped[str] = mapped_column(String(16), default="generated")
    language: Mapped[str] = mapped_column(String(16), default=CUSTOM_LANGUAGE, server_default=CUSTOM_LANGUAGE)
    tier: Mapped[str | None] = mapped_column(String(32), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column()
    expired_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    images_deleted: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))


class Vote(Base):
    """Votes on battles; outcomes restricted by a CHECK.

    One *live* vote per battle, enforced by a unique index on battle_id over the rows with
    `undone_at IS NULL` (a partial index, on SQLite and PostgreSQL alike). An undone vote stays on
    record with its `undone_at` and stops counting; the voter may then vote on that battle again.
    Such a second vote was cast after the names were revealed, so it is stored with `blind = false`:
    it counts on the voter's personal board but not in the community tallies or ratings.
    """

    __tablename__ = "votes"
    __table_args__ = (
        CheckConstraint(_in_list("outcome", VOTE_OUTCOMES), name="outcome"),
        Index("ix_votes_session_created", "session_hash", "created_at"),
        Index("ix_votes_ip_created", "ip_hash", "created_at"),
        Index("ix_votes_battle", "battle_id"),
        Index(
            "uq_votes_live_battle",
            "battle_id",
            unique=True,
            sqlite_where=text("undone_at IS NULL"),
            postgresql_where=text("undone_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    battle_id: Mapped[str] = mapped_column(ForeignKey("battles.id"))
    outcome: Mapped[str] = mapped_column(String(16))
    session_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    ip_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    undone_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    blind: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    # Voided by a maintainer (vote stuffing): kept on record, never counted again.
    voided_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)


class BattleRequest(Base):
    """One admitted request for a new battle (the per-session / per-IP battle budget).

    Written, under the same lock as the count that admits it, before any image is generated, so a
    burst of requests cannot all pass the check. Rows older than a day are pruned by the clean-up job.
    """

    __tablename__ = "battle_requests"
    __table_args__ = (
        Index("ix_battle_requests_session_created", "session_hash", "created_at"),
        Index("ix_battle_requests_ip_created", "ip_hash", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))
    session_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    ip_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class VoteTally(Base):
    """Running count of votes per (model_a, model_b, outcome), updated in the vote's transaction.

    The arena board reads these few hundred rows instead of scanning every vote, which keeps the
    board query fast with millions of votes. `arena.rebuild_tallies` recomputes it from `votes`.
    """

    __tablename__ = "vote_tallies"
    __table_args__ = (CheckConstraint(_in_list("outcome", VOTE_OUTCOMES), name="outcome"),)

    model_a: Mapped[str] = mapped_column(ForeignKey("checkpoints.id"), primary_key=True)
    model_b: Mapped[str] = mapped_column(ForeignKey("checkpoints.id"), primary_key=True)
    outcome: Mapped[str] = mapped_column(String(16), primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger, default=0)


class SignIn(Base):
    """A browser session signed in with a token (auth mode `token`): the session's salted hash -> who.
    Hugging Face sign-ins live in Gradio's own OAuth session cookie instead."""

    __tablename__ = "sign_ins"

    session_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class UsageEvent(Base):
    """What a signed-in user spent (registrations, eval GPU seconds, galleries, LoRA trainings): the
    quotas sum these over the last day, under the same lock as the insert that spends them."""

    __tablename__ = "usage_events"
    __table_args__ = (Index("ix_usage_events_user_action_created", "user", "action", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(32))
    amount: Mapped[float] = mapped_column(Float, default=1.0)
    target: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Ban(Base):
    """A banned session or IP (salted hashes): refused at the arena and every signed-in action."""

    __tablename__ = "bans"
    __table_args__ = (
        UniqueConstraint("kind", "value_hash", name="uq_bans_kind_value"),
        CheckConstraint("kind IN ('session', 'ip')", name="kind"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))
    value_hash: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(500), default="")
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class AuditEntry(Base):
    """Every maintainer action: who, what, on what, when (shown in the maintainer tab, exported as CSV)."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_created", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(500))
    detail: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ProbeResult(Base):
    """One answer of "who can draw X?": a checkpoint version drew a typed name with N seeds and a judge
    counted the hits. The key is what makes the answer reusable, so the second person asking the same
    question generates nothing; a new checkpoint version or judge is a new key (asked afresh)."""

    __tablename__ = "probe_results"
    __table_args__ = (
        UniqueConstraint("name_key", "language", "checkpoint_id", "checkpoint_version", "seeds", "judge_id",
                         name="uq_probe_results_key"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name_key: Mapped[str] = mapped_column(String(200))  # the typed name, normalised (casefolded, spaces collapsed)
    language: Mapped[str] = mapped_column(String(16))
    checkpoint_id: Mapped[str] = mapped_column(String(200))
    checkpoint_version: Mapped[str] = mapped_column(String(100))
    seeds: Mapped[int] = mapped_column(Integer)
    judge_id: Mapped[str] = mapped_column(String(200))
    # tagger (the tagger knows the name) | suite (a suite character, judged as the suite judges it) |
    # zero_shot (the name judge on a name nothing was calibrated for)
    decided_by: Mapped[str] = mapped_column(String(16))
    prompt: Mapped[str] = mapped_column(Text)
    hits: Mapped[int] = mapped_column(Integer)
    n: Mapped[int] = mapped_column(Integer)
    # Per seed: {"seed", "hit", "evidence", "image"} (image relative to the data folder)
    samples: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ProbeAsk(Base):
    """How often a name was asked for, per language: the most-asked names are the maintainers' shortlist
    for the `characters` suite."""

    __tablename__ = "probe_asks"
    __table_args__ = (UniqueConstraint("name_key", "language", name="uq_probe_asks_name_language"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name_key: Mapped[str] = mapped_column(String(200))
    language: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200))  # as first typed
    count: Mapped[int] = mapped_column(Integer, default=0)
    last_asked_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    promoted_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)


__all__ = [
    "ProbeAsk",
    "ProbeResult",
    "AuditEntry",
    "Ban",
    "SignIn",
    "UsageEvent",
    "Adapter",
    "Base",
    "Battle",
    "BattleRequest",
    "Checkpoint",
    "EvalRun",
    "Prompt",
    "PromptSuite",
    "Sample",
    "Score",
    "Vote",
    "VoteTally",
    "BATTLE_KINDS",
    "CUSTOM_LANGUAGE",
    "CHECKPOINT_STATUSES",
    "RUN_STATUSES",
    "VOTE_OUTCOMES",
    "as_utc",
    "utcnow",
]
