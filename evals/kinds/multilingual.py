"""Multilingual prompt fidelity: does a prompt in language L give an image as faithful as English?

Schema: `scenes` (id, expected Danbooru `tags`, `texts` per language with a review status, optional
`scene_tags`: the tags among `tags` that the scene's own words ask for, beyond its subject's look).

The same scene, written in every suite language, generated with the same seeds. Per sample:
- `tag_recall`: share of the scene's expected tags the tagger finds (general threshold);
- `scene_tag_recall`: the same on `scene_tags` only (scenes that have them). Where the subject is a
  character, its look (hair, eyes, outfit) comes with its name, so `tag_recall` is high as soon as the
  character is drawn; this says whether "smiling, night sky" was followed too;
- `anchor_text_score`: judge(image, scene text in the anchor language) — SigLIP 2 / CLIP, or the
  tagger's mean probability of the expected tags when no image-text judge is available;
- `anchored_alignment` = anchor_text_score(L image) / anchor_text_score(English image), same scene and
  seed: both use the English text, so the judge's own language bias stays out;
- `crosslingual_cosine`: cosine of the image embeddings of the L image and the English image.
English samples get 1.0 for the two paired metrics by definition, so each language's gap to English is
directly its value minus 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import ValidationInfo, field_validator, model_validator

from evals.kinds.base import PlanContext, Planned, PromptRow, ScoringContext, Suite, SuiteKind
from evals.kinds.schema import Item, StatusText, SuiteDocument, check_tags, check_unique_ids, problem, texts_by_language
from evals.metrics import cosine, tag_recall
from evals.samples import SampleView, ScoreRow
from hub.engine.requests import EVAL, GenerationRequest
from leaderboards.eval_boards import MULTILINGUAL_BOARD

if TYPE_CHECKING:
    from evals.judgeset import JudgeSet

TAG_RECALL = "tag_recall"
SCENE_TAG_RECALL = "scene_tag_recall"
ANCHOR_SCORE = "anchor_text_score"
ANCHORED = "anchored_alignment"
COSINE = "crosslingual_cosine"


class Scene(Item):
    tags: list[str]
    texts: dict[str, StatusText]
    scene_tags: list[str] = []

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: list[str], info: ValidationInfo) -> list[str]:
        if not value:
            raise problem("tags is empty")
        return check_tags(value, info)

    @model_validator(mode="after")
    def _scene_tags_among_tags(self) -> "Scene":
        stray = [t for t in self.scene_tags if t not in self.tags]
        if stray:
            raise problem(f"scene_tags: '{stray[0]}' is not one of the scene's tags")
        return self

    @field_validator("texts")
    @classmethod
    def _texts(cls, value: dict[str, StatusText], info: ValidationInfo) -> dict[str, StatusText]:
        return texts_by_language(value, info, "texts")

    @property
    def status(self) -> dict[str, str]:
        return {lang: text.status for lang, text in self.texts.items()}


class MultilingualSuiteDocument(SuiteDocument):
    scenes: list[Scene]

    @field_validator("scenes")
    @classmethod
    def _scenes(cls, value: list[Scene]) -> list[Scene]:
        if not value:
            raise problem("scenes is empty")
        check_unique_ids(value, "scene")
        return value


def _per_sample_metrics(judges: JudgeSet, meta: dict[str, Any]) -> list[tuple[str, str]]:
    out = []
    if judges.tagger is not None:
        out.append((judges.tagger.info.id, TAG_RECALL))
        if meta.get("scene_tags"):
            out.append((judges.tagger.info.id, SCENE_TAG_RECALL))
    if judges.alignment is not None:
        out.append((judges.alignment.info.id, ANCHOR_SCORE))
    return out


def _paired_metrics(judges: JudgeSet) -> list[tuple[str, str]]:
    out = []
    if judges.alignment is not None:
        out.append((judges.alignment.info.id, ANCHORED))
    if judges.embedder is not None:
        out.append((judges.embedder.info.id, COSINE))
    return out


class MultilingualKind(SuiteKind):
    name = "multilingual_fidelity"
    item_key = "scenes"
    noun = "scene"
    document = MultilingualSuiteDocument
    roles = ("tagger", "image_text")
    metrics = MULTILINGUAL_BOARD.metrics

    def rows(self, suite: Suite, item: Scene, language: str) -> PromptRow:
        meta = {"tags": list(item.tags), "scene_tags": list(item.scene_tags), "status": item.texts[language].status,
                "anchor_text": item.texts[suite.anchor_language].text}
        return PromptRow(item.id, language, item.texts[language].text, meta)

    def tags(self, suite: Suite) -> tuple[set[str], set[str]]:
        return {t for item in suite.items for t in item.tags}, set()

    def languages(self, suite: Suite, requested: tuple[str, ...]) -> tuple[str, ...]:
        # Paired metrics need the anchor-language image of every scene and seed.
        return requested if suite.anchor_language in requested else (suite.anchor_language, *requested)

    def plan(self, ctx: PlanContext, state: Any, row: PromptRow, seed: int) -> Planned:
        request = GenerationRequest(prompt=row.text, negative_prompt=ctx.suite.negative_prompt, checkpoint=ctx.checkpoint.id,
                                    loras=ctx.adapters, seed=seed, priority=EVAL, **ctx.overrides)
        return Planned(request, row.text)

    def primary_judge(self, judges: JudgeSet) -> Any:
        return judges.alignment

    def expected_metrics(self, view: SampleView, judges: JudgeSet) -> list[tuple[str, str]]:
        return _per_sample_metrics(judges, view.meta)

    def score_samples(self, views: Sequence[SampleView], judges: JudgeSet) -> list[ScoreRow]:
        """Tag recall (all expected tags, and the scene's own), and the anchor-text score, batched per judge."""
        if not views:
            return []
        rows: list[ScoreRow] = []
        images = [v.load() for v in views]
        tagger = judges.tagger
        if tagger is not None:
            decided = tagger.decide(tagger.predict(images))
            for view, found in zip(views, decided):
                for metric, expected in ((TAG_RECALL, view.meta.get("tags", [])), (SCENE_TAG_RECALL, view.meta.get("scene_tags", []))):
                    value = tag_recall(found, expected, tagger.tags.index) if expected else float("nan")
                    if np.isfinite(value):
                        rows.append(ScoreRow(view.id, tagger.info.id, metric, value))
        judge = judges.alignment
        if judge is not None:
            if judge is tagger:
                values = tagger.text_scores(images, [v.meta.get("tags", []) for v in views])
            else:
                values = judge.scores(images, [v.meta["anchor_text"] for v in views])
            for view, value in zip(views, values):
                if np.isfinite(value):
                    rows.append(ScoreRow(view.id, judge.info.id, ANCHOR_SCORE, float(value)))
        return rows

    def after_scoring(self, ctx: ScoringContext, suite: Suite, views: Sequence[SampleView], judges: JudgeSet) -> int:
        """Anchored alignment and cross-lingual cosine for (sample, same scene and seed in English)."""
        anchors = {(v.item_id, v.seed): v for v in views if v.language == suite.anchor_language}
        pairs = [(v, anchors[(v.item_id, v.seed)]) for v in views if (v.item_id, v.seed) in anchors]
        wanted = _paired_metrics(judges)
        have = ctx.have_scores([v.id for v, _ in pairs])
        todo = [(v, a) for v, a in pairs if any((v.id, j, m) not in have for j, m in wanted)]
        if not todo:
            return 0
        align, embedder = judges.alignment, judges.embedder
        anchor_scores = ctx.score_values([x.id for pair in todo for x in pair], align.info.id, ANCHOR_SCORE) if align else {}
        embeddings: dict[int, np.ndarray] = {}
        if embedder is not None:
            need = sorted({x.id: x for pair in todo for x in pair}.values(), key=lambda v: v.id)
            for start in range(0, len(need), ctx.batch_size):
                chunk = need[start : start + ctx.batch_size]
                for view, vector in zip(chunk, embedder.image_embeddings([v.load() for v in chunk])):
                    embeddings[view.id] = vector
                    view.image = None
        written = 0
        bar = ctx.progress(len(todo), "paired metrics")
        for start in range(0, len(todo), ctx.batch_size):
            chunk = todo[start : start + ctx.batch_size]
            rows: list[ScoreRow] = []
            for sample, anchor in chunk:
                if align is not None and sample.id in anchor_scores and anchor.id in anchor_scores:
                    a = anchor_scores[anchor.id]
                    value = 1.0 if sample.id == anchor.id else (anchor_scores[sample.id] / a if a > 0 else float("nan"))
                    if np.isfinite(value):
                        rows.append(ScoreRow(sample.id, align.info.id, ANCHORED, value))
                if embedder is not None and sample.id in embeddings and anchor.id in embeddings:
                    value = 1.0 if sample.id == anchor.id else cosine(embeddings[sample.id], embeddings[anchor.id])
                    if np.isfinite(value):
                        rows.append(ScoreRow(sample.id, embedder.info.id, COSINE, value))
            ctx.write_scores(rows)
            written += len(rows)
            bar.update(len(chunk))
        bar.close()
        return written
