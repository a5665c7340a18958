"""`python -m evals reproduce`: regenerate every measured table of the README from the committed weights.

The tables are declared below as data (which checkpoint, suite, adapters and seeds make each row).
Runs go through the ordinary runner (samples cached: a second call generates nothing), results through
the ordinary report, and each table is printed in the README's format with its judges and settings.
Each table is then compared with the README's copy (found after its `<!-- reproduce:ID -->` marker):
how far each cell moved and whether the README's number lies within the new 95% interval of that cell.
Every cell counts, the bold overall with its interval (`**0.99** [0.97, 1.00]`) included. A cell outside
its new interval, or a table missing from the README, fails the reproduction (`Reproduction.ok`; the
command exits 1).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.keys import parse_adapters
from evals.plan import RunOptions
from evals.report import build_report
from hub.errors import HubInputError

README = Path(__file__).resolve().parent.parent / "README.md"
LANGUAGES = ("en", "es", "fr", "de", "pt", "it", "ru", "zh", "ja", "ko")


@dataclass(frozen=True)
class Row:
    label: str
    checkpoint: str
    suite: str
    adapters: str = ""
    seeds: int = 2


@dataclass(frozen=True)
class Table:
    id: str
    title: str
    key: str  # the report key shown (hit_rate, success, ...)
    rows: tuple[Row, ...]
    by: str = "language"  # language: one column per language; group: one column per tier/category
    groups: tuple[str, ...] = ()
    extra_keys: tuple[str, ...] = field(default=())  # more report keys, one row each (editing)


TABLES: tuple[Table, ...] = (
    Table("characters", "Character hit rate by prompt language (demo-characters: the training templates)", "hit_rate", (
        Row("`demo-multilingual`", "demo-multilingual", "demo-characters"),
        Row("`demo-english` (English prompts only)", "demo-english", "demo-characters"),
    )),
    Table("paraphrased", "Character hit rate with templates and word orders never seen in training (demo-characters-paraphrased)",
          "hit_rate", (
        Row("`demo-multilingual`", "demo-multilingual", "demo-characters-paraphrased"),
        Row("`demo-english`", "demo-english", "demo-characters-paraphrased"),
    )),
    Table("tiers", "Character hit rate by tier (all languages pooled) and who judged", "hit_rate", (
        Row("`demo-multilingual`", "demo-multilingual", "demo-characters"),
        Row("`demo-english`", "demo-english", "demo-characters"),
    ), by="group", groups=("popular", "niche", "non_anime")),
    Table("held-out", "The held-out character without and with its LoRA (demo-held-out)", "hit_rate", (
        Row("`star_knight` on `demo-multilingual`", "demo-multilingual", "demo-held-out", seeds=4),
        Row("+ `demo-lora-star-knight:1`", "demo-multilingual", "demo-held-out", "demo-lora-star-knight:1", seeds=4),
    )),
    Table("editing", "Editing (demo-edit on demo-edits)", "success", (
        Row("success", "demo-edit", "demo-edits"),
    ), extra_keys=("identity_kept",)),
    Table("references", "Character from a reference image (demo-edit on demo-references)", "hit_rate", (
        Row("`demo-edit`", "demo-edit", "demo-references"),
    ), extra_keys=("reference_same", "success")),
)


def select_tables(ids: Sequence[str]) -> tuple[Table, ...]:
    """The tables with these ids, in the README's order; an unknown id is an error naming the known ones."""
    known = {table.id for table in TABLES}
    unknown = [i for i in ids if i not in known]
    if unknown:
        raise HubInputError(f"unknown table {', '.join(map(repr, unknown))} (known: {', '.join(t.id for t in TABLES)})")
    return tuple(table for table in TABLES if table.id in ids)


def _cell(value: Any) -> str:
    return "—" if value is None else f"{value:.2f}"


def _interval(est: dict[str, Any] | None) -> str:
    if not est or est.get("mean") is None:
        return "—"
    if est.get("lower") is None:
        return f"**{est['mean']:.2f}**"
    return f"**{est['mean']:.2f}** [{est['lower']:.2f}, {est['upper']:.2f}]"


def table_rows(table: Table, summaries: dict[Row, dict[str, Any]]) -> tuple[list[str], list[list[str]], list[list[Any]]]:
    """(header, markdown rows, the per-cell estimates for comparison)."""
    columns = list(table.groups) if table.by == "group" else list(LANGUAGES)
    header = ["", *columns, "overall [95% CI]"]
    if table.by == "group":
        header.append("judged by")
    rows, estimates = [], []
    for row in table.rows:
        summary = summaries[row]
        for key in (table.key, *table.extra_keys):
            label = row.label if not table.extra_keys else key
            cells, cell_estimates = [], []
            for column in columns:
                source = summary["by_group"].get(column, {}) if table.by == "group" else summary["by_language"].get(column, {})
                est = source.get(key)
                cells.append(_cell(est["mean"] if est else None))
                cell_estimates.append(est)
            overall = summary["overall"].get(key)
            line = [label, *cells, _interval(overall)]
            cell_estimates.append(overall)
            if table.by == "group":
                line.append(", ".join(summary.get("judged_by", [])) or "—")
            rows.append(line)
            estimates.append(cell_estimates)
    return header, rows, estimates


