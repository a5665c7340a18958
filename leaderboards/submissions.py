"""Model authors' submissions: register a checkpoint, queue eval runs, read their status.

A checkpoint source is written like the hub config's sources:
- `hub:<org>/<name>`: a Hugging Face Hub repository (fetched later, on a deployment that has a network);
- `folder:<path>`: a local diffusers folder (`model_index.json`, weights only as `.safetensors`);
- `file:<path>.safetensors`: a single-file checkpoint (its SHA-256 is recorded).

Local paths must resolve (symlinks followed) inside one of the allowed roots; `..`, NUL bytes, `~` and
links that leave the root are refused. Folders holding pickle-based weights (`.bin`, `.pt`, `.ckpt`,
...) are refused. Every refusal raises `InputError` with the reason. A `hub:` source is pinned to a
commit when it is registered (the caller resolves it and passes `revision`). Eval runs are queued and
claimed through `leaderboards.queue`.
"""

from __future__ import annotations

import json
import re
import struct
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from core.errors import InputError as HubInputError
from core.errors import without_paths
from core.ids import is_hub_repo_id, is_id
from core.keys import file_sha256
from leaderboards.db import Database
from leaderboards.queue import shown_status
from leaderboards.quotas import spend
from leaderboards.schema import Checkpoint, EvalRun, utcnow

UNSAFE_WEIGHT_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".joblib", ".npy", ".npz", ".h5", ".msgpack")
MAX_SAFETENSORS_HEADER = 100 * 1024 * 1024


@dataclass(frozen=True)
class CheckedSource:
    kind: str  # hub | folder | file
    source: str  # canonical "kind:value"
    sha256: str | None


def check_checkpoint_id(checkpoint_id: str) -> str:
    checkpoint_id = (checkpoint_id or "").strip()
    if not is_id(checkpoint_id):
        raise HubInputError(
            f"Checkpoint id {checkpoint_id[:80]!r} must be 1-64 lowercase letters, digits, '.', '_' or '-'."
        )
    return checkpoint_id


def check_family(family: str, families: Collection[str]) -> str:
    family = (family or "").strip()
    if family not in families:
        raise HubInputError(f"Unknown family {family[:40]!r}: choose one of {', '.join(sorted(families))}.")
    return family


def _resolve_inside(raw: str, roots: Sequence[Path]) -> Path:
    if not roots:
        raise HubInputError("Local paths are not accepted here (no upload folder is configured).")
    if "\x00" in raw or raw.startswith("~"):
        raise HubInputError("That path is not allowed.")
    candidate = Path(raw)
    if ".." in candidate.parts:
        raise HubInputError("Paths with '..' are not allowed.")
    resolved_roots = [Path(r).resolve() for r in roots]
    full = candidate if candidate.is_absolute() else resolved_roots[0] / candidate
    resolved = full.resolve()  # follows symlinks: a link out of the root is caught below
    if not any(resolved == root or root in resolved.parents for root in resolved_roots):
        # Named as the page names it ("uploads/"): no server path in any message.
        raise HubInputError("Local checkpoints must be inside the upload folder (uploads/).")
    if not resolved.exists():
        raise HubInputError(f"Nothing found at {without_paths(raw)!r}.")
    return resolved


# Display names are shown in tables, messages and CSV files: plain text only.
DISPLAY_NAME_FORBIDDEN = re.compile(r"[<>\x00-\x1f\x7f`\[\]|\\]")
FORMULA_START = ("=", "+", "-", "@")


def check_display_name(name: str) -> str:
    """A display name: 1-100 characters of plain text (no markup, no spreadsheet formula start)."""
    name = " ".join((name or "").split())
    if len(name) > 100:
        raise HubInputError("The display name is too long (max 100 characters).")
    if DISPLAY_NAME_FORBIDDEN.search(name) or name.startswith(FORMULA_START):
        raise HubInputError("The display name must be plain text: no < > [ ] ` | \\ and no leading = + - @.")
    return name


def check_safetensors_file(path: Path) -> None:
    """A real safetensors file: 8-byte little-endian header length, then a JSON header."""
    try:
        with path.open("rb") as handle:
            prefix = handle.read(8)
            if len(prefix) != 8:
                raise HubInputError(f"{path.name} is not a safetensors file (too short).")
            (length,) = struct.unpack("<Q", prefix)
            if length <= 0 or length > MAX_SAFETENSORS_HEADER:
                raise HubInputError(f"{path.name} is not a safetensors file (bad header length).")
            header = json.loads(handle.read(length))
    except (OSError, ValueError, UnicodeDecodeError) as err:
        if isinstance(err, HubInputError):
            raise
        raise HubInputError(f"{path.name} is not a safetensors file ({type(err).__name__}).") from None
    if not isinstance(header, dict):
        raise HubInputError(f"{path.name} is not a safetensors file (header is not a mapping).")


