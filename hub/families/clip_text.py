"""CLIP text encoding as AUTOMATIC1111 does it: long prompts in 75-token chunks, weights on tokens.

diffusers cuts a CLIP prompt at 77 tokens (with a log line nobody sees). Anime prompts (quality,
character, artist and scene tags) often run past it, so the CLIP families encode prompts here:

- the prompt is parsed (`hub.prompt_syntax`) and tokenized fragment by fragment;
- tokens fill chunks of 75; a chunk that would split a tag moves the tag to the next chunk when a comma
  is within the last 20 tokens (A1111's `comma_padding_backtrack`); `BREAK` starts a new chunk;
- each chunk is encoded as `[BOS] tokens [EOS] [PAD]...` (77 tokens) and the chunks' hidden states are
  concatenated, so the UNet cross-attends to all of them;
- each token's hidden state is multiplied by its weight, then the chunk is rescaled so its mean is what
  it was before (A1111's "Original" emphasis);
- the prompt and the negative prompt are padded with empty-prompt chunks to the same count;
- SDXL: both encoders take the same chunks (CLIP-L pads with EOS, CLIP-G with its own pad token) and the
  pooled embedding comes from CLIP-G on the first chunk.

A short prompt without syntax gives exactly diffusers' own `encode_prompt` embeddings (one chunk, the
same padding, weights of 1), so plain prompts draw what they drew before. Why not `compel`: it has its
own syntax (`word++`, `(word)1.1`), it applies weights below 1 by blending with a masked prompt and
does not restore the mean, so its numbers differ from A1111's, which is what community prompts expect.

`clip_skip` uses A1111's numbering: 1 is the last layer; 2 the one before (then the final layer norm,
for SD 1.5). SDXL reads the penultimate layer by default, which is A1111's (and diffusers') clip skip 2.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from hub.prompt_syntax import is_break, parse_attention

CHUNK_TOKENS = 75  # 77 minus BOS and EOS
COMMA_BACKTRACK = 20


@dataclass(frozen=True)
class Chunk:
    tokens: tuple[int, ...]  # at most CHUNK_TOKENS ids, no BOS/EOS
    weights: tuple[float, ...]


def chunk_prompt(text: str, tokenizer: Any) -> list[Chunk]:
    """`text` tokenized into A1111's chunks (at least one; an empty prompt is one empty chunk)."""
    fragments = parse_attention(text)
    pieces = [part for part in fragments if not is_break(part)]
    ids = tokenizer([part for part, _ in pieces], add_special_tokens=False, truncation=False, verbose=False)["input_ids"] if pieces else []
    comma = tokenizer.get_vocab().get(",</w>")
    by_fragment = iter(zip(ids, [weight for _, weight in pieces]))
    chunks: list[Chunk] = []
    tokens: list[int] = []
    weights: list[float] = []
    last_comma = -1

    def close() -> None:
        nonlocal tokens, weights, last_comma
        chunks.append(Chunk(tuple(tokens), tuple(weights)))
        tokens, weights, last_comma = [], [], -1

    for fragment in fragments:
        if is_break(fragment):
            close()
            continue
        fragment_ids, weight = next(by_fragment)
        for token in fragment_ids:
            if token == comma:
                last_comma = len(tokens)
            elif len(tokens) == CHUNK_TOKENS and last_comma != -1 and len(tokens) - last_comma <= COMMA_BACKTRACK:
                # Move the words after the last comma to the next chunk, so a tag is not cut in two.
                cut = last_comma + 1
                moved_tokens, moved_weights = tokens[cut:], weights[cut:]
                tokens, weights = tokens[:cut], weights[:cut]
                close()
                tokens, weights = moved_tokens, moved_weights
            if len(tokens) == CHUNK_TOKENS:
                close()
            tokens.append(token)
            weights.append(weight)
    if tokens or not chunks:
        close()
    return chunks


def token_count(chunks: list[Chunk]) -> int:
    return sum(len(chunk.tokens) for chunk in chunks)


def _chunk_ids(chunk: Chunk, tokenizer: Any) -> list[int]:
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    return [tokenizer.bos_token_id, *chunk.tokens, tokenizer.eos_token_id] + [pad] * (CHUNK_TOKENS - len(chunk.tokens))


def _hidden(encoder: Any, ids: torch.Tensor, layer: int, final_norm: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The hidden states `layer` from the end (1: the last), and the pooled projection if the encoder has one."""
    output = encoder(ids, output_hidden_states=layer != 1)
    pooled = getattr(output, "text_embeds", None)
    if layer == 1:
        return output.last_hidden_state, pooled
    hidden = output.hidden_states[-layer]
    if final_norm:
        # transformers 5 keeps the layers on the model itself (4.x had them under `text_model`).
        hidden = getattr(encoder, "text_model", encoder).final_layer_norm(hidden)
    return hidden, pooled


def _weighted(hidden: torch.Tensor, weights: tuple[float, ...]) -> torch.Tensor:
    if all(weight == 1.0 for weight in weights):
        return hidden
    scale = torch.tensor([1.0, *weights] + [1.0] * (CHUNK_TOKENS + 1 - len(weights)), dtype=hidden.dtype, device=hidden.device)
    original_mean = hidden.mean()
    hidden = hidden * scale.reshape(1, -1, 1)
    return hidden * (original_mean / hidden.mean())


@dataclass(frozen=True)
class ClipEncoders:
    """The text encoders of a pipeline as the encoding needs them."""

    pairs: tuple[tuple[Any, Any], ...]  # (tokenizer, text encoder), in the order their states are concatenated
    layer: int  # A1111 clip skip: hidden states from this layer from the end
    final_norm: bool  # apply the final layer norm to skipped layers (SD 1.5)
    pooled: bool  # the last encoder's pooled projection is needed (SDXL)

    @property
    def layers(self) -> int:
        return min(encoder.config.num_hidden_layers for _, encoder in self.pairs)


@dataclass
class Encoded:
    """One text encoded: (1, 77 x chunks, width) states and, for SDXL, the (1, width) pooled embedding."""

    states: torch.Tensor
    pooled: torch.Tensor | None
    chunks: int
    tokens: int


def encode(text: str, encoders: ClipEncoders) -> Encoded:
    per_encoder = []
    pooled = None
    counts = []
    for index, (tokenizer, encoder) in enumerate(encoders.pairs):
        chunks = chunk_prompt(text, tokenizer)
        counts.append((len(chunks), token_count(chunks)))
        device = encoder.device
        states = []
        for number, chunk in enumerate(chunks):
            ids = torch.tensor([_chunk_ids(chunk, tokenizer)], device=device)
            hidden, chunk_pooled = _hidden(encoder, ids, encoders.layer, encoders.final_norm)
            states.append(_weighted(hidden, chunk.weights))
            if number == 0 and encoders.pooled and index == len(encoders.pairs) - 1:
                pooled = chunk_pooled
        per_encoder.append(torch.cat(states, dim=1))
    if len({count for count, _ in counts}) != 1:
        raise ValueError("the text encoders' tokenizers split the prompt differently")
    return Encoded(torch.cat(per_encoder, dim=-1), pooled, counts[0][0], counts[0][1])


def pad_to(encoded: Encoded, chunks: int, empty: Encoded) -> torch.Tensor:
    """`encoded`'s states padded with empty-prompt chunks to `chunks` chunks (A1111 pads the shorter
    of prompt and negative prompt so)."""
    missing = chunks - encoded.chunks
    if missing <= 0:
        return encoded.states
    return torch.cat([encoded.states, empty.states.repeat(1, missing, 1)], dim=1)

