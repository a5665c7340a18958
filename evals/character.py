"""Character recognition: can the model draw this character, in this prompt language?

Per sample, `character_hit` = 1 when the tagger gives the character's tag at or above its threshold
(0.85 by default for WD v3). For characters the tagger has no tag for, the reference judge decides
("same character" as the gallery in `references`); with neither, the sample is left unjudged (no score
row) rather than counted as a miss. `character_prob` keeps the raw evidence (tag probability, or the
share of agreeing references).

The report: hit rate with a cluster-bootstrap 95% interval (characters resampled, seeds kept together),
overall, per tier and per language, and each language's gap to English (paired over characters).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Sequence

import numpy as np

from evals.judgeset import JudgeSet
from evals.metrics import bootstrap_gap, bootstrap_mean
from evals.samples import SampleView, ScoreRow

HIT = "character_hit"
EVIDENCE = "character_prob"
METRICS = (HIT, EVIDENCE)
TIER_ORDER = ("popular", "niche", "non_anime")


def judge_for(sample: SampleView, judges: JudgeSet) -> Any:
    """Which judge can decide this sample: the tagger if it knows the tag, else the reference judge."""
    tag = sample.meta.get("tag")
    if tag and judges.tagger is not None and judges.tagger.has_tag(tag):
        return judges.tagger
    if sample.meta.get("references") and judges.reference is not None:
        return judges.reference
    return None


def expected_metrics(sample: SampleView, judges: JudgeSet) -> list[tuple[str, str]]:
    judge = judge_for(sample, judges)
    return [] if judge is None else [(judge.info.id, HIT), (judge.info.id, EVIDENCE)]


def score_samples(samples: Sequence[SampleView], judges: JudgeSet) -> list[ScoreRow]:
    """Scores for a batch of samples: one tagger pass for all, one reference pass per gallery."""
    rows: list[ScoreRow] = []
    by_tagger = [s for s in samples if judge_for(s, judges) is judges.tagger and judges.tagger is not None]
    if by_tagger:
        tagger = judges.tagger
        probs = tagger.predict([s.load() for s in by_tagger])
        for sample, row in zip(by_tagger, probs):
            tag = sample.meta["tag"]
            p = float(row[tagger.tags.index[tag]])
            rows.append(ScoreRow(sample.id, tagger.info.id, EVIDENCE, p))
            rows.append(ScoreRow(sample.id, tagger.info.id, HIT, float(p >= tagger.threshold_for(tag))))
    by_gallery: dict[str, list[SampleView]] = defaultdict(list)
    for s in samples:
        if judges.reference is not None and judge_for(s, judges) is judges.reference:
            by_gallery[str(s.meta["references"])].append(s)
    for gallery, group in by_gallery.items():
        verdicts = judges.reference.judge([s.load() for s in group], gallery)
        for sample, verdict in zip(group, verdicts):
            rows.append(ScoreRow(sample.id, judges.reference.info.id, EVIDENCE, verdict.fraction))
            rows.append(ScoreRow(sample.id, judges.reference.info.id, HIT, float(verdict.same)))
    return rows


def _estimate(values, groups, **kw) -> dict[str, Any]:
    return bootstrap_mean(values, groups=groups, **kw).as_dict()


def summarize(records: Sequence[dict[str, Any]], anchor: str = "en", num_bootstrap: int = 1000, seed: int = 0) -> dict[str, Any]:
    """records: dicts with item_id, language, tier, value (character_hit). Hit rates with intervals."""
    kw = {"num_bootstrap": num_bootstrap, "seed": seed}
    if not records:
        return {"overall": None, "by_language": {}, "by_tier": {}}
    values = np.array([r["value"] for r in records], dtype=float)
    items = [r["item_id"] for r in records]
    languages = sorted({r["language"] for r in records}, key=lambda l: (l != anchor, l))
    tiers = sorted({r["tier"] for r in records}, key=lambda t: (TIER_ORDER.index(t) if t in TIER_ORDER else 99, t))

    def block(subset: list[dict[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {"hit_rate": _estimate([r["value"] for r in subset], [r["item_id"] for r in subset], **kw)}
        out["n_characters"] = len({r["item_id"] for r in subset})
        return out

    def by_language(subset: list[dict[str, Any]]) -> dict[str, Any]:
        result = {}
        anchor_rows = [r for r in subset if r["language"] == anchor]
        for lang in languages:
            rows = [r for r in subset if r["language"] == lang]
            if not rows:
                continue
            entry = block(rows)
            if anchor_rows:
                entry["gap_to_english"] = bootstrap_gap(
                    [r["value"] for r in rows],
                    [r["value"] for r in anchor_rows],
                    groups=[r["item_id"] for r in rows],
                    anchor_groups=[r["item_id"] for r in anchor_rows],
                    **kw,
                ).as_dict()
            result[lang] = entry
        return result

    summary = {
        "overall": {"hit_rate": _estimate(values, items, **kw), "n_characters": len(set(items)), "n_samples": len(records)},
        "by_language": by_language(list(records)),
        "by_tier": {},
    }
    for tier in tiers:
        subset = [r for r in records if r["tier"] == tier]
        entry = block(subset)
        entry["by_language"] = by_language(subset)
        summary["by_tier"][tier] = entry
    return summary
