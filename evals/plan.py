"""A run resolved once into a plan: checkpoint and its version, adapters, settings, judges, samples.

The later steps (`evals.generate`, `evals.score`) only read the plan; nothing is resolved twice.

Seeds. Each item's seeds derive from (suite, item, seed index) (`item_seed`), the same in every language
so that language gaps stay paired, and different between items, so one unlucky noise draw cannot move a
whole board (see `leaderboards.intervals` for how the intervals then carry seed variation).

Cache keys. A sample is keyed by (checkpoint version, adapters and their weights' hashes, the text the
kind keys on — the prompt, plus input digests for edits —, seed, settings hash); `samples.cache_key` is
UNIQUE, so a rerun generates nothing already stored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from PIL import Image

from core.keys import format_adapters, parse_adapters, sha256_hex
from evals.judgeset import JudgeSet, load_judges
from evals.kinds.base import PlanContext, SuiteKind
from evals.suites import PromptRow, Suite, SuiteError, get_registry, get_suite
from hub.errors import HubInputError
from hub.families import get_family

DEFAULT_SEEDS = 2
DEFAULT_BATCH_SIZE = 4
MAX_SEED = 2**31 - 1


class EvalError(HubInputError):
    """An eval cannot run (unknown checkpoint, bad suite, judge failure); the message says why."""


@dataclass
class RunOptions:
    """What a requester chooses for a run (stored in `eval_runs.settings`)."""

    checkpoint: str
    suite: str
    adapters: tuple[tuple[str, float], ...] = ()
    seeds: int = DEFAULT_SEEDS
    limit: int | None = None
    languages: tuple[str, ...] | None = None
    judges: tuple[str, ...] = ()  # explicit judge ids (override config defaults per role)
    batch_size: int = DEFAULT_BATCH_SIZE
    overrides: dict[str, Any] = field(default_factory=dict)  # width/height/steps/cfg/sampler

    @property
    def adapter_string(self) -> str:
        return format_adapters(self.adapters)

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
    def from_run(cls, checkpoint: str, suite: str, adapters: str, settings: dict[str, Any]) -> "RunOptions":
        return cls(
            checkpoint=checkpoint,
            suite=suite,
            adapters=parse_adapters(adapters or ""),
            seeds=int(settings.get("seeds") or DEFAULT_SEEDS),
            limit=settings.get("limit"),
            languages=tuple(settings["languages"]) if settings.get("languages") else None,
            judges=tuple(settings.get("judges") or ()),
            batch_size=int(settings.get("batch_size") or DEFAULT_BATCH_SIZE),
            overrides=dict(settings.get("overrides") or {}),
        )


@dataclass
class PlannedSample:
    row: PromptRow
    seed: int
    cache_key: str
    request: Any
    prompt_id: int | None = None
    meta: dict[str, Any] = field(default_factory=dict)  # extra sample meta (e.g. the input's path)


@dataclass
class RunPlan:
    options: RunOptions
    suite: Suite
    kind: SuiteKind
    checkpoint: Any  # CheckpointSpec
    version: str  # pinned revision or weights hash
    adapters: str  # canonical adapter string
    languages: tuple[str, ...]
    samples: list[PlannedSample]
    settings: dict[str, Any]  # the resolved generation settings shared by the samples
    settings_hash: str
    judge_set: JudgeSet
    judges: Any  # what the kind scores with
    skipped: list[str]
    suite_id: int = 0

    def meta(self, sample: PlannedSample) -> dict[str, Any]:
        return {**sample.row.meta, **sample.meta}


def item_seed(suite: str, item_id: str, index: int) -> int:
    """The seed of an item's `index`-th sample: fixed by (suite, item, index), shared by all languages."""
    return int(sha256_hex(f"seed/{suite}/{item_id}/{index}")[:8], 16) & MAX_SEED


def cache_key(version: str, adapters: str, adapter_hashes: list[str], text: str, seed: int, settings_hash: str) -> str:
    return sha256_hex({"checkpoint": version, "adapters": adapters, "adapter_hashes": adapter_hashes,
                       "prompt": text, "seed": int(seed), "settings": settings_hash})


