"""The eval runner: suite -> generations (cached) -> judge scores -> database rows.

A sample is keyed by (checkpoint hash, adapters, prompt text, seed, settings); `samples.cache_key` is
UNIQUE, so a rerun generates nothing already stored and two runners can never duplicate a sample. Work
goes in batches: each batch's images are generated together (one batched engine call), written to
`<data_dir>/samples/`, and their sample and score rows are committed in one transaction — a run killed
midway loses at most the batch in flight and the next run continues from there.

Scoring is idempotent too: after generation, any planned sample that lacks one of the expected scores
(e.g. reused from a run judged by another judge, or the paired multilingual metrics that need the
English image) is scored, again one transaction per batch.

The run is recorded in `eval_runs` (status running -> complete | failed, with the error); a run is never
marked complete when something failed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
from sqlalchemy import select, update

from evals import character, edits, multilingual
from evals.judgeset import JudgeSet, load_judges
from evals.samples import SampleView, ScoreRow
from evals.suites import PromptRow, Suite, get_suite
from hub.errors import HubInputError

log = logging.getLogger(__name__)

DEFAULT_SEEDS = 2
DEFAULT_BATCH_SIZE = 4
SETTINGS_IGNORED = {"prompt", "seed", "batch", "checkpoint", "loras", "seeds"}


class EvalError(HubInputError):
    """An eval cannot run (unknown checkpoint, bad suite, judge failure); the message says why."""


@dataclass
class RunOptions:
    checkpoint: str
    suite: str
    adapters: tuple[tuple[str, float], ...] = ()
    seeds: int = DEFAULT_SEEDS
    limit: int | None = None
    languages: tuple[str, ...] | None = None
    judges: tuple[str, ...] = ()  # explicit judge ids (override config defaults per role)
    batch_size: int = DEFAULT_BATCH_SIZE
    overrides: dict[str, Any] = field(default_factory=dict)  # width/height/steps/cfg/sampler

    def as_settings(self) -> dict[str, Any]:
        return {
            "seeds": self.seeds,
            "limit": self.limit,
            "languages": list(self.languages) if self.languages else None,
            "judges": list(self.judges),
            "batch_size": self.batch_size,
            "overrides": dict(self.overrides),
        }

    @classmethod
    def from_run_row(cls, run: Any) -> "RunOptions":
        settings = dict(run.settings or {})
        return cls(
            checkpoint=run.checkpoint_id,
            suite=run.suite_name,
            adapters=parse_adapters(run.adapters or ""),
            seeds=int(settings.get("seeds") or DEFAULT_SEEDS),
            limit=settings.get("limit"),
            languages=tuple(settings["languages"]) if settings.get("languages") else None,
            judges=tuple(settings.get("judges") or ()),
            batch_size=int(settings.get("batch_size") or DEFAULT_BATCH_SIZE),
            overrides=dict(settings.get("overrides") or {}),
        )


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
        line = f"generated={self.generated} reused={self.reused} scored={self.scored} unjudged={self.unjudged} run_id={self.run_id} status={self.status}"
        return line


@dataclass
class PlannedSample:
    row: PromptRow
    seed: int
    cache_key: str
    settings_hash: str
    request: Any
    prompt_id: int | None = None
    extra_meta: dict[str, Any] = field(default_factory=dict)  # edit suites: the input image's path


# ------------------------------------------------------------------------------------- helpers


def canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def sha256(obj: Any) -> str:
    return hashlib.sha256(canonical(obj).encode("utf-8")).hexdigest()


def format_adapters(adapters: Iterable[tuple[str, float]]) -> str:
    """`id:weight,id:weight` in the order given (order can matter to the pipeline)."""
    return ",".join(f"{name}:{float(weight):g}" for name, weight in adapters)


def parse_adapters(text: str) -> tuple[tuple[str, float], ...]:
    out = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, weight = part.partition(":")
        try:
            out.append((name.strip(), float(weight) if weight else 1.0))
        except ValueError:
            raise EvalError(f"bad adapter weight in {part!r} (use id:weight)") from None
    return tuple(out)


def settings_for_key(settings: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in settings.items() if k not in SETTINGS_IGNORED}


def cache_key(checkpoint_hash: str, adapters: str, adapter_hashes: Sequence[str], prompt: str, seed: int, settings_hash: str) -> str:
    return sha256(
        {
            "checkpoint": checkpoint_hash,
            "adapters": adapters,
            "adapter_hashes": list(adapter_hashes),
            "prompt": prompt,
            "seed": int(seed),
            "settings": settings_hash,
        }
    )


def sample_path(data_dir: Path, checkpoint_id: str, key: str) -> Path:
    return data_dir / "samples" / checkpoint_id / key[:2] / f"{key}.png"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _progress(total: int, desc: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="img", disable=not enabled, file=sys.stderr, dynamic_ncols=True, leave=False)


# --------------------------------------------------------------------------------------- runner


class EvalRunner:
    """Runs evals against one engine and one database. Thread-compatible: one run at a time per runner."""

    def __init__(
        self,
        engine: Any,
        db: Any,
        config: Any,
        *,
        data_dir: str | Path | None = None,
        prompts_dir: str | Path | None = None,
        judge_device: Any = None,
        num_bootstrap: int = 1000,
    ):
        self.engine = engine
        self.db = db
        self.config = config
        self.data_dir = Path(data_dir) if data_dir is not None else Path(config.data_path)
        self.prompts_dir = prompts_dir
        self.judge_device = judge_device
        self.num_bootstrap = num_bootstrap

    # ---------------------------------------------------------------------------------- checks
    def check(self, options: RunOptions) -> Suite:
        """Validate a run before anything is recorded: suite, languages, checkpoint, adapters."""
        if options.seeds < 1:
            raise EvalError(f"seeds must be at least 1, got {options.seeds}")
        if options.limit is not None and options.limit < 1:
            raise EvalError(f"limit must be at least 1, got {options.limit}")
        if options.batch_size < 1:
            raise EvalError(f"batch size must be at least 1, got {options.batch_size}")
        suite = get_suite(options.suite, self.prompts_dir)
        suite.check_languages(options.languages)
        try:
            self.engine.checkpoint_spec(options.checkpoint)  # config, then authors' registrations
        except KeyError:
            known = [c.id for c in self.engine.checkpoint_specs()]
            raise EvalError(f"unknown checkpoint '{options.checkpoint}' (known: {', '.join(known) or 'none'})") from None
        available = getattr(self.engine, "spec", None)
        if callable(available):
            available(options.checkpoint)  # e.g. "needs a GPU; this machine has none": refused before recording
        lora_ids = {lora.id for lora in self.engine.lora_specs()}
        for name, _ in options.adapters:
            if name not in lora_ids:
                raise EvalError(f"unknown LoRA '{name}' (known: {', '.join(sorted(lora_ids)) or 'none'})")
        return suite

    # ------------------------------------------------------------------------------- recording
    def queue(self, options: RunOptions) -> int:
        """Record a queued run (the Submit tab); the worker executes it. Returns the run id."""
        from leaderboards.schema import EvalRun

        suite = self.check(options)
        with self.db.write_session() as session:
            self._ensure_checkpoint(session, options.checkpoint)
            run = EvalRun(
                checkpoint_id=options.checkpoint,
                suite_name=suite.name,
                adapters=format_adapters(options.adapters),
                settings=options.as_settings(),
                status="queued",
            )
            session.add(run)
            session.flush()
            return int(run.id)

    def _ensure_checkpoint(self, session: Any, checkpoint_id: str, digest: str | None = None) -> str | None:
        from leaderboards.results import upsert_checkpoint

        spec = self.engine.checkpoint_spec(checkpoint_id)
        upsert_checkpoint(
            session,
            id=spec.id,
            display_name=spec.name,
            family=spec.family,
            source=spec.source,
            sha256=digest,
            is_demo=bool(getattr(spec, "is_demo", False)),
        )
        return digest

    def _set_status(self, run_id: int, **values: Any) -> None:
        from leaderboards.schema import EvalRun

        with self.db.write_session() as session:
            session.execute(update(EvalRun).where(EvalRun.id == run_id).values(**values))

    # -------------------------------------------------------------------------------------- run
    def run(self, options: RunOptions, *, run_id: int | None = None, progress: bool = True) -> RunResult:
        """Execute a run (a new one, or the queued run `run_id`). Errors mark the run failed and re-raise."""
        from leaderboards.schema import EvalRun

        try:
            suite = self.check(options)
        except HubInputError as exc:
            if run_id is not None:
                self._set_status(run_id, status="failed", error=str(exc), finished_at=_now())
            raise
        if run_id is None:
            with self.db.write_session() as session:
                self._ensure_checkpoint(session, options.checkpoint)
                run = EvalRun(
                    checkpoint_id=options.checkpoint,
                    suite_name=suite.name,
                    adapters=format_adapters(options.adapters),
                    settings=options.as_settings(),
                    status="running",
                    started_at=_now(),
                )
                session.add(run)
                session.flush()
                run_id = int(run.id)
        else:
            self._set_status(run_id, status="running", started_at=_now(), error=None, finished_at=None)
        result = RunResult(run_id=run_id, status="running")
        try:
            self._execute(suite, options, result, progress)
        except BaseException as exc:  # KeyboardInterrupt too: never leave a run "running" by our own hand
            message = str(exc) if isinstance(exc, HubInputError) else f"{type(exc).__name__}: {exc}"
            if not isinstance(exc, HubInputError):
                log.error("eval run %s failed:\n%s", run_id, traceback.format_exc())
            result.status, result.error = "failed", message
            self._set_status(
                run_id,
                status="failed",
                error=message[:4000],
                n_generated=result.generated,
                n_reused=result.reused,
                finished_at=_now(),
            )
            raise
        result.status = "complete"
        self._set_status(run_id, status="complete", n_generated=result.generated, n_reused=result.reused, finished_at=_now())
        return result

    def _roles(self, suite: Suite) -> list[str]:
        if suite.kind in ("character_recognition", "edit"):
            return ["tagger", "reference"]
        return ["tagger", "image_text"]

    def _execute(self, suite: Suite, options: RunOptions, result: RunResult, progress: bool) -> None:
        from leaderboards.results import get_or_create_suite
        from leaderboards.schema import EvalRun

        try:
            judges = load_judges(
                self.config,
                self._roles(suite),
                data_dir=self.data_dir,
                explicit=options.judges,
                device=self.judge_device,
                prompts_dir=self.prompts_dir,
            )
        except HubInputError:
            raise
        except Exception as exc:
            raise EvalError(f"a judge failed to load ({type(exc).__name__}: {exc})") from exc
        if judges.tagger is None and judges.alignment is None and judges.reference is None:
            raise EvalError("no judge is configured for this suite (add a tagger to `judges` in the config)")

        languages = suite.check_languages(options.languages)
        if suite.kind == "multilingual_fidelity" and suite.anchor_language not in languages:
            # Paired metrics need the anchor-language image of every scene and seed.
            languages = (suite.anchor_language,) + tuple(languages)
        rows = suite.rows(languages, options.limit)
        anchor_text = {}
        if suite.kind == "multilingual_fidelity":
            anchor_text = {s.id: s.texts[suite.anchor_language] for s in suite.scenes}

        # Hash the weights before taking the write lock: the first hash of a large checkpoint takes a while.
        checkpoint_hash = self.engine.checkpoint_hash(options.checkpoint) or ""
        with self.db.write_session() as session:
            self._ensure_checkpoint(session, options.checkpoint, checkpoint_hash)
            suite_row = get_or_create_suite(
                session,
                suite.name,
                suite.version_hash,
                [{"item_id": r.item_id, "language": r.language, "text": r.text, "meta": r.meta} for r in suite.rows()],
            )
            suite_id = int(suite_row.id)
            prompt_ids = self._prompt_ids(session, suite_id)

        skipped: list[str] = []
        if suite.kind == "edit":
            judges = edits.EditJudges.build(judges, suite)
            plan = self._plan_edits(suite, options, rows, checkpoint_hash, prompt_ids, skipped)
        else:
            plan = self._plan(suite, options, rows, checkpoint_hash, prompt_ids)
        primary = judges.tagger if suite.kind in ("character_recognition", "edit") else (judges.alignment or judges.tagger)
        settings_hash = plan[0].settings_hash if plan else None
        with self.db.write_session() as session:
            session.execute(
                update(EvalRun)
                .where(EvalRun.id == result.run_id)
                .values(
                    suite_id=suite_id,
                    judge_id=primary.info.id if primary else None,
                    judge_version=primary.info.version if primary else None,
                    settings_hash=settings_hash,
                    settings={
                        **options.as_settings(),
                        "kind": suite.kind,
                        "languages_run": list(languages),
                        "suite_version": suite.version_hash,
                        "checkpoint_hash": checkpoint_hash,
                        "judges": judges.describe(),
                        "generation": settings_for_key(self._resolved_settings(plan[0].request)) if plan else {},
                        **({"skipped_cases": skipped} if skipped else {}),
                    },
                )
            )

        scorer = {"character_recognition": character, "edit": edits}.get(suite.kind, multilingual)
        self._generate_missing(plan, options, suite_id, judges, scorer, anchor_text, result, progress)
        self._score_missing(plan, options, suite, judges, scorer, anchor_text, result, progress)

    # ---------------------------------------------------------------------------------- planning
    def _prompt_ids(self, session: Any, suite_id: int) -> dict[tuple[str, str], int]:
        from leaderboards.schema import Prompt

        return {
            (item, lang): pid
            for pid, item, lang in session.execute(
                select(Prompt.id, Prompt.item_id, Prompt.language).where(Prompt.suite_id == suite_id)
            )
        }

    def _resolved_settings(self, request: Any) -> dict[str, Any]:
        from hub.engine import EditRequest

        if isinstance(request, EditRequest):
            return self._edit_settings(request)
        settings = self.engine.resolve_settings(request)
        return dict(settings) if isinstance(settings, dict) else dict(vars(settings))

    def _plan(self, suite: Suite, options: RunOptions, rows: Sequence[PromptRow], checkpoint_hash: str, prompt_ids: dict) -> list[PlannedSample]:
        from hub.engine import GenerationRequest

        adapters = format_adapters(options.adapters)
        lora_hash = getattr(self.engine, "lora_hash", None)
        adapter_hashes = [lora_hash(name) if callable(lora_hash) else "" for name, _ in options.adapters]
        plan: list[PlannedSample] = []
        settings_cache: dict[str, str] = {}
        for seed in range(options.seeds):
            for row in rows:
                request = GenerationRequest(
                    prompt=row.text,
                    negative_prompt=suite.negative_prompt,
                    checkpoint=options.checkpoint,
                    loras=tuple(options.adapters),
                    seed=seed,
                    batch=1,
                    **options.overrides,
                )
                # Settings don't depend on the prompt text or seed; resolve once per distinct request shape.
                shape = canonical({k: v for k, v in vars(request).items() if k not in ("prompt", "seed")}) if hasattr(request, "__dict__") else ""
                if shape not in settings_cache:
                    settings_cache[shape] = sha256(settings_for_key(self._resolved_settings(request)))
                s_hash = settings_cache[shape]
                key = cache_key(checkpoint_hash, adapters, adapter_hashes, row.text, seed, s_hash)
                plan.append(PlannedSample(row, seed, key, s_hash, request, prompt_ids.get((row.item_id, row.language))))
        return plan

    def _edit_settings(self, request: Any) -> dict[str, Any]:
        """Settings shared by every case of an edit run (per-case task and size follow from the input,
        which is in the cache key): what the engine resolves, plus the suite's strength/image guidance."""
        job = self.engine.resolve_edit(request)
        return {
            "kind": "edit",
            "steps": job.steps,
            "cfg": job.cfg,
            "sampler": job.sampler,
            "negative_prompt": job.negative_prompt,
            "strength": request.strength,
            "image_guidance": request.image_guidance,
        }

    def _plan_edits(self, suite: Suite, options: RunOptions, rows: Sequence[PromptRow], checkpoint_hash: str,
                    prompt_ids: dict, skipped: list[str]) -> list[PlannedSample]:
        """One edit per (case, language, seed). Inputs are made (rendered / generated) once and cached;
        cases the checkpoint's family cannot run (a mask for an instruct-only model) are skipped."""
        from pathlib import Path as _Path

        from hub.engine import EditRequest
        from hub.families import get_family

        from evals.suites import get_registry

        family = get_family(self.engine.checkpoint_spec(options.checkpoint).family)
        prompts_dir = _Path(get_registry(self.prompts_dir).prompts_dir)
        adapters = format_adapters(options.adapters)
        lora_hash = getattr(self.engine, "lora_hash", None)
        adapter_hashes = [lora_hash(name) if callable(lora_hash) else "" for name, _ in options.adapters]
        overrides = {k: v for k, v in options.overrides.items() if k in ("steps", "cfg", "sampler")}
        inputs: dict[str, tuple[Any, Any, str, str]] = {}
        plan: list[PlannedSample] = []
        s_hash = None
        for row in rows:
            if row.item_id in inputs or row.item_id in skipped:
                continue
            if row.meta.get("mask") and not family.supports("inpaint"):
                skipped.append(row.item_id)
                continue
            if not row.meta.get("mask") and not (family.supports("instruct") or family.supports("img2img")):
                skipped.append(row.item_id)
                continue
            path, digest = edits.prepare_input(row.meta["input"], engine=self.engine, data_dir=self.data_dir, prompts_dir=prompts_dir)
            image = edits.load_input(path)
            mask = edits.mask_image(image.size, row.meta["mask"]) if row.meta.get("mask") else None
            inputs[row.item_id] = (image, mask, str(path.resolve()), digest)
        for seed in range(options.seeds):
            for row in rows:
                if row.item_id not in inputs:
                    continue
                image, mask, path, digest = inputs[row.item_id]
                request = EditRequest(
                    image=image,
                    prompt=row.text,
                    mask=mask,
                    strength=suite.edit_settings.get("strength", edits.DEFAULT_STRENGTH),
                    image_guidance=suite.edit_settings.get("image_guidance", edits.DEFAULT_IMAGE_GUIDANCE),
                    negative_prompt=suite.negative_prompt,
                    checkpoint=options.checkpoint,
                    loras=tuple(options.adapters),
                    seed=seed,
                    **overrides,
                )
                if s_hash is None:
                    s_hash = sha256(settings_for_key(self._edit_settings(request)))
                # The same instruction on another input is another sample: the input's digest is in the key.
                keyed_text = f"{row.text}\n[input {digest}]" + (f"[mask {row.meta['mask']}]" if mask is not None else "")
                key = cache_key(checkpoint_hash, adapters, adapter_hashes, keyed_text, seed, s_hash)
                plan.append(PlannedSample(row, seed, key, s_hash, request, prompt_ids.get((row.item_id, row.language)),
                                          {"input_path": path}))
        return plan

    # -------------------------------------------------------------------------------- generation
    def _existing(self, keys: Sequence[str]) -> dict[str, Any]:
        from leaderboards.schema import Sample

        found: dict[str, Any] = {}
        with self.db.session() as session:
            for start in range(0, len(keys), 500):
                chunk = list(keys[start : start + 500])
                for sample in session.execute(select(Sample).where(Sample.cache_key.in_(chunk))).scalars():
                    found[sample.cache_key] = sample
        return found

    def _generate_missing(self, plan, options, suite_id, judges, scorer, anchor_text, result, progress) -> None:
        from hub.recipe import save_png
        from leaderboards.results import insert_ignore
        from leaderboards.schema import EvalRun, Sample, Score

        existing = self._existing([p.cache_key for p in plan])
        todo = [p for p in plan if p.cache_key not in existing]
        result.reused = len(plan) - len(todo)
        # Several languages of one prompt text can coincide (same name in en and es): generate once.
        unique: dict[str, PlannedSample] = {}
        for p in todo:
            unique.setdefault(p.cache_key, p)
        todo = list(unique.values())
        adapters = format_adapters(options.adapters)
        bar = _progress(len(todo), f"generate {options.checkpoint}", progress)
        try:
            for start in range(0, len(todo), options.batch_size):
                batch = todo[start : start + options.batch_size]
                if suite_kind_is_edit(batch):
                    outputs = [self.engine.edit(p.request) for p in batch]
                else:
                    outputs = self.engine.generate_many([p.request for p in batch])
                records, views = [], []
                for p, out in zip(batch, outputs):
                    image = out[0] if isinstance(out, (list, tuple)) else out
                    path = sample_path(self.data_dir, options.checkpoint, p.cache_key)
                    path.parent.mkdir(parents=True, exist_ok=True)
                    tmp = path.with_suffix(".tmp.png")
                    save_png(image.image, image.recipe, tmp)
                    tmp.replace(path)  # a killed run never leaves a half-written PNG under the final name
                    records.append(
                        {
                            "cache_key": p.cache_key,
                            "checkpoint_id": options.checkpoint,
                            "adapters": adapters,
                            "suite_id": suite_id,
                            "prompt_id": p.prompt_id,
                            "item_id": p.row.item_id,
                            "language": p.row.language,
                            "prompt_text": p.row.text,
                            "seed": p.seed,
                            "settings_hash": p.settings_hash,
                            "image_path": str(path.resolve()),
                        }
                    )
                    views.append((p, image.image))
                # Judge before the transaction (the write lock is held only for the inserts); the
                # scores carry each sample's position in the batch until its row id is known.
                samples = [
                    SampleView(i, p.row.item_id, p.row.language, p.seed, p.row.text, "", self._meta(p, anchor_text), img)
                    for i, (p, img) in enumerate(views)
                ]
                scores = scorer.score_samples(samples, judges)
                with self.db.write_session() as session:
                    insert_ignore(session, Sample.__table__, records, ["cache_key"])
                    ids = dict(
                        session.execute(
                            select(Sample.cache_key, Sample.id).where(Sample.cache_key.in_([r["cache_key"] for r in records]))
                        ).all()
                    )
                    rows = [{**s.as_dict(), "sample_id": ids[views[s.sample_id][0].cache_key]} for s in scores]
                    insert_ignore(session, Score.__table__, rows, ["sample_id", "judge_id", "metric"])
                    session.execute(
                        update(EvalRun)
                        .where(EvalRun.id == result.run_id)
                        .values(n_generated=result.generated + len(batch), n_reused=result.reused)
                    )
                result.generated += len(batch)
                result.scored += len(scores)
                bar.update(len(batch))
        finally:
            bar.close()

    @staticmethod
    def _meta(p: PlannedSample, anchor_text: dict[str, str]) -> dict[str, Any]:
        meta = {**p.row.meta, **p.extra_meta}
        if p.row.item_id in anchor_text:
            meta["anchor_text"] = anchor_text[p.row.item_id]
        return meta

    # ----------------------------------------------------------------------------------- scoring
    def _score_missing(self, plan, options, suite, judges, scorer, anchor_text, result, progress) -> None:
        stored = self._existing([p.cache_key for p in plan])
        views: dict[str, SampleView] = {}
        for p in plan:
            s = stored.get(p.cache_key)
            if s is None:
                raise EvalError(f"sample {p.cache_key[:12]} missing after generation")
            # One view per (sample, item, language): the same image can serve two languages' prompts.
            views[f"{s.id}|{p.row.item_id}|{p.row.language}"] = SampleView(
                s.id, p.row.item_id, p.row.language, p.seed, p.row.text, s.image_path, self._meta(p, anchor_text)
            )
        all_views = list(views.values())
        have = self._have_scores([v.id for v in all_views])

        # Per-sample scores that are missing (reused samples judged by another judge, earlier crashes).
        if suite.kind == "character_recognition":
            missing = [v for v in all_views if any((v.id, j, m) not in have for j, m in character.expected_metrics(v, judges))]
            result.unjudged = len({v.id for v in all_views if character.judge_for(v, judges) is None})
        elif suite.kind == "edit":
            missing = [v for v in all_views if any((v.id, j, m) not in have for j, m in edits.expected_metrics(v, judges))]
            result.unjudged = len({v.id for v in all_views if not any(judges.tagger.has_tag(t) for t in v.meta.get("expect_tags", []))})
        else:
            wanted = multilingual.per_sample_metrics(judges)
            missing = [v for v in all_views if any((v.id, j, m) not in have for j, m in wanted)]
        missing = list({v.id: v for v in missing}.values())
        bar = _progress(len(missing), "score", progress and bool(missing))
        try:
            for start in range(0, len(missing), max(options.batch_size, 16)):
                batch = missing[start : start + max(options.batch_size, 16)]
                rows = scorer.score_samples(batch, judges)
                self._write_scores(rows)
                result.scored += len(rows)
                for v in batch:
                    v.image = None  # free memory
                bar.update(len(batch))
        finally:
            bar.close()

        if suite.kind == "multilingual_fidelity":
            self._score_pairs(all_views, suite, judges, result, options, progress)

    def _have_scores(self, sample_ids: Sequence[int]) -> set[tuple[int, str, str]]:
        from leaderboards.schema import Score

        have: set[tuple[int, str, str]] = set()
        ids = sorted(set(sample_ids))
        with self.db.session() as session:
            for start in range(0, len(ids), 500):
                for sid, jid, metric in session.execute(
                    select(Score.sample_id, Score.judge_id, Score.metric).where(Score.sample_id.in_(ids[start : start + 500]))
                ):
                    have.add((sid, jid, metric))
        return have

    def _score_values(self, sample_ids: Sequence[int], judge_id: str, metric: str) -> dict[int, float]:
        from leaderboards.schema import Score

        out: dict[int, float] = {}
        ids = sorted(set(sample_ids))
        with self.db.session() as session:
            for start in range(0, len(ids), 500):
                for sid, value in session.execute(
                    select(Score.sample_id, Score.value).where(
                        Score.sample_id.in_(ids[start : start + 500]), Score.judge_id == judge_id, Score.metric == metric
                    )
                ):
                    out[sid] = value
        return out

    def _write_scores(self, rows: Sequence[ScoreRow]) -> None:
        from leaderboards.results import insert_ignore
        from leaderboards.schema import Score

        if not rows:
            return
        with self.db.write_session() as session:
            insert_ignore(session, Score.__table__, [r.as_dict() for r in rows], ["sample_id", "judge_id", "metric"])

    def _score_pairs(self, views: Sequence[SampleView], suite: Suite, judges: JudgeSet, result: RunResult, options: RunOptions, progress: bool) -> None:
        anchor_lang = suite.anchor_language
        anchors = {(v.item_id, v.seed): v for v in views if v.language == anchor_lang}
        pairs = [(v, anchors[(v.item_id, v.seed)]) for v in views if (v.item_id, v.seed) in anchors]
        wanted = multilingual.paired_metrics(judges)
        have = self._have_scores([v.id for v, _ in pairs])
        todo = [(v, a) for v, a in pairs if any((v.id, j, m) not in have for j, m in wanted)]
        if not todo:
            return
        align = judges.alignment
        anchor_scores = (
            self._score_values([x.id for pair in todo for x in pair], align.info.id, multilingual.ANCHOR_SCORE) if align else {}
        )
        embedder = judges.embedder
        need_embed = sorted({x.id: x for pair in todo for x in pair}.values(), key=lambda v: v.id)
        bar = _progress(len(todo), "paired metrics", progress)
        embeddings: dict[int, np.ndarray] = {}
        try:
            step = max(options.batch_size, 16)
            if embedder is not None:
                for start in range(0, len(need_embed), step):
                    chunk = need_embed[start : start + step]
                    vectors = embedder.image_embeddings([v.load() for v in chunk])
                    for v, vec in zip(chunk, vectors):
                        embeddings[v.id] = vec
                        v.image = None
            for start in range(0, len(todo), step):
                chunk = todo[start : start + step]
                rows = multilingual.paired_rows(chunk, anchor_scores, embeddings, judges)
                self._write_scores(rows)
                result.scored += len(rows)
                bar.update(len(chunk))
        finally:
            bar.close()


