"""The one interval method of the hub: a cluster bootstrap over suite items.

Every board, the eval report, the CSV exports and the CLI call `cluster_bootstrap` (and `paired_gap`
for a language's gap to English), so the same rows always give the same interval.

Why items are the cluster. The samples of one character (or scene, or edit case) across seeds and
languages are correlated: they share the item's difficulty. Resampling single samples would count
them as independent evidence and give intervals that are too narrow. So whole items are resampled
with replacement, each carrying all of its samples.

How seed variation gets in. Each item's seeds are derived from (suite, item, seed index) (see
`evals.plan.item_seed`), so the noise draw of one item is independent of every other item's; within
an item the same seeds serve every language, which keeps language gaps paired. An item's mean then
contains its own seed noise, and resampling items propagates both parts of the variance of the grand
mean: var(item effect) / I + var(seed noise) / (I * S). (When all items shared seeds 0..S-1, a lucky or
unlucky seed moved every item at once and no item resampling could show it; per-item seeds remove
that shared term by construction.)

Few items. Suites have ~20 items, where a plain percentile bootstrap undercovers (0.92 in simulation).
The replicates are widened around the point estimate by sqrt(I / (I - 1)) (the bootstrap variance's
bias) times t(I - 1) / z (the variance is itself estimated from I items), as a t interval would be.
`tests/test_intervals.py` checks coverage on simulated suites where seeds matter (0.93-0.97).

With fewer than 2 items there is nothing to resample: the bounds are NaN ("no interval"), never a
zero-width interval that would overstate certainty.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from statistics import NormalDist
from typing import Any

import numpy as np

DEFAULT_BOOTSTRAP = 1000
DEFAULT_CONFIDENCE = 0.95


@dataclass(frozen=True)
class Estimate:
    mean: float
    lower: float
    upper: float
    n: int  # samples
    n_items: int = 0  # clusters (characters, scenes, edit cases)

    def as_dict(self) -> dict[str, Any]:
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in asdict(self).items()}

    @property
    def has_interval(self) -> bool:
        return math.isfinite(self.lower) and math.isfinite(self.upper)


NO_ESTIMATE = Estimate(float("nan"), float("nan"), float("nan"), 0, 0)


def _clusters(values: Sequence[float] | np.ndarray, items: Sequence[Any]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Per item: the sum and count of its finite values (NaNs dropped with their labels)."""
    raw = np.asarray(values, dtype=np.float64).reshape(-1)
    labels = np.asarray([str(item) for item in items], dtype=object)
    if len(labels) != len(raw):
        raise ValueError(f"{len(raw)} values but {len(labels)} item labels")
    keep = np.isfinite(raw)
    raw, labels = raw[keep], labels[keep]
    if raw.size == 0:
        return [], np.zeros(0), np.zeros(0)
    names, inverse = np.unique(labels.astype(str), return_inverse=True)
    sums = np.bincount(inverse, weights=raw, minlength=len(names))
    counts = np.bincount(inverse, minlength=len(names)).astype(np.float64)
    return [str(n) for n in names], sums, counts


@functools.lru_cache(maxsize=512)
def widening(k: int, confidence: float = DEFAULT_CONFIDENCE) -> float:
    """How much the bootstrap spread is widened with k items: sqrt(k / (k - 1)) corrects the bootstrap's
    biased variance, and t(k - 1) / z allows for the variance itself being estimated from k items."""
    from scipy.stats import norm, t

    q = 0.5 + confidence / 2.0
    return math.sqrt(k / (k - 1)) * float(t.ppf(q, k - 1) / norm.ppf(q))


def _percentile_interval(point: float, replicates: np.ndarray, k: int, confidence: float,
                         bounds: tuple[float, float]) -> tuple[float, float]:
    """Percentile interval of the widened replicates, kept within `bounds` (the range of the item means:
    a mean cannot lie outside it, and a hit rate never outside [0, 1])."""
    widened = point + widening(k, confidence) * (replicates - point)
    alpha = (1.0 - confidence) / 2.0
    lower, upper = np.quantile(widened, [alpha, 1.0 - alpha])
    return float(max(lower, bounds[0])), float(min(upper, bounds[1]))