def check_options(options: RunOptions, engine: Any, prompts_dir: Any = None) -> Suite:
    """Validate a run before anything is recorded or loaded: numbers, suite, languages, checkpoint, LoRAs."""
    if options.seeds < 1:
        raise EvalError(f"seeds must be at least 1, got {options.seeds}")
    if options.limit is not None and options.limit < 1:
        raise EvalError(f"limit must be at least 1, got {options.limit}")
    if options.batch_size < 1:
        raise EvalError(f"batch size must be at least 1, got {options.batch_size}")
    suite = get_suite(options.suite, prompts_dir)
    suite.check_languages(options.languages)
    try:
        engine.checkpoint_spec(options.checkpoint)  # config, then authors' registrations
    except KeyError:
        known = [c.id for c in engine.checkpoint_specs()]
        raise EvalError(f"unknown checkpoint '{options.checkpoint}' (known: {', '.join(known) or 'none'})") from None
    engine.spec(options.checkpoint)  # e.g. "needs a GPU; this machine has none": refused before recording
    lora_ids = {lora.id for lora in engine.lora_specs()}
    for name, _ in options.adapters:
        if name not in lora_ids:
            raise EvalError(f"unknown LoRA '{name}' (known: {', '.join(sorted(lora_ids)) or 'none'})")
    return suite


def build_plan(
    options: RunOptions,
    *,
    engine: Any,
    config: Any,
    data_dir: Path,
    prompts_dir: Any = None,
    judge_device: Any = None,
    render_input: Callable[[dict[str, Any]], Image.Image] | None = None,
) -> RunPlan:
    """Resolve everything a run needs, once. Raises EvalError / SuiteError for anything wrong."""
    suite = check_options(options, engine, prompts_dir)
    kind = suite.spec
    try:
        judge_set = load_judges(config, kind.roles, data_dir=data_dir, explicit=options.judges, device=judge_device,
                                prompts_dir=prompts_dir)
    except HubInputError:
        raise
    except Exception as exc:
        raise EvalError(f"a judge failed to load ({type(exc).__name__}: {exc})") from exc
    if judge_set.tagger is None and judge_set.alignment is None and judge_set.reference is None and judge_set.name is None:
        raise EvalError("no judge is configured for this suite (add a tagger to `judges` in the config)")
    judges = kind.judges(judge_set, suite)

    spec = engine.checkpoint_spec(options.checkpoint)
    version = engine.checkpoint_version(options.checkpoint)
    adapters = format_adapters(options.adapters)
    adapter_hashes = [engine.lora_hash(name) for name, _ in options.adapters]
    languages = kind.languages(suite, suite.check_languages(options.languages))
    rows = suite.rows(languages, options.limit)
    ctx = PlanContext(
        suite=suite, checkpoint=spec, family=get_family(spec.family), adapters=tuple(options.adapters),
        overrides=dict(options.overrides), engine=engine, data_dir=data_dir,
        prompts_dir=Path(get_registry(prompts_dir).prompts_dir), render_input=render_input,
    )
    state, skipped = kind.prepare(ctx, rows)
    samples: list[PlannedSample] = []
    settings: dict[str, Any] | None = None
    settings_hash = ""
    for index in range(options.seeds):
        for row in rows:
            if row.item_id in skipped:
                continue
            seed = item_seed(suite.name, row.item_id, index)
            planned = kind.plan(ctx, state, row, seed)
            if planned is None:
                continue
            if settings is None:
                # Settings don't depend on the prompt text or seed: resolved (and checked) once.
                settings = {k: v for k, v in engine.resolve_settings(planned.request).items() if k not in ("checkpoint", "task")}
                settings_hash = sha256_hex(settings)
            key = cache_key(version, adapters, adapter_hashes, planned.cache_text, seed, settings_hash)
            samples.append(PlannedSample(row, seed, key, planned.request, meta=planned.meta))
    if not samples and not skipped:
        raise SuiteError(f"suite '{suite.name}' gives no sample to generate")
    return RunPlan(options=options, suite=suite, kind=kind, checkpoint=spec, version=version, adapters=adapters,
                   languages=languages, samples=samples, settings=settings or {}, settings_hash=settings_hash,
                   judge_set=judge_set, judges=judges, skipped=skipped)
