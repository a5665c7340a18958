"""Checks on request values, shared by the UI, the API and the eval runner.

Each check raises `HubInputError` with a short message naming the problem; nothing is changed
before every check has passed.
"""

from __future__ import annotations

import math
from typing import Any

from core.ids import is_id
from core.keys import canonical_adapter_pairs, parse_adapters
from hub.config import Limits
from hub.errors import HubInputError
from hub.samplers import SAMPLERS as SAMPLER_TABLE
from hub.samplers import sampler_from_name

SAMPLERS = tuple(SAMPLER_TABLE)
MAX_SEED = 2**32 - 1


def check_prompt(prompt: Any, limits: Limits, *, required: bool = True, what: str = "prompt") -> str:
    if prompt is None:
        prompt = ""
    if not isinstance(prompt, str):
        raise HubInputError(f"The {what} must be text.")
    if required and not prompt.strip():
        raise HubInputError(f"The {what} is empty.")
    if len(prompt) > limits.max_prompt_chars:
        raise HubInputError(f"The {what} has {len(prompt):,} characters; the limit is {limits.max_prompt_chars:,}.")
    if "\x00" in prompt:
        raise HubInputError(f"The {what} contains a NUL character.")
    return prompt


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or value is None or value == "":
        raise HubInputError(f"{name} must be a number.")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise HubInputError(f"{name} must be a number.") from None
    if math.isnan(number) or math.isinf(number):
        raise HubInputError(f"{name} must be a finite number, not {value}.")
    return number


def check_int(value: Any, name: str, low: int, high: int) -> int:
    number = _number(value, name)
    if number != int(number):
        raise HubInputError(f"{name} must be a whole number, not {value}.")
    number = int(number)
    if not low <= number <= high:
        raise HubInputError(f"{name} must be between {low} and {high}, not {number}.")
    return number


def check_float(value: Any, name: str, low: float, high: float) -> float:
    number = _number(value, name)
    if not low <= number <= high:
        raise HubInputError(f"{name} must be between {low:g} and {high:g}, not {number:g}.")
    return number


def check_size(width: Any, height: Any, limits: Limits, checkpoint: str | None = None) -> tuple[int, int]:
    """Width and height within `limits` (a checkpoint's own, named in the message, when given)."""
    where = f" for {checkpoint!r}" if checkpoint else ""
    w = check_int(width, "Width" + where, limits.min_size, limits.max_size)
    h = check_int(height, "Height" + where, limits.min_size, limits.max_size)
    if w % 8 or h % 8:
        raise HubInputError(f"Width and height must be multiples of 8 (got {w}x{h}).")
    if w * h > limits.max_pixels:
        raise HubInputError(f"{w}x{h} is over the limit of {limits.max_pixels:,} pixels{where}.")
    return w, h


def check_seed(value: Any) -> int:
    return check_int(value, "Seed", 0, MAX_SEED)


def check_sampler(value: Any) -> str:
    """A sampler id, or its A1111 name ("DPM++ 2M Karras"), as our id."""
    key = sampler_from_name(value) if isinstance(value, str) else None
    if key is None:
        raise HubInputError(f"Unknown sampler {value!r}; choose one of {', '.join(SAMPLERS)}.")
    return key


def check_id_format(value: Any, what: str) -> str:
    """Ids come from a registry; anything that looks like a path is refused before any lookup."""
    if not isinstance(value, str) or not value:
        raise HubInputError(f"No {what} was given.")
    if not is_id(value):
        shown = value if len(value) <= 60 else value[:57] + "..."
        raise HubInputError(f"{what.capitalize()} {shown!r} is not a valid id.")
    return value


def parse_lora_list(value: Any, limits: Limits) -> tuple[tuple[str, float], ...]:
    """`"id:0.8, other:0.5"` (or a list of [id, weight] pairs) -> ((id, weight), ...) in the canonical
    order (`core.keys`), each id and weight checked."""
    if value is None or value == "" or value == []:
        return ()
    pairs: list[tuple[Any, Any]] = []
    if isinstance(value, str):
        pairs = list(parse_adapters(value.replace("\n", ",")))
    elif isinstance(value, (list, tuple)):
        for item in value:
            if isinstance(item, (list, tuple)) and len(item) == 2:
                pairs.append((item[0], item[1]))
            elif isinstance(item, str):
                pairs.append((item, 1.0))
            else:
                raise HubInputError("LoRAs must be given as 'id:weight, id:weight'.")
    else:
        raise HubInputError("LoRAs must be given as 'id:weight, id:weight'.")
    if len(pairs) > limits.max_loras:
        raise HubInputError(f"At most {limits.max_loras} LoRAs at once (got {len(pairs)}).")
    checked = [(check_id_format(name, "LoRA"), check_float(weight, f"Weight of LoRA {name!r}", -2.0, 2.0)) for name, weight in pairs]
    return canonical_adapter_pairs(checked)
