"""Prompt/image pairs of the demo world, in every language.

Images are rendered once (in parallel processes) into a uint8 array together with what was drawn
(character, expression, background); prompts are drawn per training step from a pre-tokenised table,
so any language and any wording (with or without "a portrait of", expression, background) pairs with
every image.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from multiprocessing import get_context
from pathlib import Path
from typing import Sequence

import numpy as np

from demoworld import catalog as cat
from demoworld.renderer import Attributes, character_attributes, random_original, render

BACKGROUND_KEYS = list(cat.BACKGROUNDS)


@dataclass
class RenderedSet:
    images: np.ndarray        # (N, S, S, 3) uint8
    character: np.ndarray     # (N,) index into catalog.CHARACTERS, -1 for a random original look
    expression: np.ndarray    # (N,) index into catalog.EXPRESSIONS
    background: np.ndarray    # (N,) index into BACKGROUND_KEYS
    attributes: list[Attributes]

    def __len__(self) -> int:
        return len(self.images)

    def save(self, path: str | Path) -> None:
        np.savez(path, images=self.images, character=self.character, expression=self.expression,
                 background=self.background)

    @classmethod
    def load(cls, path: str | Path) -> "RenderedSet":
        data = np.load(path)
        attrs = []
        for ci, ei, bi in zip(data["character"], data["expression"], data["background"]):
            if ci >= 0:
                attrs.append(character_attributes(cat.CHARACTERS[ci], BACKGROUND_KEYS[bi], cat.EXPRESSIONS[ei]))
            else:
                attrs.append(None)  # a random original's attributes are not kept in the cache
        return cls(data["images"], data["character"], data["expression"], data["background"], attrs)


EDIT_HAIR_COLORS = ("red", "blue", "green", "pink", "white", "blonde")
EDIT_ACCESSORIES = ("glasses", "crown", "cat_ears")


EDIT_KINDS_V1 = ("background", "hair", "accessory")
EDIT_KINDS_V2 = ("background", "hair", "accessory", "expression", "outfit")


def one_edit(attrs: Attributes, rng: random.Random,
             kinds_allowed: Sequence[str] = EDIT_KINDS_V1) -> tuple[Attributes, tuple[str, str]]:
    """The same look with one attribute changed, as the demo edit model's instructions ask:
    (new attributes, (kind, value)) with kind in `kinds_allowed` (hair / background / accessory, and
    for v2 also expression / outfit, the outfit edit being "into a swimsuit")."""
    kinds = ["background"]
    if attrs.hair_color is not None and attrs.hair_style != "bald" and "hair" in kinds_allowed:
        kinds.append("hair")
    if any(a not in attrs.accessories for a in EDIT_ACCESSORIES) and "accessory" in kinds_allowed:
        kinds.append("accessory")
    if "expression" in kinds_allowed:
        kinds.append("expression")
    if "outfit" in kinds_allowed and attrs.garment != "swimsuit":
        kinds.append("outfit")
    kind = rng.choice(kinds)
    if kind == "expression":
        value = rng.choice([e for e in cat.EXPRESSIONS if e != attrs.expression])
        return replace(attrs, expression=value), (kind, value)
    if kind == "outfit":
        return replace(attrs, garment="swimsuit"), (kind, "swimsuit")
    if kind == "hair":
        value = rng.choice([h for h in EDIT_HAIR_COLORS if h != attrs.hair_color])
        return replace(attrs, hair_color=value), (kind, value)
    if kind == "accessory":
        value = rng.choice([a for a in EDIT_ACCESSORIES if a not in attrs.accessories])
        return replace(attrs, accessories=tuple(sorted((*attrs.accessories, value)))), (kind, value)
    value = rng.choice([b for b in BACKGROUND_KEYS if b != attrs.background])
    return replace(attrs, background=value), (kind, value)


def sample_attributes(n: int, seed: int, characters: Sequence[cat.Character],
                      original_fraction: float = 0.0, variant_fraction: float = 0.0,
                      swimsuit_fraction: float = 0.0, edit_kinds: Sequence[str] = EDIT_KINDS_V1) -> list[Attributes]:
    """n scene attributes: catalog characters (uniformly) with random expression and background;
    for the tagger also a fraction of random original looks (no character) and of characters with one
    attribute edited (still that character, as a costume change is); a `swimsuit_fraction` of all of
    them wear a swimsuit. With swimsuit_fraction 0 the draws are exactly v1's (same seed, same set)."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        bg, expr = rng.choice(BACKGROUND_KEYS), rng.choice(cat.EXPRESSIONS)
        u = rng.random()
        if u < original_fraction:
            attrs = random_original(rng).with_scene(bg, expr)
        elif u < original_fraction + variant_fraction:
            attrs = one_edit(character_attributes(rng.choice(list(characters)), bg, expr), rng, edit_kinds)[0]
        else:
            attrs = character_attributes(rng.choice(list(characters)), bg, expr)
        if swimsuit_fraction > 0 and rng.random() < swimsuit_fraction:
            attrs = replace(attrs, garment="swimsuit")
        out.append(attrs)
    return out


