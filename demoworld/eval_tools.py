"""The pieces the demo world's training-time checks share: the demo pipeline loader and the name
judge's "which character is this?" decision. `quick_eval`, `name_judge_eval` and `edit_eval` all use
them; keeping them here (below all three) is what lets those modules import each other one way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from demoworld import catalog as cat

ROOT = Path(__file__).resolve().parent.parent
NONE = "none"


def candidate_texts(lang: str) -> tuple[list[str], list[str]]:
    """(texts, what each names): the 18 names in `lang`, then the distractors (naming no one)."""
    texts = [c.names[lang] for c in cat.CHARACTERS] + [d[lang] for d in cat.DISTRACTOR_TEXTS.values()]
    return texts, [c.id for c in cat.CHARACTERS] + [NONE] * len(cat.DISTRACTOR_TEXTS)


class NameDecider:
    """Top-1 character among a language's candidates, from a loaded `SiglipJudge`."""

    def __init__(self, judge: Any):
        self.judge = judge
        self._text: dict[str, np.ndarray] = {}

    def text_embeddings(self, lang: str) -> np.ndarray:
        if lang not in self._text:
            self._text[lang] = self.judge.text_embeddings(candidate_texts(lang)[0])
        return self._text[lang]

    def decide(self, images: Sequence[Any] | None = None, lang: str = "en",
               image_emb: np.ndarray | None = None) -> list[str]:
        """The character id each image shows according to the judge, or "none" (a distractor won)."""
        emb = self.judge.image_embeddings(list(images)) if image_emb is None else image_emb
        who = candidate_texts(lang)[1]
        return [who[j] for j in np.argmax(emb @ self.text_embeddings(lang).T, axis=1)]

    def probability(self, image_emb: np.ndarray, character_id: str, lang: str = "en") -> np.ndarray:
        """The calibrated probability that each image shows `character_id` (sigmoid of the SigLIP logit)."""
        j = candidate_texts(lang)[1].index(character_id)
        logits = self.judge.logits_from_embeddings(image_emb, self.text_embeddings(lang)[j][None])
        return 1.0 / (1.0 + np.exp(-logits))


def load_pipeline(folder: str | Path, device: str = "cpu", lora: str | Path | None = None):
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(str(folder), torch_dtype=torch.float32, local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    if lora:
        pipe.load_lora_weights(str(lora), adapter_name="lora")
    return pipe.to(device)


def load_name_decider(folder: str | Path | None = ROOT / "models" / "demo-name-judge", device: str = "cpu"):
    """The name judge's decider, or None when its folder is not there."""
    if not folder or not (Path(folder) / "config.json").is_file():
        return None
    from evals.judges.siglip import SiglipJudge

    return NameDecider(SiglipJudge.load(str(folder), device=device, batch_size=128))
