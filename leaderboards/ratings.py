"""Arena ratings: Bradley–Terry with bootstrap intervals, and online Elo for display.

Scale: P(a beats b) = 1 / (1 + 10 ** ((r_b - r_a) / 400)); ratings are 1000 + 400 * log10-odds, centred
so the mean rating of each connected group of models is 1000. `tie` and `tie (bothbad)` count as half a
win for each side.

Fit. Battles are first aggregated into unique (model_a, model_b, outcome) rows with counts, then into
per-pair sufficient statistics (wins of the first model, wins of the second, half wins included). The
maximum-likelihood strengths solve a concave problem that we solve by Newton's method with step
halving, for the full data and for all bootstrap replicates at once (batched 50×50 solves), which is why
a million battles and 100 rounds take well under a second after aggregation.

Regularisation (why all-win / all-loss models stay finite). The plain MLE puts a model that never lost
at +infinity. We add a weak Gaussian prior on the strengths: an L2 penalty `l2 / 2 * sum(theta**2)` on
natural log-odds strengths. The default `l2 = 0.03` is a prior standard deviation of about 1000 rating
points: negligible once a model has a few dozen battles (its data curvature is about n/4), but it keeps an
undefeated model finite and growing only with the log of its wins (10 straight wins against a 1000-rated
field gives about +780). Because the data gradient sums to zero, the penalty also fixes the
(otherwise free) additive constant: the optimum has mean zero in each connected component.

Intervals: multinomial bootstrap over the unique rows (seeded), 2.5 / 97.5 percentiles; a model that
drew no battle in a replicate is left out of that replicate's percentiles. Rank = 1 + number of models
whose lower bound is above this model's upper bound, so models with overlapping intervals share a rank.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix, csr_matrix
from scipy.sparse.csgraph import connected_components

OUTCOMES: tuple[str, ...] = ("model_a", "model_b", "tie", "tie (bothbad)")
# Score of model_a for each outcome (half a win for both kinds of tie).
OUTCOME_SCORE_A: dict[str, float] = {"model_a": 1.0, "model_b": 0.0, "tie": 0.5, "tie (bothbad)": 0.5}
SCALE = 400.0
BASE = 10.0
INIT_RATING = 1000.0
DEFAULT_L2 = 0.03
DEFAULT_MIN_BATTLES = 30
RATING_COLUMNS = ["rating", "lower", "upper", "battles", "rank", "provisional", "component"]
_POINTS_PER_NAT = SCALE / math.log(BASE)


class DisconnectedComparisonWarning(UserWarning):
    """The models fall into groups that were never compared with each other."""


def _validate(battles: pd.DataFrame, winner_column: str = "winner") -> None:
    missing = [c for c in ("model_a", "model_b", winner_column) if c not in battles.columns]
    if missing:
        raise ValueError(f"battles is missing column(s): {', '.join(missing)}")
    labels = pd.unique(battles[winner_column])
    unknown = sorted({repr(x) for x in labels if not (isinstance(x, str) and x in OUTCOME_SCORE_A)})
    if unknown:
        raise ValueError(
            f"unknown outcome label(s) {', '.join(unknown)}; expected one of {', '.join(OUTCOMES)}"
        )


def aggregate_battles(battles: pd.DataFrame) -> pd.DataFrame:
    """Unique (model_a, model_b, winner) rows with a `count` column (self-battles dropped)."""
    _validate(battles)
    if len(battles) == 0:
        return pd.DataFrame({"model_a": [], "model_b": [], "winner": [], "count": []})
    a_codes, a_names = pd.factorize(battles["model_a"].astype(str), sort=False)
    b_codes, b_names = pd.factorize(battles["model_b"].astype(str), sort=False)
    names = pd.Index(a_names).union(pd.Index(b_names), sort=False).unique()
    a_idx = names.get_indexer(a_names)[a_codes]
    b_idx = names.get_indexer(b_names)[b_codes]
    o_idx = pd.Categorical(battles["winner"], categories=list(OUTCOMES)).codes.astype(np.int64)
    m = len(names)
    key = (a_idx.astype(np.int64) * m + b_idx) * len(OUTCOMES) + o_idx
    uniq, counts = np.unique(key, return_counts=True)
    o = uniq % len(OUTCOMES)
    ab = uniq // len(OUTCOMES)
    frame = pd.DataFrame(
        {
            "model_a": np.asarray(names)[ab // m],
            "model_b": np.asarray(names)[ab % m],
            "winner": np.asarray(OUTCOMES, dtype=object)[o],
            "count": counts.astype(np.int64),
        }
    )
    return frame[frame["model_a"] != frame["model_b"]].reset_index(drop=True)


def _fit_newton(
    wins_i: np.ndarray,
    wins_j: np.ndarray,
    pair_i: np.ndarray,
    pair_j: np.ndarray,
    n_models: int,
    l2: float,
    max_iter: int = 100,
    tol: float = 1e-9,
) -> np.ndarray:
    """Penalised BT strengths (natural log-odds) for a batch of replicates.

    wins_i / wins_j: (B, P) weighted wins of the pair's first / second model (half wins included).
    Minimises sum_p [wi * softplus(-d) + wj * softplus(d)] + l2/2 |theta|^2 with d = theta_i - theta_j.
    """
    n_rep, n_pairs = wins_i.shape
    total = wins_i + wins_j
    # Incidence matrix (P x M): +1 for the first model, -1 for the second.
    rows = np.repeat(np.arange(n_pairs), 2)
    cols = np.stack([pair_i, pair_j], axis=1).ravel()
    vals = np.tile([1.0, -1.0], n_pairs)
    incidence = csr_matrix((vals, (rows, cols)), shape=(n_pairs, n_models))
    # Scatter matrix (P x M*M) for the Hessian: h_p adds to (i,i), (j,j) and subtracts from (i,j), (j,i).
    ii = pair_i * n_models + pair_i
    jj = pair_j * n_models + pair_j
    ij = pair_i * n_models + pair_j
    ji = pair_j * n_models + pair_i
    scatter = coo_matrix(
        (
            np.concatenate([np.ones(n_pairs), np.ones(n_pairs), -np.ones(n_pairs), -np.ones(n_pairs)]),
            (np.tile(np.arange(n_pairs), 4), np.concatenate([ii, jj, ij, ji])),
        ),
        shape=(n_pairs, n_models * n_models),
    ).tocsr()
    incidence_t = incidence.T.tocsr()
    scatter_t = scatter.T.tocsr()
    eye = np.eye(n_models)

    def objective(theta: np.ndarray) -> np.ndarray:
        d = (incidence @ theta.T).T  # (B, P)
        return (wins_i * np.logaddexp(0.0, -d) + wins_j * np.logaddexp(0.0, d)).sum(axis=1) + 0.5 * l2 * (
            theta**2
        ).sum(axis=1)

    theta = np.zeros((n_rep, n_models))
    value = objective(theta)
    for _ in range(max_iter):
        d = (incidence @ theta.T).T
        p = 0.5 * (1.0 + np.tanh(0.5 * d))  # sigmoid, overflow-free
        g_pair = total * p - wins_i
        h_pair = total * p * (1.0 - p)
        grad = (incidence_t @ g_pair.T).T + l2 * theta
        hess = (scatter_t @ h_pair.T).T.reshape(n_rep, n_models, n_models) + l2 * eye
        step = np.linalg.solve(hess, grad[..., None])[..., 0]
        # Step halving per replicate keeps every Newton step a descent step.
        scale = np.ones(n_rep)
        candidate = theta - step
        new_value = objective(candidate)
        for _ in range(30):
            worse = new_value > value + 1e-12 * np.abs(value)
            if not worse.any():
                break
            scale[worse] *= 0.5
            candidate[worse] = theta[worse] - scale[worse, None] * step[worse]
            new_value = np.where(worse, objective(candidate), new_value)
        moved = np.abs(candidate - theta).max()
        theta, value = candidate, new_value
        if moved < tol:
            break
    return theta


def _empty_result() -> pd.DataFrame:
    frame = pd.DataFrame(columns=RATING_COLUMNS)
    frame.index.name = "model"
    return frame


def bradley_terry_from_counts(
    counts: pd.DataFrame,
    num_bootstrap: int = 100,
    seed: int = 0,
    *,
    min_battles: int = DEFAULT_MIN_BATTLES,
    l2: float = DEFAULT_L2,
) -> pd.DataFrame:
    """`bradley_terry` on pre-aggregated rows: columns model_a, model_b, winner, count."""
    _validate(counts)
    counts = counts[(counts["count"] > 0) & (counts["model_a"] != counts["model_b"])]
    if len(counts) == 0:
        return _empty_result()

    names = pd.Index(pd.unique(pd.concat([counts["model_a"], counts["model_b"]]).astype(str)))
    n_models = len(names)
    a = names.get_indexer(counts["model_a"].astype(str))
    b = names.get_indexer(counts["model_b"].astype(str))
    score_a = counts["winner"].map(OUTCOME_SCORE_A).to_numpy(dtype=float)
    row_counts = counts["count"].to_numpy(dtype=np.int64)

    # Unordered pairs: (a, b) and (b, a) rows feed the same pair, with the scores flipped.
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    pair_key = lo * n_models + hi
    pair_keys, pair_of_row = np.unique(pair_key, return_inverse=True)
    pair_i, pair_j = pair_keys // n_models, pair_keys % n_models
    score_lo = np.where(a == lo, score_a, 1.0 - score_a)
    n_rows, n_pairs = len(row_counts), len(pair_keys)
    to_wins_i = csr_matrix((score_lo, (np.arange(n_rows), pair_of_row)), shape=(n_rows, n_pairs))
    to_wins_j = csr_matrix((1.0 - score_lo, (np.arange(n_rows), pair_of_row)), shape=(n_rows, n_pairs))
    to_models = csr_matrix(
        (np.ones(2 * n_rows), (np.tile(np.arange(n_rows), 2), np.concatenate([a, b]))),
        shape=(n_rows, n_models),
    )

    def fit(row_weights: np.ndarray) -> np.ndarray:
        wi = np.asarray((to_wins_i.T @ row_weights.T).T)
        wj = np.asarray((to_wins_j.T @ row_weights.T).T)
        return _fit_newton(wi, wj, pair_i, pair_j, n_models, l2)

    n_components, component = connected_components(
        csr_matrix((np.ones(n_pairs), (pair_i, pair_j)), shape=(n_models, n_models)), directed=False
    )

    def centre(theta: np.ndarray, present: np.ndarray | None = None) -> np.ndarray:
        out = theta.copy()
        for c in range(n_components):
            members = component == c
            if present is None:
                out[:, members] -= out[:, members].mean(axis=1, keepdims=True)
            else:
                for r in range(out.shape[0]):
                    mask = members & present[r]
                    if mask.any():
                        out[r, members] -= out[r, mask].mean()
        return out

    theta = centre(fit(row_counts[None, :].astype(float)))[0]
    ratings = INIT_RATING + _POINTS_PER_NAT * theta
    battles_per_model = np.asarray(to_models.T @ row_counts).ravel().astype(np.int64)

    if num_bootstrap and num_bootstrap > 0:
        rng = np.random.default_rng(seed)
        total = int(row_counts.sum())
        resampled = rng.multinomial(total, row_counts / total, size=num_bootstrap).astype(float)
        present = np.asarray((to_models.T @ resampled.T).T) > 0
        boot = INIT_RATING + _POINTS_PER_NAT * centre(fit(resampled), present)
        boot[~present] = np.nan
        lower = np.nanpercentile(boot, 2.5, axis=0)
        upper = np.nanpercentile(boot, 97.5, axis=0)
    else:
        lower = upper = ratings.copy()

    frame = pd.DataFrame(
        {
            "rating": ratings,
            "lower": lower,
            "upper": upper,
            "battles": battles_per_model,
            "component": component.astype(int),
        },
        index=pd.Index(names, name="model"),
    )
    frame["rank"] = [
        1 + int(((frame["lower"] > up) & (frame["component"] == comp)).sum())
        for up, comp in zip(frame["upper"], frame["component"], strict=True)
    ]
    frame["provisional"] = frame["battles"] < min_battles
    frame = frame.sort_values(["rating"], ascending=False, kind="stable")[RATING_COLUMNS]
    if n_components > 1:
        sizes = np.bincount(component)
        warnings.warn(
            f"the comparison graph is disconnected: {n_components} groups of models "
            f"(sizes {sorted(sizes.tolist(), reverse=True)}) were never compared with each other; "
            "ratings are comparable only within a group (see the 'component' column)",
            DisconnectedComparisonWarning,
            stacklevel=3,
        )
    frame.attrs["disconnected"] = n_components > 1
    return frame


def bradley_terry(
    battles: pd.DataFrame,
    num_bootstrap: int = 100,
    seed: int = 0,
    *,
    min_battles: int = DEFAULT_MIN_BATTLES,
    l2: float = DEFAULT_L2,
) -> pd.DataFrame:
    """Bradley–Terry ratings with bootstrap 95% intervals (see the module docstring).

    battles: DataFrame with columns model_a, model_b, winner (model_a | model_b | tie | tie (bothbad)).
    Returns a DataFrame indexed by model with columns rating, lower, upper, battles, rank, provisional
    (fewer than `min_battles` battles) and component (connected group of compared models), best first.
    Raises ValueError for unknown outcome labels; warns (DisconnectedComparisonWarning) when the models
    were not all compared with each other, directly or through others.
    """
    return bradley_terry_from_counts(
        aggregate_battles(battles), num_bootstrap, seed, min_battles=min_battles, l2=l2
    )


def online_elo(
    battles: pd.DataFrame | Iterable[tuple[str, str, str]],
    k: float = 4.0,
    initial: dict[str, float] | None = None,
) -> dict[str, float]:
    """Sequential Elo (K=4 by default) in battle order, for display only: it depends on vote order.

    `initial` continues from earlier ratings (incremental updates as new votes arrive).
    """
    ratings: dict[str, float] = dict(initial or {})
    if isinstance(battles, pd.DataFrame):
        _validate(battles)
        rows: Iterable[tuple[str, str, str]] = zip(
            battles["model_a"], battles["model_b"], battles["winner"], strict=True
        )
    else:
        rows = battles
    for model_a, model_b, winner in rows:
        if winner not in OUTCOME_SCORE_A:
            raise ValueError(f"unknown outcome label {winner!r}; expected one of {', '.join(OUTCOMES)}")
        ra = ratings.setdefault(model_a, INIT_RATING)
        rb = ratings.setdefault(model_b, INIT_RATING)
        expected_a = 1.0 / (1.0 + BASE ** ((rb - ra) / SCALE))
        delta = k * (OUTCOME_SCORE_A[winner] - expected_a)
        ratings[model_a] = ra + delta
        ratings[model_b] = rb - delta
    return ratings


def win_probability(rating_a: float, rating_b: float) -> float:
    """P(a beats b) on the arena scale."""
    return 1.0 / (1.0 + BASE ** ((rating_b - rating_a) / SCALE))
