"""Database engine, sessions and migrations.

- Any SQLAlchemy URL works; `postgresql://` / `postgres://` are mapped to the installed psycopg 3 driver.
- `HUB_DATABASE_URL` overrides the configured URL; the default is `<HUB_DATA_DIR>/hub.sqlite3`, a
  relative folder being under the repository root (`core.settings`, shared with the app).
- SQLite: WAL journal (readers never wait for the writer), `busy_timeout` (writers queue instead of
  failing), foreign keys on. SQLAlchemy emits BEGIN itself (the sqlite3 module's own transaction
  handling is switched off, as SQLAlchemy's docs recommend) so that write sessions can start with
  `BEGIN IMMEDIATE`: a write transaction takes the write lock up front, which avoids the
  SQLITE_BUSY "snapshot upgrade" failures that deferred transactions hit under concurrent writers.
- `init_db(url)` creates or upgrades the schema with Alembic (programmatic config; the migration
  scripts ship inside this package), so the app and the CLI need no alembic.ini.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.engine import URL
from sqlalchemy.orm import Session, sessionmaker

from core import settings

SQLITE_BUSY_TIMEOUT_MS = 30_000
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
_BEGIN_OPTION = "hub_sqlite_begin"


def resolve_database_url(configured: str | None = None, data_dir: str | Path | None = None) -> str:
    """`core.settings.database_url` (the one resolution the app shares), mapped to our driver."""
    return normalize_url(settings.database_url(configured, data_dir))


def normalize_url(url: str | URL) -> str:
    """Map bare PostgreSQL URLs to psycopg 3 (the driver in requirements.txt)."""
    text = url.render_as_string(hide_password=False) if isinstance(url, URL) else str(url)
    for prefix in ("postgres://", "postgresql://"):
        if text.startswith(prefix):
            return "postgresql+psycopg://" + text[len(prefix) :]
    return text


def is_sqlite(url: str | URL) -> bool:
    return make_url(str(url) if not isinstance(url, URL) else url).get_backend_name() == "sqlite"


def create_hub_engine(url: str, *, pool_size: int = 10, max_overflow: int = 40) -> Engine:
    """An Engine for `url` with the hub's connection settings (see module docstring)."""
    url = normalize_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(
            url, pool_size=pool_size, max_overflow=max_overflow, pool_pre_ping=True, pool_recycle=1800
        )

    database = parsed.database or ""
    in_memory = database in ("", ":memory:") or database.startswith("file::memory:")
    if not in_memory:
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            pool_size=pool_size,
            max_overflow=max_overflow,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
        )
    else:
        engine = create_engine(url, connect_args={"check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _sqlite_on_connect(dbapi_connection, _record) -> None:  # noqa: ANN001
        # Let SQLAlchemy emit BEGIN (see the "begin" hook) instead of the sqlite3 module.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            if not in_memory:
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA foreign_keys=ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _sqlite_begin(conn) -> None:  # noqa: ANN001
        mode = conn.get_execution_options().get(_BEGIN_OPTION, "")
        conn.exec_driver_sql(f"BEGIN {mode}".strip())

    return engine


class Database:
    """The hub's database handle: `.url`, `.engine`, `.session()` and `.write_session()`."""

    def __init__(self, url: str | None = None, *, migrate: bool = False) -> None:
        self.url = normalize_url(url) if url else resolve_database_url()
        self.engine = create_hub_engine(self.url)
        self.is_sqlite = is_sqlite(self.url)
        # Write transactions on SQLite take the write lock at BEGIN (see module docstring).
        write_bind = (
            self.engine.execution_options(**{_BEGIN_OPTION: "IMMEDIATE"}) if self.is_sqlite else self.engine
        )
        self._write_lock = threading.RLock()
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._write_sessions = sessionmaker(write_bind, expire_on_commit=False)
        if migrate:
            upgrade(self.engine)

    def __repr__(self) -> str:
        return f"Database({make_url(self.url).render_as_string(hide_password=True)!r})"

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session in one transaction: committed on success, rolled back on any exception."""
        with self._sessions() as session, session.begin():
            yield session

    @contextmanager
    def write_session(self) -> Iterator[Session]:
        """Like `session()`, but on SQLite the transaction starts with BEGIN IMMEDIATE.

        On SQLite, writers of this process also queue on a lock first: SQLite's busy handler polls
        with growing sleeps, which starves some threads under contention (seconds of tail latency);
        the lock hands the write lock over in order. Other processes still wait through busy_timeout.
        """
        if not self.is_sqlite:
            with self._write_sessions() as session, session.begin():
                yield session
            return
        with self._write_lock, self._write_sessions() as session, session.begin():
            yield session

    def dispose(self) -> None:
        self.engine.dispose()


def alembic_config(url: str | None = None):  # noqa: ANN201 - alembic.config.Config
    """An Alembic Config built in code (no alembic.ini), pointing at the packaged migrations."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url:
        # ConfigParser interpolation: escape '%' (URL-encoded passwords).
        config.set_main_option("sqlalchemy.url", normalize_url(url).replace("%", "%%"))
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Run Alembic migrations up to `revision` on `engine` (one transaction on SQLite and PostgreSQL)."""
    from alembic import command

    config = alembic_config()
    with engine.connect() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
        connection.commit()


def downgrade(engine: Engine, revision: str) -> None:
    from alembic import command

    config = alembic_config()
    with engine.connect() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)
        connection.commit()


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def init_db(url: str | None = None) -> Database:
    """Open the database at `url` (or the resolved default) and create/upgrade it to the head revision."""
    return Database(url or resolve_database_url(), migrate=True)
