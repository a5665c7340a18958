"""The Gradio UI: one module per tab; `build_app` puts them together."""

from __future__ import annotations

from typing import Any

import gradio as gr

from hub.ui import arena_tab, edit_tab, generate_tab, leaderboard_tab, lora_tab, submit_tab
from hub.ui.common import status_markdown
from hub.ui.context import HubContext

INTRO = """# Sakuga Hub
Try anime image models, compare them blind, and read how well they draw characters, follow edits
and understand prompts in many languages."""


def build_app(ctx: HubContext) -> gr.Blocks:
    with gr.Blocks(title=ctx.config.title) as demo:
        gr.Markdown(INTRO)
        with gr.Accordion("Models on this hub", open=False):
            gr.Markdown(status_markdown(ctx))
        with gr.Tabs() as tabs:
            with gr.Tab("Generate", id="generate"):
                generate = generate_tab.build_tab(ctx)
            with gr.Tab("Edit", id="edit"):
                edit = edit_tab.build_tab(ctx)
            with gr.Tab("Character LoRA", id="lora"):
                lora_tab.build_tab(ctx)
            with gr.Tab("Arena", id="arena"):
                arena_tab.build_tab(ctx)
            with gr.Tab("Leaderboard", id="leaderboard"):
                leaderboard_tab.build_tab(ctx)
            with gr.Tab("Submit", id="submit"):
                submit_tab.build_tab(ctx)
        generate.send_to_edit.click(
            lambda path: (path, gr.Tabs(selected="edit")),
            inputs=[generate.selected_path],
            outputs=[edit.editor, tabs],
            api_visibility="private",
        )
    return demo


def launch_kwargs(ctx: HubContext) -> dict[str, Any]:
    """Arguments for `demo.launch` that the hub needs wherever it runs (app, tests, benchmarks)."""
    # Returned images are copied into Gradio's cache under new names. The database, the session
    # salt and the weights in the data folder are never served, whatever path a client asks for.
    data = ctx.data_dir
    secrets = [data / name for name in ("hub.sqlite3", "hub.sqlite3-wal", "hub.sqlite3-shm", "session_salt", "builtin", "hash_cache.json")]
    return {
        "blocked_paths": [str(path) for path in secrets],
        "max_file_size": ctx.config.limits.max_upload_bytes,
    }
