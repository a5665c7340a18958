"""The eval runner: a run is planned once, then its missing samples generated, then scored.

- `evals.plan`: options -> `RunPlan` (checkpoint version, settings, judges, samples with seeds and keys);
- `evals.generate`: samples not stored yet, one transaction per batch (a killed run resumes);
- `evals.score`: scores not written yet (reused samples, paired metrics).

Runs are recorded through `leaderboards.queue` (the one queue and claim path): status running ->
complete | failed (with the error); a run is never marked complete when something failed, and a run
holds a lease its heartbeat renews, so a run whose worker died is taken over by another.
"""

from __future__ import annotations

import logging
import sys
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from core.settings import repo_path as resolve_path
from evals.distributed import DistributedGenerate
from evals.generate import generate_missing
from evals.plan import EvalError, RunOptions, RunPlan, build_plan, check_options
from evals.score import score_missing
from evals.suites import Suite, get_suite
from hub.checkpoints import native_size
from hub.config import CheckpointSpec, GenerationDefaults, load_config
from hub.demo_hooks import load_demo_hooks
from hub.engine import Engine
from hub.errors import HubInputError
from hub.families import FAMILIES
from leaderboards import queue
from leaderboards.db import init_db
from leaderboards.results import DatabaseRevisionStore, get_or_create_suite, upsert_checkpoint
from leaderboards.schema import Checkpoint, Prompt

log = logging.getLogger(__name__)

__all__ = ["EvalError", "EvalRunner", "RunOptions", "RunResult", "attach_registered_checkpoints", "build_runner"]


@dataclass
class RunResult:
    run_id: int
    status: str
    generated: int = 0
    reused: int = 0
    scored: int = 0
    unjudged: int = 0
    error: str | None = None

    def summary_line(self) -> str:
        return (f"generated={self.generated} reused={self.reused} scored={self.scored} unjudged={self.unjudged} "
                f"run_id={self.run_id} status={self.status}")


def _progress_bar(enabled: bool) -> Callable[[int, str], Any]:
    def make(total: int, desc: str) -> Any:
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=desc, unit="img", disable=not enabled or total == 0, file=sys.stderr,
                    dynamic_ncols=True, leave=False)

    return make


class _Heartbeat:
    """Renews a run's lease every lease/3 seconds while the run works (a background thread)."""

    def __init__(self, db: Any, run_id: int, worker_id: str, lease_seconds: float):
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, args=(db, run_id, worker_id, lease_seconds), daemon=True,
                                        name=f"lease-{run_id}")

    def _loop(self, db: Any, run_id: int, worker_id: str, lease_seconds: float) -> None:
        while not self._stop.wait(lease_seconds / 3):
            try:
                if not queue.renew_lease(db, run_id, worker_id, lease_seconds=lease_seconds):
                    log.warning("run %s: lease lost (taken over by another worker)", run_id)
                    return
            except Exception:  # noqa: BLE001 - a database hiccup: try again at the next beat
                log.exception("run %s: lease renewal failed", run_id)

    def __enter__(self) -> "_Heartbeat":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()


