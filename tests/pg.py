"""A throwaway PostgreSQL server for tests (Debian's postgresql packages, no Docker).

`PostgresServer().start()` runs initdb into a temporary folder, starts the server on a free loopback
port with its socket in that folder, and returns a SQLAlchemy URL; `stop()` shuts it down and deletes
everything. PostgreSQL refuses to run as root, so under root the server runs as the `postgres` user
(through `runuser`). Durability is switched off (fsync, synchronous_commit): it is a test server.

The `postgres_url` fixture gives each test a fresh database on one server per test session; tests are
skipped with the reason when no PostgreSQL binaries are found (CI installs them and sets REQUIRE_POSTGRES=1,
which makes that a failure).
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

try:
    from tests.needs import missing
except ImportError:  # tests/ is not a package
    from needs import missing

SEARCH_PATTERNS = ("/usr/lib/postgresql/*/bin",)


def find_bin_dir() -> Path | None:
    explicit = os.environ.get("PG_BIN_DIR")
    candidates = [explicit] if explicit else []
    for pattern in SEARCH_PATTERNS:
        candidates += sorted(glob.glob(pattern), reverse=True)
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(str(Path(on_path).parent))
    for folder in candidates:
        if folder and (Path(folder) / "initdb").is_file() and (Path(folder) / "pg_ctl").is_file():
            return Path(folder)
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PostgresServer:
    def __init__(self, bin_dir: Path | None = None) -> None:
        found = bin_dir or find_bin_dir()
        if found is None:
            raise FileNotFoundError("PostgreSQL binaries (initdb, pg_ctl) not found; set PG_BIN_DIR")
        self.bin_dir = found
        self.root: Path | None = None
        self.port = 0
        self._as_user: list[str] = []

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self._as_user, *args], check=check, capture_output=True, text=True, timeout=120
        )

    def start(self) -> str:
        self.root = Path(tempfile.mkdtemp(prefix="hub-pg-"))
        data = self.root / "data"
        if os.geteuid() == 0:
            runuser = shutil.which("runuser")
            if runuser is None:
                raise FileNotFoundError("running as root and runuser is missing: cannot start PostgreSQL")
            import pwd

            user = pwd.getpwnam("postgres")
            os.chown(self.root, user.pw_uid, user.pw_gid)
            self._as_user = [runuser, "-u", "postgres", "--"]
        self.port = _free_port()
        self._run(str(self.bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync")
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        self._run(str(self.bin_dir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(self.root / "log"), "-w", "-t", "60", "start")
        return self.url()

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        import psycopg

        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        if self.root is None:
            return
        self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.root / "data"), "-m", "immediate", "-w", "stop", check=False)
        for _ in range(50):  # the server process owns files; wait until it has gone
            if not (self.root / "data" / "postmaster.pid").exists():
                break
            time.sleep(0.1)
        shutil.rmtree(self.root, ignore_errors=True)
        self.root = None


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    if find_bin_dir() is None:
        missing("REQUIRE_POSTGRES", "PostgreSQL binaries not found (apt-get install postgresql, or set PG_BIN_DIR)")
    server = PostgresServer()
    try:
        server.start()
    except (subprocess.CalledProcessError, FileNotFoundError) as err:
        detail = getattr(err, "stderr", "") or str(err)
        server.stop()
        pytest.fail(f"could not start PostgreSQL: {detail}")
    yield server
    server.stop()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """A fresh, empty database on the session's throwaway PostgreSQL server."""
    return postgres_server.create_database()
