"""Character reference: can the model draw a character from 1-4 reference images in a new scene?

NovelAI's most used control; FLUX.2 klein and Qwen-Image-Edit Plus take several references in one call,
the demo editor one (its conditioning image). Schema: `settings` (image_guidance), `reference_threshold`
(as in edit suites), `cases`: the character (`character` tag or null, `character_id`, `tier`, optional
`names` per language for the name judge), `references` (1-4 input specs like edit inputs), the scene
`prompt` per language (without the character's name: the references carry the identity), the tags the
scene should show (`expect_tags`), and the review `status` per language.

Per sample: `character_hit` (the character recognised: tagger when it knows the tag, else the name
judge; recorded per sample), `edit_reference_same` (the output is the same character as its closest
reference: the reference judge's embeddings, or the tagger's features with the suite's threshold), and
`edit_success` (the scene's expected tags are seen).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import ValidationInfo, field_validator

from evals.inputs import load_input
from evals.kinds.base import PlanContext, Planned, PromptRow, Suite, SuiteKind
from evals.kinds.character import EVIDENCE, HIT, character_scores, judge_for
from evals.kinds.edit import REFERENCE_SAME, SUCCESS, SameCharacterJudges, attribute_rows, prepare_inputs, same_character_rows
from evals.kinds.schema import (
    STATUSES,
    TIERS,
    InputSpec,
    Item,
    Strict,
    SuiteDocument,
    check_character_tag,
    check_distinct,
    check_tags,
    check_tier,
    check_unique_ids,
    name_candidates,
    per_language,
    problem,
)
from evals.samples import SampleView, ScoreRow
from hub.engine.requests import EVAL, GenerationRequest
from leaderboards.eval_boards import REFERENCE_BOARD

MAX_REFERENCES = 4


class ReferenceSettings(Strict):
    image_guidance: float = 1.5


class ReferenceCase(Item):
    character: str | None = None
    character_id: str | None = None
    tier: str = "popular"
    names: dict[str, str] = {}
    references: list[InputSpec]
    prompt: dict[str, str]
    expect_tags: list[str] = []
    status: dict[str, str] | str = "machine"

    @field_validator("character")
    @classmethod
    def _character(cls, value: str | None) -> str | None:
        return check_character_tag(value)

    _tier = field_validator("tier", mode="before")(classmethod(lambda cls, value: check_tier(value)))

    @field_validator("references")
    @classmethod
    def _references(cls, value: list[InputSpec]) -> list[InputSpec]:
        if not 1 <= len(value) <= MAX_REFERENCES:
            raise problem(f"references: give 1 to {MAX_REFERENCES} images (got {len(value)})")
        return value

    @field_validator("prompt")
    @classmethod
    def _prompt(cls, value: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        per_language(value, info, "prompt")
        check_distinct(value)
        return value

    @field_validator("names")
    @classmethod
    def _names(cls, value: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        return per_language(value, info, "names") if value else value

    @field_validator("expect_tags")
    @classmethod
    def _expect(cls, value: list[str], info: ValidationInfo) -> list[str]:
        return check_tags(value, info)

    @field_validator("status", mode="before")
    @classmethod
    def _status(cls, value: Any) -> Any:
        values = value.values() if isinstance(value, dict) else [value]
        for status in values:
            if status not in STATUSES:
                raise problem(f"status must be one of {', '.join(STATUSES)}, got {status!r}")
        return value

    def status_for(self, language: str) -> str:
        return self.status.get(language, "machine") if isinstance(self.status, dict) else self.status


class ReferenceSuiteDocument(SuiteDocument):
    settings: ReferenceSettings = ReferenceSettings()
    reference_threshold: float | None = None
    distractors: dict[str, list[str]] = {}
    cases: list[ReferenceCase]

    @field_validator("cases")
    @classmethod
    def _cases(cls, value: list[ReferenceCase]) -> list[ReferenceCase]:
        if not value:
            raise problem("cases is empty")
        check_unique_ids(value, "case")
        return value


class ReferenceKind(SuiteKind):
    name = "reference"
    item_key = "cases"
    noun = "case"
    document = ReferenceSuiteDocument
    roles = ("tagger", "reference", "name")
    group_field = "tier"
    group_order = TIERS
    metrics = REFERENCE_BOARD.metrics
    percent_keys = ("hit_rate", "reference_same", "success")

    def suite_settings(self, doc: ReferenceSuiteDocument) -> dict[str, Any]:
        return {"image_guidance": doc.settings.image_guidance, "reference_threshold": doc.reference_threshold,
                "distractors": {k: list(v) for k, v in doc.distractors.items()}}

    def rows(self, suite: Suite, item: ReferenceCase, language: str) -> PromptRow:
        meta = {
            "tier": item.tier,
            "tag": item.character,
            "character_id": item.character_id,
            "references_input": [spec.as_dict() for spec in item.references],
            "expect_tags": list(item.expect_tags),
            "status": item.status_for(language),
            **name_candidates(item.names, [other.names for other in suite.items
                                           if other.id != item.id and other.character_id != item.character_id],
                              suite.settings.get("distractors", {}), language),
        }
        return PromptRow(item.id, language, item.prompt[language], meta)

    def tags(self, suite: Suite) -> tuple[set[str], set[str]]:
        return {t for item in suite.items for t in item.expect_tags}, {item.character for item in suite.items if item.character}

    def prepare(self, ctx: PlanContext, rows: Sequence[PromptRow]) -> tuple[Any, list[str]]:
        if not ctx.family.supports("reference"):
            return {}, sorted({row.item_id for row in rows})  # this family draws from no reference
        state: dict[str, list[tuple[Any, str, str]]] = {}
        for row in rows:
            if row.item_id not in state:
                state[row.item_id] = prepare_inputs(ctx, row.meta["references_input"])
        return state, []

    def plan(self, ctx: PlanContext, state: Any, row: PromptRow, seed: int) -> Planned | None:
        if row.item_id not in state:
            return None
        references = state[row.item_id]
        overrides = {k: v for k, v in ctx.overrides.items() if k in ("steps", "cfg", "sampler", "width", "height")}
        request = GenerationRequest(prompt=row.text, negative_prompt=ctx.suite.negative_prompt, checkpoint=ctx.checkpoint.id,
                                    loras=ctx.adapters, seed=seed, references=tuple(image for image, _, _ in references),
                                    image_guidance=ctx.suite.settings["image_guidance"], priority=EVAL, **overrides)
        text = row.text + "".join(f"\n[reference {digest}]" for _, _, digest in references)
        return Planned(request, text, {"reference_paths": [path for _, path, _ in references]})

    def judges(self, judge_set: Any, suite: Suite) -> SameCharacterJudges:
        return SameCharacterJudges.build(judge_set, suite)

    def describe_judges(self, judges: SameCharacterJudges) -> dict[str, Any]:
        return judges.describe()

    def expected_metrics(self, view: SampleView, judges: SameCharacterJudges) -> list[tuple[str, str]]:
        out = [(judges.reference_info.id, REFERENCE_SAME)]
        decider = judge_for(view, judges.judge_set)
        if decider is not None:
            out.append((decider.info.id, HIT))
        if any(judges.tagger.has_tag(t) for t in view.meta.get("expect_tags", [])):
            out.append((judges.tagger.info.id, SUCCESS))
        return out

    def score_samples(self, views: Sequence[SampleView], judges: SameCharacterJudges) -> list[ScoreRow]:
        if not views:
            return []
        outputs = [v.load() for v in views]
        references = [[load_input(p) for p in v.meta["reference_paths"]] for v in views]
        rows, _ = same_character_rows([v.id for v in views], outputs, references, judges)
        rows += character_scores(views, judges.judge_set, outputs)
        probs = judges.tagger.predict(outputs)
        for i, view in enumerate(views):
            rows += attribute_rows(view, probs[i], judges.tagger)
        return rows

    def unjudged(self, views: Sequence[SampleView], judges: SameCharacterJudges) -> int:
        return len({v.id for v in views if judge_for(v, judges.judge_set) is None})


__all__ = ["EVIDENCE", "ReferenceKind"]