def markdown(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def readme_table(readme: str, table_id: str) -> list[list[str]] | None:
    """The data rows of the README table after `<!-- reproduce:ID -->`, as cell strings."""
    match = re.search(rf"<!-- reproduce:{re.escape(table_id)} -->\s*\n((?:\|.*\|\s*\n?)+)", readme)
    if not match:
        return None
    lines = [line.strip() for line in match.group(1).strip().splitlines()]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[2:]]


NUMBER = re.compile(r"^\*{0,2}(-?\d+(?:\.\d+)?)\*{0,2}(?:\s*\[[^\]]*\])?$")


def cell_value(text: str) -> float | None:
    """The number a README cell claims: `0.93`, `**0.93**` or `**0.93** [0.90, 0.96]`; None for `—`."""
    match = NUMBER.match(text.strip())
    return float(match.group(1)) if match else None


def compare(old: list[list[str]], new_estimates: list[list[Any]]) -> tuple[float, int, int]:
    """(largest |change|, cells compared, cells whose README value lies outside the new interval)."""
    largest, compared, outside = 0.0, 0, 0
    for old_row, estimates in zip(old, new_estimates):
        for text, est in zip(old_row[1:], estimates):
            old_value = cell_value(text)
            if old_value is None:
                continue
            if not est or est.get("mean") is None:
                continue
            compared += 1
            largest = max(largest, abs(est["mean"] - old_value))
            lower, upper = est.get("lower"), est.get("upper")
            if lower is not None and not (lower - 0.005 <= old_value <= upper + 0.005):
                outside += 1
    return largest, compared, outside


@dataclass
class Reproduction:
    text: str  # the tables in the README's format, each with its verdict
    failures: list[str]  # tables missing from the README or with cells outside their new intervals

    @property
    def ok(self) -> bool:
        return not self.failures


def reproduce(runner: Any, tables: Sequence[Table] = TABLES, readme: Path = README, progress: bool = True,
              seeds: int | None = None, limit: int | None = None) -> Reproduction:
    """`seeds` / `limit` (items per suite) shrink the plan: every table is still built and compared, on
    fewer samples (wider intervals), to check the command end to end in minutes."""
    out: list[str] = []
    failures: list[str] = []
    summaries: dict[Row, dict[str, Any]] = {}
    runs = {(row.checkpoint, row.suite, row.adapters, seeds or row.seeds) for table in tables for row in table.rows}
    for checkpoint, suite, adapters, n_seeds in sorted(runs):
        options = RunOptions(checkpoint, suite, adapters=parse_adapters(adapters), seeds=n_seeds, limit=limit)
        result = runner.run(options, progress=progress)
        out.append(f"<!-- run {checkpoint} / {suite} / {adapters or 'no LoRA'} / {n_seeds} seeds: {result.summary_line()} -->")
    readme_text = readme.read_text(encoding="utf-8") if readme.is_file() else ""
    for table in tables:
        settings_line = ""
        for row in table.rows:
            report = build_report(runner.db, row.checkpoint, row.suite, adapters=row.adapters)
            summary = next(iter(report["suites"].values()))
            summaries[row] = summary
            judges = ", ".join(f"{role} `{j['id']}`" for role, j in summary["judges"].items()
                               if isinstance(j, dict) and "id" in j and ":" not in role)
            settings_line = f"judges: {judges}; {summary['seeds']} seeds per item"
        header, rows, estimates = table_rows(table, summaries)
        out.append(f"\n### {table.title}\n\n<!-- reproduce:{table.id} -->\n{markdown(header, rows)}\n\n_{settings_line}_")
        old = readme_table(readme_text, table.id)
        if old is None:
            out.append(f"_(the README has no table `{table.id}` yet)_")
            failures.append(f"{table.id}: not in the README")
        else:
            largest, compared, outside = compare(old, estimates)
            verdict = "all within their new 95% intervals" if outside == 0 else f"{outside} outside their new 95% interval"
            out.append(f"_against the README: {compared} cells, largest change {largest:.2f}, {verdict}_")
            if outside:
                failures.append(f"{table.id}: {outside} of {compared} cells outside their new 95% interval")
    return Reproduction("\n".join(out), failures)