class EvalRunner:
    """Runs evals against one engine and one database. Runs keep their state to themselves, so one runner
    may execute two at once (a worker's main loop and its lease-watch takeover, `evals.worker`)."""

    def __init__(
        self,
        engine: Any,
        db: Any,
        config: Any,
        *,
        data_dir: str | Path | None = None,
        prompts_dir: str | Path | None = None,
        judge_device: Any = None,
        render_input: Callable[[dict[str, Any]], Image.Image] | None = None,
        worker_id: str | None = None,
        lease_seconds: float = queue.DEFAULT_LEASE_SECONDS,
        generate_step: Callable[..., tuple[int, int, int]] | None = None,
    ):
        self.engine = engine
        self.db = db
        self.config = config
        self.data_dir = Path(data_dir) if data_dir is not None else Path(config.data_path)
        self.prompts_dir = prompts_dir
        self.judge_device = judge_device
        self.render_input = render_input
        self.worker_id = worker_id or queue.new_worker_id()
        self.lease_seconds = lease_seconds
        # How missing samples get generated: `generate_missing` on this engine, or, when the engine is
        # served on Ray, `evals.distributed.DistributedGenerate` (shards over the replicas, one writer).
        self.generate_step = generate_step
        # Runs plan one at a time: planning imports and builds models (diffusers' lazy imports are not
        # thread-safe), and two runs may share this runner (a worker's takeover beside its main run).
        self._plan_lock = threading.Lock()

    def check(self, options: RunOptions) -> Suite:
        """Validate a run before anything is recorded: suite, languages, checkpoint, adapters."""
        return check_options(options, self.engine, self.prompts_dir)

    def queue(self, options: RunOptions, *, owner: str | None = None, quota_gpu_hours: float | None = None) -> int:
        """Record a queued run (the Submit tab, bootstrap runs); a worker executes it. Returns the run id.

        `owner` queued it; with `quota_gpu_hours`, its estimated GPU time (`estimated_gpu_seconds`) is
        spent from the owner's daily quota. A checkpoint waiting for approval is checked by its suite
        only (the engine does not know it yet), and its run waits in the queue until it is approved."""
        pending = self._pending_checkpoint(options.checkpoint)
        if pending:
            suite = get_suite(options.suite, self.prompts_dir)
            suite.check_languages(options.languages)
        else:
            suite = self.check(options)
            self._record_checkpoint(options.checkpoint)
        gpu_seconds = self.estimated_gpu_seconds(suite, options)
        return queue.queue_run(self.db, options.checkpoint, suite.name, adapters=options.adapter_string,
                               settings=options.as_settings(), owner=owner, gpu_seconds=gpu_seconds,
                               quota_seconds=None if quota_gpu_hours is None else quota_gpu_hours * 3600)

    def estimated_gpu_seconds(self, suite: Suite, options: RunOptions) -> float:
        """Images the run generates (prompt rows x seeds) x the configured GPU seconds per image."""
        rows = len(suite.rows(options.languages, options.limit))
        return float(rows * options.seeds * self.config.quotas.eval_gpu_seconds_per_image)

    def _pending_checkpoint(self, checkpoint_id: str) -> bool:
        with self.db.session() as session:
            row = session.get(Checkpoint, checkpoint_id)
        return row is not None and row.approval == "pending"

    def _record_checkpoint(self, checkpoint_id: str, version: str | None = None) -> None:
        spec = self.engine.checkpoint_spec(checkpoint_id)
        with self.db.write_session() as session:
            upsert_checkpoint(session, id=spec.id, display_name=spec.name, family=spec.family, source=spec.source,
                              is_demo=spec.is_demo, revision=version)

    def run(self, options: RunOptions, *, claimed: queue.ClaimedRun | None = None, progress: bool = True) -> RunResult:
        """Execute a run: a new one (recorded now), or one a worker claimed. Errors mark it failed and re-raise."""
        if claimed is None:
            suite = self.check(options)  # bad input: nothing recorded
            self._record_checkpoint(options.checkpoint)
            claimed = queue.start_run(self.db, options.checkpoint, suite.name, options.adapter_string, options.as_settings(),
                                      self.worker_id, self.lease_seconds)
        result = RunResult(run_id=claimed.id, status="running")
        try:
            with _Heartbeat(self.db, claimed.id, claimed.worker_id, self.lease_seconds):
                self._execute(options, result, progress)
        except BaseException as exc:  # KeyboardInterrupt too: never leave a run "running" by our own hand
            message = str(exc) if isinstance(exc, HubInputError) else f"{type(exc).__name__}: {exc}"
            if not isinstance(exc, HubInputError):
                log.error("eval run %s failed:\n%s", claimed.id, traceback.format_exc())
            result.status, result.error = "failed", message
            queue.finish_run(self.db, claimed.id, status="failed", error=message, worker_id=claimed.worker_id,
                             n_generated=result.generated,
                             n_reused=result.reused)
            raise
        result.status = "complete"
        if not queue.finish_run(self.db, claimed.id, status="complete", worker_id=claimed.worker_id,
                                n_generated=result.generated, n_reused=result.reused):
            log.warning("run %s finished here, but it was cancelled or taken over meanwhile: left as it is", claimed.id)
        return result

    def _generate_step(self) -> Callable[..., tuple[int, int, int]]:
        if self.generate_step is not None:
            return self.generate_step
        if getattr(self.engine, "backend", "local") == "ray":
            return DistributedGenerate(prompts_dir=self.prompts_dir, judge_device=self.judge_device)
        return generate_missing

    def plan(self, options: RunOptions) -> RunPlan:
        return build_plan(options, engine=self.engine, config=self.config, data_dir=self.data_dir,
                          prompts_dir=self.prompts_dir, judge_device=self.judge_device, render_input=self.render_input)

    def _execute(self, options: RunOptions, result: RunResult, progress: bool) -> None:
        with self._plan_lock:
            plan = self.plan(options)
            self._record_plan(plan, result.run_id)
        bar = _progress_bar(progress)

        def on_batch(generated: int, reused: int) -> None:
            result.generated, result.reused = generated, reused
            queue.update_run(self.db, result.run_id, n_generated=generated, n_reused=reused)

        generate = self._generate_step()
        result.generated, result.reused, result.scored = generate(
            plan, engine=self.engine, db=self.db, data_dir=self.data_dir, on_batch=on_batch, progress=bar)
        scored, result.unjudged = score_missing(plan, db=self.db, progress=bar)
        result.scored += scored

    def _record_plan(self, plan: RunPlan, run_id: int) -> None:
        """The suite's prompts, the checkpoint's version and what the run resolved, before any sample."""
        self._record_checkpoint(plan.checkpoint.id, plan.version if plan.checkpoint.source_kind == "hub" else None)
        suite = plan.suite
        with self.db.write_session() as session:
            suite_row = get_or_create_suite(
                session, suite.name, suite.version_hash,
                [{"item_id": r.item_id, "language": r.language, "text": r.text, "meta": _stored_meta(r.meta)} for r in suite.rows()],
            )
            plan.suite_id = int(suite_row.id)
            from sqlalchemy import select


            prompt_ids = {(item, lang): pid for pid, item, lang in session.execute(
                select(Prompt.id, Prompt.item_id, Prompt.language).where(Prompt.suite_id == plan.suite_id))}
        for sample in plan.samples:
            sample.prompt_id = prompt_ids.get((sample.row.item_id, sample.row.language))
        primary = plan.kind.primary_judge(plan.judges)
        queue.update_run(
            self.db, run_id,
            suite_id=plan.suite_id,
            judge_id=primary.info.id if primary else None,
            judge_version=primary.info.version if primary else None,
            settings_hash=plan.settings_hash,
            checkpoint_version=plan.version,
            settings={
                **plan.options.as_settings(),
                "kind": suite.kind,
                "languages_run": list(plan.languages),
                "suite_version": suite.version_hash,
                "checkpoint_version": plan.version,
                "judge_set": plan.kind.describe_judges(plan.judges),  # what decided (the requested ids stay in "judges")
                "generation": plan.settings,
                **({"skipped_cases": plan.skipped} if plan.skipped else {}),
            },
        )


