"""Name judge: zero-shot "which of these names is this character?" for figures no tagger knows.

An image-text model (SigLIP 2, multilingual) scores an image against a candidate set: the target
character's names (English and the prompt's language), the suite's other characters and generic
distractors ("a man in a hat", "a cartoon ogre", ...). Candidate texts come from the suite's data
(`evals.kinds.character` puts them in every row's meta), so a new character needs no code.

Decision rule, per (image, candidate set), with logits l(t) = exp(logit_scale) * cos(image, t) + logit_bias:
- target logit = the best of the target's names, rival logit = the best of every other candidate;
- `margin` = target logit - rival logit (log-odds units), `rank` = 1 + rivals above the target;
- `probability` = sigmoid(target logit), SigLIP's own "this text describes this image";
- hit when the target ranks first (margin > 0), margin >= thresholds.margin and
  probability >= thresholds.probability. Both thresholds are calibrated per judge on images of known
  characters (`python -m evals calibrate`, `evals/calibrate.py`) and written into the config.

Sources: `hub:ORG/NAME` or `folder:PATH` (a SigLIP folder, loaded through `SiglipJudge.load`), or
`judge:ID` (reuse a configured SigLIP judge's weights: no second copy in memory). The judge also gives
image embeddings, so a reference judge can reuse it (`judge:` source).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from evals.judges.base import BuildContext, JudgeInfo, JudgeKind, JudgeLoadError, NameJudge
from hub.errors import HubInputError

DEFAULT_PROBABILITY = 0.5  # SigLIP's sigmoid was trained to read 0.5 as "matches"; calibrate per judge
DEFAULT_MARGIN = 0.0  # ranking first is always required; a calibrated margin asks for more
THRESHOLD_KEYS = ("probability", "margin")
NAME_PLACEHOLDER = "{name}"
BROADCAST_FLOATS = 2**24  # 64 MiB of float32 per chunk of the image x text product


@dataclass(frozen=True)
class CandidateSet:
    """The texts one image is weighed against: the target's names, then every rival text."""

    names: tuple[str, ...]
    rivals: tuple[str, ...]

    @classmethod
    def from_meta(cls, meta: Mapping[str, Any]) -> "CandidateSet":
        """From a prompt row's meta (`names`, `other_names`, `distractors`); a rival text equal to one of
        the target's names is dropped (two characters sharing a name cannot tell each other apart)."""
        names = _texts(meta.get("names"))
        rivals = _texts(list(meta.get("other_names") or []) + list(meta.get("distractors") or []))
        candidate = cls(names, tuple(t for t in rivals if t not in set(names)))
        candidate.check(str(meta.get("name") or (names[0] if names else "?")))
        return candidate

    def check(self, label: str = "?") -> None:
        if not self.names:
            raise HubInputError(f"name judge: character '{label}' has no name to look for")
        if not self.rivals:
            raise HubInputError(f"name judge: the candidate set of '{label}' has only its own name(s) "
                                f"({', '.join(self.names)}): add other characters or distractors to the suite")

    def without(self, texts: Sequence[str]) -> "CandidateSet":
        """The same set with some rivals removed (an open-set negative: the true character absent)."""
        drop = set(texts)
        return CandidateSet(self.names, tuple(t for t in self.rivals if t not in drop))

    @property
    def texts(self) -> tuple[str, ...]:
        return self.names + self.rivals


def _texts(values: Any) -> tuple[str, ...]:
    if values is None:
        return ()
    if isinstance(values, str):
        values = [values]
    return tuple(dict.fromkeys(str(v).strip() for v in values if str(v).strip()))


def as_candidate_set(value: CandidateSet | Mapping[str, Any]) -> CandidateSet:
    if isinstance(value, CandidateSet):
        value.check(value.names[0] if value.names else "?")
        return value
    if isinstance(value, Mapping):
        return CandidateSet.from_meta(value)
    raise HubInputError(f"name judge: a candidate set must be a mapping with names, got {type(value).__name__}")


@dataclass(frozen=True)
class NameVerdict:
    hit: bool
    probability: float  # sigmoid of the target's best logit
    margin: float  # target logit - best rival logit
    rank: int  # 1: the target's best name ranks first
    best_text: str  # the candidate that ranked first
    target_text: str  # the target name that scored best


