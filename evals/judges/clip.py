"""CLIP image-text judge through torchmetrics' `CLIPScore`.

`CLIPScore(model_name_or_path=callable)` takes a callable returning `(model, processor)`; that is how
a local (or tiny test) CLIP plugs in. Score = max(100 * cos(image, text), 0), per pair, computed by
torchmetrics' own update function so the number matches the published metric.

Transformers 5 returns output objects from `get_image_features` / `get_text_features`, while
torchmetrics 1.9 expects tensors; `_FeatureTensors` adapts the model without copying it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
from PIL import Image

from core.images import to_rgb
from evals.judges.base import (
    BuildContext,
    ImageTextJudge,
    JudgeInfo,
    JudgeKind,
    JudgeLoadError,
    batched,
    l2_normalize,
    load_image,
    pick_device,
    pooled,
    resolve_source,
)


class _FeatureTensors:
    """Wraps a CLIPModel so get_*_features return projected tensors (what torchmetrics expects)."""

    def __init__(self, model: Any):
        self._model = model
        self.config = model.config

    def get_image_features(self, *args: Any, **kwargs: Any) -> Any:
        return pooled(self._model.get_image_features(*args, **kwargs))

    def get_text_features(self, *args: Any, **kwargs: Any) -> Any:
        return pooled(self._model.get_text_features(*args, **kwargs))

    def to(self, device: Any) -> "_FeatureTensors":
        self._model.to(device)
        return self

    def eval(self) -> "_FeatureTensors":
        self._model.eval()
        return self

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)


def load_clip_pair(folder: str | Path) -> tuple[Any, Any]:
    """(model, processor) from a local folder: safetensors only, no remote code."""
    from transformers import CLIPModel, CLIPProcessor

    model = CLIPModel.from_pretrained(folder, local_files_only=True, use_safetensors=True, trust_remote_code=False)
    processor = CLIPProcessor.from_pretrained(folder, local_files_only=True, trust_remote_code=False)
    return model.eval(), processor


class ClipJudge:
    kind = "clip"

    def __init__(self, model_and_processor: Any, *, info: JudgeInfo | None = None, device: Any = None, batch_size: int = 16):
        """`model_and_processor`: a callable returning (model, processor), as CLIPScore takes it."""
        import torch
        from torchmetrics.multimodal.clip_score import CLIPScore

        self.info = info or JudgeInfo("clip", "clip", "1")
        self.device = device if isinstance(device, torch.device) else pick_device(device)
        self.batch_size = batch_size

        def factory() -> tuple[Any, Any]:
            model, processor = model_and_processor()
            return _FeatureTensors(model), processor

        self.metric = CLIPScore(model_name_or_path=factory)
        self.metric.model.eval().to(self.device)

    @classmethod
    def load(cls, source: str | Path, *, info: JudgeInfo | None = None, device: Any = None, batch_size: int = 16) -> "ClipJudge":
        judge_id = info.id if info else "clip"
        folder = resolve_source(source, ("config.json",), judge_id)
        try:
            return cls(lambda: load_clip_pair(folder), info=info, device=device, batch_size=batch_size)
        except JudgeLoadError:
            raise
        except Exception as exc:
            raise JudgeLoadError(f"judge '{judge_id}': cannot load CLIP from {folder} ({type(exc).__name__}: {exc})") from exc

    @staticmethod
    def _tensor(image: Any) -> Any:
        import torch

        rgb = to_rgb(load_image(image))
        return torch.from_numpy(np.asarray(rgb, dtype=np.uint8).copy()).permute(2, 0, 1)

    def scores(self, images: Sequence[Image.Image | str | Path], texts: Sequence[str]) -> np.ndarray:
        """Per-pair CLIPScore, max(100 * cos, 0)."""
        import torch
        from torchmetrics.functional.multimodal.clip_score import _clip_score_update

        if len(images) != len(texts):
            raise ValueError(f"{len(images)} images but {len(texts)} texts")
        out = []
        pairs = list(zip(images, texts))
        with torch.inference_mode():
            for chunk in batched(pairs, self.batch_size):
                tensors = [self._tensor(im).to(self.device) for im, _ in chunk]
                score, _ = _clip_score_update(tensors, [t for _, t in chunk], self.metric.model, self.metric.processor)
                out.append(torch.clamp(score, min=0).float().cpu().numpy())
        return np.concatenate(out) if out else np.zeros(0, np.float32)

    text_scores = scores

    def image_embeddings(self, images: Sequence[Image.Image | str | Path], batch_size: int | None = None) -> np.ndarray:
        import torch

        out = []
        with torch.inference_mode():
            for chunk in batched(list(images), batch_size or self.batch_size):
                rgb = [to_rgb(load_image(im)) for im in chunk]
                inputs = self.metric.processor(images=rgb, return_tensors="pt")
                feats = self.metric.model.get_image_features(inputs["pixel_values"].to(self.device))
                out.append(feats.float().cpu().numpy())
        return l2_normalize(np.concatenate(out)) if out else np.zeros((0, 0), np.float32)

    embed = image_embeddings


def _build(ctx: BuildContext) -> ClipJudge:
    return ClipJudge.load(ctx.source, info=ctx.info, device=ctx.device, batch_size=ctx.batch_size)


KIND = JudgeKind("clip", roles=("image_text",), protocol=ImageTextJudge, build=_build)
