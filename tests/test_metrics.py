"""Metric maths on hand-computed cases, and interval coverage on synthetic data."""

import math

import numpy as np
import pytest

from evals import character, multilingual
from evals.metrics import (
    anchored_alignment,
    bootstrap_gap,
    bootstrap_mean,
    cosine,
    hit_rate,
    tag_recall,
)


def test_tag_recall_by_hand():
    # 2 of the 3 expected tags found; extra predicted tags don't matter.
    assert tag_recall({"1girl", "umbrella", "smile"}, ["1girl", "umbrella", "rain"]) == pytest.approx(2 / 3)
    # A tag the tagger does not know is not counted against the image: 1 of the 2 known tags found.
    assert tag_recall({"1girl"}, ["1girl", "rain", "unknown_tag"], known={"1girl", "rain"}) == pytest.approx(0.5)
    assert tag_recall(set(), ["1girl"]) == 0.0
    assert math.isnan(tag_recall({"1girl"}, ["x"], known={"1girl"}))


def test_anchored_alignment_by_hand():
    assert anchored_alignment(0.3, 0.6) == pytest.approx(0.5)
    assert anchored_alignment(0.6, 0.6) == pytest.approx(1.0)
    assert anchored_alignment(0.9, 0.6) == pytest.approx(1.5)
    assert math.isnan(anchored_alignment(0.5, 0.0))
    assert math.isnan(anchored_alignment(float("nan"), 0.5))


def test_cosine_by_hand():
    assert cosine([1, 0], [0, 1]) == pytest.approx(0.0)
    assert cosine([1, 1], [2, 2]) == pytest.approx(1.0)
    assert cosine([3, 4], [4, 3]) == pytest.approx(24 / 25)
    assert cosine([1, 0], [-1, 0]) == pytest.approx(-1.0)
    assert math.isnan(cosine([0, 0], [1, 0]))


def test_hit_rate_and_bootstrap_point_estimate():
    values = [1, 0, 1, 1]
    assert hit_rate(values) == 0.75
    est = bootstrap_mean(values, num_bootstrap=500)
    assert est.mean == 0.75 and est.n == 4
    assert 0.0 <= est.lower <= 0.75 <= est.upper <= 1.0
    # Constant data: a zero-width interval. NaNs are dropped.
    est = bootstrap_mean([1, 1, float("nan"), 1])
    assert (est.mean, est.lower, est.upper, est.n) == (1.0, 1.0, 1.0, 3)
    empty = bootstrap_mean([])
    assert empty.n == 0 and math.isnan(empty.mean)
    assert empty.as_dict()["mean"] is None  # JSON-friendly


def test_bootstrap_is_seeded():
    data = np.random.default_rng(1).random(30)
    assert bootstrap_mean(data, seed=3) == bootstrap_mean(data, seed=3)


@pytest.mark.parametrize("p", [0.2, 0.5])
def test_interval_coverage_on_synthetic_bernoulli(p):
    """95% intervals from 300 synthetic studies (n=80) should cover the true rate ~95% of the time."""
    rng = np.random.default_rng(0)
    covered = 0
    studies = 300
    for i in range(studies):
        sample = (rng.random(80) < p).astype(float)
        est = bootstrap_mean(sample, num_bootstrap=400, seed=i)
        covered += est.lower <= p <= est.upper
    assert 0.89 <= covered / studies <= 0.99


def test_cluster_bootstrap_is_wider_for_correlated_seeds():
    """Seeds of one character are not independent: resampling characters gives a wider interval."""
    rng = np.random.default_rng(0)
    per_character = rng.random(20) < 0.5
    values = np.repeat(per_character.astype(float), 8)  # 8 identical seeds per character
    groups = np.repeat(np.arange(20), 8)
    naive = bootstrap_mean(values, num_bootstrap=2000)
    clustered = bootstrap_mean(values, groups=groups, num_bootstrap=2000)
    assert naive.mean == clustered.mean
    assert (clustered.upper - clustered.lower) > 1.8 * (naive.upper - naive.lower)


