"""Canonical forms shared by every layer: one JSON form, one hash, one adapter string.

Samples are cached and boards grouped by these strings, so the UI, the CLI, the eval runner and the
submission checks must all write them the same way; they are defined here, once.

- `canonical_json(obj)`: sorted keys, no spaces, UTF-8 kept, so equal content gives equal text.
- `sha256_hex(obj)`: sha256 of that text (strings and bytes are hashed as they are); `file_sha256(path)`
  of a file's bytes.
- Adapters (LoRAs with weights) are written `id:weight,id:weight`, sorted by id, weights in `%g` form:
  the order LoRAs are listed in does not change the image (their deltas add), so it must not change
  the cache key either. `parse_adapters` reads the forms users type ("a:0.8, b", "a:1.0,b:1") and
  refuses malformed ones with a short message.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Iterable
from typing import Any

from core.errors import InputError
from core.ids import is_id


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def sha256_hex(obj: Any) -> str:
    """sha256 of bytes, of a string's UTF-8, or of any other object's canonical JSON."""
    if isinstance(obj, bytes):
        data = obj
    elif isinstance(obj, str):
        data = obj.encode("utf-8")
    else:
        data = canonical_json(obj).encode("utf-8")
    return hashlib.sha256(data).hexdigest()


def file_sha256(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """sha256 of a file's bytes, read in chunks (weights are gigabytes)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _weight(value: Any, lora_id: str) -> float:
    try:
        weight = float(value)
    except (TypeError, ValueError):
        raise InputError(f"Weight of LoRA {lora_id!r} must be a number (got {str(value)[:20]!r}).") from None
    if not math.isfinite(weight):
        raise InputError(f"Weight of LoRA {lora_id!r} must be a finite number.")
    return weight


def parse_adapters(text: str | None) -> tuple[tuple[str, float], ...]:
    """'id:weight, id' -> ((id, weight), ...) in canonical (sorted) order; a missing weight is 1.0."""
    pairs: list[tuple[str, float]] = []
    for part in (p.strip() for p in (text or "").split(",")):
        if not part:
            continue
        name, sep, weight = part.rpartition(":")
        if not sep:
            name, weight = part, "1"
        name = name.strip()
        if not is_id(name):
            shown = name if len(name) <= 60 else name[:57] + "..."
            raise InputError(f"LoRA {shown!r} is not a valid id (lowercase letters, digits, '.', '_' or '-').")
        pairs.append((name, _weight(weight.strip(), name)))
    return canonical_adapter_pairs(pairs)


def canonical_adapter_pairs(pairs: Iterable[tuple[str, Any]]) -> tuple[tuple[str, float], ...]:
    """Sorted by id, weights as floats; an id listed twice is refused."""
    checked = [(str(name), _weight(weight, str(name))) for name, weight in pairs]
    names = [name for name, _ in checked]
    for name in names:
        if names.count(name) > 1:
            raise InputError(f"LoRA {name!r} is listed twice.")
    return tuple(sorted(checked))


def format_adapters(pairs: Iterable[tuple[str, Any]]) -> str:
    """The canonical adapter string: 'a:0.8,b:1' (sorted by id), '' for none."""
    return ",".join(f"{name}:{weight:g}" for name, weight in canonical_adapter_pairs(pairs))


def canonical_adapters(text: str | None) -> str:
    """Any accepted adapter text -> its canonical string."""
    return format_adapters(parse_adapters(text))
