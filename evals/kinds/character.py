"""Character recognition: can the model draw this character, in this prompt language?

Schema: `templates` (per language, with `{name}`), `characters` (id, name, franchise, tier, `tag` for
the tagger or null, names per language, optional per-language template overrides, optional
`references` gallery folder, general `tags` of the look), optional `distractors` (per language: generic
texts a name judge weighs the character's name against).

Per sample, `character_hit` = 1 when the judge that can decide recognises the character, else 0. Which
judge decides is explicit and recorded (the score row's judge id): the tagger when it knows the
character's tag (at or above its character threshold, 0.85 for WD v3); otherwise the reference judge when
a gallery exists; otherwise the name judge (zero-shot names); with none of them the sample is left
unjudged (no score row, reported) rather than counted as a miss. `character_prob` keeps the evidence.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationInfo, field_validator, model_validator

from evals.judgeset import JudgeSet
from evals.kinds.base import PlanContext, Planned, SuiteKind
from evals.kinds.schema import (
    TIERS,
    Item,
    Strict,
    SuiteDocument,
    check_character_tag,
    check_distinct,
    check_tags,
    check_template,
    check_unique_ids,
    per_language,
    problem,
    resolve_relative,
)
from evals.samples import SampleView, ScoreRow
from evals.suites import PromptRow, Suite
from leaderboards.eval_boards import CHARACTER_BOARD
from hub.engine.requests import EVAL, GenerationRequest

HIT = "character_hit"
EVIDENCE = "character_prob"


class CharacterItem(Item):
    name: str
    franchise: str
    tier: str
    tag: str | None = None
    names: dict[str, str]
    templates: dict[str, str] = {}
    references: str | None = None
    tags: list[str] = []

    @field_validator("tier", mode="before")
    @classmethod
    def _tier(cls, value: Any) -> str:
        if value not in TIERS:
            raise problem(f"unknown tier '{value}' (expected one of: {', '.join(TIERS)})")
        return value

    @field_validator("tag")
    @classmethod
    def _tag(cls, value: str | None) -> str | None:
        return check_character_tag(value)

    @field_validator("names")
    @classmethod
    def _names(cls, value: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        return per_language(value, info, "names")

    @field_validator("templates")
    @classmethod
    def _templates(cls, value: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        languages = (info.context or {}).get("languages") or []
        for lang, template in value.items():
            if lang not in languages:
                raise problem(f"templates: language '{lang}' is not in the suite's languages")
            check_template(template, lang)
        return value

    @field_validator("references")
    @classmethod
    def _references(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and not resolve_relative(info, value).is_dir():
            raise problem(f"references folder '{value}' not found")
        return str(resolve_relative(info, value)) if value is not None else None

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: list[str], info: ValidationInfo) -> list[str]:
        return check_tags(value, info)


class CharacterSuiteDocument(SuiteDocument):
    templates: dict[str, str]
    characters: list[CharacterItem]
    distractors: dict[str, list[str]] = {}

    @field_validator("templates")
    @classmethod
    def _templates(cls, value: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        per_language(value, info, "templates")
        for lang, template in value.items():
            check_template(template, lang)
        return value

    @field_validator("characters")
    @classmethod
    def _characters(cls, value: list[CharacterItem]) -> list[CharacterItem]:
        if not value:
            raise problem("characters is empty")
        check_unique_ids(value, "character")
        return value

    @model_validator(mode="after")
    def _prompts_differ(self) -> "CharacterSuiteDocument":
        for character in self.characters:
            texts = {lang: prompt_text(self.templates, character, lang) for lang in self.languages}
            check_distinct(texts, f"character '{character.id}'")
        return self


def prompt_text(templates: dict[str, str], character: CharacterItem, language: str) -> str:
    return character.templates.get(language, templates[language]).replace("{name}", character.names[language])


# ------------------------------------------------------------------------------------- judging


def judge_for(sample: SampleView, judges: JudgeSet) -> Any:
    """Which judge decides this sample: the tagger when it knows the character's tag, else the
    reference judge when the character has a gallery, else the name judge; None: unjudged."""
    tag = sample.meta.get("tag")
    if tag and judges.tagger is not None and judges.tagger.has_tag(tag):
        return judges.tagger
    if sample.meta.get("references") and judges.reference is not None:
        return judges.reference
    if judges.name is not None and sample.meta.get("names"):
        return judges.name
    return None


def character_scores(samples: Sequence[SampleView], judges: JudgeSet, images: Sequence[Any]) -> list[ScoreRow]:
    """`character_hit` and `character_prob` for samples (images given in the same order), each decided
    by its judge: one tagger pass for all, one pass per gallery, one name-judge pass."""
    rows: list[ScoreRow] = []
    routed: dict[str, list[int]] = defaultdict(list)
    for index, sample in enumerate(samples):
        judge = judge_for(sample, judges)
        if judge is not None:
            routed["tagger" if judge is judges.tagger else "reference" if judge is judges.reference else "name"].append(index)
    if routed["tagger"]:
        tagger = judges.tagger
        probs = tagger.predict([images[i] for i in routed["tagger"]])
        for i, row in zip(routed["tagger"], probs):
            tag = samples[i].meta["tag"]
            p = float(row[tagger.tags.index[tag]])
            rows.append(ScoreRow(samples[i].id, tagger.info.id, EVIDENCE, p))
            rows.append(ScoreRow(samples[i].id, tagger.info.id, HIT, float(p >= tagger.threshold_for(tag))))
    by_gallery: dict[str, list[int]] = defaultdict(list)
    for i in routed["reference"]:
        by_gallery[str(samples[i].meta["references"])].append(i)
    for gallery, indices in by_gallery.items():
        verdicts = judges.reference.judge([images[i] for i in indices], gallery)
        for i, verdict in zip(indices, verdicts):
            rows.append(ScoreRow(samples[i].id, judges.reference.info.id, EVIDENCE, verdict.fraction))
            rows.append(ScoreRow(samples[i].id, judges.reference.info.id, HIT, float(verdict.same)))
    if routed["name"]:
        name_judge = judges.name
        verdicts = name_judge.recognise([images[i] for i in routed["name"]], [samples[i].meta for i in routed["name"]])
        for i, verdict in zip(routed["name"], verdicts):
            rows.append(ScoreRow(samples[i].id, name_judge.info.id, EVIDENCE, verdict.probability))
            rows.append(ScoreRow(samples[i].id, name_judge.info.id, HIT, float(verdict.hit)))
    return rows


class CharacterKind(SuiteKind):
    name = "character_recognition"
    item_key = "characters"
    noun = "character"
    document = CharacterSuiteDocument
    roles = ("tagger", "reference", "name")
    group_field = "tier"
    group_order = TIERS
    metrics = CHARACTER_BOARD.metrics
    percent_keys = ("hit_rate",)

    def suite_settings(self, doc: CharacterSuiteDocument) -> dict[str, Any]:
        return {"templates": dict(doc.templates), "distractors": {k: list(v) for k, v in doc.distractors.items()}}

    def rows(self, suite: Suite, item: CharacterItem, language: str) -> PromptRow:
        meta = {
            "tier": item.tier,
            "tag": item.tag,
            "franchise": item.franchise,
            "name": item.name,
            "references": item.references,
            "tags": list(item.tags),
            # The name judge's candidates: this character's names, the suite's other characters and
            # generic distractors, in English and in the prompt's language.
            "names": sorted({item.names.get("en", item.name), item.names[language]}),
            "other_names": sorted({n for other in suite.items if other.id != item.id
                                   for n in (other.names.get("en", other.name), other.names[language])}),
            "distractors": sorted(set(suite.settings.get("distractors", {}).get("en", []))
                                  | set(suite.settings.get("distractors", {}).get(language, []))),
        }
        return PromptRow(item.id, language, prompt_text(suite.settings["templates"], item, language), meta)

    def tags(self, suite: Suite) -> tuple[set[str], set[str]]:
        general = {t for item in suite.items for t in item.tags}
        return general, {item.tag for item in suite.items if item.tag}

    def plan(self, ctx: PlanContext, state: Any, row: PromptRow, seed: int) -> Planned:
        request = GenerationRequest(prompt=row.text, negative_prompt=ctx.suite.negative_prompt, checkpoint=ctx.checkpoint.id,
                                    loras=ctx.adapters, seed=seed, priority=EVAL, **ctx.overrides)
        return Planned(request, row.text)

    def expected_metrics(self, view: SampleView, judges: JudgeSet) -> list[tuple[str, str]]:
        judge = judge_for(view, judges)
        return [] if judge is None else [(judge.info.id, HIT), (judge.info.id, EVIDENCE)]

    def score_samples(self, views: Sequence[SampleView], judges: JudgeSet) -> list[ScoreRow]:
        return character_scores(views, judges, [v.load() for v in views])

    def unjudged(self, views: Sequence[SampleView], judges: JudgeSet) -> int:
        return len({v.id for v in views if judge_for(v, judges) is None})
