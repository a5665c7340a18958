"""Battles on stored eval samples: which stored images a prompt has, and which seeds a battle shows.

A battle reuses stored samples when the prompt is exactly the text of an eval prompt that has images
(no adapters) from at least two candidates; it then needs no GPU work and carries the prompt's category
(the sample's language and, for character suites, the tier in `prompts.meta`).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from leaderboards.schema import CUSTOM_LANGUAGE, Prompt, Sample


@dataclass(frozen=True)
class StoredSample:
    path: str
    language: str
    tier: str | None


def stored_samples(session: Session, prompt: str, candidates: Sequence[str]) -> dict[str, dict[int, StoredSample]]:
    """checkpoint -> {seed: stored sample} of eval samples for exactly this prompt (files present)."""
    if not candidates:
        return {}
    found: dict[str, dict[int, StoredSample]] = {}
    rows = session.execute(
        select(Sample.checkpoint_id, Sample.seed, Sample.image_path, Sample.language, Prompt.meta)
        .outerjoin(Prompt, Prompt.id == Sample.prompt_id)
        .where(Sample.prompt_text == prompt, Sample.adapters == "", Sample.checkpoint_id.in_(list(candidates)))
    )
    for checkpoint_id, seed, image_path, language, meta in rows:
        if Path(image_path).is_file():
            tier = meta.get("tier") if isinstance(meta, dict) else None
            found.setdefault(checkpoint_id, {})[int(seed)] = StoredSample(
                image_path, str(language or CUSTOM_LANGUAGE), str(tier) if tier else None
            )
    return found


def sample_seeds(
    stored: dict[str, dict[int, StoredSample]],
    model_a: str,
    model_b: str,
    blocked: set[tuple[str, int]],
    rng: random.Random,
) -> tuple[int, int]:
    """The same seed for both sides when they share one (a fairer comparison), else one each;
    `blocked` (model, seed) samples are never chosen."""
    seeds_a = sorted(s for s in stored[model_a] if (model_a, s) not in blocked)
    seeds_b = sorted(s for s in stored[model_b] if (model_b, s) not in blocked)
    shared = sorted(set(seeds_a) & set(seeds_b))
    if shared:
        seed = rng.choice(shared)
        return seed, seed
    return rng.choice(seeds_a), rng.choice(seeds_b)


def suite_prompts(session: Session, candidates: Sequence[str], language: str | None, max_chars: int) -> list[str]:
    """Stored eval prompts (sorted) with images from at least two of `candidates` (in `language`)."""
    if not candidates:
        return []
    query = (
        select(Sample.prompt_text)
        .where(Sample.adapters == "", Sample.checkpoint_id.in_(list(candidates)))
        .group_by(Sample.prompt_text)
        .having(func.count(func.distinct(Sample.checkpoint_id)) >= 2)
    )
    if language:
        query = query.where(Sample.language == language)
    return sorted(p for p in session.scalars(query).all() if p == p.strip() and 0 < len(p) <= max_chars)
