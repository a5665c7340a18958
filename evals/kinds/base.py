"""What a suite kind is: its schema, how its items become prompts and requests, how its samples are
scored and summarised. The runner, the report and the registry know kinds only through this class.

Adding a kind: one module in `evals/kinds/` with a `SuiteKind` subclass, one line in
`evals/kinds/__init__.py` (see docs/EXTENDING.md).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image

from evals.kinds.schema import SuiteDocument
from evals.samples import SampleView, ScoreRow
from evals.summary import format_summary, summarize
from hub.errors import HubInputError

if TYPE_CHECKING:
    from evals.judgeset import JudgeSet
    from hub.config import CheckpointSpec
    from hub.families import Family


# ------------------------------------------------------------------------------------------- a suite
# A suite as loaded (`evals.suites` reads the YAML and picks the kind); defined here, below the kinds,
# so a kind's module and the loader import it one way.


class SuiteError(HubInputError):
    """A suite file is broken; the message names the file, the item and the problem."""


@dataclass(frozen=True)
class PromptRow:
    """One prompt to generate: a suite item in one language."""

    item_id: str
    language: str
    text: str
    meta: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)


@dataclass(frozen=True)
class Suite:
    name: str
    kind: str
    path: Path
    languages: tuple[str, ...]
    anchor_language: str
    version_hash: str
    items: tuple[Any, ...]
    description: str = ""
    negative_prompt: str = ""
    vocabulary_path: Path | None = None
    settings: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    document: dict[str, Any] = field(default_factory=dict, repr=False, hash=False, compare=False)
    spec: SuiteKind | None = field(default=None, repr=False, hash=False, compare=False)  # what `kind` names

    @property
    def item_ids(self) -> list[str]:
        return [item.id for item in self.items]

    def _items_of(self, kind: str) -> tuple[Any, ...]:
        return self.items if self.kind == kind else ()

    @property
    def characters(self) -> tuple[Any, ...]:
        return self._items_of("character_recognition")

    @property
    def scenes(self) -> tuple[Any, ...]:
        return self._items_of("multilingual_fidelity")

    @property
    def cases(self) -> tuple[Any, ...]:
        return self.items if self.kind in ("edit", "reference") else ()

    def tags(self) -> tuple[set[str], set[str]]:
        """(general tags, character tags) the suite's items use."""
        return self.spec.tags(self)

    def check_languages(self, languages: Iterable[str] | None) -> tuple[str, ...]:
        """The requested languages in suite order; an unknown one is a `SuiteError`."""
        if not languages:
            return self.languages
        wanted = list(dict.fromkeys(languages))
        missing = [lang for lang in wanted if lang not in self.languages]
        if missing:
            raise SuiteError(
                f"suite '{self.name}' has no language {', '.join(repr(m) for m in missing)} "
                f"(it has: {', '.join(self.languages)})"
            )
        return tuple(lang for lang in self.languages if lang in wanted)

    def rows(self, languages: Iterable[str] | None = None, limit: int | None = None) -> list[PromptRow]:
        """Expand into prompt rows: the first `limit` items, each in every requested language."""
        langs = self.check_languages(languages)
        if limit is not None and limit < 1:
            raise SuiteError(f"limit must be at least 1, got {limit}")
        items = self.items[:limit] if limit else self.items
        return [self.spec.rows(self, item, lang) for item in items for lang in langs]


# --------------------------------------------------------------------------------------------- a kind


@dataclass
class PlanContext:
    """What a kind may use while planning one run (resolved once by `evals.plan`)."""

    suite: Suite
    checkpoint: CheckpointSpec
    family: Family
    adapters: tuple[tuple[str, float], ...]
    overrides: dict[str, Any]
    engine: Any
    data_dir: Path
    prompts_dir: Path
    # The demo world's renderer for `render:` inputs, passed in by the app/CLI (None: no demo world).
    render_input: Callable[[dict[str, Any]], Image.Image] | None = None


@dataclass
class Planned:
    """One sample to make: the engine request, the text its cache key covers, extra sample meta."""

    request: Any
    cache_text: str
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class ScoringContext:
    """Database access the after-scoring step of a kind may need (paired metrics)."""

    score_values: Callable[[Sequence[int], str, str], dict[int, float]]
    have_scores: Callable[[Sequence[int]], set[tuple[int, str, str]]]
    write_scores: Callable[[Sequence[ScoreRow]], None]
    batch_size: int
    progress: Callable[[int, str], Any]


class SuiteKind:
    name: str = ""
    item_key: str = "items"  # the YAML list of items
    noun: str = "item"  # how errors name one item ("character 'miku'")
    document: type[SuiteDocument] = SuiteDocument
    roles: tuple[str, ...] = ("tagger",)  # judge roles a run loads
    group_field: str | None = None  # meta field reports and boards group by (tier, category)
    group_order: tuple[str, ...] = ()
    metrics: Mapping[str, str] = {}  # report key -> metric name
    percent_keys: tuple[str, ...] = ()

    # -- schema and prompts -------------------------------------------------------------------------
    def suite_settings(self, doc: SuiteDocument) -> dict[str, Any]:
        """Kind-level settings kept on the Suite (templates, edit settings, thresholds)."""
        return {}

    def items(self, doc: SuiteDocument) -> tuple[Any, ...]:
        return tuple(getattr(doc, self.item_key))

    def rows(self, suite: Suite, item: Any, language: str) -> PromptRow:
        raise NotImplementedError

    def tags(self, suite: Suite) -> tuple[set[str], set[str]]:
        """(general tags, character tags) the suite uses: a tagger must know them to judge it."""
        return set(), set()

    # -- planning -----------------------------------------------------------------------------------
    def languages(self, suite: Suite, requested: tuple[str, ...]) -> tuple[str, ...]:
        return requested

    def prepare(self, ctx: PlanContext, rows: Sequence[PromptRow]) -> tuple[Any, list[str]]:
        """Per-run state (e.g. input images made once) and the item ids this checkpoint cannot run."""
        return None, []

    def plan(self, ctx: PlanContext, state: Any, row: PromptRow, seed: int) -> Planned | None:
        raise NotImplementedError

    # -- judging ------------------------------------------------------------------------------------
    def judges(self, judge_set: JudgeSet, suite: Suite) -> Any:
        return judge_set

    def describe_judges(self, judges: Any) -> dict[str, Any]:
        return judges.describe()

    def primary_judge(self, judges: Any) -> Any:
        return judges.tagger

    def expected_metrics(self, view: SampleView, judges: Any) -> list[tuple[str, str]]:
        raise NotImplementedError

    def score_samples(self, views: Sequence[SampleView], judges: Any) -> list[ScoreRow]:
        raise NotImplementedError

    def after_scoring(self, ctx: ScoringContext, suite: Suite, views: Sequence[SampleView], judges: Any) -> int:
        """Scores that need several samples at once (paired metrics); returns rows written."""
        return 0

    def unjudged(self, views: Sequence[SampleView], judges: Any) -> int:
        """Samples no judge can decide (reported, never counted as misses)."""
        return 0

    # -- results ------------------------------------------------------------------------------------
    def summarize(self, records: Sequence[Mapping[str, Any]], *, anchor: str, num_bootstrap: int = 1000, seed: int = 0) -> dict[str, Any]:
        return summarize(records, metrics=self.metrics, group_field=self.group_field, group_order=self.group_order,
                         anchor=anchor, num_bootstrap=num_bootstrap, seed=seed)

    def format_lines(self, summary: Mapping[str, Any]) -> list[str]:
        return format_summary(summary, list(self.metrics), self.percent_keys)
