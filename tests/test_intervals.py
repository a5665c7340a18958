"""The hub's one interval method (`leaderboards.intervals`): by hand, and its coverage on simulated
suites where seeds matter (the claim the boards make)."""

import math

import numpy as np
import pytest

from leaderboards.intervals import cluster_bootstrap, format_estimate, paired_gap


def test_point_estimate_and_interval_by_hand():
    est = cluster_bootstrap([1, 0, 1, 1], ["a", "b", "c", "d"], num_bootstrap=500)
    assert est.mean == 0.75 and est.n == 4 and est.n_items == 4
    assert 0.0 <= est.lower <= 0.75 <= est.upper <= 1.0  # never outside the range of the item means
    # Constant data: a zero-width interval. NaNs are dropped with their labels.
    est = cluster_bootstrap([1, 1, float("nan"), 1], ["a", "b", "c", "d"])
    assert (est.mean, est.lower, est.upper, est.n) == (1.0, 1.0, 1.0, 3)
    # One item: nothing to resample, so no interval (never a zero-width claim).
    single = cluster_bootstrap([1, 0, 1], ["a", "a", "a"])
    assert single.mean == pytest.approx(2 / 3) and math.isnan(single.lower) and not single.has_interval
    empty = cluster_bootstrap([], [])
    assert empty.n == 0 and math.isnan(empty.mean) and empty.as_dict()["mean"] is None
    with pytest.raises(ValueError, match="3 values but 2 item labels"):
        cluster_bootstrap([1, 2, 3], ["a", "b"])


def test_seeded_and_order_free():
    rng = np.random.default_rng(1)
    values, items = rng.random(60), np.repeat(np.arange(20), 3)
    first = cluster_bootstrap(values, items, seed=3)
    assert first == cluster_bootstrap(values, items, seed=3)
    order = rng.permutation(60)
    assert cluster_bootstrap(values[order], items[order], seed=3) == first  # the same rows in any order


def test_items_not_samples_are_resampled():
    """Seeds of one character are correlated: resampling characters gives a wider interval than treating
    160 samples as independent."""
    per_character = np.random.default_rng(0).random(20) < 0.5
    values = np.repeat(per_character.astype(float), 8)
    items = np.repeat(np.arange(20), 8)
    clustered = cluster_bootstrap(values, items, num_bootstrap=2000)
    naive = cluster_bootstrap(values, np.arange(160), num_bootstrap=2000)
    assert (clustered.upper - clustered.lower) > 2.0 * (naive.upper - naive.lower)


def _simulated_suite(rng, items: int, seeds: int, languages: int, shared_seeds: bool):
    """Binary hits: p = logistic(0.3 + item effect + seed effect). Seeds matter (seed sd 1.5 > item sd
    0.3). Per-item seeds (the hub's scheme): each item draws its own seed effects. Shared seeds (the old
    scheme, 0..S-1 for every item): one seed effect per seed index, common to all items."""
    item_effect = rng.normal(0, 0.3, items)
    seed_effect = np.tile(rng.normal(0, 1.5, seeds), (items, 1)) if shared_seeds else rng.normal(0, 1.5, (items, seeds))
    p = 1 / (1 + np.exp(-(0.3 + item_effect[:, None] + seed_effect)))
    hits = (rng.random((items, seeds, languages)) < p[:, :, None]).astype(float)  # languages of one seed share p
    return hits.reshape(-1), np.repeat(np.arange(items), seeds * languages)


def _true_rate(rng) -> float:
    return float(np.mean(1 / (1 + np.exp(-(0.3 + rng.normal(0, 0.3, 400_000) + rng.normal(0, 1.5, 400_000))))))


@pytest.mark.parametrize("items", [20, 40])
def test_coverage_when_seeds_matter(items):
    """With per-item seeds, 95% intervals cover the true hit rate 93-97% of the time (600 suites of 2
    seeds x 3 languages each), although the seed noise dwarfs the item differences."""
    rng = np.random.default_rng(items)
    truth = _true_rate(rng)
    studies, covered = 600, 0
    for study in range(studies):
        values, labels = _simulated_suite(rng, items, seeds=2, languages=3, shared_seeds=False)
        est = cluster_bootstrap(values, labels, num_bootstrap=400, seed=study)
        covered += est.lower <= truth <= est.upper
    assert 0.93 <= covered / studies <= 0.97


def test_shared_seeds_break_coverage():
    """The failure per-item seeds fix: with the same seeds for every item, one noise draw moves the
    whole board and no item resampling can show it (coverage far below 95%)."""
    rng = np.random.default_rng(7)
    truth = _true_rate(rng)
    covered = 0
    for study in range(300):
        values, labels = _simulated_suite(rng, 20, seeds=2, languages=3, shared_seeds=True)
        est = cluster_bootstrap(values, labels, num_bootstrap=300, seed=study)
        covered += est.lower <= truth <= est.upper
    assert covered / 300 < 0.7


def test_paired_gap_by_hand():
    # Items a, b: language L gets 1, 0; English 1, 1 -> gap -0.5.
    est = paired_gap([1, 0], ["a", "b"], [1, 1], ["a", "b"], num_bootstrap=200)
    assert est.mean == pytest.approx(-0.5) and -1.0 <= est.lower <= est.mean <= est.upper <= 0.0
    # A constant shift per item gives a zero-width paired interval, however much items vary.
    base = np.linspace(0.1, 0.9, 10)
    items = [str(i) for i in range(10)]
    est = paired_gap(base - 0.1, items, base, items)
    assert est.mean == pytest.approx(-0.1) and est.lower == pytest.approx(-0.1) and est.upper == pytest.approx(-0.1)
    # Only shared items count.
    est = paired_gap([1.0, 5.0], ["a", "z"], [0.0], ["a"])
    assert est.mean == pytest.approx(1.0) and est.n_items == 1 and math.isnan(est.lower)


def test_format_estimate():
    assert format_estimate(0.8333333, 0.5, 1.0) == "0.83 [0.50, 1.00]"
    assert format_estimate(0.8333333, 0.5, 1.0, percent=True) == "83% [50, 100]"
    assert format_estimate(0.5, float("nan"), float("nan")) == "0.50"
    assert format_estimate(None) == "—" and format_estimate(float("nan")) == "—"