def test_cluster_interval_coverage():
    rng = np.random.default_rng(5)
    covered, studies = 0, 200
    for i in range(studies):
        ability = rng.random(40) < 0.4  # per item, seeds identical
        values = np.repeat(ability.astype(float), 3)
        groups = np.repeat(np.arange(40), 3)
        est = bootstrap_mean(values, groups=groups, num_bootstrap=400, seed=i)
        covered += est.lower <= 0.4 <= est.upper
    assert 0.89 <= covered / studies <= 0.99


def test_gap_by_hand_and_paired_interval():
    # Items a, b: language L gets 1, 0; English 1, 1 -> gap -0.5.
    est = bootstrap_gap([1, 0], [1, 1], groups=["a", "b"], anchor_groups=["a", "b"], num_bootstrap=200)
    assert est.mean == pytest.approx(-0.5)
    assert -1.0 <= est.lower <= est.mean <= est.upper <= 0.0
    # A constant shift per item gives a zero-width paired interval, however much items vary.
    base = np.linspace(0.1, 0.9, 10)
    items = [str(i) for i in range(10)]
    est = bootstrap_gap(base - 0.1, base, groups=items, anchor_groups=items)
    assert est.mean == pytest.approx(-0.1)
    assert est.lower == pytest.approx(-0.1) and est.upper == pytest.approx(-0.1)
    # Only shared items count.
    est = bootstrap_gap([1.0, 5.0], [0.0], groups=["a", "z"], anchor_groups=["a"])
    assert est.mean == pytest.approx(1.0) and est.n == 1


def test_character_summary_by_tier_and_language():
    records = []
    for item, tier, en, ja in [("a", "popular", 1, 1), ("b", "popular", 1, 0), ("c", "non_anime", 0, 0)]:
        records.append({"item_id": item, "tier": tier, "language": "en", "value": en})
        records.append({"item_id": item, "tier": tier, "language": "ja", "value": ja})
    summary = character.summarize(records, num_bootstrap=100)
    assert summary["overall"]["hit_rate"]["mean"] == pytest.approx(3 / 6)
    assert summary["by_language"]["en"]["hit_rate"]["mean"] == pytest.approx(2 / 3)
    assert summary["by_language"]["ja"]["hit_rate"]["mean"] == pytest.approx(1 / 3)
    assert summary["by_language"]["ja"]["gap_to_english"]["mean"] == pytest.approx(-1 / 3)
    assert list(summary["by_tier"]) == ["popular", "non_anime"]
    assert summary["by_tier"]["popular"]["hit_rate"]["mean"] == pytest.approx(0.75)
    assert summary["by_tier"]["popular"]["by_language"]["ja"]["hit_rate"]["mean"] == pytest.approx(0.5)
    assert summary["by_tier"]["non_anime"]["n_characters"] == 1


def test_multilingual_summary_gap():
    records = [
        {"item_id": "s1", "language": "en", "metric": "tag_recall", "value": 1.0},
        {"item_id": "s2", "language": "en", "metric": "tag_recall", "value": 0.5},
        {"item_id": "s1", "language": "es", "metric": "tag_recall", "value": 0.5},
        {"item_id": "s2", "language": "es", "metric": "tag_recall", "value": 0.5},
        {"item_id": "s1", "language": "es", "metric": "anchored_alignment", "value": 0.8},
    ]
    summary = multilingual.summarize(records, num_bootstrap=100)
    assert list(summary["by_language"]) == ["en", "es"]
    es = summary["by_language"]["es"]
    assert es["tag_recall"]["mean"] == pytest.approx(0.5)
    assert es["tag_recall"]["gap_to_english"]["mean"] == pytest.approx(-0.25)
    assert es["anchored_alignment"]["mean"] == pytest.approx(0.8)
    assert "gap_to_english" not in es["anchored_alignment"]  # no English value recorded for it
