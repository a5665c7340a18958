"""Eval boards: one declaration per suite kind, one builder, one display.

An `EvalBoardSpec` names the suite kind, its metrics (board key -> metric), the field rows are grouped
by (tier, category) and how numbers read (percent, lower is better). `build_eval_board` turns the
current results (`leaderboards.results.current_rows`) into a long, full-precision frame — one row per
checkpoint, group, language (and `all`) and metric, with its 95% cluster-bootstrap interval and gap to
English — which is what CSV exports and the CLI write. `display_eval_board` pivots it for the page:
languages as columns, numbers rounded with their interval in one cell, the best value per column marked.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from leaderboards.db import Database
from leaderboards.intervals import cluster_bootstrap, format_estimate, paired_gap
from leaderboards.results import CurrentRun, checkpoint_label, current_rows, current_runs, sampled_items
from leaderboards.schema import Prompt, PromptSuite

ALL = "all"
LONG_COLUMNS = ["checkpoint", "version", "suite", "group", "language", "metric", "value", "lower", "upper",
                "gap_to_english", "gap_lower", "gap_upper", "n", "n_items", "judged_by", "unjudged_items"]
BEST_MARK = "★ "


@dataclass(frozen=True)
class EvalBoardSpec:
    kind: str
    metrics: Mapping[str, str]  # board key -> metric name
    group_field: str | None = None
    group_order: Sequence[str] = ()
    percent: Sequence[str] = ()
    lower_is_better: Sequence[str] = ()
    anchor_language: str = "en"
    judged_by: bool = False  # show which judges decided (and how many items none could)
    extra: dict[str, Any] = field(default_factory=dict)


# The eval boards (their metric names are the ones the suite kinds in `evals/kinds/` write).
# `tagger_name_agreement`: where the tagger decides and a name judge is loaded, the share of samples on
# which the name judge gives the same verdict (how far the zero-shot judge can be trusted where no tagger
# can check it); never part of the hit rate.
CHARACTER_BOARD = EvalBoardSpec(
    kind="character_recognition", metrics={"hit_rate": "character_hit", "tagger_name_agreement": "character_judges_agree"},
    group_field="tier", group_order=("popular", "niche", "non_anime"), percent=("hit_rate",), judged_by=True,
    extra={"unranked": ("tagger_name_agreement",)},  # a property of the judges, not a model's merit: no ★
)
REFERENCE_BOARD = EvalBoardSpec(
    kind="reference", metrics={"hit_rate": "character_hit", "reference_same": "edit_reference_same", "success": "edit_success"},
    group_field="tier", group_order=("popular", "niche", "non_anime"), judged_by=True,
)
MULTILINGUAL_BOARD = EvalBoardSpec(
    kind="multilingual_fidelity",
    metrics={"tag_recall": "tag_recall", "scene_tag_recall": "scene_tag_recall", "anchored_alignment": "anchored_alignment",
             "crosslingual_cosine": "crosslingual_cosine"},
)
EDITING_BOARD = EvalBoardSpec(
    kind="edit",
    metrics={"success": "edit_success", "identity_kept": "edit_identity_kept", "character_kept": "edit_character_kept",
             "reference_same": "edit_reference_same", "lpips_outside_mask": "edit_lpips_outside_mask",
             "pixel_l1_outside_mask": "edit_pixel_l1_outside_mask"},
    group_field="category", lower_is_better=("lpips_outside_mask", "pixel_l1_outside_mask"),
)


def _cells(records: list[dict[str, Any]], key: str, metric: str, group: str, spec: EvalBoardSpec, base: dict[str, Any],
           unjudged: int | None, num_bootstrap: int, seed: int) -> list[dict[str, Any]]:
    rows = [r for r in records if r["metric"] == metric and (group == ALL or r["group"] == group)]
    if not rows:
        return []
    languages = sorted({r["language"] for r in rows}, key=lambda lang: (lang != spec.anchor_language, lang))
    anchor = [r for r in rows if r["language"] == spec.anchor_language]
    out = []
    for language in [ALL, *languages]:
        subset = rows if language == ALL else [r for r in rows if r["language"] == language]
        est = cluster_bootstrap([r["value"] for r in subset], [r["item_id"] for r in subset], num_bootstrap=num_bootstrap, seed=seed)
        gap = None
        if language not in (ALL, spec.anchor_language) and anchor:
            gap = paired_gap([r["value"] for r in subset], [r["item_id"] for r in subset],
                             [r["value"] for r in anchor], [r["item_id"] for r in anchor], num_bootstrap=num_bootstrap, seed=seed)
        out.append({
            **base, "group": group, "language": language, "metric": key, "value": est.mean, "lower": est.lower,
            "upper": est.upper, "gap_to_english": gap.mean if gap else None, "gap_lower": gap.lower if gap else None,
            "gap_upper": gap.upper if gap else None, "n": est.n, "n_items": est.n_items,
            "judged_by": ", ".join(sorted({r["judge_id"] for r in subset})) if spec.judged_by else "",
            "unjudged_items": unjudged if spec.judged_by and language == ALL else None,
        })
    return out


def build_eval_board(db: Database, spec: EvalBoardSpec, *, suite: str | None = None, num_bootstrap: int = 1000,
                     seed: int = 0) -> pd.DataFrame:
    """The board's long frame (columns `LONG_COLUMNS`), full precision."""
    out: list[dict[str, Any]] = []
    with db.session() as session:
        for run in current_runs(session, kinds=[spec.kind], suite=suite):
            records = decided_rows(current_rows(session, run, list(spec.metrics.values()), spec.group_field), run.settings)
            base = {"checkpoint": checkpoint_label(run.checkpoint_id, run.adapters), "version": run.version[:10],
                    "suite": run.suite_name}
            groups = [ALL]
            if spec.group_field:
                order = {g: i for i, g in enumerate(spec.group_order)}
                groups += sorted({r["group"] for r in records}, key=lambda g: (order.get(g, len(order)), g))
            unjudged = _unjudged_by_group(session, run, records, spec) if spec.judged_by else {}
            for group in groups:
                for key, metric in spec.metrics.items():
                    out += _cells(records, key, metric, group, spec, base, unjudged.get(group), num_bootstrap, seed)
    return pd.DataFrame(out, columns=LONG_COLUMNS)


