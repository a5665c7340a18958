"""Leaderboard tab: every board of `leaderboards.boards.BOARDS`, each with filters (pre-filled with what
is shown), a table (rounded, intervals in the cell, the best per column marked), its plot and a
full-precision CSV; above them, the progress of the eval runs that fill the boards.

Arena preference and automatic fidelity metrics stay on separate boards (crowds reward looks).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd
from sqlalchemy import select

from hub.ui.context import HubContext
from leaderboards.boards import BOARDS, BoardSource, BoardSpec, export_csv, filter_rows, sampling_table
from leaderboards.schema import EvalRun, Sample

PRIVATE = {"api_visibility": "private", "concurrency_limit": 4}


def run_progress(ctx: HubContext, max_images: int = 8) -> tuple[str, list[str]]:
    """'3 of 6 runs done' (with the running run's count) and the newest images of the running run."""
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
        return "_No eval runs yet._", []
    done = sum(r.status == "complete" for r in runs)
    failed = sum(r.status == "failed" for r in runs)
    text = f"**{done} of {len(runs)} eval runs done**" + (f" ({failed} failed)" if failed else "")
    for run in running:
        text += f" · running: `{run.checkpoint_id}` on `{run.suite_name}`, {run.n_generated} new images so far"
    queued = sum(r.status == "queued" for r in runs)
    if queued:
        text += f" · {queued} queued"
    return text, [p for p in images if Path(p).is_file()]


def _choices(table: pd.DataFrame, column: str) -> list[str]:
    return [str(v) for v in dict.fromkeys(table[column])] if column in table else []


def _board_section(source: BoardSource, spec: BoardSpec, export_dir: Path) -> None:
    gr.Markdown(spec.description)
    filters = []
    with gr.Row():
        for column in spec.filters:
            filters.append(gr.Dropdown(label=column.replace("group", "tier / category"), multiselect=True, choices=[],
                                       elem_id=f"filter-{spec.id}-{column}"))
        refresh = gr.Button("Refresh", size="sm", elem_id=f"refresh-{spec.id}")
        download = gr.DownloadButton("Download CSV", size="sm", elem_id=f"download-{spec.id}")
    note = gr.Markdown()
    table = gr.Dataframe(interactive=False, wrap=True, elem_id=f"board-{spec.id}")
    plot = gr.Plot(label=spec.title)

    def view(*chosen: list[str] | None) -> tuple[Any, ...]:
        full = spec.table(source)
        if full.empty:
            return (pd.DataFrame(), spec.plot(full), f"_{spec.empty}_", *[gr.update(choices=[], value=[]) for _ in filters])
        picked = {column: list(values or []) for column, values in zip(spec.filters, chosen)}
        shown = filter_rows(full, **picked)
        updates = []
        for column in spec.filters:
            options = _choices(full, column)
            # Filters show what is on the board: pre-filled with everything until the user narrows them.
            value = [v for v in picked[column] if v in options] or options
            updates.append(gr.update(choices=options, value=value))
        return (spec.display(shown), spec.plot(shown), "", *updates)

    def csv(*chosen: list[str] | None) -> str:
        full = filter_rows(spec.table(source), **{c: list(v or []) for c, v in zip(spec.filters, chosen)})
        return str(export_csv(full, export_dir, f"{spec.id}_board"))

    outputs = [table, plot, note, *filters]
    refresh.click(view, inputs=filters, outputs=outputs, **PRIVATE)
    for dropdown in filters:
        dropdown.input(view, inputs=filters, outputs=outputs, **PRIVATE)
    download.click(csv, inputs=filters, outputs=[download], **PRIVATE)
    root = gr.context.Context.root_block
    if root is not None:
        root.load(view, inputs=filters, outputs=outputs, **PRIVATE)


def build_tab(ctx: HubContext) -> None:
    source = BoardSource(ctx.db)
    export_dir = Path(tempfile.mkdtemp(prefix="hub-boards-"))  # served: outside the data dir

    with gr.Row():
        progress_text = gr.Markdown(elem_id="eval-progress")
        refresh_progress = gr.Button("Refresh", size="sm", scale=0)
    progress_images = gr.Gallery(label="Newest images of the running eval", columns=8, height=120, format="png",
                                 interactive=False, elem_id="eval-progress-images")
    for spec in BOARDS:
        with gr.Tab(spec.title, id=f"board-tab-{spec.id}"):
            _board_section(source, spec, export_dir)
            if spec.id in ("arena", "edit-arena"):
                kind = "edit" if spec.id == "edit-arena" else "generate"
                with gr.Accordion("Sampling rates: how often each checkpoint was served and voted on", open=False):
                    rates = gr.Dataframe(interactive=False)
                root = gr.context.Context.root_block
                if root is not None:
                    root.load(lambda kind=kind: sampling_table(ctx.db, kind), outputs=[rates], **PRIVATE)

    refresh_progress.click(lambda: run_progress(ctx), outputs=[progress_text, progress_images], **PRIVATE)
    timer = gr.Timer(10.0)
    timer.tick(lambda: run_progress(ctx), outputs=[progress_text, progress_images], **PRIVATE)
    root = gr.context.Context.root_block
    if root is not None:
        root.load(lambda: run_progress(ctx), outputs=[progress_text, progress_images], **PRIVATE)
