"""Reference judge: is this the same character as in a small gallery of reference images?

For characters a tagger has no tag for (Heisenberg, Shrek, ...). An image embedder (the vision tower of
a SigLIP/CLIP judge, or a tagger's pooled features) maps the candidate and the gallery to unit vectors;
each gallery image "agrees" when cosine >= `threshold`; the candidate is the same character when the
fraction of agreeing references is >= `min_fraction` (how LoRA trainers score fidelity with CCIP).

`options.ccip: auto` uses CCIP (`dghs-imgutils`, the anime same-character model) for the verdict where the
package is installed and its weights load (checked once, at build); otherwise the embeddings decide. The
judge's version says which (`...+ccip`), so the run records it. Galleries: a folder per character; authors'
galleries live under `<data_dir>/galleries/` (`evals.galleries`); `data_dir` says which data folder.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from PIL import Image

from core.images import to_rgb
from evals.judges.base import BuildContext, GalleryJudge, ImageEmbedder, JudgeInfo, JudgeKind, JudgeLoadError, load_image

log = logging.getLogger(__name__)

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
        data_dir: Path | None = None,
        ccip: "_Ccip | None" = None,
    ):
        self.embedder = embedder
        self.threshold = float(threshold)
        self.min_fraction = float(min_fraction)
        self.info = info or JudgeInfo("reference", "reference", "1")
        self.data_dir = data_dir  # authors' galleries are in <data_dir>/galleries (None: suite folders only)
        self.ccip = ccip
        self._galleries: dict[tuple, Any] = {}

    @staticmethod
    def _key(folder: str | Path, what: str) -> tuple:
        # Keyed by the files too: a gallery replaced under the same path is embedded afresh.
        paths = gallery_images(folder)
        return (what, str(Path(folder).resolve()), tuple((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in paths))

    def gallery(self, folder: str | Path) -> np.ndarray:
        """Unit embeddings of a gallery folder, computed once per folder content."""
        key = self._key(folder, "embeddings")
        if key not in self._galleries:
            images = [load_image(p) for p in gallery_images(folder)]
            self._galleries[key] = np.asarray(self.embedder.image_embeddings(images), dtype=np.float32)
        return self._galleries[key]

    def ccip_gallery(self, folder: str | Path) -> list[np.ndarray]:
        key = self._key(folder, "ccip")
        if key not in self._galleries:
            self._galleries[key] = self.ccip.features([load_image(p) for p in gallery_images(folder)])
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
        verdicts = self.verdicts_from_embeddings(embeddings, self.gallery(gallery))
        if self.ccip is None:
            return verdicts
        agree = self.ccip.agreeing(self.ccip.features([load_image(im) for im in images]), self.ccip_gallery(gallery))
        fractions = agree.mean(axis=1)
        return [ReferenceVerdict(bool(f >= self.min_fraction), float(f), v.max_cosine, v.mean_cosine)
                for f, v in zip(fractions, verdicts)]


class _Ccip:
    """CCIP from `dghs-imgutils`: a feature per image, "same character" when the difference of two
    features is at or below the model's threshold (about 0.178 for the default model)."""

    def __init__(self, model: str | None = None, threshold: float | None = None):
        from imgutils.metrics import ccip_batch_differences, ccip_default_threshold, ccip_extract_feature

        self._extract, self._differences = ccip_extract_feature, ccip_batch_differences
        self.model_kwargs = {"model": model} if model else {}
        self.threshold = float(threshold) if threshold is not None else float(ccip_default_threshold(**self.model_kwargs))
        self.features([Image.new("RGB", (64, 64), (255, 255, 255))])  # the weights load now, or never

    def features(self, images: Sequence[Any]) -> list[np.ndarray]:
        return [np.asarray(self._extract(to_rgb(im), **self.model_kwargs)) for im in images]

    def agreeing(self, candidates: list[np.ndarray], references: list[np.ndarray]) -> np.ndarray:
        """(N, R) booleans: candidate i is the same character as reference j."""
        diff = np.asarray(self._differences(candidates + references, **self.model_kwargs))
        return diff[: len(candidates), len(candidates):] <= self.threshold


def _optional_ccip(ctx: BuildContext) -> "_Ccip | None":
    """CCIP when `options.ccip` is `auto` and dghs-imgutils with its weights is there; None otherwise."""
    if str(ctx.options.get("ccip", "off")).lower() not in ("auto", "true", "1", "yes"):
        return None
    try:
        return _Ccip(ctx.options.get("ccip_model"), ctx.thresholds.get("ccip"))
    except Exception as exc:  # noqa: BLE001 - not installed, weights missing (offline): embeddings decide
        log.info("judge '%s': CCIP unavailable (%s: %s); image embeddings decide", ctx.info.id, type(exc).__name__, exc)
        return None


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
        from evals.judges.siglip import SiglipJudge, lowercases

        embedder = SiglipJudge.load(ctx.source, info=ctx.info, device=ctx.device, batch_size=ctx.batch_size,
                            lowercase=lowercases(ctx))
    ccip = _optional_ccip(ctx)
    info = JudgeInfo(ctx.info.id, ctx.info.kind, ctx.info.version + "+ccip") if ccip else ctx.info
    return ReferenceJudge(
        embedder,
        threshold=float(ctx.thresholds.get("same", DEFAULT_THRESHOLD)),
        min_fraction=float(ctx.thresholds.get("min_fraction", DEFAULT_MIN_FRACTION)),
        info=info,
        data_dir=Path(ctx.data_dir),
        ccip=ccip,
    )


KIND = JudgeKind("reference", roles=("reference",), protocol=GalleryJudge, build=_build)
