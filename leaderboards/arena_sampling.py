"""Which pair of checkpoints a new battle shows, and the public sampling-rate tables.

Rule. Among the candidates (each model at most once, so a model is never paired with itself), every
unordered pair {a, b} gets the weight

    w(a, b) = (width_a + width_b) / sqrt(1 + votes(a, b))

where width_m is the width (upper - lower, rating points) of model m's 95% bootstrap interval on the
community board of that battle kind (capped at UNRATED_WIDTH, which is also the width of a model with
no counted vote yet, and at least MIN_WIDTH) and votes(a, b) counts the counted votes between a and b
in either order. A pair is drawn with probability

    p(a, b) = FLOOR_SHARE / n_pairs + (1 - FLOOR_SHARE) * w(a, b) / sum(w)

so uncertain models and pairs with few votes are shown more often, and every pair keeps at least
FLOOR_SHARE / n_pairs (half the uniform rate): no pair starves and none can take over. The sides are
then swapped at random. With no votes at all every pair has the same weight (uniform draws).

The widths and pair votes are read from the database (so every app replica samples alike) and
refreshed at most every `refresh_s` seconds. `sampling_rates` (per checkpoint: served, voted, share) and
`pair_rates` (per pair: votes, weight, probability now) are the public tables.
"""

from __future__ import annotations

import math
import random
import threading
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.errors import InputError as HubInputError
from leaderboards.arena_votes import TALLIED_KIND, vote_counts
from leaderboards.ratings import DisconnectedComparisonWarning, bradley_terry_from_counts
from leaderboards.schema import Battle

FLOOR_SHARE = 0.5
UNRATED_WIDTH = 1000.0
MIN_WIDTH = 1.0
WIDTH_BOOTSTRAP = 50
PAIR_RATE_COLUMNS = ["model_a", "model_b", "votes", "width_a", "width_b", "weight", "probability"]


def pair_key(a: str, b: str) -> tuple[str, str]:
    return (a, b) if a <= b else (b, a)


def pair_weight(width_a: float, width_b: float, votes: int) -> float:
    return (width_a + width_b) / math.sqrt(1.0 + max(0, votes))


def pair_probabilities(
    models: Sequence[str],
    widths: dict[str, float],
    pair_votes: dict[tuple[str, str], int],
    floor_share: float = FLOOR_SHARE,
) -> pd.DataFrame:
    """One row per unordered pair of distinct `models`: votes, widths, weight and draw probability."""
    names = sorted(set(models))
    pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1 :]]
    if not pairs:
        return pd.DataFrame({c: [] for c in PAIR_RATE_COLUMNS})

    def width(model: str) -> float:
        return min(max(float(widths.get(model, UNRATED_WIDTH)), MIN_WIDTH), UNRATED_WIDTH)

    votes = [int(pair_votes.get(p, 0)) for p in pairs]
    width_a = [width(a) for a, _ in pairs]
    width_b = [width(b) for _, b in pairs]
    weights = [pair_weight(wa, wb, v) for wa, wb, v in zip(width_a, width_b, votes, strict=True)]
    total = sum(weights)
    n = len(pairs)
    probabilities = [floor_share / n + (1.0 - floor_share) * (w / total if total > 0 else 1.0 / n) for w in weights]
    return pd.DataFrame(
        {
            "model_a": [a for a, _ in pairs],
            "model_b": [b for _, b in pairs],
            "votes": votes,
            "width_a": width_a,
            "width_b": width_b,
            "weight": weights,
            "probability": probabilities,
        }
    )


@dataclass
class _State:
    loaded_at: float = -math.inf
    widths: dict[str, float] = field(default_factory=dict)
    pair_votes: dict[tuple[str, str], int] = field(default_factory=dict)
    # candidates -> (pairs, probabilities), computed once per state
    draws: dict[tuple[str, ...], tuple[list[tuple[str, str]], list[float]]] = field(default_factory=dict)


def uncertainty_state(session: Session, kind: str) -> tuple[dict[str, float], dict[tuple[str, str], int]]:
    """(interval width per rated model, counted votes per unordered pair) for one battle kind."""
    counts = vote_counts(session, kind)
    pair_votes: dict[tuple[str, str], int] = {}
    for a, b, _, n in counts.itertuples(index=False):
        key = pair_key(str(a), str(b))
        pair_votes[key] = pair_votes.get(key, 0) + int(n)
    widths: dict[str, float] = {}
    if not counts.empty:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DisconnectedComparisonWarning)
            ratings = bradley_terry_from_counts(counts, num_bootstrap=WIDTH_BOOTSTRAP, seed=0)
        widths = {str(m): float(u - lo) for m, lo, u in zip(ratings.index, ratings["lower"], ratings["upper"], strict=True)}
    return widths, pair_votes


class PairSampler:
    """Draws battle pairs for one battle kind by the rule in the module docstring (thread-safe)."""

    def __init__(self, kind: str = TALLIED_KIND, *, refresh_s: float = 10.0, floor_share: float = FLOOR_SHARE) -> None:
        self.kind = kind
        self.refresh_s = refresh_s
        self.floor_share = floor_share
        self._state = _State()
        self._lock = threading.Lock()

    def state(self, session: Session, *, fresh: bool = False) -> _State:
        with self._lock:
            if fresh or time.monotonic() - self._state.loaded_at >= self.refresh_s:
                widths, pair_votes = uncertainty_state(session, self.kind)
                self._state = _State(time.monotonic(), widths, pair_votes)
            return self._state

    def probabilities(self, session: Session, candidates: Sequence[str], *, fresh: bool = False) -> pd.DataFrame:
        """The pair table the next draw uses (`fresh`: reload from the database first)."""
        state = self.state(session, fresh=fresh)
        return pair_probabilities(candidates, state.widths, state.pair_votes, self.floor_share)

    def draw(self, session: Session, candidates: Sequence[str], rng: random.Random) -> tuple[str, str]:
        """A pair of two different candidates, sides in random order."""
        models = tuple(sorted(set(candidates)))
        if len(models) < 2:
            raise HubInputError("The arena needs at least two different available checkpoints.")
        state = self.state(session)
        with self._lock:
            cached = state.draws.get(models)
        if cached is None:
            table = pair_probabilities(models, state.widths, state.pair_votes, self.floor_share)
            cached = (list(zip(table["model_a"], table["model_b"], strict=True)), list(table["probability"]))
            with self._lock:
                state.draws[models] = cached
        pairs, probabilities = cached
        a, b = rng.choices(pairs, weights=probabilities)[0]
        return (a, b) if rng.random() < 0.5 else (b, a)


def sampling_rates(session: Session, kind: str = TALLIED_KIND) -> pd.DataFrame:
    """How often each checkpoint was served in battles of one kind, and voted on (public sampling rates)."""
    served: dict[str, int] = {}
    for column in (Battle.model_a, Battle.model_b):
        for model, n in session.execute(select(column, func.count()).where(Battle.kind == kind).group_by(column)):
            served[model] = served.get(model, 0) + int(n)
    voted: dict[str, int] = {}
    counts = vote_counts(session, kind)
    for a, b, _, n in counts.itertuples(index=False):
        voted[a] = voted.get(a, 0) + int(n)
        voted[b] = voted.get(b, 0) + int(n)
    total_slots = sum(served.values())
    models = sorted(served)
    frame = pd.DataFrame(
        {
            "checkpoint": models,
            "battles_served": [served[m] for m in models],
            "votes": [voted.get(m, 0) for m in models],
        }
    )
    frame["share"] = frame["battles_served"] / total_slots if total_slots else 0.0
    return frame
