"""Summaries of scored samples: one shape for every suite kind, one interval method for every number.

`summarize(records, ...)` takes rows `{item_id, language, group, metric, value}` and returns

    {"overall": {key: estimate}, "mean_over_languages": {key: float},
     "by_language": {lang: {key: estimate + "gap_to_english"}},
     "by_group": {group: {key: estimate, "by_language": {...}}}, "group_field": "tier" | "category" | None,
     "n_items": int, "n_samples": int}

where `key` is a report key of the kind (e.g. `hit_rate`, `success`) and every estimate is
`leaderboards.intervals.cluster_bootstrap` over items (the same function the boards use, so a board
cell and the report agree to the digit), gaps `paired_gap` over the items both languages have.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from leaderboards.intervals import cluster_bootstrap, format_estimate, paired_gap


def _estimate(rows: Sequence[Mapping[str, Any]], **kw: Any) -> dict[str, Any]:
    return cluster_bootstrap([r["value"] for r in rows], [r["item_id"] for r in rows], **kw).as_dict()


def _by_language(rows: Sequence[Mapping[str, Any]], metrics: Mapping[str, str], languages: list[str], anchor: str, **kw: Any) -> dict[str, Any]:
    grouped: dict[tuple[str, str], list[Mapping[str, Any]]] = defaultdict(list)
    for r in rows:
        grouped[(r["language"], r["metric"])].append(r)
    out: dict[str, Any] = {}
    for lang in languages:
        entry: dict[str, Any] = {}
        for key, metric in metrics.items():
            subset = grouped.get((lang, metric), [])
            if not subset:
                continue
            est = _estimate(subset, **kw)
            anchor_rows = grouped.get((anchor, metric), [])
            if anchor_rows:
                est["gap_to_english"] = paired_gap(
                    [r["value"] for r in subset], [r["item_id"] for r in subset],
                    [r["value"] for r in anchor_rows], [r["item_id"] for r in anchor_rows], **kw,
                ).as_dict()
            entry[key] = est
        if entry:
            out[lang] = entry
    return out


def summarize(
    records: Sequence[Mapping[str, Any]],
    *,
    metrics: Mapping[str, str],
    group_field: str | None = None,
    group_order: Sequence[str] = (),
    anchor: str = "en",
    num_bootstrap: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """`metrics`: report key -> metric name (rows of other metrics are ignored)."""
    kw = {"num_bootstrap": num_bootstrap, "seed": seed}
    wanted = set(metrics.values())
    rows = [r for r in records if r["metric"] in wanted and r["value"] is not None and np.isfinite(r["value"])]
    languages = sorted({r["language"] for r in rows}, key=lambda lang: (lang != anchor, lang))
    overall = {key: _estimate([r for r in rows if r["metric"] == metric], **kw)
               for key, metric in metrics.items() if any(r["metric"] == metric for r in rows)}
    by_language = _by_language(rows, metrics, languages, anchor, **kw)
    mean_over_languages = {}
    for key in metrics:
        means = [entry[key]["mean"] for entry in by_language.values() if key in entry and entry[key]["mean"] is not None]
        if means:
            mean_over_languages[key] = float(np.mean(means))
    by_group: dict[str, Any] = {}
    if group_field:
        order = {g: i for i, g in enumerate(group_order)}
        groups = sorted({str(r.get("group") or "unknown") for r in rows}, key=lambda g: (order.get(g, len(order)), g))
        for group in groups:
            subset = [r for r in rows if str(r.get("group") or "unknown") == group]
            entry = {key: _estimate([r for r in subset if r["metric"] == metric], **kw)
                     for key, metric in metrics.items() if any(r["metric"] == metric for r in subset)}
            entry["by_language"] = _by_language(subset, metrics, languages, anchor, **kw)
            entry["n_items"] = len({r["item_id"] for r in subset})
            by_group[group] = entry
    return {
        "overall": overall,
        "mean_over_languages": mean_over_languages,
        "by_language": by_language,
        "by_group": by_group,
        "group_field": group_field,
        "n_items": len({r["item_id"] for r in rows}),
        "n_samples": len({(r["item_id"], r["language"], r.get("sample_id")) for r in rows}),
    }


def _cell(est: Mapping[str, Any] | None, percent: bool) -> str:
    if not est:
        return "—"
    text = format_estimate(est.get("mean"), est.get("lower"), est.get("upper"))
    gap = est.get("gap_to_english")
    if gap and gap.get("mean") is not None and abs(gap["mean"]) > 1e-12:
        text += f" ({gap['mean']:+.2f})"
    return text


def format_summary(summary: Mapping[str, Any], keys: Sequence[str], percent_keys: Sequence[str] = ()) -> list[str]:
    """Plain-text lines: overall, a language table (gap to English in parentheses), a group table."""
    lines = []
    overall = summary.get("overall") or {}
    for key in keys:
        if key in overall:
            mean = (summary.get("mean_over_languages") or {}).get(key)
            extra = f"   mean over languages {mean:.2f}" if mean is not None else ""
            lines.append(f"{key}: {_cell(overall[key], key in percent_keys)}{extra}")
    shown = [k for k in keys if any(k in e for e in summary.get("by_language", {}).values())]
    if shown:
        lines.append(f"{'language':<10}" + "".join(f"{k:<30}" for k in shown))
        for lang, entry in summary["by_language"].items():
            lines.append(f"{lang:<10}" + "".join(f"{_cell(entry.get(k), k in percent_keys):<30}" for k in shown))
    if summary.get("by_group"):
        field = summary.get("group_field") or "group"
        lines.append(f"{field:<10}" + "".join(f"{k:<30}" for k in shown) + "items")
        for group, entry in summary["by_group"].items():
            lines.append(f"{group:<10}" + "".join(f"{_cell(entry.get(k), k in percent_keys):<30}" for k in shown) + str(entry["n_items"]))
    return lines
