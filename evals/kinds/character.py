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

Galleries are found at plan time: the character's `references` folder in the suite, else an author's
gallery (`evals.galleries`, `python -m evals gallery`). The gallery's hash is part of the judge id on the
scores it decides (`<reference judge>@<hash12>`), so a new gallery is a new judge and its samples are
rescored. Where the tagger decides and a name judge is loaded, the name judge's verdict is recorded too
(`character_hit_name`, `character_prob_name`) with `character_judges_agree` (1 when both give the same
verdict): the board and the report show that agreement; neither counts in the hit rate.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import ValidationInfo, field_validator, model_validator

from evals.gallery_files import folder_sha256, galleries_of_suite
from evals.judges.name import CandidateSet
from evals.kinds.base import PlanContext, Planned, PromptRow, Suite, SuiteKind
from evals.kinds.schema import (
    TIERS,
    Item,
    SuiteDocument,
    check_character_tag,
    check_distinct,
    check_tags,
    check_template,
    check_tier,
    check_unique_ids,
    languages_of,
    name_candidates,
    per_language,
    problem,
    resolve_relative,
)
from evals.samples import SampleView, ScoreRow
from hub.engine.requests import EVAL, GenerationRequest
from hub.errors import HubInputError
from leaderboards.eval_boards import CHARACTER_BOARD

if TYPE_CHECKING:
    from evals.judgeset import JudgeSet

HIT = "character_hit"
EVIDENCE = "character_prob"
# Where the tagger decides and the name judge could too: the name judge's verdict and whether the two
# agree. Separate metrics, never counted in the hit rate; the agreement is on the board and the report.
HIT_NAME = "character_hit_name"
EVIDENCE_NAME = "character_prob_name"
AGREE = "character_judges_agree"


class CharacterItem(Item):
    name: str
    franchise: str
    tier: str
    tag: str | None = None
    names: dict[str, str]
    templates: dict[str, str] = {}
    references: str | None = None
    tags: list[str] = []

    _tier = field_validator("tier", mode="before")(classmethod(lambda cls, value: check_tier(value)))

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

    @field_validator("distractors")
    @classmethod
    def _distractors(cls, value: dict[str, list[str]], info: ValidationInfo) -> dict[str, list[str]]:
        languages = languages_of(info)
        for lang, texts in value.items():
            if lang not in languages:
                raise problem(f"distractors: language '{lang}' is not in the suite's languages")
            if any(not isinstance(t, str) or not t.strip() for t in texts):
                raise problem(f"distractors.{lang}: every distractor must be a non-empty text")
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


@dataclass(frozen=True)
class Gallery:
    """A character's reference gallery as one run uses it: its folder and the hash of its images."""

    path: str
    sha256: str  # "" when unknown (a bare JudgeSet was given: no plan-time lookup)
    source: str  # "suite" (the suite's `references` folder) or "author" (`evals.galleries`)


@dataclass
class CharacterJudges:
    """What the character kind scores with: the run's judges and, per character, the gallery found at
    plan time (the suite's own `references` folder first, else an author's gallery from the data folder)."""

    judge_set: JudgeSet
    galleries: dict[str, Gallery] = field(default_factory=dict)
    suite: Suite | None = None

    @property
    def tagger(self) -> Any:
        return self.judge_set.tagger

    @property
    def reference(self) -> Any:
        return self.judge_set.reference

    @property
    def name(self) -> Any:
        return self.judge_set.name

    def describe(self) -> dict[str, Any]:
        """The run's judges by role, one entry per gallery (`<reference>@<hash12>`), the tagger / name judge
        pair whose agreement is recorded, and `deciders` (character -> the judge id its `character_hit`
        carries, null: unjudged). The boards and the report count a character's hits only from its
        decider: when a gallery arrives for a character the name judge used to decide, its old verdicts
        stop counting."""
        out: dict[str, Any] = dict(self.judge_set.describe())
        if self.reference is not None:
            for item, gallery in sorted(self.galleries.items()):
                out[f"gallery:{item}"] = {"id": reference_judge_id(self.reference, gallery), "kind": self.reference.info.kind,
                                          "version": self.reference.info.version, "character": item,
                                          "sha256": gallery.sha256, "source": gallery.source, "path": gallery.path}
        if self.tagger is not None and self.name is not None:
            out["agreement"] = {"id": agreement_id(self), "kind": "agreement", "tagger": self.tagger.info.id,
                                "name": self.name.info.id}
        if self.suite is not None:
            # No "id" key: this entry lists no judge of its own.
            out["deciders"] = {"metric": HIT, "items": {item.id: decider_id(_item_view(item.id, self.suite), self)
                                                        for item in self.suite.items}}
        return out


