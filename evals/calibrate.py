"""Calibrating a name judge (or a reference judge) on images whose character is known.

    python -m evals calibrate --judge demo-name-judge --suite demo-characters [--seeds 4] [--max-false-hits 0.05]
                              [--source render|galleries] [--variant background=blue,expression=sad ...] [--config PATH]

Known truth: renders of the suite's characters through the demo world's renderer hook (`render_input`,
`--source render`, the default where the config names a demo world), or the authors' galleries of the
suite's characters (`--source galleries`, any deployment). No generated image is involved: the judge is
measured on pictures that show the character for certain.

Name judge. Every image of character c is scored against the candidate set of every prompt of the suite
(each language: c's names, the other characters' names, the distractors):
- positives: c's own candidate sets (a hit is right);
- closed negatives: another character d's sets, c among d's rivals (a hit there is a false hit);
- open negatives: d's sets with c's names removed (a model drew someone the suite does not name).
The thresholds (`probability`, `margin`) are the pair with the highest true-hit rate whose false-hit rate
is at most `max_false_hits` on both kinds of negatives (ties: the lower false-hit rate, then the smaller
margin). The probability threshold sits in the gap just below the least probable positive it keeps, so
it is no lower than it must be and lies between two observed scores, never on one.

Reference judge. Each character's images are split into a gallery (the first half) and probes (the
rest); a probe agrees with the gallery when the fraction of references at cosine >= `same` is at least
`min_fraction`, i.e. when its k-th best cosine (k = ceil(min_fraction * gallery size)) is >= `same`.
Positives: probes against their own gallery; negatives: against every other character's gallery.

The result is printed with the config lines to paste under the judge (`thresholds: {...}`).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from evals.gallery_files import folder_images, galleries_of_suite
from evals.judges.base import load_image
from evals.judges.name import CandidateSet, NameThresholds
from evals.judgeset import load_judges
from evals.suites import get_suite
from hub.errors import HubInputError

DEFAULT_MAX_FALSE_HITS = 0.05
DEFAULT_SEEDS = 4
CALIBRATION_SEED = 7_000_000  # render seeds far from the demo world's training seeds
NEGATIVE_KINDS = ("closed", "open")


@dataclass
class CalibrationResult:
    judge_id: str
    judge_kind: str
    suite: str
    source: str
    thresholds: dict[str, float]
    true_hit_rate: float
    false_hit_rates: dict[str, float]  # per kind of negative
    n_images: int
    n_positive: int
    n_negative: dict[str, int]
    max_false_hits: float
    by_language: dict[str, float] = field(default_factory=dict)  # true-hit rate per prompt language
    top1_rate: float | None = None  # name judge: the target ranks first (no threshold)
    at_config: dict[str, float] = field(default_factory=dict)  # the judge's current thresholds: true/false hits

    def config_lines(self) -> str:
        values = ", ".join(f"{k}: {v!r}" for k, v in self.thresholds.items())
        return f"thresholds: {{{values}}}  # python -m evals calibrate --judge {self.judge_id} --suite {self.suite} --source {self.source}"

    def report_lines(self) -> list[str]:
        lines = [f"calibration of judge '{self.judge_id}' ({self.judge_kind}) on suite '{self.suite}' ({self.source}: "
                 f"{self.n_images} images, {self.n_positive} positives, "
                 + ", ".join(f"{n} {k} negatives" for k, n in self.n_negative.items()) + ")"]
        lines.append(f"thresholds: {self.thresholds} (false hits at most {self.max_false_hits:.0%})")
        lines.append(f"true-hit rate {self.true_hit_rate:.3f}; false-hit rate "
                     + ", ".join(f"{k} {v:.3f}" for k, v in self.false_hit_rates.items()))
        if self.top1_rate is not None:
            lines.append(f"target ranked first (no threshold): {self.top1_rate:.3f}")
        if self.by_language:
            lines.append("true-hit rate by language: " + ", ".join(f"{k} {v:.2f}" for k, v in self.by_language.items()))
        if self.at_config:
            lines.append("with the judge's current thresholds: " + ", ".join(f"{k} {v:.3f}" for k, v in self.at_config.items()))
        lines.append("config: " + self.config_lines())
        return lines


# ----------------------------------------------------------------------------- picking thresholds


def lowest_threshold(negatives: np.ndarray, pooled: np.ndarray, max_false: float) -> float:
    """The smallest threshold t (a midpoint between two observed scores) such that at most
    floor(max_false * len(negatives)) negatives score >= t."""
    negatives = np.sort(np.asarray(negatives, np.float64))
    allowed = int(math.floor(max_false * len(negatives) + 1e-9))
    if len(negatives) <= allowed:
        return -math.inf  # no constraint
    blocking = negatives[len(negatives) - allowed - 1]  # must fall below the threshold
    if not math.isfinite(blocking):
        return -math.inf  # only "cannot be a hit" negatives would have to be excluded
    pooled = np.unique(np.asarray(pooled, np.float64))
    above = pooled[pooled > blocking]
    return tidy_threshold(float(blocking), float(above[0])) if len(above) else float(np.nextafter(blocking, math.inf))


def tidy_threshold(low: float, high: float) -> float:
    """A short decimal in the middle half of the gap (low, high] between two observed scores (else its
    midpoint): it decides every observed score as the midpoint would, and reads well in a config."""
    quarter = (high - low) / 4
    for digits in range(1, 13):
        scale = 10.0**digits
        value = math.ceil((low + quarter) * scale) / scale
        if low + quarter <= value <= high - quarter:
            return value
    return (low + high) / 2


def pick_threshold(positives: np.ndarray, negatives: np.ndarray, max_false: float) -> tuple[float, float, float]:
    """(threshold, true-positive rate, false-positive rate) for "score >= threshold"."""
    positives, negatives = np.asarray(positives, np.float64), np.asarray(negatives, np.float64)
    pooled = np.concatenate([positives, negatives])
    threshold = lowest_threshold(negatives, pooled, max_false)
    kept = positives[positives >= threshold]
    if len(kept):  # as for the name judge: the gap just below the weakest positive kept
        below = pooled[pooled < kept.min()]
        threshold = tidy_threshold(float(below.max()), float(kept.min())) if len(below) else float(kept.min())
    tpr = float((positives >= threshold).mean()) if len(positives) else 0.0
    fpr = float((negatives >= threshold).mean()) if len(negatives) else 0.0
    return threshold, tpr, fpr


@dataclass
class NameTrials:
    """One row per (image, candidate set): the judge's probability and margin, and what the truth is."""

    probability: np.ndarray
    margin: np.ndarray
    kind: np.ndarray  # "positive" | "closed" | "open"
    language: np.ndarray

    def rates(self, probability: float, margin: float) -> tuple[float, dict[str, float]]:
        hit = (self.margin > 0) & (self.margin >= margin) & (self.probability >= probability)
        positive = self.kind == "positive"
        false = {k: float(hit[self.kind == k].mean()) for k in NEGATIVE_KINDS if (self.kind == k).any()}
        return float(hit[positive].mean()) if positive.any() else 0.0, false


