"""Alembic environment, configured in code by `leaderboards.db.alembic_config`.

Uses the connection passed in `config.attributes["connection"]` when there is one (the app and tests),
else builds an engine from `sqlalchemy.url`. SQLite uses batch mode so ALTERs work. On PostgreSQL an
advisory lock serialises replicas that start (and migrate) at the same time.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import text

from leaderboards.schema import Base

target_metadata = Base.metadata
_PG_MIGRATION_LOCK = 0x5A4B_0001  # arbitrary, fixed: one lock id for "hub schema migration"


def _configure_and_run(connection) -> None:  # noqa: ANN001
    is_sqlite = connection.dialect.name == "sqlite"
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=is_sqlite,
        compare_type=True,
        transaction_per_migration=False,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
        context.run_migrations()


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _configure_and_run(connection)
        return
    from leaderboards.db import create_hub_engine

    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no database URL: pass --db or set HUB_DATABASE_URL")
    engine = create_hub_engine(url)
    try:
        with engine.connect() as conn:
            _configure_and_run(conn)
            conn.commit()
    finally:
        engine.dispose()


def run_migrations_offline() -> None:
    context.configure(
        url=context.config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