def check_source(source: str, allowed_roots: Sequence[Path] = ()) -> CheckedSource:
    """Validate a checkpoint source (see module docstring); returns its canonical form."""
    source = (source or "").strip()
    kind, sep, value = source.partition(":")
    if not sep or not value:
        raise HubInputError("Source must be hub:<org>/<name>, folder:<path> or file:<path>.safetensors.")
    if kind == "hub":
        if not is_hub_repo_id(value):
            raise HubInputError(f"{value[:100]!r} is not a Hugging Face repository id (org/name).")
        return CheckedSource("hub", f"hub:{value}", None)
    if kind == "file":
        if not value.lower().endswith(".safetensors"):
            raise HubInputError("Single-file checkpoints must be .safetensors (pickle formats are refused).")
        path = _resolve_inside(value, allowed_roots)
        if not path.is_file() or path.suffix.lower() != ".safetensors":
            raise HubInputError("Single-file checkpoints must be a .safetensors file.")
        check_safetensors_file(path)
        return CheckedSource("file", f"file:{path}", file_sha256(path))
    if kind == "folder":
        path = _resolve_inside(value, allowed_roots)
        if not path.is_dir():
            raise HubInputError(f"{value!r} is not a folder.")
        if not (path / "model_index.json").is_file():
            raise HubInputError("A diffusers folder needs a model_index.json.")
        roots = [Path(r).resolve() for r in allowed_roots]
        files = [p for p in path.rglob("*") if p.is_file()]
        for file in files:
            real = file.resolve()
            if not any(root in real.parents for root in roots):
                raise HubInputError(f"{file.relative_to(path)} links outside the upload folder.")
        unsafe = sorted(str(f.relative_to(path)) for f in files if f.suffix.lower() in UNSAFE_WEIGHT_SUFFIXES)
        if unsafe:
            raise HubInputError(
                "Only .safetensors weights are accepted; found: " + ", ".join(unsafe[:5]) + ("..." if len(unsafe) > 5 else "")
            )
        weights = [f for f in files if f.suffix.lower() == ".safetensors"]
        if not weights:
            raise HubInputError("No .safetensors weights in that folder.")
        for weight in weights:
            check_safetensors_file(weight)
        return CheckedSource("folder", f"folder:{path}", None)
    raise HubInputError(f"Unknown source kind {kind[:20]!r}: use hub:, folder: or file:.")


def register_checkpoint(
    db: Database,
    checkpoint_id: str,
    source: str,
    family: str,
    *,
    families: Collection[str],
    display_name: str | None = None,
    allowed_roots: Sequence[Path] = (),
    revision: str | None = None,
    checked: CheckedSource | None = None,
    owner: str | None = None,
    approved: bool = True,
    quota: int | None = None,
) -> Checkpoint:
    """Register a new checkpoint (status 'registered'). Refuses duplicates of id, source or weights.
    `revision`: the commit a `hub:` source resolved to (its version from now on). `checked`: the
    caller's `check_source` result (not hashed twice). `owner` registers it; `approved=False` leaves it
    `pending` for a maintainer; `quota` (registrations a day) is spent from the owner's quota."""
    checkpoint_id = check_checkpoint_id(checkpoint_id)
    family = check_family(family, families)
    checked = checked or check_source(source, allowed_roots)
    name = check_display_name(display_name or "") or checkpoint_id
    try:
        with db.write_session() as session:
            if owner is not None and quota is not None:
                spend(session, owner, "register", 1, quota, target=checkpoint_id)
            if session.get(Checkpoint, checkpoint_id) is not None:
                raise HubInputError(f"Checkpoint id {checkpoint_id!r} is already registered.")
            same_source = session.execute(select(Checkpoint.id).where(Checkpoint.source == checked.source)).scalar()
            if same_source:
                raise HubInputError(f"That source is already registered as {same_source!r}.")
            if checked.sha256:
                same_weights = session.execute(select(Checkpoint.id).where(Checkpoint.sha256 == checked.sha256)).scalar()
                if same_weights:
                    raise HubInputError(f"The same weights are already registered as {same_weights!r}.")
            row = Checkpoint(
                id=checkpoint_id,
                display_name=name,
                family=family,
                source=checked.source,
                sha256=checked.sha256,
                revision=revision if checked.kind == "hub" else checked.sha256,
                is_demo=False,
                status="registered",
                owner=owner,
                approval="approved" if approved else "pending",
            )
            session.add(row)
    except IntegrityError:  # registered concurrently
        raise HubInputError(f"Checkpoint id {checkpoint_id!r} is already registered.") from None
    return row


def runs_table(db: Database, limit: int = 200, checkpoint_id: str | None = None) -> pd.DataFrame:
    """The newest runs; a running run taken over from a dead worker (or about to be) shows "resuming"."""
    columns = ["run", "checkpoint", "version", "suite", "adapters", "status", "generated", "reused", "created", "started",
               "finished", "error", "owner", "gpu_hours"]
    now = utcnow()
    with db.session() as session:
        query = select(EvalRun).order_by(EvalRun.id.desc()).limit(limit)
        if checkpoint_id:
            query = query.where(EvalRun.checkpoint_id == checkpoint_id)
        rows = [
            (r.id, r.checkpoint_id, (r.checkpoint_version or "")[:10], r.suite_name, r.adapters, shown_status(r, now),
             r.n_generated, r.n_reused, r.created_at, r.started_at, r.finished_at, without_paths(r.error or "")[:200], r.owner or "",
             round((r.gpu_seconds or 0.0) / 3600, 3))
            for r in session.execute(query).scalars()
        ]
    return pd.DataFrame(rows, columns=columns)


def checkpoints_table(db: Database) -> pd.DataFrame:
    """Every checkpoint a visitor may see (hidden ones left out), sources without server paths."""
    columns = ["checkpoint", "name", "family", "source", "version", "status", "approval", "demo", "registered"]
    with db.session() as session:
        rows = [
            (c.id, c.display_name, c.family, without_paths(c.source), (c.revision or c.sha256 or "")[:12], c.status, c.approval,
             c.is_demo, c.created_at)
            for c in session.execute(
                select(Checkpoint).where(Checkpoint.hidden.is_(False)).order_by(Checkpoint.created_at, Checkpoint.id)
            ).scalars()
        ]
    return pd.DataFrame(rows, columns=columns)
