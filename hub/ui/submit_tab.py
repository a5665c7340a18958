"""Submit tab: model authors register a checkpoint and queue eval runs; a status view lists both.

Registration checks the source (Hub id, a diffusers folder or a single .safetensors file inside the
upload folder), the family and duplicates; every refusal says why. Queued runs are database rows
(`eval_runs.status = 'queued'`), so they survive a restart; the evals worker executes them.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import gradio as gr

from evals.plan import RunOptions
from hub.errors import HubInputError
from hub.families import FAMILIES
from hub.revisions import RevisionError
from hub.ui.context import HubContext, make_runner
from hub.validation import check_int
from leaderboards import submissions
from leaderboards.keys import parse_adapters

log = logging.getLogger(__name__)

SOURCE_KINDS = (("Hugging Face Hub id", "hub"), ("Local diffusers folder", "folder"), ("Single .safetensors file", "file"))


def upload_roots(ctx: HubContext) -> list[Path]:
    """Where local checkpoints may live: `<data_dir>/uploads` (created on demand)."""
    root = ctx.data_dir / "uploads"
    root.mkdir(parents=True, exist_ok=True)
    return [root]


def suite_names() -> list[str]:
    try:
        from evals.suites import list_suites

        return sorted(s.name for s in list_suites())
    except Exception:  # noqa: BLE001 - the tab still works with a typed suite name
        log.exception("could not list the eval suites")
        return []


def build_tab(ctx: HubContext) -> None:
    families = sorted(FAMILIES)
    suites = suite_names()

    def checkpoint_ids() -> list[str]:
        table = submissions.checkpoints_table(ctx.db)
        return [c for c, s in zip(table["checkpoint"], table["status"], strict=True) if s != "retired"]

    def register(checkpoint_id: str, name: str, kind: str, location: str, family: str) -> tuple[str, Any, Any]:
        source = f"{kind}:{(location or '').strip()}"
        try:
            submissions.check_checkpoint_id(checkpoint_id)
            submissions.check_family(family, families)
            checked = submissions.check_source(source, upload_roots(ctx))
            revision = None
            if checked.kind == "hub":  # pinned now: new weights pushed later are a new version
                repo, _, pinned = checked.source.removeprefix("hub:").partition("@")
                try:
                    revision = ctx.engine.registry.revision_resolver.resolve(repo, pinned or None)
                except RevisionError as err:
                    raise HubInputError(f"Cannot pin {repo}: {err}") from None
            row = submissions.register_checkpoint(
                ctx.db, checkpoint_id, source, family, families=families, display_name=name,
                allowed_roots=upload_roots(ctx), revision=revision,
            )
        except HubInputError as err:
            raise gr.Error(str(err), print_exception=False) from None
        message = f"Registered **{row.id}** ({row.family}) from `{row.source}`. Queue an eval run below."
        return message, submissions.checkpoints_table(ctx.db), gr.update(choices=checkpoint_ids(), value=row.id)

    def queue(checkpoint_id: str, suite: str, adapters: str, seeds: float, limit: float) -> tuple[str, Any]:
        if not checkpoint_id:
            raise gr.Error("Choose a checkpoint.")
        try:
            options = RunOptions(checkpoint=checkpoint_id, suite=(suite or "").strip(), adapters=parse_adapters(adapters),
                                 seeds=check_int(seeds or 1, "Seeds", 1, 16),
                                 limit=check_int(limit, "Limit", 1, 10_000) if limit else None)
            run_id = make_runner(ctx).queue(options)
        except HubInputError as err:
            raise gr.Error(str(err), print_exception=False) from None
        if ctx.eval_worker is not None:
            ctx.eval_worker.wake()
        return f"Queued run **{run_id}**: `{checkpoint_id}` on `{options.suite}`.", submissions.runs_table(ctx.db)

    def status() -> tuple[Any, Any, Any]:
        return submissions.checkpoints_table(ctx.db), submissions.runs_table(ctx.db), gr.update(choices=checkpoint_ids())

    gr.Markdown(
        "### Register a checkpoint\nWeights load only from **.safetensors**; remote code is never run. "
        f"Local folders and files must be inside the upload folder (`{upload_roots(ctx)[0]}`)."
    )
    with gr.Row():
        new_id = gr.Textbox(label="Checkpoint id", placeholder="my-anime-model", max_lines=1)
        new_name = gr.Textbox(label="Display name", placeholder="My Anime Model v1", max_lines=1)
        family = gr.Dropdown(label="Family", choices=families, value="sdxl" if "sdxl" in families else None)
    with gr.Row():
        kind = gr.Radio(label="Source", choices=[(t, k) for t, k in SOURCE_KINDS], value="hub")
        location = gr.Textbox(label="Hub id or path", placeholder="org/model-name, or a path in the upload folder", max_lines=1)
    register_button = gr.Button("Register", variant="primary")
    register_message = gr.Markdown()

    gr.Markdown("### Queue an eval run")
    with gr.Row():
        run_checkpoint = gr.Dropdown(label="Checkpoint", choices=[], allow_custom_value=False)
        run_suite = gr.Dropdown(
            label="Suite", choices=suites, value=suites[0] if suites else None, allow_custom_value=not suites
        )
        run_adapters = gr.Textbox(label="LoRAs (optional)", placeholder="lora-id:0.8", max_lines=1)
        run_seeds = gr.Number(label="Seeds per prompt", value=2, minimum=1, maximum=16, precision=0)
        run_limit = gr.Number(label="Limit items (0 = all)", value=0, minimum=0, precision=0)
    queue_button = gr.Button("Queue run", variant="primary")
    queue_message = gr.Markdown()

    gr.Markdown("### Status")
    refresh = gr.Button("Refresh", size="sm")
    with gr.Tab("Eval runs"):
        runs = gr.Dataframe(interactive=False, wrap=True)
    with gr.Tab("Checkpoints on record"):
        checkpoints = gr.Dataframe(interactive=False, wrap=True)

    private = {"api_visibility": "private", "concurrency_limit": 4}
    register_button.click(
        register, inputs=[new_id, new_name, kind, location, family],
        outputs=[register_message, checkpoints, run_checkpoint], **private,
    )
    queue_button.click(
        queue, inputs=[run_checkpoint, run_suite, run_adapters, run_seeds, run_limit],
        outputs=[queue_message, runs], **private,
    )
    refresh.click(status, outputs=[checkpoints, runs, run_checkpoint], **private)
    root = gr.context.Context.root_block
    if root is not None:
        root.load(status, outputs=[checkpoints, runs, run_checkpoint], **private)