def _item_view(item_id: str, suite: Suite) -> SampleView:
    row = suite.spec.rows(suite, next(i for i in suite.items if i.id == item_id), suite.languages[0])
    return SampleView(0, row.item_id, row.language, 0, row.text, "", row.meta)


def agreement_id(judges: JudgeSet | CharacterJudges) -> str:
    """The judge id of `character_judges_agree` rows: the pair compared (a new tagger or name judge is a
    new pair, whose agreement is measured afresh)."""
    return f"{judges.tagger.info.id}~{judges.name.info.id}"


def reference_judge_id(reference: Any, gallery: Gallery) -> str:
    return f"{reference.info.id}@{gallery.sha256[:12]}" if gallery.sha256 else reference.info.id


def find_galleries(suite: Suite, reference: Any) -> dict[str, Gallery]:
    """Per character with a gallery: the suite's `references` folder, else the author's gallery stored in
    the reference judge's data folder (`evals.galleries`), each with the hash of its images."""
    if reference is None:
        return {}
    authors = galleries_of_suite(getattr(reference, "data_dir", None), suite.name)
    found: dict[str, Gallery] = {}
    for item in suite.items:
        if getattr(item, "references", None):
            found[item.id] = Gallery(str(item.references), folder_sha256(item.references), "suite")
        elif item.id in authors:
            record = authors[item.id]
            found[item.id] = Gallery(str(record.path), record.sha256, "author")
    return found


def _parts(judges: JudgeSet | CharacterJudges) -> tuple[JudgeSet, dict[str, Gallery] | None]:
    if isinstance(judges, CharacterJudges):
        return judges.judge_set, judges.galleries
    return judges, None


def gallery_for(sample: SampleView, judges: JudgeSet | CharacterJudges) -> Gallery | None:
    judge_set, galleries = _parts(judges)
    if galleries is not None:
        return galleries.get(sample.item_id)
    folder = sample.meta.get("references")
    return Gallery(str(folder), "", "suite") if folder else None


def judge_for(sample: SampleView, judges: JudgeSet | CharacterJudges) -> Any:
    """Which judge decides this sample: the tagger when it knows the character's tag, else the
    reference judge when the character has a gallery, else the name judge; None: unjudged."""
    judge_set, _ = _parts(judges)
    tag = sample.meta.get("tag")
    if tag and judge_set.tagger is not None and judge_set.tagger.has_tag(tag):
        return judge_set.tagger
    if judge_set.reference is not None and gallery_for(sample, judges) is not None:
        return judge_set.reference
    if judge_set.name is not None and sample.meta.get("names"):
        return judge_set.name
    return None


def decider_id(sample: SampleView, judges: JudgeSet | CharacterJudges) -> str | None:
    """The judge id the sample's `character_hit` carries (a gallery's hash for the reference judge)."""
    judge = judge_for(sample, judges)
    if judge is None:
        return None
    judge_set, _ = _parts(judges)
    if judge is judge_set.reference:
        return reference_judge_id(judge, gallery_for(sample, judges))
    return judge.info.id


def second_opinion(sample: SampleView, judges: JudgeSet | CharacterJudges) -> Any:
    """The name judge, where the tagger decides and the name judge could too (its verdict is recorded as
    `character_hit_name` and compared, never counted in the hit rate); else None."""
    judge_set, _ = _parts(judges)
    if judge_set.name is None or judge_set.tagger is None or judge_for(sample, judges) is not judge_set.tagger:
        return None
    try:
        CandidateSet.from_meta(sample.meta)
    except HubInputError:
        return None  # e.g. a one-character suite without distractors: the tagger alone decides
    return judge_set.name


