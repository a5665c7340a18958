"""Score what is not scored yet: planned samples reused from earlier runs (another judge, a crash
between generation and scoring), then the kind's scores over several samples (paired metrics).
Idempotent: one transaction per batch; a rerun writes nothing already there."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from evals.kinds.base import ScoringContext
from evals.plan import EvalError, RunPlan
from evals.samples import SampleView
from evals.store import existing_samples, have_scores, score_values, write_scores


def score_missing(plan: RunPlan, *, db: Any, progress: Callable[[int, str], Any]) -> tuple[int, int]:
    """(score rows written, unjudged samples)."""
    stored = existing_samples(db, [p.cache_key for p in plan.samples])
    views: dict[str, SampleView] = {}
    for planned in plan.samples:
        sample = stored.get(planned.cache_key)
        if sample is None:
            raise EvalError(f"sample {planned.cache_key[:12]} missing after generation")
        # One view per (sample, item, language): the same image can serve two languages' prompts.
        views[f"{sample.id}|{planned.row.item_id}|{planned.row.language}"] = SampleView(
            sample.id, planned.row.item_id, planned.row.language, planned.seed, planned.row.text, sample.image_path,
            plan.meta(planned),
        )
    all_views = list(views.values())
    have = have_scores(db, [v.id for v in all_views])
    missing = [v for v in all_views if any((v.id, j, m) not in have for j, m in plan.kind.expected_metrics(v, plan.judges))]
    missing = list({v.id: v for v in missing}.values())
    step = max(plan.options.batch_size, 16)
    written = 0
    bar = progress(len(missing), "score")
    try:
        for start in range(0, len(missing), step):
            batch = missing[start : start + step]
            rows = plan.kind.score_samples(batch, plan.judges)
            write_scores(db, rows)
            written += len(rows)
            for view in batch:
                view.image = None  # free memory
            bar.update(len(batch))
    finally:
        bar.close()
    ctx = ScoringContext(
        score_values=lambda ids, judge, metric: score_values(db, ids, judge, metric),
        have_scores=lambda ids: have_scores(db, ids),
        write_scores=lambda rows: write_scores(db, rows),
        batch_size=step,
        progress=progress,
    )
    written += plan.kind.after_scoring(ctx, plan.suite, all_views, plan.judges)
    return written, plan.kind.unjudged(all_views, plan.judges)
