"""The demo world's hooks, named in the config (`demo_world: demoworld.hooks`) and imported here only.

Evals and the arena need demo portraits (the inputs of demo edit and reference suites, a random
portrait to edit in the arena). They get them as functions passed in, so a deployment can drop the
demo world: with `demo_world: null` nothing of it is imported and those features say so.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PIL import Image

from hub.config import ConfigError, HubConfig


@dataclass(frozen=True)
class DemoHooks:
    # spec of a `render:` input ({character, seed, background, expression, size, outfit}) -> portrait
    render_input: Callable[[dict[str, Any]], Image.Image] | None = None
    # seed (None: random) -> (portrait, caption)
    random_portrait: Callable[[int | None], tuple[Image.Image, str]] | None = None


def load_demo_hooks(config: HubConfig) -> DemoHooks:
    if not config.demo_world:
        return DemoHooks()
    try:
        module = importlib.import_module(config.demo_world)
    except ImportError as err:
        raise ConfigError(f"demo_world: cannot import {config.demo_world!r} ({err})") from None
    return DemoHooks(render_input=getattr(module, "render_input", None), random_portrait=getattr(module, "random_portrait", None))