def cluster_bootstrap(
    values: Sequence[float] | np.ndarray,
    items: Sequence[Any],
    *,
    num_bootstrap: int = DEFAULT_BOOTSTRAP,
    confidence: float = DEFAULT_CONFIDENCE,
    seed: int = 0,
) -> Estimate:
    """Mean of `values` with a 95% cluster-bootstrap interval, `items` naming each value's cluster."""
    names, sums, counts = _clusters(values, items)
    k, n = len(names), int(counts.sum())
    if k == 0:
        return NO_ESTIMATE
    point = float(sums.sum() / counts.sum())
    if k == 1 or num_bootstrap <= 0:
        return Estimate(point, float("nan"), float("nan"), n, k)
    draws = np.random.default_rng(seed).integers(0, k, size=(num_bootstrap, k))
    replicates = sums[draws].sum(axis=1) / counts[draws].sum(axis=1)
    item_means = sums / counts
    lower, upper = _percentile_interval(point, replicates, k, confidence, (float(item_means.min()), float(item_means.max())))
    return Estimate(point, lower, upper, n, k)


def paired_gap(
    values: Sequence[float] | np.ndarray,
    items: Sequence[Any],
    anchor_values: Sequence[float] | np.ndarray,
    anchor_items: Sequence[Any],
    *,
    num_bootstrap: int = DEFAULT_BOOTSTRAP,
    confidence: float = DEFAULT_CONFIDENCE,
    seed: int = 0,
) -> Estimate:
    """mean(values) - mean(anchor_values) over the items both have, resampling those items once per
    round for both means: the interval shows what the language changes, not which items were drawn."""
    names, sums, counts = _clusters(values, items)
    anchor_names, anchor_sums, anchor_counts = _clusters(anchor_values, anchor_items)
    shared = sorted(set(names) & set(anchor_names))
    if not shared:
        return NO_ESTIMATE
    pick = np.array([names.index(s) for s in shared])
    anchor_pick = np.array([anchor_names.index(s) for s in shared])
    sv, cv = sums[pick], counts[pick]
    sa, ca = anchor_sums[anchor_pick], anchor_counts[anchor_pick]
    point = float(sv.sum() / cv.sum() - sa.sum() / ca.sum())
    k, n = len(shared), int(cv.sum())
    if k == 1 or num_bootstrap <= 0:
        return Estimate(point, float("nan"), float("nan"), n, k)
    draws = np.random.default_rng(seed).integers(0, k, size=(num_bootstrap, k))
    replicates = sv[draws].sum(1) / cv[draws].sum(1) - sa[draws].sum(1) / ca[draws].sum(1)
    item_gaps = sv / cv - sa / ca
    lower, upper = _percentile_interval(point, replicates, k, confidence, (float(item_gaps.min()), float(item_gaps.max())))
    return Estimate(point, lower, upper, n, k)


def binomial_interval(hits: int, n: int, confidence: float = DEFAULT_CONFIDENCE) -> Estimate:
    """Hit rate of ONE item over n seeds (a character probe), with its Wilson score interval.

    With one item there are no clusters to resample; the seeds are independent draws of the same
    question, so the binomial interval is the honest one. It never collapses to zero width at 0/n or n/n
    (4 hits of 4 reads [0.51, 1.00]), which a bootstrap over 4 seeds would."""
    if n <= 0:
        return NO_ESTIMATE
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return Estimate(p, max(0.0, centre - half), min(1.0, centre + half), n, 1)


def format_estimate(mean: float | None, lower: float | None = None, upper: float | None = None, *, percent: bool = False) -> str:
    """'0.83 [0.50, 1.00]' (or '83% [50, 100]'); '—' for no value, no brackets without an interval."""

    def finite(x: float | None) -> bool:
        return x is not None and isinstance(x, (int, float)) and math.isfinite(x)

    if not finite(mean):
        return "—"
    if percent:
        text = f"{100 * mean:.0f}%"
        return text + (f" [{100 * lower:.0f}, {100 * upper:.0f}]" if finite(lower) and finite(upper) else "")
    text = f"{mean:.2f}"
    return text + (f" [{lower:.2f}, {upper:.2f}]" if finite(lower) and finite(upper) else "")