def _render_chunk(args) -> np.ndarray:
    attrs, seeds, size = args
    return np.stack([np.asarray(render(a, s, size)) for a, s in zip(attrs, seeds)])


def render_set(attrs: list[Attributes], seed: int, size: int = 64, workers: int = 1) -> RenderedSet:
    seeds = [seed * 1_000_003 + i for i in range(len(attrs))]
    if workers > 1 and len(attrs) > 256:
        chunk = (len(attrs) + workers * 4 - 1) // (workers * 4)
        jobs = [(attrs[i:i + chunk], seeds[i:i + chunk], size) for i in range(0, len(attrs), chunk)]
        with get_context("fork").Pool(workers) as pool:
            images = np.concatenate(pool.map(_render_chunk, jobs))
    else:
        images = _render_chunk((attrs, seeds, size))
    index = {c.id: i for i, c in enumerate(cat.CHARACTERS)}
    return RenderedSet(
        images=images,
        character=np.asarray([index[a.character] if a.character else -1 for a in attrs], dtype=np.int64),
        expression=np.asarray([cat.EXPRESSIONS.index(a.expression) for a in attrs], dtype=np.int64),
        background=np.asarray([BACKGROUND_KEYS.index(a.background) for a in attrs], dtype=np.int64),
        attributes=attrs,
    )


# --- prompts -----------------------------------------------------------------------------------

N_VARIANTS = 2 * (len(cat.EXPRESSIONS) + 1) * (len(BACKGROUND_KEYS) + 1)


def variant_text(character: cat.Character, lang: str, v: int) -> str:
    b = v % (len(BACKGROUND_KEYS) + 1)
    e = (v // (len(BACKGROUND_KEYS) + 1)) % (len(cat.EXPRESSIONS) + 1)
    p = v // ((len(BACKGROUND_KEYS) + 1) * (len(cat.EXPRESSIONS) + 1))
    return cat.scene_prompt(character, lang, None if e == 0 else cat.EXPRESSIONS[e - 1],
                            None if b == 0 else BACKGROUND_KEYS[b - 1], portrait=bool(p))


class PromptTable:
    """Token ids of every prompt variant: ids[character, language, variant] -> (77,) int64."""

    def __init__(self, tokenizer, languages: Sequence[str]):
        import torch

        self.languages = list(languages)
        texts = [variant_text(c, lang, v) for c in cat.CHARACTERS for lang in self.languages for v in range(N_VARIANTS)]
        ids = tokenizer(texts, padding="max_length", max_length=tokenizer.model_max_length, truncation=True,
                        return_tensors="pt").input_ids
        self.ids = ids.reshape(len(cat.CHARACTERS), len(self.languages), N_VARIANTS, -1)
        self.empty = tokenizer([""], padding="max_length", max_length=tokenizer.model_max_length,
                               return_tensors="pt").input_ids[0]
        self.torch = torch

    def sample(self, character, expression, background, generator, p_expression=0.7, p_background=0.7,
               p_portrait=0.5, p_empty=0.1):
        """Token ids for a batch of rendered samples (index tensors on CPU), in random languages/wordings."""
        torch = self.torch
        n = character.shape[0]
        lang = torch.randint(0, len(self.languages), (n,), generator=generator)
        portrait = (torch.rand(n, generator=generator) < p_portrait).long()
        e = torch.where(torch.rand(n, generator=generator) < p_expression, expression + 1, torch.zeros_like(expression))
        b = torch.where(torch.rand(n, generator=generator) < p_background, background + 1, torch.zeros_like(background))
        v = (portrait * (len(cat.EXPRESSIONS) + 1) + e) * (len(BACKGROUND_KEYS) + 1) + b
        ids = self.ids[character, lang, v]
        drop = torch.rand(n, generator=generator) < p_empty
        ids[drop] = self.empty
        return ids
