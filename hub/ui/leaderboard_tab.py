"""Leaderboard tab: every board of `leaderboards.boards.BOARDS`, each with filters (pre-filled with what
is shown), a sortable table (rounded, intervals in the cell, the best per column marked; click a column
header to sort), its plot and a full-precision CSV; above them, the progress of the eval runs that fill
the boards (polled every 10 s, so a fresh hub's boards fill in front of the reader).

Arena preference and automatic fidelity metrics stay on separate boards (crowds reward looks).
Titles, descriptions, filter labels and column headers follow the page's language; the CSV keeps the
English column names and every digit.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd
from sqlalchemy import select

from hub.errors import HubInputError
from hub.ui.common import translated_tab, user_errors
from hub.ui.context import HubContext
from hub.ui.i18n import catalog, page_language, t, tr
from hub.ui.report_card_tab import card_links
from leaderboards import queue
from leaderboards.boards import BOARDS, BoardSource, BoardSpec, board, export_csv, filter_rows, sampling_table
from leaderboards.csv_safe import to_csv_bytes
from leaderboards.schema import EvalRun, Sample

PRIVATE = {"api_visibility": "private", "concurrency_limit": 4}
POLL_SECONDS = 10.0


def run_progress(ctx: HubContext, max_images: int = 8, lang: str = "en") -> tuple[str, list[str]]:
    """'3 of 6 eval runs done' (with each running run's count; "resuming" for one taken over from a dead
    worker) and the newest images of the first running run."""
    with ctx.db.session() as session:
        runs = session.execute(select(EvalRun).order_by(EvalRun.id)).scalars().all()
        running = [r for r in runs if r.status == "running"]
        images: list[str] = []
        if running:
            run = running[0]
            images = list(session.execute(
                select(Sample.image_path).where(Sample.checkpoint_id == run.checkpoint_id, Sample.suite_id == run.suite_id)
                .order_by(Sample.id.desc()).limit(max_images)).scalars())
    if not runs:
        return tr(lang, "msg.board.no_runs"), []
    done = sum(r.status == "complete" for r in runs)
    failed = sum(r.status == "failed" for r in runs)
    text = tr(lang, "msg.board.runs_done", done=done, total=len(runs))
    if failed:
        text += " " + tr(lang, "msg.board.runs_failed", failed=failed)
    for run in running:
        # A run taken over from a dead worker (or about to be) says so: it resumes from its cached samples.
        key = "msg.board.resuming" if queue.shown_status(run) == "resuming" else "msg.board.running"
        text += " · " + tr(lang, key, checkpoint=run.checkpoint_id, suite=run.suite_name, images=run.n_generated)
    queued = sum(r.status == "queued" for r in runs)
    if queued:
        text += " · " + tr(lang, "msg.board.queued", queued=queued)
    return text, [p for p in images if Path(p).is_file()]


def board_text(spec: BoardSpec, field: str) -> Any:
    """A board's title / description / empty state: translated where the locales have it, else the
    board's own English (a board added without translations still reads)."""
    key = f"ui.board.{spec.id}.{field}"
    return t(key) if catalog().has(key) else getattr(spec, field)


def translate_columns(frame: pd.DataFrame, lang: str) -> pd.DataFrame:
    """Column headers in the page's language (display only)."""
    if lang == "en" or frame.empty:
        return frame
    names = {}
    for column in frame.columns:
        key = f"msg.column.{column}".replace(" ", "_")
        if catalog().has(key):
            names[column] = tr(lang, key)
    return frame.rename(columns=names)


def _choices(table: pd.DataFrame, column: str) -> list[str]:
    return [str(v) for v in dict.fromkeys(table[column])] if column in table else []


def _filter_label(column: str) -> Any:
    key = f"ui.board.filter.{column}"
    return t(key) if catalog().has(key) else column


def _board_section(source: BoardSource, spec: BoardSpec, export_dir: Path, runs_done: Any) -> None:
    gr.Markdown(board_text(spec, "description"))
    filters = []
    with gr.Row():
        for column in spec.filters:
            filters.append(gr.Dropdown(label=_filter_label(column), multiselect=True, choices=[], elem_id=f"filter-{spec.id}-{column}"))
        refresh = gr.Button(t("ui.common.refresh"), size="sm", elem_id=f"refresh-{spec.id}")
        download = gr.DownloadButton(t("ui.board.download"), size="sm", elem_id=f"download-{spec.id}", interactive=False)
    note = gr.Markdown(elem_id=f"note-{spec.id}")
    table = gr.Dataframe(interactive=False, wrap=True, elem_id=f"board-{spec.id}", show_search="search")
    plot = gr.Plot(label=board_text(spec, "title"))

    seen = gr.State({})  # the options each filter offered at the last drawing: {column: [values]}

    def view(data: dict[Any, Any], request: gr.Request) -> tuple[Any, ...]:
        lang = page_language(request)
        full = spec.table(source)
        if full.empty:
            key = f"ui.board.{spec.id}.empty"
            message = tr(lang, key) if catalog().has(key) else spec.empty
            return (pd.DataFrame(), spec.plot(full), f"_{message}_", *[gr.update(choices=[], value=[]) for _ in filters], {},
                    gr.update(value=None, interactive=False))
        before = data.get(seen) or {}
        picked: dict[str, list[str]] = {}
        for column, dropdown in zip(spec.filters, filters):
            values = list(data.get(dropdown) or [])
            # A filter left as it was drawn (everything offered then) means "everything": a checkpoint
            # or language that appears later is shown too. Only a narrowed filter narrows.
            picked[column] = [] if set(values) == set(before.get(column, [])) else values
        shown = filter_rows(full, **picked)
        updates, offered = [], {}
        for column in spec.filters:
            options = _choices(full, column)
            offered[column] = options
            # Filters show what is on the board: pre-filled with everything until the user narrows them.
            value = [v for v in picked[column] if v in options] or options
            updates.append(gr.update(choices=options, value=value))
        # The download button holds the CSV of what is shown, in full precision, ready before the click.
        csv = gr.update(value=_csv_file(shown, export_dir, spec.id), interactive=True)
        # Every checkpoint on the board links to its report card (`?model=ID`).
        cards = tr(lang, "msg.report.links", links=card_links(sorted(_base_ids(shown))))
        return (translate_columns(spec.display(shown), lang), spec.plot(shown), cards, *updates, offered, csv)

    inputs = {*filters, seen}
    outputs = [table, plot, note, *filters, seen, download]
    refresh.click(view, inputs=inputs, outputs=outputs, **PRIVATE)
    for dropdown in filters:
        dropdown.input(view, inputs=inputs, outputs=outputs, **PRIVATE)
    # The boards are drawn when the count of finished eval runs changes: on page load (from nothing to
    # the count) and whenever a run finishes, so a fresh hub's boards fill without a reload.
    runs_done.change(view, inputs=inputs, outputs=outputs, **PRIVATE)