def decided_rows(records: list[dict[str, Any]], settings: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """Where a run names each item's decider (`settings.judge_set.deciders`: {metric, items: {item: judge id
    or null}}), that metric's rows count only from the item's decider; other rows pass unchanged. So when
    a character's decider changes (an author's gallery arrives, a tagger learns the tag), the verdicts of
    the judge that decided it before stop counting, though they stay stored."""
    deciders = ((settings or {}).get("judge_set") or {}).get("deciders")
    if not isinstance(deciders, Mapping) or not isinstance(deciders.get("items"), Mapping):
        return records
    metric, items = deciders.get("metric"), deciders["items"]
    return [r for r in records if r["metric"] != metric or r["item_id"] not in items or items[r["item_id"]] == r["judge_id"]]


def _unjudged_by_group(session: Any, run: CurrentRun, records: list[dict[str, Any]], spec: EvalBoardSpec) -> dict[str, int]:
    """Items a run sampled that no judge could score, per group (and `all`)."""
    from sqlalchemy import select


    judged = {r["item_id"] for r in records}
    missing = sampled_items(session, run) - judged
    group_of = {item: str((meta or {}).get(spec.group_field) or "unknown") for item, meta in session.execute(
        select(Prompt.item_id, Prompt.meta).join(PromptSuite, PromptSuite.id == Prompt.suite_id).where(PromptSuite.name == run.suite_name))}
    counts = {ALL: len(missing)}
    for item in missing:
        counts[group_of.get(item, "unknown")] = counts.get(group_of.get(item, "unknown"), 0) + 1
    return counts


def unjudged_warning(unjudged: int) -> str:
    """The board's (and the report's) warning when some sampled items could not be judged."""
    if not unjudged:
        return ""
    items = "item" if unjudged == 1 else "items"
    return f"⚠ {unjudged} {items} NOT JUDGED (no judge here can tell; left out of these numbers)"


def display_eval_board(long: pd.DataFrame, spec: EvalBoardSpec) -> pd.DataFrame:
    """Languages as columns (`all` first after the row labels), '0.83 [0.50, 1.00]' cells, the best value
    of each column marked with ★; rows checkpoint × group × metric."""
    if long.empty:
        return pd.DataFrame()
    index = ["checkpoint", "version"] + (["group"] if spec.group_field else []) + ["metric"]
    languages = [ALL] + sorted((set(long["language"]) - {ALL}), key=lambda lang: (lang != spec.anchor_language, lang))
    rows = []
    for keys, frame in long.groupby(index, sort=False):
        keys = keys if isinstance(keys, tuple) else (keys,)
        row = dict(zip(index, keys))
        for language in languages:
            cell = frame[frame["language"] == language]
            row[language] = cell.iloc[0] if not cell.empty else None
        rows.append(row)
    shown = pd.DataFrame(rows)
    for language in languages:
        # The best of a column is marked among rows of the same metric and the same tier/category.
        group_column = "group" if spec.group_field else None
        blocks = dict.fromkeys(zip(shown["metric"], shown[group_column] if group_column else [None] * len(shown)))
        for metric, group in blocks:
            cells = [(i, r[language]) for i, r in shown.iterrows()
                     if r["metric"] == metric and (group_column is None or r[group_column] == group) and r[language] is not None]
            values = [(i, c["value"]) for i, c in cells if pd.notna(c["value"])]
            best = None
            if len(values) > 1 and metric not in spec.extra.get("unranked", ()):
                pick = min if metric in spec.lower_is_better else max
                best = pick(values, key=lambda item: item[1])[1]
            for i, cell in cells:
                text = format_estimate(cell["value"], cell["lower"], cell["upper"])
                if best is not None and cell["value"] == best:
                    text = BEST_MARK + text
                shown.at[i, language] = text
    for language in languages:
        shown[language] = shown[language].map(lambda c: c if isinstance(c, str) else "—")
    if spec.judged_by:
        totals = {tuple(row[c] for c in index): row for _, row in long[long["language"] == ALL].iterrows()}
        keys = [tuple(r[c] for c in index) for _, r in shown.iterrows()]
        shown["judged by"] = [totals[k]["judged_by"] if k in totals else "" for k in keys]
        shown["unjudged items"] = [int(totals[k]["unjudged_items"]) if k in totals and pd.notna(totals[k]["unjudged_items"]) else 0
                                   for k in keys]
        # Said loudly: a hit rate over the judged items only reads as better than it may be.
        shown["warning"] = [unjudged_warning(n) for n in shown["unjudged items"]]
    if spec.group_field:
        shown = shown.rename(columns={"group": spec.group_field})
    return shown.reset_index(drop=True)
