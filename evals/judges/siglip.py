"""SigLIP 2 image-text judge through transformers (AutoModel / AutoProcessor).

Text is tokenised with `padding="max_length", max_length=64` (how SigLIP was trained; a model with fewer
text positions, such as the demo name judge's 16, gets its own length). With the judge option
`lowercase: true` text is lowercased first: SigLIP 2 was trained on lowercased text (transformers'
SigLIP 2 model docs), so the real judge must read prompts and names that way; SigLIP 1 and the demo judges
read text as written (the default). the score of an
(image, text) pair is sigmoid(exp(logit_scale) * cos + logit_bias), a probability in [0, 1]. Image
embeddings (L2-normalised) serve cross-lingual cosine and the reference judge. SigLIP (1) and the
NaFlex SigLIP 2 variants load through the same code: whatever the processor returns is passed on.
A folder whose processor cannot be built by `AutoProcessor` (e.g. a SigLIP image processor saved next to
a tokenizer of another family, without a processor config) is loaded as `AutoTokenizer` +
`AutoImageProcessor` combined into a `SiglipProcessor`.
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

TEXT_MAX_LENGTH = 64


class SiglipJudge:
    kind = "siglip"

    def __init__(self, model: Any, processor: Any, *, info: JudgeInfo | None = None, device: Any = None, batch_size: int = 16,
                 lowercase: bool = False):
        import torch

        self.device = device if isinstance(device, torch.device) else pick_device(device)
        self.model = model.eval().to(self.device)
        self.processor = processor
        self.info = info or JudgeInfo("siglip", "siglip", "1")
        self.batch_size = batch_size
        self.lowercase = lowercase
        # SigLIP pads every text to its training length; never past the model's own text positions.
        text_config = getattr(getattr(model, "config", None), "text_config", None)
        positions = getattr(text_config, "max_position_embeddings", None)
        self.text_max_length = min(TEXT_MAX_LENGTH, int(positions)) if positions else TEXT_MAX_LENGTH

    @classmethod
    def load(cls, source: str | Path, *, info: JudgeInfo | None = None, device: Any = None, batch_size: int = 16,
             lowercase: bool = False) -> "SiglipJudge":
        from transformers import AutoModel, AutoProcessor

        judge_id = info.id if info else "siglip"
        folder = resolve_source(source, ("config.json",), judge_id)
        try:
            # use_safetensors: refuse pickled weights; remote code is never trusted.
            model = AutoModel.from_pretrained(folder, local_files_only=True, use_safetensors=True, trust_remote_code=False)
            try:
                processor = AutoProcessor.from_pretrained(folder, local_files_only=True, trust_remote_code=False)
            except Exception:  # noqa: BLE001 - fall back to the two parts, combined
                processor = _combined_processor(folder)
        except Exception as exc:
            raise JudgeLoadError(f"judge '{judge_id}': cannot load SigLIP from {folder} ({type(exc).__name__}: {exc})") from exc
        if not hasattr(model, "logit_scale") or not hasattr(model, "get_text_features"):
            raise JudgeLoadError(f"judge '{judge_id}': {folder} is not a SigLIP model ({type(model).__name__})")
        return cls(model, processor, info=info, device=device, batch_size=batch_size, lowercase=lowercase)

    # ----------------------------------------------------------------------------------- inputs
    def tokenize(self, texts: Sequence[str]) -> dict[str, Any]:
        texts = [text.lower() for text in texts] if self.lowercase else list(texts)
        return self.processor(
            text=texts, padding="max_length", max_length=self.text_max_length, truncation=True, return_tensors="pt"
        )

    def _image_inputs(self, images: Sequence[Any]) -> dict[str, Any]:
        rgb = [to_rgb(load_image(im)) for im in images]
        return self.processor(images=rgb, return_tensors="pt")

    # -------------------------------------------------------------------------------- embeddings
    def text_embeddings(self, texts: Sequence[str], batch_size: int | None = None) -> np.ndarray:
        import torch

        out = []
        with torch.inference_mode():
            for chunk in batched(list(texts), batch_size or self.batch_size):
                inputs = {k: v.to(self.device) for k, v in self.tokenize(chunk).items() if k in ("input_ids", "attention_mask")}
                out.append(pooled(self.model.get_text_features(**inputs)).float().cpu().numpy())
        return l2_normalize(np.concatenate(out)) if out else np.zeros((0, 0), np.float32)

    def image_embeddings(self, images: Sequence[Image.Image | str | Path], batch_size: int | None = None) -> np.ndarray:
        import torch

        out = []
        with torch.inference_mode():
            for chunk in batched(list(images), batch_size or self.batch_size):
                dtype = next(self.model.parameters()).dtype  # half precision when options.dtype says so
                inputs = {
                    k: v.to(self.device, dtype=dtype) if v.is_floating_point() else v.to(self.device)
                    for k, v in self._image_inputs(chunk).items()
                }
                out.append(pooled(self.model.get_image_features(**inputs)).float().cpu().numpy())
        return l2_normalize(np.concatenate(out)) if out else np.zeros((0, 0), np.float32)

    embed = image_embeddings

    # ------------------------------------------------------------------------------------ scores
    def logits_from_embeddings(self, image_emb: np.ndarray, text_emb: np.ndarray) -> np.ndarray:
        scale = float(self.model.logit_scale.detach().float().exp().cpu())
        bias = float(self.model.logit_bias.detach().float().cpu())
        return scale * np.sum(image_emb * text_emb, axis=-1) + bias

    def scores(self, images: Sequence[Any], texts: Sequence[str]) -> np.ndarray:
        """Paired scores: sigmoid(exp(logit_scale) * cos(image_i, text_i) + logit_bias)."""
        if len(images) != len(texts):
            raise ValueError(f"{len(images)} images but {len(texts)} texts")
        if not len(images):
            return np.zeros(0, np.float32)
        return self.scores_from_embeddings(self.image_embeddings(images), texts)

    def scores_from_embeddings(self, image_emb: np.ndarray, texts: Sequence[str]) -> np.ndarray:
        text_emb = self.text_embeddings(texts)
        logits = self.logits_from_embeddings(image_emb, text_emb)
        return (1.0 / (1.0 + np.exp(-logits))).astype(np.float32)

    text_scores = scores


def _combined_processor(folder: Path) -> Any:
    """AutoTokenizer + AutoImageProcessor from one folder, as one SigLIP processor (text and images)."""
    from transformers import AutoImageProcessor, AutoTokenizer, SiglipProcessor

    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True, trust_remote_code=False)
    image_processor = AutoImageProcessor.from_pretrained(folder, local_files_only=True, trust_remote_code=False)
    return SiglipProcessor(image_processor=image_processor, tokenizer=tokenizer)


def lowercases(ctx: BuildContext) -> bool:
    """The judge option `lowercase` (SigLIP 2 checkpoints: true)."""
    return str(ctx.options.get("lowercase", False)).lower() in ("true", "1", "yes")


def _build(ctx: BuildContext) -> SiglipJudge:
    return SiglipJudge.load(ctx.source, info=ctx.info, device=ctx.device, batch_size=ctx.batch_size, lowercase=lowercases(ctx))


KIND = JudgeKind("siglip", roles=("image_text",), protocol=ImageTextJudge, build=_build)
