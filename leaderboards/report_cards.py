"""Report cards: everything the boards say about one checkpoint, on one page.

`build_report_card` reads every board of `leaderboards.boards.BOARDS` through the same tables the
Leaderboard tab shows (so the card and the boards cannot disagree), keeps the checkpoint's rows and
adds, per board, its rank among the checkpoints on that board (1 + the number whose interval lies
entirely above its own, as the arena ranks). From the character runs it lists the characters the
checkpoint fails on and picks sample images per tier and language. `report_markdown` writes the card
for a model card; `report_png` draws it as one image.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure
from sqlalchemy import select

from leaderboards.boards import BOARDS, BoardSource
from leaderboards.eval_boards import ALL, decided_rows
from leaderboards.intervals import format_estimate
from leaderboards.results import current_rows, current_runs
from leaderboards.schema import Checkpoint, Sample

FAIL_BELOW = 0.5  # a character "fails" when fewer than half of its images are recognised
HEADLINE = {"characters": "hit_rate", "multilingual": "tag_recall", "editing": "success", "references": "hit_rate"}


@dataclass(frozen=True)
class BoardLine:
    """One headline number of one board for the checkpoint: value, interval, rank of how many."""

    board: str
    title: str
    metric: str
    value: float
    lower: float
    upper: float
    rank: int
    of: int
    percent: bool = False
    detail: pd.DataFrame = field(default_factory=pd.DataFrame, compare=False)  # every row of this board for it


@dataclass(frozen=True)
class ReportCard:
    checkpoint: str
    display_name: str
    family: str
    is_demo: bool
    lines: tuple[BoardLine, ...]
    arena: dict[str, Any] | None
    failures: tuple[dict[str, Any], ...]
    samples: tuple[tuple[str, str, str], ...]  # (tier, language, image path)
    defaults: dict[str, Any]


def interval_rank(values: pd.DataFrame, checkpoint: str, lower_is_better: bool = False) -> int:
    """1 + the number of checkpoints whose interval lies entirely better than this one's (ties share)."""
    mine = values[values["checkpoint"] == checkpoint].iloc[0]
    others = values[values["checkpoint"] != checkpoint]
    if lower_is_better:
        return 1 + int((others["upper"] < mine["lower"]).sum())
    return 1 + int((others["lower"] > mine["upper"]).sum())


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def _arena_line(source: BoardSource, checkpoint: str) -> dict[str, Any] | None:
    board = BOARDS[0].table(source)
    if board.empty or checkpoint not in set(board["checkpoint"]):
        return None
    row = board[board["checkpoint"] == checkpoint].iloc[0]
    return {"rating": float(row["rating"]), "lower": float(row["lower"]), "upper": float(row["upper"]), "rank": int(row["rank"]),
            "of": len(board), "battles": int(row["battles"]), "provisional": bool(row.get("provisional", False))}


def _board_lines(source: BoardSource, checkpoint: str) -> list[BoardLine]:
    lines = []
    for spec in BOARDS:
        metric = HEADLINE.get(spec.id)
        if metric is None:
            continue
        long = spec.table(source)
        if long.empty or checkpoint not in set(long["checkpoint"]):
            continue
        head = long[(long["group"] == ALL) & (long["language"] == ALL) & (long["metric"] == metric)]
        head = head[head["value"].map(_finite)]
        if checkpoint not in set(head["checkpoint"]):
            continue
        mine = head[head["checkpoint"] == checkpoint].iloc[0]
        ranked = head.assign(lower=head["lower"].where(head["lower"].map(_finite), head["value"]),
                             upper=head["upper"].where(head["upper"].map(_finite), head["value"]))
        lines.append(BoardLine(spec.id, spec.title, metric, float(mine["value"]), float(mine["lower"]), float(mine["upper"]),
                               interval_rank(ranked, checkpoint), len(ranked), percent=metric == "hit_rate",
                               detail=long[long["checkpoint"] == checkpoint].reset_index(drop=True)))
    return lines


def _characters(source: BoardSource, checkpoint: str, per_cell: int) -> tuple[list[dict[str, Any]], list[tuple[str, str, str]]]:
    """The characters it fails on (hit rate below FAIL_BELOW over the current character runs) and up to
    `per_cell` images per (tier, language)."""
    hits: dict[tuple[str, str], list[float]] = defaultdict(list)
    samples: dict[tuple[str, str], list[int]] = defaultdict(list)
    with source.db.session() as session:
        for run in current_runs(session, kinds=["character_recognition"], checkpoint=checkpoint, adapters=""):
            for row in decided_rows(current_rows(session, run, ["character_hit"], "tier"), run.settings):
                hits[(row["item_id"], row["group"])].append(row["value"])
                if len(samples[(row["group"], row["language"])]) < per_cell:
                    samples[(row["group"], row["language"])].append(row["sample_id"])
        paths = dict(session.execute(select(Sample.id, Sample.image_path).where(
            Sample.id.in_([sid for ids in samples.values() for sid in ids]))).tuples().all()) if samples else {}
    failures = [{"character": item, "tier": tier, "hit_rate": sum(v) / len(v), "n": len(v)}
                for (item, tier), v in hits.items() if sum(v) / len(v) < FAIL_BELOW]
    failures.sort(key=lambda f: (f["hit_rate"], f["character"]))
    images = [(tier, lang, paths[sid]) for (tier, lang), ids in sorted(samples.items()) for sid in ids
              if sid in paths and Path(paths[sid]).is_file()]
    return failures, images


