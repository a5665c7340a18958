"""Results of a checkpoint's evals, read back from the database.

For each suite, the latest complete run of the checkpoint (and adapters) decides which samples count:
the same suite version and generation settings. JSON per suite:

    {"suite", "kind", "version_hash", "checkpoint", "adapters", "run_id", "judges", "n_samples",
     "overall": ..., "by_language": {lang: {"hit_rate" | metric: {mean, lower, upper, n,
     "gap_to_english": {mean, lower, upper, n}}}}, "by_tier": {...}  (character suites)}
"""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy import select

from evals import character, edits, multilingual
from hub.errors import HubInputError


def _latest_runs(session: Any, checkpoint: str, suite: str | None, adapters: str | None) -> list[Any]:
    from leaderboards.schema import EvalRun

    query = select(EvalRun).where(EvalRun.checkpoint_id == checkpoint, EvalRun.status == "complete")
    if suite:
        query = query.where(EvalRun.suite_name == suite)
    if adapters is not None:
        query = query.where(EvalRun.adapters == adapters)
    latest: dict[tuple[str, str], Any] = {}
    for run in session.execute(query.order_by(EvalRun.finished_at, EvalRun.id)).scalars():
        latest[(run.suite_name, run.adapters or "")] = run
    return [latest[k] for k in sorted(latest)]