def _base_ids(frame: pd.DataFrame) -> set[str]:
    """The checkpoints of a board's rows ("X + lora:1.0" is X's row with a LoRA)."""
    return {str(label).split(" + ")[0] for label in frame.get("checkpoint", [])}


def board_records(board_id: str, source: BoardSource) -> list[dict[str, Any]]:
    """A board's full-precision table as records (the CSV's rows), hidden checkpoints left out."""
    try:
        spec = board(board_id)
    except KeyError:
        raise HubInputError(f"Unknown board '{str(board_id)[:40]}': choose one of {', '.join(s.id for s in BOARDS)}.") from None
    frame = spec.table(source)
    return json.loads(frame.to_json(orient="records", date_format="iso"))


def _csv_file(frame: pd.DataFrame, export_dir: Path, board_id: str) -> str:
    """The frame as `<board>_board.csv` in a folder named by its content: what one page downloads is
    never overwritten by another page's filters. The folder is named by the bytes actually written
    (formula-like cells neutralized, see `leaderboards.csv_safe`)."""
    data = to_csv_bytes(frame)
    folder = export_dir / hashlib.sha256(data).hexdigest()[:16]
    return str(export_csv(frame, folder, f"{board_id}_board"))


def build_tab(ctx: HubContext) -> None:
    source = BoardSource(ctx.db)
    export_dir = Path(tempfile.mkdtemp(prefix="hub-boards-"))  # served: outside the data dir

    with gr.Row():
        progress_text = gr.Markdown(elem_id="eval-progress")
        refresh_progress = gr.Button(t("ui.common.refresh"), size="sm", scale=0, elem_id="eval-progress-refresh")
    progress_images = gr.Gallery(label=t("ui.board.progress_images"), columns=8, height=120, format="png",
                                 interactive=False, elem_id="eval-progress-images")
    runs_done = gr.Number(value=None, visible=False, elem_id="eval-runs-done")
    for spec in BOARDS:
        key = f"ui.board.{spec.id}.title"
        tab = translated_tab(key, id=f"board-tab-{spec.id}", elem_id=f"board-tab-{spec.id}") if catalog().has(key) else gr.Tab(
            spec.title, id=f"board-tab-{spec.id}", elem_id=f"board-tab-{spec.id}")
        with tab:
            _board_section(source, spec, export_dir, runs_done)
            if spec.id in ("arena", "edit-arena"):
                kind = "edit" if spec.id == "edit-arena" else "generate"
                with gr.Accordion(t("ui.board.sampling_title"), open=False):
                    rates = gr.Dataframe(interactive=False)
                root = gr.context.Context.root_block
                if root is not None:
                    root.load(lambda kind=kind: sampling_table(ctx.db, kind), outputs=[rates], **PRIVATE)

    def progress(done_before: float | None, request: gr.Request) -> tuple[str, list[str], Any]:
        text, images = run_progress(ctx, lang=page_language(request))
        done = finished_runs(ctx)
        # Only a change of the count refreshes the boards (the first poll sets it).
        return text, images, gr.skip() if done_before is not None and int(done_before) == done else done

    outputs = [progress_text, progress_images, runs_done]
    refresh_progress.click(progress, inputs=[runs_done], outputs=outputs, **PRIVATE)
    timer = gr.Timer(POLL_SECONDS)
    timer.tick(progress, inputs=[runs_done], outputs=outputs, **PRIVATE)
    root = gr.context.Context.root_block
    if root is not None:
        root.load(progress, inputs=[runs_done], outputs=outputs, **PRIVATE)

    @user_errors
    def board_table(board_id: str, request: gr.Request = None) -> list[dict[str, Any]]:  # type: ignore[assignment]
        """One leaderboard as rows in full precision (what its CSV holds): board_id is one of arena,
        edit-arena, characters, multilingual, editing, references. Eval boards give value, lower, upper
        (95% interval), gap_to_english, n and judged_by per checkpoint, group and language."""
        return board_records(board_id, source)

    gr.api(board_table, api_name="board", concurrency_limit=4)


def finished_runs(ctx: HubContext) -> int:
    from sqlalchemy import func

    with ctx.db.session() as session:
        return int(session.execute(select(func.count()).select_from(EvalRun).where(EvalRun.status == "complete")).scalar_one())