def build_report_card(source: BoardSource, checkpoint: str, defaults: dict[str, Any] | None = None,
                      images_per_cell: int = 1) -> ReportCard:
    """The card of one checkpoint (KeyError when the hub has never heard of it, or a maintainer hid it)."""
    with source.db.session() as session:
        row = session.get(Checkpoint, checkpoint)
        if row is None or row.hidden:
            raise KeyError(checkpoint)
        display, family, is_demo = row.display_name, row.family, bool(row.is_demo)
    failures, images = _characters(source, checkpoint, images_per_cell)
    return ReportCard(checkpoint, display, family, is_demo, tuple(_board_lines(source, checkpoint)), _arena_line(source, checkpoint),
                      tuple(failures), tuple(images), dict(defaults or {}))


def _number(line: BoardLine) -> str:
    return format_estimate(line.value, line.lower, line.upper, percent=line.percent)


def report_markdown(card: ReportCard, max_failures: int = 15) -> str:
    """The card as Markdown (for a model card): boards with intervals and ranks, arena, failures, defaults."""
    out = [f"# {card.display_name} (`{card.checkpoint}`)", "",
           f"Family: {card.family}" + (" · demo-world model" if card.is_demo else ""), "", "## Boards", "",
           "| board | metric | value [95% interval] | rank |", "|---|---|---|---|"]
    if card.arena is not None:
        a = card.arena
        out.append(f"| Arena | rating | {a['rating']:.0f} [{a['lower']:.0f}, {a['upper']:.0f}] | {a['rank']} of {a['of']}"
                   + (" (provisional)" if a["provisional"] else "") + " |")
    else:
        out.append("| Arena | rating | not in the arena yet | — |")
    for line in card.lines:
        out.append(f"| {line.title} | {line.metric} | {_number(line)} | {line.rank} of {line.of} |")
    if not card.lines:
        out.append("| — | — | no eval results yet | — |")
    for line in card.lines:
        per_language = line.detail[(line.detail["group"] == ALL) & (line.detail["metric"] == line.metric)
                                   & (line.detail["language"] != ALL)]
        if len(per_language) > 1:
            cells = ", ".join(f"{r.language} {format_estimate(r.value, r.lower, r.upper, percent=line.percent)}"
                              for r in per_language.itertuples())
            out += ["", f"**{line.title}, by language** ({line.metric}): {cells}"]
    out += ["", "## Characters it fails on", ""]
    if card.failures:
        out += [f"- {f['character']} ({f['tier']}): {100 * f['hit_rate']:.0f}% of {f['n']} images" for f in card.failures[:max_failures]]
        if len(card.failures) > max_failures:
            out.append(f"- … and {len(card.failures) - max_failures} more")
    else:
        out.append("None below 50% on the character suites it ran." if any(l.board == "characters" for l in card.lines)
                   else "No character-recognition run yet.")
    if card.defaults:
        out += ["", "## Recipe defaults", "", ", ".join(f"{k}: {v}" for k, v in card.defaults.items() if v not in ("", None))]
    return "\n".join(out) + "\n"


def report_png(card: ReportCard, path: str | Path) -> Path:
    """The card as one PNG: headline numbers with intervals as bars on the left, failures on the right."""
    fig = Figure(figsize=(9, 3.2 + 0.3 * max(len(card.lines), 1)))
    left, right = fig.subplots(1, 2, width_ratios=[3, 2])
    fig.suptitle(f"{card.display_name} ({card.checkpoint})", fontsize=12)
    lines = [l for l in card.lines if l.percent or 0 <= l.value <= 1]
    if lines:
        y = list(range(len(lines)))
        values = [100 * l.value for l in lines]
        low = [100 * (l.value - l.lower) if _finite(l.lower) else 0 for l in lines]
        high = [100 * (l.upper - l.value) if _finite(l.upper) else 0 for l in lines]
        left.barh(y, values, xerr=[low, high], color="#4C72B0", capsize=3)
        left.set_yticks(y, [f"{l.title}\n{l.metric} · rank {l.rank}/{l.of}" for l in lines], fontsize=8)
        left.set_xlim(0, 100)
        left.set_xlabel("% (95% interval)")
    else:
        left.axis("off")
        left.text(0.5, 0.5, "No eval results yet", ha="center", va="center", color="#666")
    right.axis("off")
    text = []
    if card.arena is not None:
        a = card.arena
        text.append(f"Arena: {a['rating']:.0f} [{a['lower']:.0f}, {a['upper']:.0f}], rank {a['rank']}/{a['of']}")
    else:
        text.append("Arena: not in the arena yet")
    text.append("Fails on:" if card.failures else "Fails on: none below 50%")
    text += [f"  {f['character']} ({100 * f['hit_rate']:.0f}%)" for f in card.failures[:10]]
    right.text(0, 1, "\n".join(text), va="top", fontsize=9, family="monospace")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=100)
    return path