def pick_name_thresholds(trials: NameTrials, max_false_hits: float = DEFAULT_MAX_FALSE_HITS,
                         margin_candidates: int = 64) -> tuple[NameThresholds, float, dict[str, float]]:
    """The (probability, margin) pair with the best true-hit rate whose false-hit rate is within
    `max_false_hits` for every kind of negative; returns it with its true- and false-hit rates."""
    positive = trials.kind == "positive"
    if not positive.any() or not any((trials.kind == k).any() for k in NEGATIVE_KINDS):
        raise HubInputError("calibration needs images of at least two characters")
    # Margin thresholds: 0 (ranking first is enough), then the gaps between observed margins of
    # first-ranked trials, up to the median positive margin (more would drop half the true hits).
    ranked_first = trials.margin[positive & (trials.margin > 0)]
    margins = [0.0]
    if len(ranked_first):
        observed = np.unique(trials.margin[(trials.margin > 0) & (trials.margin <= np.median(ranked_first))])
        if len(observed) > margin_candidates:
            observed = observed[np.linspace(0, len(observed) - 1, margin_candidates).astype(int)]
        margins += [tidy_threshold(float(a), float(b)) for a, b in zip(observed[:-1], observed[1:])]
    best: tuple[float, float, float, NameThresholds, dict[str, float]] | None = None
    for margin in margins:
        eligible = (trials.margin > 0) & (trials.margin >= margin)
        probability = 0.0
        for kind in NEGATIVE_KINDS:
            negatives = trials.kind == kind
            if not negatives.any():
                continue
            # False hits count over all negatives of this kind; only eligible ones can be hits.
            scores = np.where(eligible[negatives], trials.probability[negatives], -np.inf)
            probability = max(probability, lowest_threshold(scores, trials.probability, max_false_hits))
        probability = _widest_gap(trials, eligible, max(probability, 0.0))
        tpr, false = trials.rates(probability, margin)
        key = (tpr, -max(false.values(), default=0.0), -margin)
        if best is None or key > best[:3]:
            best = (*key, NameThresholds(probability, margin), false)
    assert best is not None
    return best[3], best[0], best[4]


