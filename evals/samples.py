"""Plain records passed between the runner and the scoring modules (no database objects)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from PIL import Image


@dataclass
class SampleView:
    """A stored sample as the scorers see it; `image` is loaded on demand."""

    id: int
    item_id: str
    language: str
    seed: int
    prompt_text: str
    image_path: str
    meta: dict[str, Any] = field(default_factory=dict)
    image: Image.Image | None = None

    def load(self) -> Image.Image:
        if self.image is None:
            with Image.open(self.image_path) as opened:
                self.image = opened.convert("RGB")
        return self.image


@dataclass(frozen=True)
class ScoreRow:
    sample_id: int
    judge_id: str
    metric: str
    value: float

    def as_dict(self) -> dict[str, Any]:
        return {"sample_id": self.sample_id, "judge_id": self.judge_id, "metric": self.metric, "value": float(self.value)}
