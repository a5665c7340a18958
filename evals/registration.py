"""Registering a checkpoint: the one path the CLI (`python -m evals register`) and the Submit tab share.

Every check runs once, in this order: the id, the family (one the hub can load), the source (a `file:`
source is hashed here, once), then a `hub:` source is pinned to the commit it resolves to now, so
weights pushed later are a new version. The row is written by `leaderboards.submissions`, which
refuses duplicates of id, source or weights inside the same transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from hub.errors import HubInputError
from hub.families import FAMILIES
from hub.revisions import RevisionError, RevisionResolver
from leaderboards import submissions
from leaderboards.db import Database
from leaderboards.schema import Checkpoint


def register_checkpoint(db: Database, checkpoint_id: str, source: str, family: str, *, resolver: RevisionResolver,
                        display_name: str | None = None, allowed_roots: Sequence[Path] = (), owner: str | None = None,
                        approved: bool = True, quota: int | None = None) -> Checkpoint:
    families = sorted(FAMILIES)
    submissions.check_checkpoint_id(checkpoint_id)
    submissions.check_family(family, families)
    checked = submissions.check_source(source, allowed_roots)
    revision = None
    if checked.kind == "hub":
        repo, _, pinned = checked.source.removeprefix("hub:").partition("@")
        try:
            revision = resolver.resolve(repo, pinned or None)
        except RevisionError as err:
            raise HubInputError(f"Cannot pin {repo}: {err}") from None
    return submissions.register_checkpoint(db, checkpoint_id, source, family, families=families,
                                           display_name=display_name, allowed_roots=allowed_roots, revision=revision,
                                           checked=checked, owner=owner, approved=approved, quota=quota)
