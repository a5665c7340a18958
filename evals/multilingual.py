"""Multilingual prompt fidelity: does a prompt in language L give an image as faithful as English?

The same scene, written in every suite language, generated with the same seeds. Per sample:
- `tag_recall`: share of the scene's expected tags the tagger finds (general threshold);
- `anchor_text_score`: judge(image, scene text in the anchor language) — SigLIP 2 / CLIP, or the
  tagger's mean probability of the expected tags when no image-text judge is available;
- `anchored_alignment` = anchor_text_score(L image) / anchor_text_score(English image), same scene and
  seed: both use the English text, so the judge's own language bias stays out;
- `crosslingual_cosine`: cosine of the image embeddings of the L image and the English image.
English samples get 1.0 for the two paired metrics by definition, so each language's gap to English is
directly its value minus 1 (and the boards' gap column works without special cases).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Sequence

import numpy as np

from evals.judgeset import JudgeSet
from evals.metrics import bootstrap_gap, bootstrap_mean, cosine, tag_recall
from evals.samples import SampleView, ScoreRow

TAG_RECALL = "tag_recall"
ANCHOR_SCORE = "anchor_text_score"
ANCHORED = "anchored_alignment"
COSINE = "crosslingual_cosine"
PER_SAMPLE = (TAG_RECALL, ANCHOR_SCORE)
PAIRED = (ANCHORED, COSINE)
REPORTED = (TAG_RECALL, ANCHORED, COSINE)


def per_sample_metrics(judges: JudgeSet) -> list[tuple[str, str]]:
    out = []
    if judges.tagger is not None:
        out.append((judges.tagger.info.id, TAG_RECALL))
    if judges.alignment is not None:
        out.append((judges.alignment.info.id, ANCHOR_SCORE))
    return out


def paired_metrics(judges: JudgeSet) -> list[tuple[str, str]]:
    out = []
    if judges.alignment is not None:
        out.append((judges.alignment.info.id, ANCHORED))
    if judges.embedder is not None:
        out.append((judges.embedder.info.id, COSINE))
    return out


def score_samples(samples: Sequence[SampleView], judges: JudgeSet) -> list[ScoreRow]:
    """Per-sample scores for a batch (tag recall and the anchor-text score), batched per judge."""
    if not samples:
        return []
    rows: list[ScoreRow] = []
    images = [s.load() for s in samples]
    tagger = judges.tagger
    if tagger is not None:
        decided = tagger.decide(tagger.predict(images))
        known = tagger.tags.index
        for sample, found in zip(samples, decided):
            value = tag_recall(found, sample.meta.get("tags", []), known)
            if np.isfinite(value):
                rows.append(ScoreRow(sample.id, tagger.info.id, TAG_RECALL, value))
    judge = judges.alignment
    if judge is not None:
        if judge is tagger:
            values = tagger.text_scores(images, [s.meta.get("tags", []) for s in samples])
        else:
            values = judge.scores(images, [s.meta["anchor_text"] for s in samples])
        for sample, value in zip(samples, values):
            if np.isfinite(value):
                rows.append(ScoreRow(sample.id, judge.info.id, ANCHOR_SCORE, float(value)))
    return rows


def paired_rows(
    pairs: Sequence[tuple[SampleView, SampleView]],
    anchor_scores: dict[int, float],
    embeddings: dict[int, np.ndarray],
    judges: JudgeSet,
) -> list[ScoreRow]:
    """(sample, its anchor-language sample) pairs -> anchored alignment and cross-lingual cosine."""
    rows: list[ScoreRow] = []
    align, embedder = judges.alignment, judges.embedder
    for sample, anchor in pairs:
        if align is not None and sample.id in anchor_scores and anchor.id in anchor_scores:
            if sample.id == anchor.id:
                value = 1.0
            else:
                a = anchor_scores[anchor.id]
                value = anchor_scores[sample.id] / a if a > 0 else float("nan")
            if np.isfinite(value):
                rows.append(ScoreRow(sample.id, align.info.id, ANCHORED, value))
        if embedder is not None and sample.id in embeddings and anchor.id in embeddings:
            value = 1.0 if sample.id == anchor.id else cosine(embeddings[sample.id], embeddings[anchor.id])
            if np.isfinite(value):
                rows.append(ScoreRow(sample.id, embedder.info.id, COSINE, value))
    return rows


def summarize(records: Sequence[dict[str, Any]], anchor: str = "en", num_bootstrap: int = 1000, seed: int = 0) -> dict[str, Any]:
    """records: dicts with item_id, language, metric, value. Per language: each metric's mean with a
    95% interval (scenes resampled) and the gap to the anchor language with a paired interval."""
    kw = {"num_bootstrap": num_bootstrap, "seed": seed}
    grouped: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        grouped[(r["language"], r["metric"])].append(r)
    languages = sorted({r["language"] for r in records}, key=lambda l: (l != anchor, l))
    by_language: dict[str, Any] = {}
    for lang in languages:
        entry: dict[str, Any] = {}
        for metric in REPORTED:
            rows = grouped.get((lang, metric), [])
            if not rows:
                continue
            est = bootstrap_mean([r["value"] for r in rows], groups=[r["item_id"] for r in rows], **kw).as_dict()
            anchor_rows = grouped.get((anchor, metric), [])
            if anchor_rows:
                est["gap_to_english"] = bootstrap_gap(
                    [r["value"] for r in rows],
                    [r["value"] for r in anchor_rows],
                    groups=[r["item_id"] for r in rows],
                    anchor_groups=[r["item_id"] for r in anchor_rows],
                    **kw,
                ).as_dict()
            entry[metric] = est
        by_language[lang] = entry
    overall = {}
    for metric in REPORTED:
        rows = [r for r in records if r["metric"] == metric and r["language"] != anchor]
        if rows:
            overall[metric + "_non_english"] = bootstrap_mean(
                [r["value"] for r in rows], groups=[r["item_id"] for r in rows], **kw
            ).as_dict()
    return {"overall": overall, "by_language": by_language, "n_scenes": len({r["item_id"] for r in records})}
