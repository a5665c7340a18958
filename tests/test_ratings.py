"""Bradley–Terry ratings: known strengths recovered, intervals cover, ties, edge cases, interface."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import minimize
from scipy.stats import kendalltau

from leaderboards.ratings import (
    DEFAULT_L2,
    RATING_COLUMNS,
    DisconnectedComparisonWarning,
    aggregate_battles,
    bradley_terry,
    bradley_terry_from_counts,
    online_elo,
    win_probability,
)


def simulate(true: dict[str, float], n: int, seed: int, tie_rate: float = 0.0) -> pd.DataFrame:
    """Battles between random distinct pairs, outcomes drawn from the BT model (ties at random)."""
    rng = np.random.default_rng(seed)
    names = np.array(list(true))
    strength = np.array([true[m] for m in names])
    a = rng.integers(0, len(names), n)
    b = (a + rng.integers(1, len(names), n)) % len(names)
    p = 1.0 / (1.0 + 10 ** ((strength[b] - strength[a]) / 400.0))
    u = rng.random(n)
    winner = np.where(u < tie_rate, np.where(rng.random(n) < 0.5, "tie", "tie (bothbad)"),
                      np.where(rng.random(n) < p, "model_a", "model_b"))
    return pd.DataFrame({"model_a": names[a], "model_b": names[b], "winner": winner})


TRUE = {f"m{i}": 1000.0 + 100.0 * (i - 3.5) for i in range(8)}  # mean 1000, 100 points apart


def test_recovers_known_strengths_and_order():
    board = bradley_terry(simulate(TRUE, 20_000, seed=1), num_bootstrap=50)
    assert list(board.columns) == RATING_COLUMNS
    assert board.index.name == "model"
    assert list(board.index) == sorted(TRUE, key=TRUE.get, reverse=True)  # exact order
    truth = pd.Series(TRUE).reindex(board.index)
    assert (board["rating"] - truth).abs().max() < 25
    assert abs(board["rating"].mean() - 1000) < 1e-6  # centred
    inside = ((board["lower"] <= truth) & (truth <= board["upper"])).sum()
    assert inside >= 7


def test_ties_count_as_half_wins_and_recover_order():
    board = bradley_terry(simulate(TRUE, 20_000, seed=2, tie_rate=0.3), num_bootstrap=20)
    tau = kendalltau(board["rating"], pd.Series(TRUE).reindex(board.index)).statistic
    assert tau > 0.95


def test_intervals_cover_true_ratings():
    """Across 30 simulated arenas, the 95% intervals hold the true rating ~95% of the time."""
    true = {"a": 1150.0, "b": 1050.0, "c": 1000.0, "d": 950.0, "e": 850.0}
    hits = total = 0
    for seed in range(30):
        board = bradley_terry(simulate(true, 1_500, seed=100 + seed), num_bootstrap=100, seed=seed)
        truth = pd.Series(true).reindex(board.index)
        hits += int(((board["lower"] <= truth) & (truth <= board["upper"])).sum())
        total += len(board)
    assert hits / total >= 0.85, hits / total


def test_all_ties_give_equal_ratings_and_bothbad_equals_tie():
    battles = pd.DataFrame({"model_a": ["x", "y", "z"] * 20, "model_b": ["y", "z", "x"] * 20, "winner": ["tie"] * 60})
    board = bradley_terry(battles, num_bootstrap=10)
    assert np.allclose(board["rating"], 1000.0)
    bothbad = bradley_terry(battles.assign(winner="tie (bothbad)"), num_bootstrap=10)
    pd.testing.assert_frame_equal(board.sort_index(), bothbad.sort_index())


def test_half_win_equivalence():
    """One tie weighs exactly like one win plus one loss split in halves: 2 ties == 1 win + 1 loss."""
    ties = pd.DataFrame({"model_a": ["p", "p", "p"], "model_b": ["q", "q", "r"], "winner": ["tie", "tie", "model_a"]})
    split = pd.DataFrame({"model_a": ["p", "p", "p"], "model_b": ["q", "q", "r"], "winner": ["model_a", "model_b", "model_a"]})
    a = bradley_terry(ties, num_bootstrap=0)["rating"].sort_index()
    b = bradley_terry(split, num_bootstrap=0)["rating"].sort_index()
    assert np.allclose(a, b)


def test_400_points_per_factor_of_ten():
    # a beats b 10 times out of 11 (odds 10:1) over many battles: ~400 points apart.
    battles = pd.DataFrame({"model_a": ["a"] * 1100, "model_b": ["b"] * 1100, "winner": ["model_a"] * 1000 + ["model_b"] * 100})
    board = bradley_terry(battles, num_bootstrap=0)
    gap = board.loc["a", "rating"] - board.loc["b", "rating"]
    assert abs(gap - 400) < 3
    assert abs(win_probability(1400, 1000) - 10 / 11) < 1e-12


def test_side_symmetry():
    battles = simulate(TRUE, 3_000, seed=3, tie_rate=0.1)
    flipped = pd.DataFrame(
        {
            "model_a": battles["model_b"],
            "model_b": battles["model_a"],
            "winner": battles["winner"].replace({"model_a": "model_b", "model_b": "model_a"}),
        }
    )
    a = bradley_terry(battles, num_bootstrap=0)["rating"].sort_index()
    b = bradley_terry(flipped, num_bootstrap=0)["rating"].sort_index()
    assert np.allclose(a, b, atol=1e-6)


def test_all_wins_and_all_losses_stay_finite_and_ordered():
    battles = pd.concat(
        [
            pd.DataFrame({"model_a": ["champ"] * 15, "model_b": ["mid"] * 15, "winner": ["model_a"] * 15}),
            pd.DataFrame({"model_a": ["mid"] * 10, "model_b": ["mid2"] * 10, "winner": ["model_a", "model_b"] * 5}),
            pd.DataFrame({"model_a": ["mid2"] * 15, "model_b": ["loser"] * 15, "winner": ["model_a"] * 15}),
        ]
    )
    board = bradley_terry(battles, num_bootstrap=50)
    assert np.isfinite(board[["rating", "lower", "upper"]].to_numpy(dtype=float)).all()
    assert board.index[0] == "champ" and board.index[-1] == "loser"
    # "Sensible": bounded by the weak prior, not thousands of points away.
    assert board["rating"].max() - board["rating"].min() < 3000
    # 15-0 is decisive: champ's interval lies above mid's, so it ranks alone on top; the two mids,
    # 5-5 against each other, overlap and share a rank; the loser's interval lies below both.
    assert board.loc["champ", "lower"] > board.loc["mid", "upper"]
    assert board["rank"].to_dict() == {"champ": 1, "mid": 2, "mid2": 2, "loser": 4}


def test_single_battle_and_single_pair():
    board = bradley_terry(pd.DataFrame({"model_a": ["a"], "model_b": ["b"], "winner": ["model_a"]}), num_bootstrap=20)
    assert board.index.tolist() == ["a", "b"]
    assert np.isfinite(board["rating"]).all()
    assert board["provisional"].all()
    assert (board["battles"] == 1).all()


def test_unknown_outcome_labels_are_refused_by_name():
    battles = pd.DataFrame({"model_a": ["a", "a", "b"], "model_b": ["b", "b", "a"], "winner": ["model_a", "tie(bothbad)", "bothbad"]})
    with pytest.raises(ValueError) as err:
        bradley_terry(battles)
    assert "'tie(bothbad)'" in str(err.value) and "'bothbad'" in str(err.value)
    with pytest.raises(ValueError, match="nan"):
        bradley_terry(pd.DataFrame({"model_a": ["a"], "model_b": ["b"], "winner": [float("nan")]}))
    with pytest.raises(ValueError, match="missing column"):
        bradley_terry(pd.DataFrame({"model_a": ["a"], "model_b": ["b"]}))


def test_disconnected_graph_warns_and_flags_components():
    battles = pd.concat([simulate({"a": 1100, "b": 900}, 200, seed=4), simulate({"x": 1000, "y": 1000, "z": 1000}, 300, seed=5)])
    with pytest.warns(DisconnectedComparisonWarning, match="2 groups"):
        board = bradley_terry(battles, num_bootstrap=20)
    assert board.attrs["disconnected"] is True
    assert board.loc["a", "component"] == board.loc["b", "component"]
    assert board.loc["a", "component"] != board.loc["x", "component"]
    for _, group in board.groupby("component"):
        assert abs(group["rating"].mean() - 1000) < 1e-6  # each group centred on its own
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        connected = bradley_terry(simulate(TRUE, 500, seed=6), num_bootstrap=5)
    assert connected.attrs["disconnected"] is False and (connected["component"] == 0).all()


def test_rank_by_interval_overlap_and_sorting():
    board = bradley_terry(simulate(TRUE, 5_000, seed=7), num_bootstrap=60)
    assert board["rating"].is_monotonic_decreasing
    for model, row in board.iterrows():
        expected = 1 + int((board["lower"] > row["upper"]).sum())
        assert row["rank"] == expected, model
    assert board["rank"].iloc[0] == 1


def test_provisional_threshold_is_configurable():
    battles = simulate(TRUE, 400, seed=8)
    counts = bradley_terry(battles, num_bootstrap=0, min_battles=10**6)
    assert counts["provisional"].all()
    assert not bradley_terry(battles, num_bootstrap=0, min_battles=1)["provisional"].any()
    per_model = pd.concat([battles["model_a"], battles["model_b"]]).value_counts()
    assert (counts["battles"] == per_model.reindex(counts.index)).all()


def test_seeded_bootstrap_is_reproducible():
    battles = simulate(TRUE, 2_000, seed=9)
    a = bradley_terry(battles, seed=3)
    pd.testing.assert_frame_equal(a, bradley_terry(battles, seed=3))
    assert not np.allclose(a["lower"], bradley_terry(battles, seed=4)["lower"])


def test_matches_direct_penalised_likelihood_fit():
    """The batched Newton solver agrees with scipy L-BFGS on the per-battle log-likelihood."""
    battles = simulate(TRUE, 3_000, seed=10, tie_rate=0.2)
    ours = bradley_terry(battles, num_bootstrap=0)["rating"]
    names = sorted(TRUE)
    ia = battles["model_a"].map({m: i for i, m in enumerate(names)}).to_numpy()
    ib = battles["model_b"].map({m: i for i, m in enumerate(names)}).to_numpy()
    y = battles["winner"].map({"model_a": 1.0, "model_b": 0.0, "tie": 0.5, "tie (bothbad)": 0.5}).to_numpy()

    def nll(theta):
        d = theta[ia] - theta[ib]
        p = 1 / (1 + np.exp(-d))
        value = -(y * np.log(p) + (1 - y) * np.log1p(-p)).sum() + 0.5 * DEFAULT_L2 * (theta**2).sum()
        g_pair = p - y
        grad = np.bincount(ia, g_pair, len(names)) - np.bincount(ib, g_pair, len(names)) + DEFAULT_L2 * theta
        return value, grad

    theta = minimize(nll, np.zeros(len(names)), jac=True, method="L-BFGS-B", options={"gtol": 1e-10}).x
    reference = pd.Series(1000 + 400 / math.log(10) * (theta - theta.mean()), index=names)
    assert np.allclose(ours.reindex(names), reference, atol=0.05)


def test_counts_interface_matches_per_battle_interface():
    battles = simulate(TRUE, 2_000, seed=11, tie_rate=0.1)
    counts = aggregate_battles(battles)
    assert counts["count"].sum() == len(battles)
    assert len(counts) <= 8 * 7 * 4
    pd.testing.assert_frame_equal(bradley_terry(battles, seed=1), bradley_terry_from_counts(counts, seed=1))


def test_self_battles_are_ignored_and_empty_input():
    board = bradley_terry(pd.DataFrame({"model_a": ["a", "a"], "model_b": ["a", "b"], "winner": ["model_a", "tie"]}), num_bootstrap=0)
    assert board.loc["a", "battles"] == 1
    empty = bradley_terry(pd.DataFrame({"model_a": [], "model_b": [], "winner": []}))
    assert empty.empty and list(empty.columns) == RATING_COLUMNS


def test_online_elo_k4():
    ratings = online_elo(pd.DataFrame({"model_a": ["a"], "model_b": ["b"], "winner": ["model_a"]}))
    assert ratings == pytest.approx({"a": 1002.0, "b": 998.0})
    ratings = online_elo([("a", "b", "tie (bothbad)")], initial={"a": 1100.0, "b": 1000.0})
    assert ratings["a"] < 1100.0 and ratings["a"] + ratings["b"] == pytest.approx(2100.0)
    with pytest.raises(ValueError, match="bothbad"):
        online_elo([("a", "b", "bothbad")])
