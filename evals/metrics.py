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

Aggregates: mean with a percentile bootstrap 95% interval. When samples come in clusters (several seeds
of one character), `groups` makes it a cluster bootstrap: whole clusters are resampled, so seeds of the
same item don't pass for independent evidence.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Iterable, Sequence

import numpy as np

DEFAULT_BOOTSTRAP = 1000
DEFAULT_CONFIDENCE = 0.95


@dataclass(frozen=True)
class Estimate:
    mean: float
    lower: float
    upper: float
    n: int

    def as_dict(self) -> dict[str, Any]:
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in asdict(self).items()}


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
    values = _finite(hits)
    return float(values.mean()) if values.size else float("nan")


# ------------------------------------------------------------------------------------ intervals


def _finite(values: Sequence[float] | np.ndarray) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64).reshape(-1)
    return array[np.isfinite(array)]


def _cluster_sums(values: np.ndarray, groups: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
    labels, inverse = np.unique(np.asarray(groups, dtype=object).astype(str), return_inverse=True)
    sums = np.bincount(inverse, weights=values, minlength=len(labels))
    counts = np.bincount(inverse, minlength=len(labels)).astype(np.float64)
    return sums, counts


def bootstrap_mean(
    values: Sequence[float] | np.ndarray,
    *,
    groups: Sequence[Any] | None = None,
    num_bootstrap: int = DEFAULT_BOOTSTRAP,
    confidence: float = DEFAULT_CONFIDENCE,
    seed: int = 0,
) -> Estimate:
    """Mean and percentile-bootstrap interval. NaNs are dropped (with their group labels)."""
    raw = np.asarray(values, dtype=np.float64).reshape(-1)
    mask = np.isfinite(raw)
    array = raw[mask]
    n = int(array.size)
    if n == 0:
        return Estimate(float("nan"), float("nan"), float("nan"), 0)
    mean = float(array.mean())
    if n == 1 or num_bootstrap <= 0:
        return Estimate(mean, mean, mean, n)
    rng = np.random.default_rng(seed)
    alpha = (1.0 - confidence) / 2.0
    if groups is None:
        idx = rng.integers(0, n, size=(num_bootstrap, n))
        stats = array[idx].mean(axis=1)
    else:
        groups = np.asarray(groups, dtype=object)[mask]
        sums, counts = _cluster_sums(array, groups)
        k = len(sums)
        if k == 1:
            return Estimate(mean, mean, mean, n)
        idx = rng.integers(0, k, size=(num_bootstrap, k))
        stats = sums[idx].sum(axis=1) / counts[idx].sum(axis=1)
    lower, upper = np.quantile(stats, [alpha, 1.0 - alpha])
    return Estimate(mean, float(lower), float(upper), n)


def bootstrap_gap(
    values: Sequence[float],
    anchor_values: Sequence[float],
    *,
    groups: Sequence[Any],
    anchor_groups: Sequence[Any],
    num_bootstrap: int = DEFAULT_BOOTSTRAP,
    confidence: float = DEFAULT_CONFIDENCE,
    seed: int = 0,
) -> Estimate:
    """mean(values) - mean(anchor_values), with a paired cluster bootstrap over the shared items.

    Items (groups) are resampled once per round and both means are taken over the same items, so the
    interval reflects the difference a language makes, not which items happened to be drawn.
    """
    v = np.asarray(values, dtype=np.float64)
    a = np.asarray(anchor_values, dtype=np.float64)
    g = np.asarray(groups, dtype=object).astype(str)
    ga = np.asarray(anchor_groups, dtype=object).astype(str)
    mv, ma = np.isfinite(v), np.isfinite(a)
    v, g, a, ga = v[mv], g[mv], a[ma], ga[ma]
    shared = sorted(set(g) & set(ga))
    if not shared:
        return Estimate(float("nan"), float("nan"), float("nan"), 0)
    pos = {item: i for i, item in enumerate(shared)}
    keep_v = np.isin(g, shared)
    keep_a = np.isin(ga, shared)
    iv = np.array([pos[x] for x in g[keep_v]], dtype=np.int64)
    ia = np.array([pos[x] for x in ga[keep_a]], dtype=np.int64)
    k = len(shared)
    sv = np.bincount(iv, weights=v[keep_v], minlength=k)
    cv = np.bincount(iv, minlength=k).astype(np.float64)
    sa = np.bincount(ia, weights=a[keep_a], minlength=k)
    ca = np.bincount(ia, minlength=k).astype(np.float64)
    gap = float(sv.sum() / cv.sum() - sa.sum() / ca.sum())
    if k == 1 or num_bootstrap <= 0:
        return Estimate(gap, gap, gap, k)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, k, size=(num_bootstrap, k))
    stats = sv[idx].sum(1) / cv[idx].sum(1) - sa[idx].sum(1) / ca[idx].sum(1)
    alpha = (1.0 - confidence) / 2.0
    lower, upper = np.quantile(stats, [alpha, 1.0 - alpha])
    return Estimate(gap, float(lower), float(upper), k)
