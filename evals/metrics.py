"""Metric maths, pure numpy and small enough to check by hand.

Per sample:
- `character_hit`: 1 when the judge recognises the character, else 0.
- `tag_recall(predicted, expected, known)`: share of the scene's expected tags the tagger found, over
  the expected tags the tagger knows (a tag outside its vocabulary can't be found, so it doesn't count).
- `anchored_alignment(score_L, score_anchor)`: judge(image from language L, English text) divided by
  judge(image from English, English text), same scene and seed. 1.0 = as faithful as English; the
  judge's own language bias stays out because both scores use the English text.
- `cosine(a, b)`: cross-lingual consistency, cosine of the image embeddings of the L image and the
  English image (same scene and seed).

Aggregates (means with 95% intervals) are `leaderboards.intervals`: one method for every number the hub
shows.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

# ------------------------------------------------------------------------------------ per sample


def tag_recall(predicted: Iterable[str], expected: Sequence[str], known: Iterable[str] | None = None) -> float:
    """|expected ∩ predicted| / |expected ∩ known|; NaN when no expected tag is known."""
    predicted = set(predicted)
    known_set = None if known is None else set(known)
    counted = [t for t in expected if known_set is None or t in known_set]
    if not counted:
        return float("nan")
    return sum(1 for t in counted if t in predicted) / len(counted)


def anchored_alignment(score: float, anchor_score: float) -> float:
    """score / anchor_score; NaN when the anchor score is not positive (ratio undefined)."""
    if not np.isfinite(anchor_score) or anchor_score <= 0 or not np.isfinite(score):
        return float("nan")
    return float(score) / float(anchor_score)


def cosine(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> float:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    denom = np.linalg.norm(a) * np.linalg.norm(b)
    if denom == 0:
        return float("nan")
    return float(np.dot(a, b) / denom)


def hit_rate(hits: Sequence[float]) -> float:
    values = np.asarray(hits, dtype=np.float64).reshape(-1)
    values = values[np.isfinite(values)]
    return float(values.mean()) if values.size else float("nan")