def _stored_meta(meta: dict[str, Any]) -> dict[str, Any]:
    """Prompt meta kept in the database: what boards group by, not the name judge's candidate lists."""
    return {k: v for k, v in meta.items() if k not in ("names", "other_names", "distractors", "anchor_text")}


def attach_registered_checkpoints(engine: Any, db: Any) -> None:
    """Let the engine load checkpoints that model authors registered (Submit tab or CLI), and pin
    `hub:` checkpoints through the database (the revision lives on the checkpoint's row)."""
    def resolve(checkpoint_id: str) -> CheckpointSpec | None:
        with db.session() as session:
            row = session.get(Checkpoint, checkpoint_id)
            # Pending, rejected or hidden checkpoints are unknown to the engine: never loaded or listed.
            if (row is None or row.status == "retired" or row.family not in FAMILIES or row.approval != "approved"
                    or row.hidden):
                return None
            kind, _, value = row.source.partition(":")
            # Generate at the size the model was trained at (what diffusers itself would pick).
            size = native_size(resolve_path(value)) if kind == "folder" else None
            size = size or FAMILIES[row.family].native_size
            return CheckpointSpec(
                id=row.id,
                name=row.display_name or row.id,
                family=row.family,
                source=row.source,
                requires_gpu=kind == "hub",  # downloads happen on GPU deployments only
                description="Registered by a model author.",
                defaults=GenerationDefaults(width=size, height=size),
            )

    engine.checkpoint_resolver = resolve
    registry = getattr(engine, "registry", None)
    if registry is not None:
        registry.revision_store = DatabaseRevisionStore(db)
    with db.session() as session:
        registered = [row.id for row in session.query(Checkpoint.id).all()]
    known = {spec.id for spec in engine.checkpoint_specs()}
    for checkpoint_id in registered:
        if checkpoint_id not in known:
            engine.checkpoint_spec(checkpoint_id)  # resolved now, so pickers list it


def build_runner(config_path: str | None = None, db_url: str | None = None, engine: Any = None, **kwargs: Any) -> EvalRunner:
    """A runner wired to the hub config, the database (migrated), an engine (created if not given) and
    the demo world's renderer when the config names one."""
    config = load_config(config_path)
    db = init_db(db_url or config.resolved_database_url)
    if engine is None:
        engine = Engine(config)
    attach_registered_checkpoints(engine, db)
    kwargs.setdefault("render_input", load_demo_hooks(config).render_input)
    return EvalRunner(engine, db, config, **kwargs)
