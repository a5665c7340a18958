"""Results of a checkpoint's evals, read back from the database.

For each suite, the latest complete run of the checkpoint (and adapters) decides which samples count
(`leaderboards.results.current_rows`: same suite, checkpoint version and settings, that run's judges);
the suite's kind summarises them with the hub's one interval method. JSON per suite:

    {"suite", "kind", "version_hash", "checkpoint", "checkpoint_version", "adapters", "run_id", "judges",
     "seeds", "anchor_language", "overall", "mean_over_languages", "by_language", "by_group", "group_field",
     "n_items", "n_samples", ...kind extras ("judged_by", "unjudged_items", "unjudged_warning", "skipped_cases")}

Character suites also carry `tagger_name_agreement` (in `overall`, `by_language`, `by_group`): where the
tagger decides and a name judge is loaded, the share of samples where both give the same verdict, with
the hub's one interval method (`cluster_bootstrap` over characters). Unjudged items are said first and
loudly: every number of the suite leaves them out.
"""

from __future__ import annotations

from typing import Any

from evals.kinds import get_kind
from evals.suites import get_suite
from hub.errors import HubInputError
from leaderboards.eval_boards import decided_rows, unjudged_warning
from leaderboards.intervals import format_estimate
from leaderboards.results import current_rows, current_runs, sampled_items
from leaderboards.schema import Checkpoint, EvalRun, PromptSuite

AGREEMENT_KEY = "tagger_name_agreement"  # the character kind's report key for tagger / name judge agreement


def build_report(
    db: Any,
    checkpoint: str,
    suite: str | None = None,
    *,
    adapters: str | None = None,
    num_bootstrap: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """{'checkpoint': id, 'suites': {name: summary}}; an unknown checkpoint or no results is an error."""
    from sqlalchemy import select


    with db.session() as session:
        if session.get(Checkpoint, checkpoint) is None:
            raise HubInputError(f"no complete eval of '{checkpoint}' (it has no results in this database)")
        runs = current_runs(session, checkpoint=checkpoint, suite=suite, adapters=adapters)
        if not runs:
            what = f" on suite '{suite}'" if suite else ""
            pending = session.execute(select(EvalRun.status).where(
                EvalRun.checkpoint_id == checkpoint, *([EvalRun.suite_name == suite] if suite else []))).scalars().all()
            extra = f" (runs: {', '.join(sorted(set(pending)))})" if pending else ""
            raise HubInputError(f"no complete eval of '{checkpoint}'{what}{extra}")
        report: dict[str, Any] = {"checkpoint": checkpoint, "suites": {}}
        for run in runs:
            kind = get_kind(run.kind)
            try:
                loaded = get_suite(run.suite_name)
                anchor, items = loaded.anchor_language, set(loaded.item_ids)
            except HubInputError:  # suite file gone: report what was stored
                anchor, items = "en", None
            records = decided_rows(current_rows(session, run, list(kind.metrics.values()), kind.group_field, items), run.settings)
            second_opinions = set(getattr(kind, "second_opinion_metrics", ()))
            summary = kind.summarize(records, anchor=anchor, num_bootstrap=num_bootstrap, seed=seed)
            judged = {r["item_id"] for r in records}
            sampled = sampled_items(session, run) & items if items is not None else sampled_items(session, run)
            version_hash = session.execute(select(PromptSuite.version_hash).where(PromptSuite.name == run.suite_name)
                                           .order_by(PromptSuite.id.desc())).scalars().first()
            report["suites"][run.suite_name + (f" + {run.adapters}" if run.adapters else "")] = {
                "suite": run.suite_name,
                "kind": run.kind,
                "version_hash": version_hash,
                "checkpoint": checkpoint,
                "checkpoint_version": run.version,
                "adapters": run.adapters,
                "run_id": run.run_id,
                "judges": run.settings.get("judge_set", {}),
                "seeds": run.settings.get("seeds"),
                "anchor_language": anchor,
                # Judges that decided: a judge that only gave a compared second opinion is not one of them.
                "judged_by": sorted({r["judge_id"] for r in records if r["metric"] not in second_opinions}),
                "unjudged_items": sorted(sampled - judged),
                "unjudged_warning": unjudged_warning(len(sampled - judged)) or None,
                **({"skipped_cases": run.settings["skipped_cases"]} if run.settings.get("skipped_cases") else {}),
                **summary,
            }
    return report


def format_table(report: dict[str, Any]) -> str:
    """A plain-text rendering (intervals in brackets; gaps to English in parentheses)."""
    lines = []
    for name, s in report["suites"].items():
        lines.append(f"== {name}  ({s['kind']}, checkpoint {s['checkpoint']} @ {str(s['checkpoint_version'])[:10]}, "
                     f"{s['n_samples']} samples, {s['n_items']} items, suite {str(s['version_hash'])[:12]})")
        if s.get("unjudged_items"):  # first, before any number that leaves them out
            lines.append(f"!! {s.get('unjudged_warning') or unjudged_warning(len(s['unjudged_items']))}")
        lines.append(f"judged by: {', '.join(s['judged_by']) or 'none'}")
        lines += get_kind(s["kind"]).format_lines(s)
        agreement = (s.get("overall") or {}).get(AGREEMENT_KEY)
        if agreement:
            lines.append(f"tagger vs name judge: same verdict on {format_estimate(agreement.get('mean'), agreement.get('lower'), agreement.get('upper'))} "
                         f"of {agreement.get('n')} samples ({agreement.get('n_items')} characters the tagger decides; "
                         "the name judge's verdicts there are compared, not counted)")
        if s.get("unjudged_items"):
            lines.append(f"NOT JUDGED (no judge here can tell these): {', '.join(s['unjudged_items'])}")
        if s.get("skipped_cases"):
            lines.append(f"skipped (the checkpoint's family cannot run them): {', '.join(s['skipped_cases'])}")
        lines.append("")
    return "\n".join(lines).rstrip()


__all__ = ["build_report", "format_estimate", "format_table"]