def _widest_gap(trials: NameTrials, eligible: np.ndarray, lowest: float) -> float:
    """Any probability threshold from `lowest` up to the least probable positive it keeps gives the
    same true hits and no more false ones: take the gap just below that positive (fewest false hits, and
    the threshold sits between that positive and the next score below it, not on either)."""
    probabilities = trials.probability[eligible]
    kept = probabilities[(trials.kind[eligible] == "positive") & (probabilities >= lowest)]
    if not len(kept):
        return float(min(max(lowest, 0.0), 1.0))
    weakest = float(kept.min())
    below = probabilities[probabilities < weakest]
    return tidy_threshold(float(below.max()) if len(below) else 0.0, weakest)


# -------------------------------------------------------------------------------- known truth


def render_known_truth(render_input: Callable[[dict[str, Any]], Image.Image] | None, suite: Any, seeds: int = DEFAULT_SEEDS,
                       size: int = 64, variants: Sequence[Mapping[str, Any]] = ({},)) -> dict[str, list[Image.Image]]:
    """Renders of every character of the suite through the demo world's renderer hook."""
    if render_input is None:
        raise HubInputError("calibration from renders needs the demo world (config `demo_world`); use --source galleries")
    images: dict[str, list[Image.Image]] = defaultdict(list)
    for item in suite.items:
        for seed in range(seeds):
            spec = {"character": item.id, "seed": CALIBRATION_SEED + seed, "size": size, **variants[seed % len(variants)]}
            try:
                images[item.id].append(render_input(spec).convert("RGB"))
            except HubInputError as err:
                raise HubInputError(f"suite '{suite.name}' cannot be rendered by the demo world ({err}); "
                                    "use --source galleries") from None
    return dict(images)


def gallery_known_truth(data_dir: str | Path, suite: Any) -> dict[str, list[Image.Image]]:
    """The images of the suite's galleries: its own `references` folders, else the authors' galleries."""
    authors = galleries_of_suite(data_dir, suite.name)
    images: dict[str, list[Image.Image]] = {}
    for item in suite.items:
        folder = getattr(item, "references", None) or (authors[item.id].path if item.id in authors else None)
        if folder:
            images[item.id] = [load_image(p).convert("RGB") for p in folder_images(folder)]
    if len(images) < 2:
        raise HubInputError(f"suite '{suite.name}': calibration needs galleries of at least two characters "
                            f"(found {len(images)}; add some with `python -m evals gallery`)")
    return images


# ------------------------------------------------------------------------------------ calibrating


def name_trials(judge: Any, suite: Any, images: Mapping[str, Sequence[Image.Image]],
                languages: Sequence[str] | None = None) -> tuple[NameTrials, float]:
    """Scores of every known image against every candidate set of the suite (and, for the sets of other
    characters, the open variant without the true character's names); also the top-1 rate."""
    rows = suite.rows(languages)
    sets = [CandidateSet.from_meta(row.meta) for row in rows]
    names_of = {(row.item_id, row.language): s.names for row, s in zip(rows, sets)}
    out: dict[str, list[Any]] = {"probability": [], "margin": [], "kind": [], "language": []}
    for character, pictures in images.items():
        if not pictures:
            continue
        # Per character: its own sets (positives), the others' (closed negatives), the others' without
        # this character's names (open negatives), all scored in one pass over its images.
        trials: list[tuple[CandidateSet, str, str]] = []
        for row, s in zip(rows, sets):
            if row.item_id == character:
                trials.append((s, "positive", row.language))
                continue
            trials.append((s, "closed", row.language))
            open_set = s.without(names_of.get((character, row.language), ()))
            if open_set.rivals:
                trials.append((open_set, "open", row.language))
        unique = {s: k for k, s in enumerate(dict.fromkeys(t[0] for t in trials))}
        scores = judge.score_matrix(judge.image_embeddings(list(pictures)), list(unique))
        probability, margin = scores.probability, scores.margin
        for s, kind, language in trials:
            column = unique[s]
            out["probability"] += probability[:, column].tolist()
            out["margin"] += margin[:, column].tolist()
            out["kind"] += [kind] * len(pictures)
            out["language"] += [language] * len(pictures)
    trials_array = NameTrials(*(np.asarray(out[k]) for k in ("probability", "margin", "kind", "language")))
    positive = trials_array.kind == "positive"
    return trials_array, float((trials_array.margin[positive] > 0).mean()) if positive.any() else 0.0


