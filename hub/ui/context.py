"""What every tab needs: the config, the one engine, the database, and where files go."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from hub.config import HubConfig
from hub.engine import Engine, GeneratedImage, get_engine
from hub.recipe import save_png
from leaderboards.db import Database

log = logging.getLogger(__name__)


@dataclass
class HubContext:
    config: HubConfig
    engine: Engine
    db: Database
    eval_worker: Any = None  # evals.worker.EvalWorker: runs the eval runs queued from the Submit tab

    @property
    def data_dir(self) -> Path:
        return self.config.data_path

    def save_outputs(self, images: list[GeneratedImage], folder: str = "outputs") -> list[str]:
        """Write images as PNGs with their recipes, under random names; return the paths."""
        day = datetime.now(timezone.utc).strftime("%Y-%m-%d")
        paths = []
        for item in images:
            path = self.data_dir / folder / day / f"{uuid.uuid4().hex}.png"
            save_png(item.image, item.recipe, path)
            paths.append(str(path))
        return paths


def sync_checkpoints(ctx: HubContext) -> None:
    """Every configured checkpoint is on record in the database (never deleted)."""
    from leaderboards.results import upsert_checkpoint

    status = ctx.engine.availability()
    with ctx.db.write_session() as session:
        for spec in ctx.config.checkpoints:  # authors' registrations are already on record
            upsert_checkpoint(
                session,
                spec.id,
                display_name=spec.name,
                family=spec.family,
                source=spec.source,
                sha256=None,
                is_demo=spec.is_demo,
                status="available" if status[spec.id].available else "registered",
            )


def start_eval_worker(ctx: HubContext) -> None:
    """One eval worker per process; queued runs live in the database and survive restarts."""
    from evals.runner import EvalRunner
    from evals.worker import EvalWorker

    # With several replicas on one PostgreSQL database a 'running' run may belong to a live
    # replica, so only a single-process SQLite hub puts stale runs back in the queue.
    ctx.eval_worker = EvalWorker(EvalRunner(ctx.engine, ctx.db, ctx.config), requeue_stale=ctx.db.is_sqlite).start()


def create_context(
    config: HubConfig, engine: Engine | None = None, db: Database | None = None, start_worker: bool = True
) -> HubContext:
    """Build the engine, open (creating or upgrading) the database, start the eval worker."""
    config.data_path.mkdir(parents=True, exist_ok=True)
    ctx = HubContext(
        config=config,
        engine=engine or get_engine(config),
        db=db or Database(config.resolved_database_url, migrate=True),
    )
    from evals.runner import attach_registered_checkpoints

    attach_registered_checkpoints(ctx.engine, ctx.db)
    try:
        sync_checkpoints(ctx)
    except Exception:  # noqa: BLE001 - the hub still serves generation if the records lag
        log.exception("could not record the configured checkpoints")
    if start_worker:
        start_eval_worker(ctx)
    return ctx
