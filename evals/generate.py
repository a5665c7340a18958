"""Generate the planned samples that are not stored yet, in batches.

Each batch's requests go to the engine together (compatible ones share a pipeline call), the PNGs are
written under `<data_dir>/samples/` (atomically), the batch is judged, and its sample and score rows
are committed in one transaction: a run killed midway loses at most the batch in flight.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from evals.plan import PlannedSample, RunPlan
from evals.samples import SampleView
from evals.store import existing_samples, insert_samples
from hub.recipe import save_png


def sample_path(data_dir: Path, checkpoint_id: str, key: str) -> Path:
    return data_dir / "samples" / checkpoint_id / key[:2] / f"{key}.png"


def sample_record(plan: RunPlan, planned: PlannedSample, path: Path) -> dict[str, Any]:
    """The `samples` row of one generated sample (the same whichever backend made it)."""
    return {
        "cache_key": planned.cache_key,
        "checkpoint_id": plan.checkpoint.id,
        "adapters": plan.adapters,
        "suite_id": plan.suite_id,
        "prompt_id": planned.prompt_id,
        "item_id": planned.row.item_id,
        "language": planned.row.language,
        "prompt_text": planned.row.text,
        "seed": planned.seed,
        "settings_hash": plan.settings_hash,
        "checkpoint_version": plan.version,
        "image_path": str(path.resolve()),
    }


def generate_missing(
    plan: RunPlan,
    *,
    engine: Any,
    db: Any,
    data_dir: Path,
    on_batch: Callable[[int, int], None],
    progress: Callable[[int, str], Any],
) -> tuple[int, int, int]:
    """(generated, reused, score rows written). `on_batch(generated_so_far, reused)` after each batch."""
    existing = existing_samples(db, [p.cache_key for p in plan.samples])
    todo: dict[str, PlannedSample] = {}
    for planned in plan.samples:
        # Several languages of one prompt text can coincide (same name in en and es): generate once.
        if planned.cache_key not in existing:
            todo.setdefault(planned.cache_key, planned)
    reused = len(plan.samples) - sum(1 for p in plan.samples if p.cache_key not in existing)
    pending = list(todo.values())
    generated = scored = 0
    bar = progress(len(pending), f"generate {plan.checkpoint.id}")
    try:
        for start in range(0, len(pending), plan.options.batch_size):
            batch = pending[start : start + plan.options.batch_size]
            outputs = engine.run_many([p.request for p in batch])
            records, views = [], []
            for index, (planned, images) in enumerate(zip(batch, outputs)):
                image = images[0]
                path = sample_path(data_dir, plan.checkpoint.id, planned.cache_key)
                save_png(image.image, image.recipe, path)
                records.append(sample_record(plan, planned, path))
                views.append(SampleView(index, planned.row.item_id, planned.row.language, planned.seed, planned.row.text,
                                        str(path), plan.meta(planned), image.image))
            # Judge before the transaction (the write lock is held only for the inserts).
            scores = plan.kind.score_samples(views, plan.judges)
            insert_samples(db, records, [(batch[score.sample_id].cache_key, score) for score in scores])
            generated += len(batch)
            scored += len(scores)
            on_batch(generated, reused)
            bar.update(len(batch))
    finally:
        bar.close()
    return generated, reused, scored
