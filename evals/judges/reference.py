"""Reference judge: is this the same character as in a small gallery of reference images?

For characters a tagger has no tag for (Heisenberg, Shrek, ...). An image embedder (the vision tower of
a SigLIP/CLIP judge, or a tagger's pooled features) maps the candidate and the gallery to unit vectors;
each gallery image "agrees" when cosine >= `threshold`; the candidate is the same character when the
fraction of agreeing references is >= `min_fraction` (how LoRA trainers score fidelity with CCIP).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from evals.judges.base import BuildContext, GalleryJudge, ImageEmbedder, JudgeInfo, JudgeKind, JudgeLoadError, load_image

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
DEFAULT_THRESHOLD = 0.85
DEFAULT_MIN_FRACTION = 0.5


@dataclass(frozen=True)
class ReferenceVerdict:
    same: bool
    fraction: float  # share of references at or above the threshold
    max_cosine: float
    mean_cosine: float


def gallery_images(folder: str | Path) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise JudgeLoadError(f"reference gallery {folder} not found")
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise JudgeLoadError(f"reference gallery {folder} has no images")
    return paths


class ReferenceJudge:
    kind = "reference"

    def __init__(
        self,
        embedder: ImageEmbedder,
        *,
        threshold: float = DEFAULT_THRESHOLD,
        min_fraction: float = DEFAULT_MIN_FRACTION,
        info: JudgeInfo | None = None,
    ):
        self.embedder = embedder
        self.threshold = float(threshold)
        self.min_fraction = float(min_fraction)
        self.info = info or JudgeInfo("reference", "reference", "1")
        self._galleries: dict[str, np.ndarray] = {}

    def gallery(self, folder: str | Path) -> np.ndarray:
        """Unit embeddings of a gallery folder, computed once per folder."""
        key = str(Path(folder).resolve())
        if key not in self._galleries:
            images = [load_image(p) for p in gallery_images(folder)]
            self._galleries[key] = np.asarray(self.embedder.image_embeddings(images), dtype=np.float32)
        return self._galleries[key]

    def verdicts_from_embeddings(self, embeddings: np.ndarray, gallery: np.ndarray) -> list[ReferenceVerdict]:
        cos = np.asarray(embeddings, np.float32) @ np.asarray(gallery, np.float32).T  # (N, R)
        fractions = (cos >= self.threshold).mean(axis=1)
        return [
            ReferenceVerdict(bool(f >= self.min_fraction), float(f), float(row.max()), float(row.mean()))
            for f, row in zip(fractions, cos)
        ]

    def judge(self, images: Sequence[Any], gallery: str | Path) -> list[ReferenceVerdict]:
        """Verdicts for `images` (all of the same character) against one gallery, in one batch."""
        if not len(images):
            return []
        embeddings = np.asarray(self.embedder.image_embeddings(list(images)), dtype=np.float32)
        return self.verdicts_from_embeddings(embeddings, self.gallery(gallery))


def _build(ctx: BuildContext) -> ReferenceJudge:
    """`judge:OTHER_ID` reuses another judge's image embeddings; any other source loads a SigLIP model."""
    kind, _, value = ctx.source.partition(":")
    if kind == "judge":
        if value not in ctx.others:
            raise JudgeLoadError(f"judge '{ctx.info.id}': embedder judge '{value}' is not loaded")
        embedder = ctx.others[value]
        if not isinstance(embedder, ImageEmbedder):
            raise JudgeLoadError(f"judge '{ctx.info.id}': judge '{value}' gives no image embeddings")
    else:
        from evals.judges.siglip import SiglipJudge

        embedder = SiglipJudge.load(ctx.source, info=ctx.info, device=ctx.device, batch_size=ctx.batch_size)
    return ReferenceJudge(
        embedder,
        threshold=float(ctx.thresholds.get("same", DEFAULT_THRESHOLD)),
        min_fraction=float(ctx.thresholds.get("min_fraction", DEFAULT_MIN_FRACTION)),
        info=ctx.info,
    )


KIND = JudgeKind("reference", roles=("reference",), protocol=GalleryJudge, build=_build)