@dataclass(frozen=True)
class NameThresholds:
    probability: float = DEFAULT_PROBABILITY
    margin: float = DEFAULT_MARGIN

    @classmethod
    def from_config(cls, values: Mapping[str, float], judge_id: str = "name") -> "NameThresholds":
        unknown = sorted(set(values) - set(THRESHOLD_KEYS))
        if unknown:
            raise JudgeLoadError(f"judge '{judge_id}': unknown threshold {', '.join(unknown)} "
                                 f"(a name judge takes: {', '.join(THRESHOLD_KEYS)})")
        probability = float(values.get("probability", DEFAULT_PROBABILITY))
        margin = float(values.get("margin", DEFAULT_MARGIN))
        if not 0.0 <= probability <= 1.0 or not math.isfinite(margin) or margin < 0:
            raise JudgeLoadError(f"judge '{judge_id}': thresholds need 0 <= probability <= 1 and margin >= 0 "
                                 f"(got probability={probability}, margin={margin})")
        return cls(probability, margin)

    def decide(self, probability: float, margin: float) -> bool:
        return margin > 0.0 and margin >= self.margin and probability >= self.probability


class SiglipNameJudge:
    """A `NameJudge` over any scorer with `image_embeddings`, `text_embeddings` (unit vectors) and
    `logits_from_embeddings` (SigLIP's scaled, biased cosine) — `evals.judges.siglip.SiglipJudge`."""

    kind = "name"

    def __init__(self, scorer: Any, *, thresholds: NameThresholds | None = None, info: JudgeInfo | None = None,
                 name_template: str = NAME_PLACEHOLDER):
        self.scorer = scorer
        self.thresholds = thresholds or NameThresholds()
        self.info = info or JudgeInfo("name", "name", "1")
        if NAME_PLACEHOLDER not in name_template:
            raise JudgeLoadError(f"judge '{self.info.id}': options.name_template must contain {NAME_PLACEHOLDER}")
        self.name_template = name_template
        self._text_cache: dict[str, np.ndarray] = {}  # names recur in every run: embed each text once
        self._lock = threading.Lock()

    # The model itself, for `options.dtype` and for callers that want the device.
    @property
    def model(self) -> Any:
        return getattr(self.scorer, "model", None)

    @property
    def device(self) -> Any:
        return getattr(self.scorer, "device", None)

    def image_embeddings(self, images: Sequence[Any]) -> np.ndarray:
        return np.asarray(self.scorer.image_embeddings(list(images)), dtype=np.float32)

    def text_embeddings(self, texts: Sequence[str]) -> np.ndarray:
        with self._lock:
            missing = [t for t in dict.fromkeys(texts) if t not in self._text_cache]
            if missing:
                embedded = np.asarray(self.scorer.text_embeddings(missing), dtype=np.float32)
                self._text_cache.update(zip(missing, embedded))
            return np.stack([self._text_cache[t] for t in texts])

    def _name_text(self, name: str) -> str:
        return self.name_template.replace(NAME_PLACEHOLDER, name)

    def recognise(self, images: Sequence[Any], candidate_sets: Sequence[CandidateSet | Mapping[str, Any]]) -> list[NameVerdict]:
        """One verdict per image against its own candidate set. Every set is checked before anything is
        computed: a bad one (a single name, no rivals) is a `HubInputError` and no verdict is given."""
        sets = [as_candidate_set(c) for c in candidate_sets]
        if len(sets) != len(images):
            raise ValueError(f"{len(images)} images but {len(sets)} candidate sets")
        if not sets:
            return []
        return self.verdicts_from_embeddings(self.image_embeddings(images), sets)

    def logit_matrix(self, image_embeddings: np.ndarray, texts: Sequence[str]) -> np.ndarray:
        """(N images, T texts): exp(logit_scale) * cos + logit_bias, every image against every text."""
        text_emb = self.text_embeddings(list(texts))
        images = np.asarray(image_embeddings, dtype=np.float32)
        # (n, 1, D) x (1, T, D) -> (n, T) through the scorer's own formula; n is kept small enough that
        # the broadcast product stays under BROADCAST_FLOATS (1,500 texts x 1,152 dims for SigLIP 2 so400m).
        step = max(1, BROADCAST_FLOATS // max(1, text_emb.size))
        chunks = [self.scorer.logits_from_embeddings(images[i : i + step, None, :], text_emb[None, :, :])
                  for i in range(0, len(images), step)]
        return np.concatenate([np.asarray(c, dtype=np.float64) for c in chunks]) if chunks else np.zeros((0, len(texts)))

    def score_matrix(self, image_embeddings: np.ndarray, sets: Sequence[CandidateSet]) -> "SetScores":
        """Every image against every candidate set (what calibration needs; `recognise` takes the pairs)."""
        texts = list(dict.fromkeys(t for s in sets for t in (*map(self._name_text, s.names), *s.rivals)))
        column = {t: i for i, t in enumerate(texts)}
        logits = self.logit_matrix(image_embeddings, texts)
        n, k = logits.shape[0], len(sets)
        scores = SetScores(np.empty((n, k)), np.empty((n, k)), np.empty((n, k), int), np.empty((n, k), int), np.empty((n, k), int))
        for j, s in enumerate(sets):
            target = logits[:, [column[self._name_text(name)] for name in s.names]]
            rivals = logits[:, [column[r] for r in s.rivals]]
            scores.target_index[:, j], scores.rival_index[:, j] = target.argmax(1), rivals.argmax(1)
            scores.target[:, j], scores.rival[:, j] = target.max(1), rivals.max(1)
            scores.rivals_above[:, j] = (rivals > scores.target[:, [j]]).sum(1)
        return scores

    def verdicts_from_embeddings(self, image_embeddings: np.ndarray, sets: Sequence[CandidateSet]) -> list[NameVerdict]:
        unique = {s: j for j, s in enumerate(dict.fromkeys(sets))}  # seeds of one prompt share a set
        scores = self.score_matrix(image_embeddings, list(unique))
        verdicts = []
        for i, s in enumerate(sets):
            j = unique[s]
            margin, probability = float(scores.margin[i, j]), float(scores.probability[i, j])
            target_text = s.names[scores.target_index[i, j]]
            verdicts.append(NameVerdict(
                hit=self.thresholds.decide(probability, margin), probability=probability, margin=margin,
                rank=1 + int(scores.rivals_above[i, j]), target_text=target_text,
                best_text=target_text if margin > 0 else s.rivals[scores.rival_index[i, j]],
            ))
        return verdicts


@dataclass
class SetScores:
    """Images x candidate sets: the target's best logit, the best rival's, which texts they were, and how
    many rivals beat the target."""

    target: np.ndarray
    rival: np.ndarray
    target_index: np.ndarray
    rival_index: np.ndarray
    rivals_above: np.ndarray

    @property
    def margin(self) -> np.ndarray:
        return self.target - self.rival

    @property
    def probability(self) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-np.clip(self.target, -60, 60)))


