"""Where the hub keeps its state, resolved once for the app, the CLIs and the workers.

- The data folder: `HUB_DATA_DIR`, else the config's `data_dir`, else `hub_data`. A relative folder is
  relative to the repository root, never to the working directory, so `python -m leaderboards`, `python
  -m evals` and `app.py` open the same database wherever they are started.
- The database: `HUB_DATABASE_URL`, else the config's `database_url`, else `<data folder>/hub.sqlite3`.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DATABASE_URL_ENV = "HUB_DATABASE_URL"
DATA_DIR_ENV = "HUB_DATA_DIR"
DEFAULT_DATA_DIR = "hub_data"
DEFAULT_SQLITE_NAME = "hub.sqlite3"


def repo_path(value: str | os.PathLike[str]) -> Path:
    """A path from a config or the environment: `~` expanded, relative ones under the repository root."""
    path = Path(value).expanduser()
    return path if path.is_absolute() else REPO_ROOT / path


def data_dir(configured: str | os.PathLike[str] | None = None) -> Path:
    return repo_path(os.environ.get(DATA_DIR_ENV) or configured or DEFAULT_DATA_DIR)


def database_url(configured: str | None = None, data_folder: str | os.PathLike[str] | None = None) -> str:
    """The URL to open (not yet mapped to a driver: `leaderboards.db.normalize_url` does that)."""
    env_url = os.environ.get(DATABASE_URL_ENV, "").strip()
    if env_url:
        return env_url
    if configured and configured.strip():
        return configured.strip()
    folder = Path(data_folder) if data_folder is not None else data_dir()
    return f"sqlite:///{(folder / DEFAULT_SQLITE_NAME).as_posix()}"
