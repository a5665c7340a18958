"""What every tab needs: the config, the one engine, the database, where files go, the demo hooks."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from PIL import Image

from core.keys import parse_adapters
from evals.plan import RunOptions
from evals.runner import EvalRunner, attach_registered_checkpoints
from evals.worker import EvalWorker
from hub.config import HubConfig
from hub.demo_hooks import DemoHooks, load_demo_hooks
from hub.engine import Engine, GeneratedImage
from hub.engines import get_engine
from hub.recipe import save_png
from hub.ui.cancel import RunningCalls
from hub.ui.content_filter import ContentFilter
from leaderboards.arena_cleanup import start_cleanup_thread
from leaderboards.db import Database
from leaderboards.results import upsert_checkpoint
from leaderboards.schema import EvalRun

log = logging.getLogger(__name__)


@dataclass
class HubContext:
    config: HubConfig
    engine: Engine
    db: Database
    demo: DemoHooks = DemoHooks()
    # A random demo portrait and an instruction for it (the arena's "random demo portrait"); None
    # without a demo world.
    demo_portrait: Callable[[], tuple[Image.Image, str]] | None = None
    eval_worker: Any = None  # evals.worker.EvalWorker: runs queued eval runs (Submit tab, bootstrap runs)
    cleanup_thread: Any = None  # deletes the images of expired, unvoted battles
    # The content filter (hub/ui/content_filter.py): prompt blocklist and the rating of every output.
    content_filter: Any = None
    # The arena's hook: an image -> the reason it is withheld, or None (the filter's `is_withheld`).
    is_withheld: Callable[[Image.Image], str | None] | None = None
    # Engine calls in flight from the page, for Stop buttons and disconnects (hub/ui/cancel.py).
    calls: RunningCalls = field(default_factory=RunningCalls)
    probe: Any = None  # evals.probe.ProbeContext, made by the Who-can-draw tab (it keeps the loaded judges)

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
    status = ctx.engine.availability()
    with ctx.db.write_session() as session:
        for spec in ctx.config.checkpoints:  # authors' registrations are already on record
            upsert_checkpoint(
                session, spec.id, display_name=spec.name, family=spec.family, source=spec.source, is_demo=spec.is_demo,
                status="available" if status[spec.id].available else "registered",
            )


def make_runner(ctx: HubContext) -> Any:
    return EvalRunner(ctx.engine, ctx.db, ctx.config, render_input=ctx.demo.render_input)


def queue_bootstrap_evals(ctx: HubContext) -> list[int]:
    """On a fresh database (no eval run ever recorded), queue `bootstrap_evals` so the boards fill from
    the first start; a run a checkpoint cannot do here (e.g. it needs a GPU) is skipped with a log line."""
    from sqlalchemy import func, select


    if not ctx.config.bootstrap_evals:
        return []
    with ctx.db.session() as session:
        if session.execute(select(func.count()).select_from(EvalRun)).scalar_one():
            return []
    runner = make_runner(ctx)
    queued = []
    for item in ctx.config.bootstrap_evals:
        options = RunOptions(checkpoint=item.checkpoint, suite=item.suite, seeds=item.seeds, adapters=parse_adapters(item.adapters),
                             limit=item.limit, languages=tuple(item.languages) if item.languages else None)
        try:
            queued.append(runner.queue(options))
        except Exception as err:  # noqa: BLE001 - one impossible bootstrap run must not stop the hub
            log.warning("bootstrap eval %s on %s not queued: %s", item.checkpoint, item.suite, err)
    return queued


def start_eval_worker(ctx: HubContext) -> None:
    """One eval worker per process; queued runs live in the database and survive restarts."""
    ctx.eval_worker = EvalWorker(make_runner(ctx)).start()


def create_context(
    config: HubConfig, engine: Engine | None = None, db: Database | None = None, start_worker: bool = True
) -> HubContext:
    """Build the engine, open (creating or upgrading) the database, queue the bootstrap evals on a fresh
    database, start the eval worker."""
    config.data_path.mkdir(parents=True, exist_ok=True)
    ctx = HubContext(
        config=config,
        engine=engine or get_engine(config),
        db=db or Database(config.resolved_database_url, migrate=True),
        demo=load_demo_hooks(config),
    )

    ctx.content_filter = ContentFilter(config, ctx.data_dir)
    ctx.is_withheld = ctx.content_filter.is_withheld  # None for every image while the filter is off
    if ctx.demo.random_portrait is not None:
        hook = ctx.demo.random_portrait
        ctx.demo_portrait = lambda: hook(None)

    attach_registered_checkpoints(ctx.engine, ctx.db)
    try:
        sync_checkpoints(ctx)
    except Exception:  # noqa: BLE001 - the hub still serves generation if the records lag
        log.exception("could not record the configured checkpoints")
    if start_worker:
        queue_bootstrap_evals(ctx)
        start_eval_worker(ctx)

    ctx.cleanup_thread = start_cleanup_thread(ctx.db, ctx.data_dir, interval_s=600)
    return ctx


def close_context(ctx: HubContext) -> None:
    """Stop the background threads and release the engine and the database (tests, tools)."""
    for thread in (ctx.eval_worker, ctx.cleanup_thread):
        if thread is not None:
            thread.stop()
    ctx.engine.shutdown()
    ctx.db.dispose()
