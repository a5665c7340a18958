"""Benchmark: `bradley_terry` on 1,000,000 battles among 50 models with 100 bootstrap rounds
(goal: <= 10 s on 2 cores), and against the common per-battle approach, both really run in this process
on the same battles: scikit-learn LogisticRegression (no intercept, +1/-1 design, ties as two
half-weighted rows) refitted for every bootstrap round on per-battle resamples.

The baseline is slow (minutes per 100 rounds at 1M battles), so the head-to-head runs on a random
subsample of `--baseline-battles` battles (default 50,000: the scale is printed), with every one of the
`--rounds` bootstrap rounds fitted on both sides; nothing is projected. Goal: >= 25x the baseline there
(measured 42x at 50,000 battles on 2 cores; goals sit near the measured value / 1.5).

    python benchmarks/bench_ratings.py [--battles 1000000] [--models 50] [--rounds 100] [--baseline-battles 50000]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.sparse import csr_matrix
from scipy.stats import kendalltau
from sklearn.linear_model import LogisticRegression

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from leaderboards.ratings import bradley_terry  # noqa: E402


def synthetic_battles(n: int, n_models: int, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    true = rng.normal(1000, 150, n_models)
    names = np.array([f"model-{i:02d}" for i in range(n_models)])
    a = rng.integers(0, n_models, n)
    b = (a + rng.integers(1, n_models, n)) % n_models
    p = 1 / (1 + 10 ** ((true[b] - true[a]) / 400))
    u = rng.random(n)
    winner = np.where(u < 0.08, "tie", np.where(u < 0.12, "tie (bothbad)", np.where(rng.random(n) < p, "model_a", "model_b")))
    return pd.DataFrame({"model_a": names[a], "model_b": names[b], "winner": winner}), pd.Series(true - true.mean() + 1000, index=names)


def sklearn_fit(battles: pd.DataFrame, names: pd.Index) -> np.ndarray:
    """Per-battle logistic regression (the approach most arena notebooks use)."""
    n = len(battles)
    ia = names.get_indexer(battles["model_a"])
    ib = names.get_indexer(battles["model_b"])
    tie = battles["winner"].isin(["tie", "tie (bothbad)"]).to_numpy()
    y = (battles["winner"] == "model_a").to_numpy().astype(int)
    # Ties: one half-weighted row for each side winning.
    rows = np.concatenate([np.arange(n), np.arange(n)[tie]])
    ia2, ib2 = ia[rows], ib[rows]
    y2 = np.concatenate([y, np.zeros(tie.sum(), dtype=int)])
    y2[:n][tie] = 1
    w = np.where(np.concatenate([tie, np.ones(tie.sum(), dtype=bool)]), 0.5, 1.0)
    m = len(rows)
    data = np.concatenate([np.full(m, math.log(10)), np.full(m, -math.log(10))])
    X = csr_matrix((data, (np.concatenate([np.arange(m), np.arange(m)]), np.concatenate([ia2, ib2]))), shape=(m, len(names)))
    model = LogisticRegression(fit_intercept=False, C=1e6, tol=1e-6, max_iter=1000)
    model.fit(X, y2, sample_weight=w)
    coef = model.coef_[0]
    return 400 * (coef - coef.mean()) + 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--battles", type=int, default=1_000_000)
    parser.add_argument("--models", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--baseline-battles", type=int, default=50_000)
    args = parser.parse_args()

    battles, true = synthetic_battles(args.battles, args.models)
    print(f"{len(battles):,} battles among {args.models} models, {args.rounds} bootstrap rounds")

    start = time.perf_counter()
    ours = bradley_terry(battles, num_bootstrap=args.rounds, seed=0)
    ours_s = time.perf_counter() - start
    width = (ours["upper"] - ours["lower"]).mean()
    # Ties here are drawn independently of strength, so ratings shrink towards 1000: compare orders.
    tau = kendalltau(ours["rating"], true.reindex(ours.index)).statistic
    print(f"bradley_terry (aggregated, batched Newton): {ours_s:.2f} s  [goal <= 10 s]  "
          f"mean 95% interval width {width:.1f} pts, Kendall tau vs true strengths {tau:.3f}")

    names = pd.Index(sorted(true.index))
    subsample = battles.sample(n=min(args.baseline_battles, len(battles)), random_state=1).reset_index(drop=True)
    start = time.perf_counter()
    ours_small = bradley_terry(subsample, num_bootstrap=args.rounds, seed=0)
    ours_small_s = time.perf_counter() - start
    start = time.perf_counter()
    point = sklearn_fit(subsample, names)
    rng = np.random.default_rng(0)
    for _ in range(args.rounds):
        sklearn_fit(subsample.iloc[rng.integers(0, len(subsample), len(subsample))], names)
    baseline_s = time.perf_counter() - start
    agree = np.abs(point - ours_small["rating"].reindex(names).to_numpy()).max()
    ratio = baseline_s / ours_small_s
    print(f"on {len(subsample):,} battles (subsample), 1 + {args.rounds} fits each: bradley_terry {ours_small_s:.2f} s, "
          f"sklearn per-battle LogisticRegression {baseline_s:.2f} s; ratings agree within {agree:.2f} pts")
    print(f"ratio (baseline / bradley_terry) at {len(subsample):,} battles: {ratio:.1f}x")
    from _hub import Goals

    goals = Goals()
    goals.check("bradley_terry on 1M battles, 100 bootstrap rounds", ours_s, 10.0, at_least=False, unit=" s")
    goals.check(f"faster than the per-battle baseline ({len(subsample):,} battles)", ratio, 25.0, at_least=True, unit="x")
    goals.exit()


if __name__ == "__main__":
    main()
