"""How many tokens a prompt is, for the checkpoint it goes to: shown under the prompt box.

CLIP families read every token (in 75-token chunks, `hub.families.clip_text`); the LLM-encoder families
read up to `Family.max_prompt_tokens` and drop the rest, which the user is told ("N of M tokens used").
Only the tokenizer is loaded (a few files), from the checkpoint's folder or its Hub cache; a checkpoint
whose tokenizer cannot be read here (a single-file checkpoint, a repo not downloaded) gets no count.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from hub.checkpoints import local_folder
from hub.config import CheckpointSpec, HubConfig
from hub.families import get_family
from hub.families.clip_text import chunk_prompt, token_count
from hub.prompt_syntax import PromptSyntaxError, plain_text, split_lora_tags


@dataclass(frozen=True)
class TokenCount:
    tokens: int
    chunks: int  # CLIP families: 75-token chunks; others 1
    limit: int | None  # tokens the family's encoder reads; None: all of them (CLIP chunks)

    @property
    def ignored(self) -> int:
        return max(0, self.tokens - self.limit) if self.limit is not None else 0


@functools.lru_cache(maxsize=32)
def _tokenizer(location: str, subfolder: str, revision: str | None, local_only: bool) -> Any:
    from transformers import AutoTokenizer

    # Tokenizer files only (no weights); never a tokenizer class shipped as code in a repo.
    return AutoTokenizer.from_pretrained(location, subfolder=subfolder, revision=revision, local_files_only=local_only,
                                         trust_remote_code=False)


def load_tokenizer(spec: CheckpointSpec, config: HubConfig) -> Any | None:
    family = get_family(spec.family)
    try:
        folder = local_folder(spec, config)
        if folder is not None:
            return _tokenizer(str(folder), family.tokenizers[0], None, True)
        if spec.source_kind == "hub":
            # The Hub cache only: the tokenizer arrives with the model; a count never waits on a download.
            return _tokenizer(spec.hub_repo, family.tokenizers[0], spec.pinned_revision, True)
    except Exception:  # noqa: BLE001 - no tokenizer here: no count, never an error for the user
        return None
    return None


def count_tokens(prompt: str, spec: CheckpointSpec, config: HubConfig) -> TokenCount | None:
    """The prompt's token count as the checkpoint's encoder reads it (LoRA tags left out)."""
    tokenizer = load_tokenizer(spec, config)
    if tokenizer is None:
        return None
    try:
        prompt = split_lora_tags(prompt)[0]
    except PromptSyntaxError:
        return None
    family = get_family(spec.family)
    try:
        if family.prompt_weights:
            chunks = chunk_prompt(prompt, tokenizer)
            return TokenCount(tokens=token_count(chunks), chunks=len(chunks), limit=None)
        text = plain_text(prompt)
    except PromptSyntaxError:  # the request's check says what is wrong; the count just waits
        return None
    ids = tokenizer(text, add_special_tokens=False, truncation=False, verbose=False)["input_ids"]
    return TokenCount(tokens=len(ids), chunks=1, limit=family.max_prompt_tokens)