def _scorer_from(ctx: BuildContext) -> Any:
    kind, _, value = ctx.source.partition(":")
    if kind == "judge":
        if value not in ctx.others:
            raise JudgeLoadError(f"judge '{ctx.info.id}': image-text judge '{value}' is not loaded")
        scorer = getattr(ctx.others[value], "scorer", ctx.others[value])  # another name judge: its model
        for method in ("image_embeddings", "text_embeddings", "logits_from_embeddings"):
            if not callable(getattr(scorer, method, None)):
                raise JudgeLoadError(f"judge '{ctx.info.id}': judge '{value}' is not a SigLIP judge (no {method})")
        return scorer
    from evals.judges.siglip import SiglipJudge, lowercases

    return SiglipJudge.load(ctx.source, info=ctx.info, device=ctx.device, batch_size=ctx.batch_size,
                            lowercase=lowercases(ctx))


def _build(ctx: BuildContext) -> SiglipNameJudge:
    thresholds = NameThresholds.from_config(ctx.thresholds, ctx.info.id)  # bad config fails before weights load
    return SiglipNameJudge(_scorer_from(ctx), thresholds=thresholds, info=ctx.info,
                           name_template=str(ctx.options.get("name_template", NAME_PLACEHOLDER)))


KIND = JudgeKind("name", roles=("name",), protocol=NameJudge, build=_build)