def character_scores(samples: Sequence[SampleView], judges: JudgeSet | CharacterJudges, images: Sequence[Any]) -> list[ScoreRow]:
    """`character_hit` and `character_prob` for samples (images given in the same order), each decided
    by its judge: one tagger pass for all, one pass per gallery, one name-judge pass (which also gives the
    second opinion on tagger-decided samples: `character_hit_name`, `character_judges_agree`)."""
    judge_set, _ = _parts(judges)
    rows: list[ScoreRow] = []
    routed: dict[str, list[int]] = defaultdict(list)
    for index, sample in enumerate(samples):
        judge = judge_for(sample, judges)
        if judge is not None:
            routed["tagger" if judge is judge_set.tagger else "reference" if judge is judge_set.reference else "name"].append(index)
    second = [i for i in routed["tagger"] if second_opinion(samples[i], judges) is not None]
    name_indices = routed["name"] + second
    # Every candidate set is checked before any judge runs: a bad one scores nothing of the batch.
    name_sets = [CandidateSet.from_meta(samples[i].meta) for i in name_indices]
    tagger_hits: dict[int, float] = {}
    if routed["tagger"]:
        tagger = judge_set.tagger
        probs = tagger.predict([images[i] for i in routed["tagger"]])
        for i, row in zip(routed["tagger"], probs):
            tag = samples[i].meta["tag"]
            p = float(row[tagger.tags.index[tag]])
            tagger_hits[i] = float(p >= tagger.threshold_for(tag))
            rows.append(ScoreRow(samples[i].id, tagger.info.id, EVIDENCE, p))
            rows.append(ScoreRow(samples[i].id, tagger.info.id, HIT, tagger_hits[i]))
    by_gallery: dict[str, list[int]] = defaultdict(list)
    for i in routed["reference"]:
        by_gallery[gallery_for(samples[i], judges).path].append(i)
    for folder, indices in by_gallery.items():
        judge_id = reference_judge_id(judge_set.reference, gallery_for(samples[indices[0]], judges))
        verdicts = judge_set.reference.judge([images[i] for i in indices], folder)
        for i, verdict in zip(indices, verdicts):
            rows.append(ScoreRow(samples[i].id, judge_id, EVIDENCE, verdict.fraction))
            rows.append(ScoreRow(samples[i].id, judge_id, HIT, float(verdict.same)))
    if name_indices:
        name_judge = judge_set.name
        verdicts = name_judge.recognise([images[i] for i in name_indices], name_sets)
        for i, verdict in zip(name_indices, verdicts):
            sid, jid = samples[i].id, name_judge.info.id
            if i in tagger_hits:  # a second opinion: recorded and compared, not counted
                rows.append(ScoreRow(sid, jid, EVIDENCE_NAME, verdict.probability))
                rows.append(ScoreRow(sid, jid, HIT_NAME, float(verdict.hit)))
                rows.append(ScoreRow(sid, agreement_id(judge_set), AGREE, float(float(verdict.hit) == tagger_hits[i])))
            else:
                rows.append(ScoreRow(sid, jid, EVIDENCE, verdict.probability))
                rows.append(ScoreRow(sid, jid, HIT, float(verdict.hit)))
    return rows


def check_candidate_sets(suite: Suite, judges: CharacterJudges) -> None:
    """Plan-time check: every prompt the name judge will decide has a usable candidate set (its names and
    at least one rival), so a run never stops half-way through scoring."""
    for row in suite.rows():
        view = SampleView(0, row.item_id, row.language, 0, row.text, "", row.meta)
        if judges.name is not None and judge_for(view, judges) is judges.name:
            try:
                CandidateSet.from_meta(row.meta)
            except HubInputError as err:
                raise HubInputError(f"suite '{suite.name}': character '{row.item_id}' ({row.language}): {err}") from None


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
    # Metrics that compare judges rather than decide: the report's "judged by" leaves their judges out.
    second_opinion_metrics = (AGREE,)

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
            **name_candidates({"en": item.name, **item.names}, [{"en": o.name, **o.names} for o in suite.items if o.id != item.id],
                              suite.settings.get("distractors", {}), language),
        }
        return PromptRow(item.id, language, prompt_text(suite.settings["templates"], item, language), meta)

    def tags(self, suite: Suite) -> tuple[set[str], set[str]]:
        general = {t for item in suite.items for t in item.tags}
        return general, {item.tag for item in suite.items if item.tag}

    def plan(self, ctx: PlanContext, state: Any, row: PromptRow, seed: int) -> Planned:
        request = GenerationRequest(prompt=row.text, negative_prompt=ctx.suite.negative_prompt, checkpoint=ctx.checkpoint.id,
                                    loras=ctx.adapters, seed=seed, priority=EVAL, **ctx.overrides)
        return Planned(request, row.text)

    def judges(self, judge_set: JudgeSet, suite: Suite) -> CharacterJudges:
        """At plan time: the galleries this run uses (an author's gallery saved since the last run is
        picked up here) and a check of every candidate set the name judge will see."""
        judges = CharacterJudges(judge_set, find_galleries(suite, judge_set.reference), suite)
        check_candidate_sets(suite, judges)
        return judges

    def expected_metrics(self, view: SampleView, judges: CharacterJudges) -> list[tuple[str, str]]:
        judge_id = decider_id(view, judges)
        if judge_id is None:
            return []
        out = [(judge_id, HIT), (judge_id, EVIDENCE)]
        name_judge = second_opinion(view, judges)
        if name_judge is not None:
            out += [(name_judge.info.id, HIT_NAME), (agreement_id(judges), AGREE)]
        return out

    def score_samples(self, views: Sequence[SampleView], judges: CharacterJudges) -> list[ScoreRow]:
        return character_scores(views, judges, [v.load() for v in views])

    def unjudged(self, views: Sequence[SampleView], judges: CharacterJudges) -> int:
        return len({v.id for v in views if judge_for(v, judges) is None})