def attach_registered_checkpoints(engine: Any, db: Any) -> None:
    """Let the engine load checkpoints that model authors registered (Submit tab or CLI).

    They live in the database, not the config; the engine asks only for ids it does not know."""
    from hub.checkpoints import native_size
    from hub.config import CheckpointSpec, GenerationDefaults, resolve_path
    from leaderboards.schema import Checkpoint

    def resolve(checkpoint_id: str) -> CheckpointSpec | None:
        with db.session() as session:
            row = session.get(Checkpoint, checkpoint_id)
            if row is None or row.status == "retired":
                return None
            kind, _, value = row.source.partition(":")
            # Generate at the size the model was trained at (what diffusers itself would pick).
            size = native_size(resolve_path(value)) if kind == "folder" else None
            size = size or (1024 if row.family in ("sdxl", "flux2-klein", "z-image", "qwen-image-edit") else 512)
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
    with db.session() as session:
        registered = [row.id for row in session.query(Checkpoint.id).all()]
    known = {spec.id for spec in engine.checkpoint_specs()}
    for checkpoint_id in registered:
        if checkpoint_id not in known:
            engine.checkpoint_spec(checkpoint_id)  # resolved now, so pickers list it


def suite_kind_is_edit(batch: Sequence[PlannedSample]) -> bool:
    from hub.engine import EditRequest

    return bool(batch) and isinstance(batch[0].request, EditRequest)


def build_runner(config_path: str | None = None, db_url: str | None = None, engine: Any = None, **kwargs: Any) -> EvalRunner:
    """A runner wired to the hub config, the database (migrated) and an engine (created if not given)."""
    from hub.config import load_config
    from leaderboards.db import init_db

    config = load_config(config_path)
    db = init_db(db_url or config.resolved_database_url)
    if engine is None:
        from hub.engine import Engine

        engine = Engine(config)
    attach_registered_checkpoints(engine, db)
    return EvalRunner(engine, db, config, **kwargs)
