"""Pinning `hub:` checkpoints to a commit, so new weights pushed to a repo are a new version.

A `hub:org/name` checkpoint is resolved to the commit its branch points at when it is registered or
first loaded; that commit is stored on the checkpoint's database row, used for every load afterwards,
and is the checkpoint's identity in sample cache keys. `hub:org/name@rev` pins explicitly (a branch or
tag is resolved once, then pinned the same way). Moving to newer weights is explicit
(`python -m evals refresh ID`), and the new commit is a new version on the boards.

Resolvers:
- `HubCacheResolver(cache_dir)` reads a Hugging Face cache folder (`models--org--name/refs/<rev>` and
  `snapshots/<commit>/`): offline deployments and tests point it at a folder.
- `HfApiResolver()` asks the Hub (`HfApi().model_info(repo, revision=...).sha`); GPU deployments.
`default_resolver()` picks the cache when `HF_HUB_OFFLINE=1`, else the Hub API.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Protocol

from core.errors import first_line

COMMIT = re.compile(r"^[0-9a-f]{40}$")
log = logging.getLogger(__name__)


class RevisionError(LookupError):
    """The revision cannot be resolved (no such repo/revision, or not in the offline cache)."""


class RevisionResolver(Protocol):
    def resolve(self, repo: str, revision: str | None = None) -> str:
        """The commit sha `revision` (default: main) of `repo` points at."""
        ...


def cache_dir_from_env() -> Path:
    from huggingface_hub import constants

    return Path(os.environ.get("HF_HUB_CACHE") or constants.HF_HUB_CACHE)


class HubCacheResolver:
    """Resolve from a Hugging Face cache folder, without a network."""

    def __init__(self, cache_dir: str | os.PathLike[str] | None = None):
        self.cache_dir = Path(cache_dir) if cache_dir is not None else cache_dir_from_env()

    def repo_folder(self, repo: str) -> Path:
        return self.cache_dir / ("models--" + repo.replace("/", "--"))

    def resolve(self, repo: str, revision: str | None = None) -> str:
        folder = self.repo_folder(repo)
        revision = revision or "main"
        if COMMIT.match(revision):
            commit = revision
        else:
            ref = folder / "refs" / revision
            try:
                commit = ref.read_text(encoding="utf-8").strip()
            except OSError:
                # Messages reach the page (availability, registration): the server's cache folder goes to the log only.
                log.info("%s@%s: no ref in the Hub cache %s", repo, revision, self.cache_dir)
                raise RevisionError(f"{repo}@{revision} is not in the local Hub cache") from None
        if not (folder / "snapshots" / commit).is_dir():
            log.info("%s@%s: no snapshot in the Hub cache %s", repo, commit[:12], self.cache_dir)
            raise RevisionError(f"{repo}@{commit[:12]} has no snapshot in the local Hub cache")
        return commit


class HfApiResolver:
    """Resolve with the Hub API (network)."""

    def resolve(self, repo: str, revision: str | None = None) -> str:
        from huggingface_hub import HfApi
        from huggingface_hub.utils import HfHubHTTPError

        try:
            info = HfApi().model_info(repo, revision=revision)
        except (HfHubHTTPError, OSError, ValueError) as err:
            raise RevisionError(f"{repo}@{revision or 'main'}: {first_line(err, 160)}") from None
        if not info.sha:
            raise RevisionError(f"{repo}@{revision or 'main'}: the Hub gave no commit")
        return info.sha


def default_resolver() -> RevisionResolver:
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        return HubCacheResolver()
    return HfApiResolver()