def calibrate_name_judge(judge: Any, suite: Any, images: Mapping[str, Sequence[Image.Image]], *, source: str = "render",
                         max_false_hits: float = DEFAULT_MAX_FALSE_HITS, languages: Sequence[str] | None = None) -> CalibrationResult:
    trials, top1 = name_trials(judge, suite, images, languages)
    thresholds, tpr, false = pick_name_thresholds(trials, max_false_hits)
    by_language = {}
    for language in dict.fromkeys(trials.language):
        subset = NameTrials(*(getattr(trials, k)[trials.language == language] for k in ("probability", "margin", "kind", "language")))
        by_language[str(language)] = subset.rates(thresholds.probability, thresholds.margin)[0]
    current_tpr, current_false = trials.rates(judge.thresholds.probability, judge.thresholds.margin)
    return CalibrationResult(
        judge.info.id, "name", suite.name, source, {"probability": thresholds.probability, "margin": thresholds.margin},
        tpr, false, sum(len(v) for v in images.values()), int((trials.kind == "positive").sum()),
        {k: int((trials.kind == k).sum()) for k in NEGATIVE_KINDS}, max_false_hits, by_language, top1,
        {"true_hit_rate": current_tpr, **{f"false_hit_rate_{k}": v for k, v in current_false.items()}},
    )


def calibrate_reference_judge(judge: Any, suite: Any, images: Mapping[str, Sequence[Image.Image]], *, source: str = "render",
                              max_false_hits: float = DEFAULT_MAX_FALSE_HITS) -> CalibrationResult:
    usable = {c: list(v) for c, v in images.items() if len(v) >= 2}
    if len(usable) < 2:
        raise HubInputError("reference calibration needs at least two images of each of two characters")
    galleries, probes = {}, {}
    for character, pictures in usable.items():
        half = max(1, len(pictures) // 2)
        galleries[character] = np.asarray(judge.embedder.image_embeddings(pictures[:half]), np.float32)
        probes[character] = np.asarray(judge.embedder.image_embeddings(pictures[half:]), np.float32)
    positives, negatives = [], []
    for gallery_of, gallery in galleries.items():
        k = max(1, math.ceil(judge.min_fraction * len(gallery) - 1e-9))
        for probe_of, probe in probes.items():
            kth_best = -np.sort(-(probe @ gallery.T), axis=1)[:, k - 1]  # agrees iff this cosine >= `same`
            (positives if probe_of == gallery_of else negatives).extend(kth_best.tolist())
    threshold, tpr, fpr = pick_threshold(np.asarray(positives), np.asarray(negatives), max_false_hits)
    current = float((np.asarray(positives) >= judge.threshold).mean())
    return CalibrationResult(
        judge.info.id, "reference", suite.name, source, {"same": threshold, "min_fraction": judge.min_fraction},
        tpr, {"closed": fpr}, sum(len(v) for v in usable.values()), len(positives), {"closed": len(negatives)},
        max_false_hits, at_config={"true_hit_rate": current, "false_hit_rate": float((np.asarray(negatives) >= judge.threshold).mean())},
    )


def run_calibration(config: Any, judge_id: str, suite_name: str, *, data_dir: str | Path, source: str | None = None,
                    seeds: int = DEFAULT_SEEDS, max_false_hits: float = DEFAULT_MAX_FALSE_HITS,
                    render_input: Callable[[dict[str, Any]], Image.Image] | None = None,
                    prompts_dir: str | Path | None = None, device: Any = None,
                    variants: Sequence[Mapping[str, Any]] = ({},)) -> CalibrationResult:
    """Load the judge from the config, gather known-truth images, calibrate (bad input: HubInputError)."""
    if not 0.0 <= max_false_hits < 1.0:
        raise HubInputError(f"max false hits must be in [0, 1), got {max_false_hits}")
    if seeds < 1:
        raise HubInputError(f"seeds must be at least 1, got {seeds}")
    suite = get_suite(suite_name, prompts_dir)
    if not suite.characters:
        raise HubInputError(f"suite '{suite_name}' has no characters (it is a {suite.kind} suite)")
    spec = next((j for j in getattr(config, "judges", []) if j.id == judge_id), None)
    if spec is None or spec.kind not in ("name", "reference"):
        known = ", ".join(j.id for j in getattr(config, "judges", []) if j.kind in ("name", "reference")) or "none"
        raise HubInputError(f"'{judge_id}' is not a configured name or reference judge (configured: {known})")
    role = "name" if spec.kind == "name" else "reference"
    judge = getattr(load_judges(config, [role], data_dir=data_dir, explicit=[judge_id], device=device, prompts_dir=prompts_dir), role)
    source = source or ("render" if render_input is not None else "galleries")
    if source == "render":
        images = render_known_truth(render_input, suite, seeds, variants=variants)
    elif source == "galleries":
        images = gallery_known_truth(data_dir, suite)
    else:
        raise HubInputError(f"unknown calibration source '{source}' (render or galleries)")
    if role == "name":
        return calibrate_name_judge(judge, suite, images, source=source, max_false_hits=max_false_hits)
    return calibrate_reference_judge(judge, suite, images, source=source, max_false_hits=max_false_hits)
