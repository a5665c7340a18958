"""The content filter of a public hub: a prompt blocklist and the tagger's rating head on every output.

- Threshold: `limits.max_rating` (`public_max_rating`; on a Space `sensitive` by default, elsewhere
  `explicit`, which turns the filter off). An image whose rating (the most probable of the tagger's
  rating tags general < sensitive < questionable < explicit) is above it is withheld: the page gets a
  blurred placeholder and the reason, never the image.
- Blocklist: in public mode a prompt containing one of `limits.blocked_prompt_terms` (case-insensitive,
  after Unicode NFKC folding, so full-width letters match too) is refused before any work.
- The judge: the config's default tagger (`evals.judgeset.load_judges(config, ["tagger"])`), loaded
  once, on first use, and only when the filter is on. It runs beside the GPU queue, in the request's
  thread, under a lock (it is tiny on the demo world; a WD v3 tagger is one forward pass per image).
- Fails closed: when the filter is on and the tagger cannot load or has no rating head, every image is
  withheld with that reason.

No gradio here; the tabs and the arena call `check_prompt`, `filter_outputs` and `is_withheld`.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import threading
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from evals.judgeset import load_judges
from hub.config import RATINGS, HubConfig
from hub.ui.i18n import LocalizedError, tr

log = logging.getLogger(__name__)

UNAVAILABLE = "unavailable"


@dataclass(frozen=True)
class Verdict:
    """What the filter decided for one image."""

    rating: str  # general | sensitive | questionable | explicit, or "unavailable" (no tagger)
    probability: float  # of that rating
    scores: dict[str, float]
    withheld: bool
    max_rating: str

    @property
    def message_key(self) -> str:
        return "msg.filter.unavailable" if self.rating == UNAVAILABLE else "msg.filter.withheld"

    @property
    def values(self) -> dict[str, Any]:
        return {"rating": self.rating, "percent": f"{self.probability:.0%}", "max_rating": self.max_rating}

    @property
    def reason(self) -> str:
        """The English reason (logs, the arena's hook); the tabs translate `message_key`."""
        return tr("en", self.message_key, **self.values)


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def _default_loader(config: HubConfig, data_dir: Path) -> Any:
    return load_judges(config, ["tagger"], data_dir=data_dir).tagger


def _contains_term(text: str, term: str) -> bool:
    """Latin-script terms match whole words ("sex" blocks "sex, 1girl" but not "Sussex"); terms in scripts
    written without spaces (Chinese, Japanese) match anywhere."""
    if term.isascii():
        return re.search(rf"(?<![a-z0-9]){re.escape(term)}(?![a-z0-9])", text) is not None
    return term in text


class ContentFilter:
    def __init__(self, config: HubConfig, data_dir: str | Path, load_tagger: Callable[[HubConfig, Path], Any] | None = None):
        self.config = config
        self.data_dir = Path(data_dir)
        self.max_rating = config.limits.max_rating
        self.blocked_terms = tuple(term for term in (_fold(t).strip() for t in config.limits.blocked_prompt_terms) if term)
        self._load_tagger = load_tagger or _default_loader
        self._judge: Any = None
        self._load_error: str | None = None
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.max_rating != "explicit"

    # ------------------------------------------------------------------------------------- prompts
    def check_prompt(self, *texts: str | None) -> None:
        """Refuse a prompt with a blocked term (public mode only): LocalizedError('err.blocked_prompt')."""
        if not self.enabled or not self.blocked_terms:
            return
        for text in texts:
            if not text:
                continue
            folded = _fold(str(text))
            for term in self.blocked_terms:
                if _contains_term(folded, term):
                    raise LocalizedError("err.blocked_prompt", term=term)

    # -------------------------------------------------------------------------------------- images
    @property
    def judge(self) -> Any:
        """The tagger, loaded once; None (with `_load_error`) when it cannot load."""
        with self._lock:
            if self._judge is None and self._load_error is None:
                try:
                    judge = self._load_tagger(self.config, self.data_dir)
                    if judge is None:
                        raise RuntimeError("no tagger judge is configured")
                    probe = judge.tag_probabilities(np.zeros((1, len(judge.tags)), np.float32), RATINGS)
                    if np.isnan(probe).all():
                        raise RuntimeError(f"tagger {judge.info.id!r} has no rating tags")
                    self._judge = judge
                except Exception as err:  # noqa: BLE001 - the filter fails closed, and says why
                    self._load_error = f"{type(err).__name__}: {err}"
                    log.error("content filter: no tagger (%s); every image is withheld", self._load_error)
            return self._judge

    def set_judge(self, judge: Any) -> None:
        """Use this tagger (tests, tools)."""
        with self._lock:
            self._judge, self._load_error = judge, None

    def rate(self, images: Sequence[Image.Image]) -> list[Verdict]:
        """The rating of each image (the filter's decision at the current threshold)."""
        images = list(images)
        if not images:
            return []
        judge = self.judge
        if judge is None:
            return [Verdict(UNAVAILABLE, 1.0, {}, True, self.max_rating) for _ in images]
        with self._lock:  # one forward pass at a time: the model is shared
            probs = judge.predict([image.convert("RGB") for image in images])
            rating_probs = np.nan_to_num(judge.tag_probabilities(probs, RATINGS), nan=0.0)
        limit = RATINGS.index(self.max_rating) if self.max_rating in RATINGS else len(RATINGS) - 1
        verdicts = []
        for row in rating_probs:
            index = int(np.argmax(row))
            scores = {rating: float(value) for rating, value in zip(RATINGS, row)}
            verdicts.append(Verdict(RATINGS[index], float(row[index]), scores, index > limit, self.max_rating))
        return verdicts

    def verdicts(self, images: Sequence[Image.Image]) -> list[Verdict | None]:
        """None for every image when the filter is off (no tagger is loaded then)."""
        if not self.enabled:
            return [None] * len(images)
        return self.rate(images)

    def is_withheld(self, image: Image.Image) -> str | None:
        """The arena's hook: the English reason, or None when the image may be shown."""
        (verdict,) = self.verdicts([image])
        return verdict.reason if verdict is not None and verdict.withheld else None

    def filter_outputs(self, outputs: Sequence[Any]) -> list[tuple[Any, Verdict | None]]:
        """Engine outputs (`GeneratedImage`) with withheld ones replaced by their placeholder; each
        with its verdict when it was withheld (None otherwise)."""
        outputs = list(outputs)
        checked = self.verdicts([item.image for item in outputs])
        result = []
        for item, verdict in zip(outputs, checked, strict=True):
            if verdict is not None and verdict.withheld:
                log.info("content filter: withheld an image of %s (%s)", getattr(item, "checkpoint", "?"), verdict.reason)
                result.append((dataclasses.replace(item, image=placeholder(item.image)), verdict))
            else:
                result.append((item, None))
        return result


def placeholder(image: Image.Image) -> Image.Image:
    """A stand-in of the same size that shows nothing of the image: its colours averaged over a 3x3
    grid, blurred, greyed, with a crossed-out eye drawn on top."""
    width, height = image.size
    tiny = image.convert("RGB").resize((3, 3), Image.Resampling.BOX)
    blurred = tiny.resize((width, height), Image.Resampling.BILINEAR).filter(ImageFilter.GaussianBlur(max(1, min(width, height) // 8)))
    shown = Image.blend(blurred, Image.new("RGB", (width, height), (128, 128, 128)), 0.5)
    draw = ImageDraw.Draw(shown)
    side = min(width, height)
    cx, cy, r = width / 2, height / 2, side / 5
    line = max(1, side // 32)
    draw.ellipse((cx - r, cy - r / 2, cx + r, cy + r / 2), outline=(255, 255, 255), width=line)
    draw.ellipse((cx - r / 4, cy - r / 4, cx + r / 4, cy + r / 4), fill=(255, 255, 255))
    draw.line((cx - r, cy + r / 1.2, cx + r, cy - r / 1.2), fill=(255, 255, 255), width=line)
    return shown
