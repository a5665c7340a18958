"""What the hub takes from the demo world, by name from the config (`demo_world: demoworld.hooks`)."""

from __future__ import annotations

import random
from dataclasses import replace
from typing import Any

from PIL import Image

from demoworld import catalog
from demoworld.renderer import character_attributes, render
from hub.errors import HubInputError


def render_input(spec: dict[str, Any]) -> Image.Image:
    """The portrait a suite's `render:` input names (deterministic on every machine). `outfit` picks what
    is worn (`shirt` or `swimsuit`: the content filter's known truth)."""
    character = catalog.CHARACTER_BY_ID.get(spec["character"])
    if character is None:
        raise HubInputError(f"input.render: unknown demo-world character '{spec['character']}'")
    background = spec.get("background", "white")
    expression = spec.get("expression", "smile")
    if background not in catalog.BACKGROUNDS or expression not in catalog.EXPRESSIONS:
        raise HubInputError(f"input.render: unknown background '{background}' or expression '{expression}'")
    attributes = character_attributes(character, background, expression)
    garment = spec.get("outfit")
    if garment is not None:
        if garment not in catalog.GARMENTS:
            raise HubInputError(f"input.render: unknown outfit '{garment}' (one of: {', '.join(catalog.GARMENTS)})")
        attributes = replace(attributes, garment=garment)
    return render(attributes, int(spec["seed"]), int(spec.get("size", 64)))


def random_portrait(seed: int | None = None) -> tuple[Image.Image, str]:
    """A demo portrait to edit and an English instruction the demo edit model knows (the arena's
    "random demo portrait"); never the swimsuit edit, whose result a public hub withholds."""
    rng = random.Random(seed)
    character = rng.choice(catalog.trained_characters())
    kind, value = rng.choice(catalog.edit_kinds(include_sensitive=False))
    image = render(character_attributes(character), seed=rng.randrange(2**31), size=64)
    return image, catalog.edit_instruction(kind, value, "en")