def build_report(
    db: Any,
    checkpoint: str,
    suite: str | None = None,
    *,
    adapters: str | None = None,
    num_bootstrap: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """{'checkpoint': id, 'suites': {suite_name: summary}}; an unknown checkpoint or no results is an error."""
    from leaderboards.schema import Checkpoint, EvalRun, Prompt, PromptSuite, Sample, Score

    with db.session() as session:
        if session.get(Checkpoint, checkpoint) is None:
            raise HubInputError(f"no complete eval of '{checkpoint}' (it has no results in this database)")
        runs = _latest_runs(session, checkpoint, suite, adapters)
        if not runs:
            what = f" on suite '{suite}'" if suite else ""
            pending = session.execute(
                select(EvalRun.status).where(EvalRun.checkpoint_id == checkpoint, *( [EvalRun.suite_name == suite] if suite else []))
            ).scalars().all()
            extra = f" (runs: {', '.join(sorted(set(pending)))})" if pending else ""
            raise HubInputError(f"no complete eval of '{checkpoint}'{what}{extra}")
        report: dict[str, Any] = {"checkpoint": checkpoint, "suites": {}}
        for run in runs:
            suite_row = session.get(PromptSuite, run.suite_id) if run.suite_id else None
            settings = dict(run.settings or {})
            anchor = "en"
            kind = "character_recognition"
            loaded = None
            try:
                from evals.suites import get_suite

                loaded = get_suite(run.suite_name)
                anchor, kind = loaded.anchor_language, loaded.kind
            except HubInputError:
                # Suite file gone: infer the kind from the metrics recorded.
                kind = str(settings.get("kind") or kind)
            query = (
                select(Sample.id, Sample.item_id, Sample.language, Sample.prompt_id, Score.judge_id, Score.metric, Score.value)
                .join(Score, Score.sample_id == Sample.id)
                .join(PromptSuite, PromptSuite.id == Sample.suite_id)
                .where(
                    Sample.checkpoint_id == checkpoint,
                    # By name, not id: samples reused from an earlier version of the suite count too.
                    PromptSuite.name == run.suite_name,
                    Sample.adapters == (run.adapters or ""),
                    Sample.settings_hash == run.settings_hash,
                )
            )
            judges = settings.get("judges", {})
            judge_ids = {j["id"] for j in judges.values()} if judges else None
            tiers = {}
            if kind in ("character_recognition", "edit"):
                field = "tier" if kind == "character_recognition" else "category"  # edit cases: category, kept in "tier"
                tiers = {
                    pid: (meta or {}).get(field, "unknown")
                    for pid, meta in session.execute(
                        select(Prompt.id, Prompt.meta).join(PromptSuite, PromptSuite.id == Prompt.suite_id).where(PromptSuite.name == run.suite_name)
                    )
                }
            current_items = set(loaded.item_ids) if loaded is not None else None
            records = []
            sample_ids = set()
            for sid, item, lang, pid, jid, metric, value in session.execute(query):
                if judge_ids is not None and jid not in judge_ids:
                    continue
                if current_items is not None and item not in current_items:
                    continue
                if value is None or (isinstance(value, float) and math.isnan(value)):
                    continue
                sample_ids.add(sid)
                tier = tiers.get(pid, "unknown")
                records.append({"item_id": item, "language": lang, "tier": tier, "category": tier, "metric": metric, "value": float(value)})
            if kind == "character_recognition":
                hits = [r for r in records if r["metric"] == character.HIT]
                summary = character.summarize(hits, anchor=anchor, num_bootstrap=num_bootstrap, seed=seed)
                # Characters no judge could decide (no tag in the tagger, no reference gallery): listed,
                # never counted as misses.
                sampled = set(
                    session.execute(
                        select(Sample.item_id)
                        .join(PromptSuite, PromptSuite.id == Sample.suite_id)
                        .where(
                            Sample.checkpoint_id == checkpoint,
                            PromptSuite.name == run.suite_name,
                            Sample.adapters == (run.adapters or ""),
                            Sample.settings_hash == run.settings_hash,
                        )
                        .distinct()
                    ).scalars()
                )
                if current_items is not None:
                    sampled &= current_items
                summary["unjudged_items"] = sorted(sampled - {r["item_id"] for r in hits})
            elif kind == "edit":
                summary = edits.summarize(records, anchor=anchor, num_bootstrap=num_bootstrap, seed=seed)
                if settings.get("skipped_cases"):
                    summary["skipped_cases"] = list(settings["skipped_cases"])
            else:
                summary = multilingual.summarize(
                    [r for r in records if r["metric"] in multilingual.REPORTED], anchor=anchor, num_bootstrap=num_bootstrap, seed=seed
                )
            report["suites"][run.suite_name + (f" + {run.adapters}" if run.adapters else "")] = {
                "suite": run.suite_name,
                "kind": kind,
                "version_hash": suite_row.version_hash if suite_row else None,
                "checkpoint": checkpoint,
                "adapters": run.adapters or "",
                "run_id": run.id,
                "judges": judges,
                "seeds": settings.get("seeds"),
                "n_samples": len(sample_ids),
                "anchor_language": anchor,
                **summary,
            }
    return report


def _fmt(est: dict[str, Any] | None, pct: bool = True) -> str:
    if not est or est.get("mean") is None:
        return "—"
    if pct:
        return f"{est['mean'] * 100:.1f}% [{est['lower'] * 100:.1f}, {est['upper'] * 100:.1f}]"
    return f"{est['mean']:.3f} [{est['lower']:.3f}, {est['upper']:.3f}]"


def _fmt_gap(est: dict[str, Any] | None, pct: bool = True) -> str:
    if not est or est.get("mean") is None:
        return ""
    return f"{est['mean'] * 100:+.1f}" if pct else f"{est['mean']:+.3f}"


def format_table(report: dict[str, Any]) -> str:
    """A plain-text rendering (intervals in brackets; gaps to English signed)."""
    lines = []
    for name, s in report["suites"].items():
        lines.append(f"== {name}  ({s['kind']}, checkpoint {s['checkpoint']}, {s['n_samples']} samples, suite {str(s['version_hash'])[:12]})")
        if s["kind"] == "character_recognition":
            overall = s.get("overall") or {}
            lines.append(f"hit rate: {_fmt(overall.get('hit_rate'))}")
            lines.append(f"{'language':<10}{'hit rate (95% CI)':<28}{'gap to en':>10}")
            for lang, e in s["by_language"].items():
                lines.append(f"{lang:<10}{_fmt(e['hit_rate']):<28}{_fmt_gap(e.get('gap_to_english')):>10}")
            lines.append(f"{'tier':<10}{'hit rate (95% CI)':<28}{'characters':>10}")
            for tier, e in s["by_tier"].items():
                lines.append(f"{tier:<10}{_fmt(e['hit_rate']):<28}{e['n_characters']:>10}")
            if s.get("unjudged_items"):
                lines.append(f"not judged (no tagger tag, no reference gallery): {', '.join(s['unjudged_items'])}")
        elif s["kind"] == "edit":
            overall = s.get("overall") or {}
            keys = [k for k in edits.REPORTED if k in overall]
            for key in keys:
                lines.append(f"{key}: {_fmt(overall[key], pct=key in ('success', 'identity_kept', 'character_kept', 'reference_same'))}")
            lines.append(f"{'language':<10}" + "".join(f"{k:<30}" for k in keys))
            for lang, e in s["by_language"].items():
                cells = [f"{_fmt(e.get(k), pct=k in ('success', 'identity_kept', 'character_kept', 'reference_same')):<30}" for k in keys]
                lines.append(f"{lang:<10}" + "".join(cells))
            if s.get("skipped_cases"):
                lines.append(f"skipped (the checkpoint's family cannot run them): {', '.join(s['skipped_cases'])}")
        else:
            header = f"{'language':<10}" + "".join(f"{m:<34}" for m in multilingual.REPORTED)
            lines.append(header)
            for lang, e in s["by_language"].items():
                cells = []
                for m in multilingual.REPORTED:
                    est = e.get(m)
                    cells.append(f"{(_fmt(est, pct=False) + ' ' + _fmt_gap(est.get('gap_to_english') if est else None, pct=False)).strip():<34}")
                lines.append(f"{lang:<10}" + "".join(cells))
        lines.append("")
    return "\n".join(lines).rstrip()
