"""Leaderboard tab: the arena board (Bradley–Terry, 95% intervals), the edit arena board (the same fit on
edit battles' votes only), the character-recognition board
(per tier) and the multilingual board (language by checkpoint), each with filters, a plot and CSV.

Arena preference and automatic fidelity metrics stay on separate boards (crowds reward looks).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import gradio as gr

from hub.ui.context import HubContext
from leaderboards import plots
from leaderboards.boards import ArenaBoard, character_board, export_csv, filter_rows, multilingual_board, sampling_table
from leaderboards.results import MULTILINGUAL_METRICS

ARENA_NOTE = (
    "Ratings: Bradley–Terry fit of blind votes (400 points = 10× odds, average 1000); ties and “both bad” "
    "count half a win each. The interval is a 95% bootstrap interval; **rank** = 1 + the number of models "
    "whose interval lies entirely above this one, so models whose intervals overlap share a rank. "
    "*Provisional*: too few battles to trust yet. Elo (K=4) is shown for reference only."
)
EMPTY_ARENA = "_No arena votes yet. Cast some in the Arena tab._"
EMPTY_EDIT_ARENA = "_No edit arena votes yet. Cast some in Arena → Edit arena._"
EMPTY_CHARACTERS = "_No character-recognition results yet: queue the character suite in the Submit tab._"
EMPTY_EDITING = "_No editing results yet: queue an edit suite (demo-edits, edits) in the Submit tab._"
EMPTY_MULTILINGUAL = "_No multilingual results yet: queue the multilingual suite in the Submit tab._"


def build_tab(ctx: HubContext) -> None:
    board_cache = ArenaBoard(ctx.db)
    edit_board_cache = ArenaBoard(ctx.db, kind="edit")
    export_dir = Path(tempfile.mkdtemp(prefix="hub-boards-"))  # served: outside the data dir

    # ---------------------------------------------------------------- arena
    def rating_view(cache: ArenaBoard, show_provisional: bool, empty: str, title: str) -> tuple[Any, Any, str]:
        board = cache.table()
        note = ""
        if board.empty:
            return board, plots.rating_interval_plot(board, title=title), empty
        if board.attrs.get("disconnected") or board["component"].nunique() > 1:
            note = "**Note:** some models were never compared with the others (see *component*): compare ratings only within a group."
        if not show_provisional:
            board = board[~board["provisional"]]
        shown = board.drop(columns=["component"]) if board["component"].nunique() <= 1 else board
        return shown, plots.rating_interval_plot(board, title=title), note

    def arena_view(show_provisional: bool) -> tuple[Any, Any, str]:
        return rating_view(board_cache, show_provisional, EMPTY_ARENA, "Arena rating (95% interval)")

    def arena_csv() -> str:
        return str(export_csv(board_cache.table(), export_dir, "arena_board"))

    # ---------------------------------------------------------------- edit arena
    def edit_arena_view(show_provisional: bool) -> tuple[Any, Any, str]:
        return rating_view(edit_board_cache, show_provisional, EMPTY_EDIT_ARENA, "Edit arena rating (95% interval)")

    def edit_arena_csv() -> str:
        return str(export_csv(edit_board_cache.table(), export_dir, "edit_arena_board"))

    # ---------------------------------------------------------------- characters
    def character_view(tiers: list[str] | None, languages: list[str] | None) -> tuple[Any, Any, str, Any, Any]:
        board = character_board(ctx.db, include_totals=True)
        if board.empty:
            return board, plots.tier_bars(board), EMPTY_CHARACTERS, gr.update(), gr.update()
        tier_choices = sorted(set(board["tier"]))
        language_choices = sorted(set(board["language"]))
        shown = filter_rows(board, tier=tiers, language=languages)
        plot_language = languages[0] if languages and len(languages) == 1 else "all"
        return (
            shown,
            plots.tier_bars(filter_rows(board, tier=tiers), language=plot_language),
            "",
            gr.update(choices=tier_choices),
            gr.update(choices=language_choices),
        )

    def character_csv(tiers: list[str] | None, languages: list[str] | None) -> str:
        board = filter_rows(character_board(ctx.db, include_totals=True), tier=tiers, language=languages)
        return str(export_csv(board, export_dir, "character_board"))

    # ---------------------------------------------------------------- multilingual
    def multilingual_view(metric: str, checkpoints: list[str] | None) -> tuple[Any, Any, str, Any]:
        board = multilingual_board(ctx.db)
        if board.empty:
            return board, plots.language_heatmap(board, metric), EMPTY_MULTILINGUAL, gr.update()
        shown = filter_rows(board, metric=[metric] if metric else None, checkpoint=checkpoints)
        return shown, plots.language_heatmap(filter_rows(board, checkpoint=checkpoints), metric), "", gr.update(
            choices=sorted(set(board["checkpoint"]))
        )

    def multilingual_csv(metric: str, checkpoints: list[str] | None) -> str:
        board = filter_rows(multilingual_board(ctx.db), metric=[metric] if metric else None, checkpoint=checkpoints)
        return str(export_csv(board, export_dir, "multilingual_board"))

    # ---------------------------------------------------------------- editing
    def editing_table() -> Any:
        from evals.boards import edit_board

        with ctx.db.session() as session:
            return edit_board(session)

    def editing_view(edit_metric: str) -> tuple[Any, Any, str]:
        board = editing_table()
        if board.empty:
            return board, plots.language_heatmap(board, edit_metric, value="value"), EMPTY_EDITING
        shown = filter_rows(board, metric=[edit_metric] if edit_metric else None)
        return shown, plots.language_heatmap(board[board["language"] != "all"], edit_metric, value="value"), ""

    def editing_csv() -> str:
        return str(export_csv(editing_table(), export_dir, "editing_board"))

    private = {"api_visibility": "private", "concurrency_limit": 4}

    with gr.Tab("Arena ratings"):
        gr.Markdown(ARENA_NOTE)
        with gr.Row():
            show_provisional = gr.Checkbox(value=True, label="Show provisional models")
            refresh_arena = gr.Button("Refresh", size="sm")
            arena_download = gr.DownloadButton("Download CSV", size="sm")
        arena_note = gr.Markdown()
        arena_table = gr.Dataframe(interactive=False, wrap=True)
        arena_plot = gr.Plot(label="Rating with 95% interval")
        with gr.Accordion("Sampling rates: how often each checkpoint was served and voted on", open=False):
            rates = gr.Dataframe(interactive=False)
    with gr.Tab("Edit arena"):
        gr.Markdown(
            "Blind votes on edits: two anonymous checkpoints edit the same image with the same instruction and "
            "seed. Rated like the arena (Bradley–Terry, 95% bootstrap interval, same rank rule) but only from "
            "edit battles; generation votes do not count here, nor edit votes there."
        )
        with gr.Row():
            edit_show_provisional = gr.Checkbox(value=True, label="Show provisional models")
            refresh_edit_arena = gr.Button("Refresh", size="sm")
            edit_arena_download = gr.DownloadButton("Download CSV", size="sm")
        edit_arena_note = gr.Markdown()
        edit_arena_table = gr.Dataframe(interactive=False, wrap=True)
        edit_arena_plot = gr.Plot(label="Edit rating with 95% interval")
        with gr.Accordion("Sampling rates: how often each checkpoint was served and voted on", open=False):
            edit_rates = gr.Dataframe(interactive=False)
    with gr.Tab("Character recognition"):
        gr.Markdown(
            "Hit rate: share of images in which the judge recognises the prompted character, with a 95% "
            "bootstrap interval, per tier (popular anime, niche anime, non-anime) and prompt language."
        )
        with gr.Row():
            tier_filter = gr.Dropdown(label="Tiers", multiselect=True, choices=[])
            language_filter = gr.Dropdown(label="Languages ('all' = pooled)", multiselect=True, choices=[])
            refresh_characters = gr.Button("Refresh", size="sm")
            characters_download = gr.DownloadButton("Download CSV", size="sm")
        characters_note = gr.Markdown()
        characters_table = gr.Dataframe(interactive=False)
        characters_plot = gr.Plot(label="Hit rate per tier")
    with gr.Tab("Multilingual fidelity"):
        gr.Markdown(
            "The same scenes prompted in many languages. Per language: tag recall, anchored alignment "
            "(judge score of the language-L image against the English text, relative to the English image) "
            "and cross-lingual consistency (image-embedding cosine to the English image). "
            "*gap_to_english* < 0 means worse than English."
        )
        with gr.Row():
            metric = gr.Dropdown(label="Metric", choices=list(MULTILINGUAL_METRICS), value=MULTILINGUAL_METRICS[0])
            checkpoint_filter = gr.Dropdown(label="Checkpoints", multiselect=True, choices=[])
            refresh_multilingual = gr.Button("Refresh", size="sm")
            multilingual_download = gr.DownloadButton("Download CSV", size="sm")
        multilingual_note = gr.Markdown()
        multilingual_table = gr.Dataframe(interactive=False)
        multilingual_plot = gr.Plot(label="Language × checkpoint")

    with gr.Tab("Editing"):
        gr.Markdown(
            "Instruction edits and inpainting, per language: **success** = the tagger sees what the instruction "
            "asked for; **identity_kept** = the character is still recognised and judged the same as in the input. "
            "95% bootstrap intervals over cases."
        )
        with gr.Row():
            edit_metric = gr.Dropdown(label="Metric", choices=["success", "identity_kept"], value="success")
            refresh_editing = gr.Button("Refresh", size="sm")
            editing_download = gr.DownloadButton("Download CSV", size="sm")
        editing_note = gr.Markdown()
        editing_table_view = gr.Dataframe(interactive=False)
        editing_plot = gr.Plot(label="Language × checkpoint")

    arena_outputs = [arena_table, arena_plot, arena_note]
    for trigger in (refresh_arena.click, show_provisional.change):
        trigger(arena_view, inputs=[show_provisional], outputs=arena_outputs, **private)
    refresh_arena.click(lambda: sampling_table(ctx.db), outputs=[rates], **private)
    arena_download.click(arena_csv, outputs=[arena_download], **private)

    edit_arena_outputs = [edit_arena_table, edit_arena_plot, edit_arena_note]
    for trigger in (refresh_edit_arena.click, edit_show_provisional.change):
        trigger(edit_arena_view, inputs=[edit_show_provisional], outputs=edit_arena_outputs, **private)
    refresh_edit_arena.click(lambda: sampling_table(ctx.db, "edit"), outputs=[edit_rates], **private)
    edit_arena_download.click(edit_arena_csv, outputs=[edit_arena_download], **private)

    character_inputs = [tier_filter, language_filter]
    character_outputs = [characters_table, characters_plot, characters_note, tier_filter, language_filter]
    for trigger in (refresh_characters.click, tier_filter.change, language_filter.change):
        trigger(character_view, inputs=character_inputs, outputs=character_outputs, **private)
    characters_download.click(character_csv, inputs=character_inputs, outputs=[characters_download], **private)

    multilingual_inputs = [metric, checkpoint_filter]
    multilingual_outputs = [multilingual_table, multilingual_plot, multilingual_note, checkpoint_filter]
    for trigger in (refresh_multilingual.click, metric.change, checkpoint_filter.change):
        trigger(multilingual_view, inputs=multilingual_inputs, outputs=multilingual_outputs, **private)
    multilingual_download.click(multilingual_csv, inputs=multilingual_inputs, outputs=[multilingual_download], **private)

    editing_outputs = [editing_table_view, editing_plot, editing_note]
    for trigger in (refresh_editing.click, edit_metric.change):
        trigger(editing_view, inputs=[edit_metric], outputs=editing_outputs, **private)
    editing_download.click(editing_csv, outputs=[editing_download], **private)

    # Fill every board when the page loads (the enclosing Blocks' load event).
    root = gr.context.Context.root_block
    if root is not None:
        root.load(arena_view, inputs=[show_provisional], outputs=arena_outputs, **private)
        root.load(lambda: sampling_table(ctx.db), outputs=[rates], **private)
        root.load(edit_arena_view, inputs=[edit_show_provisional], outputs=edit_arena_outputs, **private)
        root.load(lambda: sampling_table(ctx.db, "edit"), outputs=[edit_rates], **private)
        root.load(character_view, inputs=character_inputs, outputs=character_outputs, **private)
        root.load(multilingual_view, inputs=multilingual_inputs, outputs=multilingual_outputs, **private)
        root.load(editing_view, inputs=[edit_metric], outputs=editing_outputs, **private)
