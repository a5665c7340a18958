"""Submit tab: model authors register a checkpoint and queue eval runs; a status view lists both; and
they upload reference galleries of their characters (`galleries_section.py`).

API: `/register_checkpoint(checkpoint_id, name, kind, location, family)` and
`/queue_eval(checkpoint, suite, adapters, seeds, limit)`, for signed-in users (auth mode `token`: the
`X-Hub-Token` header) within their daily quotas; a registration waits for a maintainer's approval
(`pending`) unless a maintainer made it or `auth.auto_approve` is on.

Registration checks the source (Hub id, a diffusers folder or a single .safetensors file inside the
upload folder), the family and duplicates; every refusal says why. Queued runs are database rows
(`eval_runs.status = 'queued'`), so they survive a restart; the evals worker executes them.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import gradio as gr

from core.errors import without_paths
from core.keys import parse_adapters
from evals.plan import RunOptions
from evals.registration import register_checkpoint
from evals.suites import list_suites
from hub.errors import HubInputError
from hub.families import FAMILIES
from hub.ui.common import translated_tab, user_error
from hub.ui.context import HubContext, make_runner
from hub.ui.galleries_section import galleries_section
from hub.ui.i18n import LocalizedError, page_language, t, tr
from hub.ui.identity import allowed, quota_for
from hub.validation import check_int
from leaderboards import submissions

log = logging.getLogger(__name__)

SOURCE_KINDS = (("ui.submit.source_hub", "hub"), ("ui.submit.source_folder", "folder"), ("ui.submit.source_file", "file"))


def upload_roots(ctx: HubContext) -> list[Path]:
    """Where local checkpoints may live: `<data_dir>/uploads` (created on demand)."""
    root = ctx.data_dir / "uploads"
    root.mkdir(parents=True, exist_ok=True)
    return [root]


def suite_names() -> list[str]:
    try:
        return sorted(s.name for s in list_suites())
    except Exception:  # noqa: BLE001 - the tab still works with a typed suite name
        log.exception("could not list the eval suites")
        return []


def build_tab(ctx: HubContext) -> None:
    families = sorted(FAMILIES)
    suites = suite_names()

    def checkpoint_ids() -> list[str]:
        table = submissions.checkpoints_table(ctx.db)
        return [c for c, s, a in zip(table["checkpoint"], table["status"], table["approval"], strict=True)
                if s != "retired" and a != "rejected"]

    def register(checkpoint_id: str, name: str, kind: str, location: str, family: str,
                 request: gr.Request = None) -> tuple[str, Any, Any]:  # type: ignore[assignment]
        source = f"{kind}:{(location or '').strip()}"
        try:
            who = allowed(ctx, request, "register_checkpoint")
            # A maintainer's own registration (or any, with auth.auto_approve off a Space) is approved at once;
            # the rest wait: nothing is downloaded or run before a maintainer approves.
            approved = who.is_maintainer or ctx.config.auth.authors_approve_own
            row = register_checkpoint(
                ctx.db, checkpoint_id, source, family, resolver=ctx.engine.registry.revision_resolver, display_name=name,
                allowed_roots=upload_roots(ctx), owner=who.user, approved=approved,
                quota=quota_for(who, ctx.config.quotas.registrations_per_day),
            )
        except HubInputError as err:
            raise user_error(err, request) from None
        lang = page_language(request)
        message = tr(lang, "msg.submit.registered", id=row.id, family=row.family, source=without_paths(row.source))
        if row.approval == "pending":
            message += " " + tr(lang, "msg.submit.pending")
        return message, submissions.checkpoints_table(ctx.db), gr.update(choices=checkpoint_ids(), value=row.id)

    def queue(checkpoint_id: str, suite: str, adapters: str, seeds: float, limit: float,
              request: gr.Request = None) -> tuple[str, Any]:  # type: ignore[assignment]
        try:
            who = allowed(ctx, request, "queue_eval")
            if not checkpoint_id:
                raise LocalizedError("err.choose_checkpoint")
            options = RunOptions(checkpoint=checkpoint_id, suite=(suite or "").strip(), adapters=parse_adapters(adapters),
                                 seeds=check_int(seeds or 1, "Seeds", 1, 16),
                                 limit=check_int(limit, "Limit", 1, 10_000) if limit else None)
            run_id = make_runner(ctx).queue(options, owner=who.user,
                                            quota_gpu_hours=quota_for(who, ctx.config.quotas.eval_gpu_hours_per_day))
        except HubInputError as err:
            raise user_error(err, request) from None
        if ctx.eval_worker is not None:
            ctx.eval_worker.wake()
        message = tr(page_language(request), "msg.submit.queued", run=run_id, checkpoint=checkpoint_id, suite=options.suite)
        return message, submissions.runs_table(ctx.db)

    def status() -> tuple[Any, Any, Any]:
        return submissions.checkpoints_table(ctx.db), submissions.runs_table(ctx.db), gr.update(choices=checkpoint_ids())

    gr.Markdown(t("ui.submit.register_title"))
    gr.Markdown(t("ui.submit.register_help") + " (`uploads/`)")  # the data folder's own path stays private
    with gr.Row():
        new_id = gr.Textbox(label=t("ui.submit.checkpoint_id"), placeholder="my-anime-model", max_lines=1, elem_id="submit-id")
        new_name = gr.Textbox(label=t("ui.submit.display_name"), placeholder="My Anime Model v1", max_lines=1, elem_id="submit-name")
        family = gr.Dropdown(label=t("ui.submit.family"), choices=families, value="sdxl" if "sdxl" in families else None,
                             elem_id="submit-family")
    with gr.Row():
        kind = gr.Radio(label=t("ui.submit.source"), choices=[(t(key), k) for key, k in SOURCE_KINDS], value="hub", elem_id="submit-kind")
        location = gr.Textbox(label=t("ui.submit.location"), placeholder="org/model-name, uploads/...", max_lines=1,
                              elem_id="submit-location")
    register_button = gr.Button(t("ui.submit.register"), variant="primary", elem_id="submit-register")
    register_message = gr.Markdown(elem_id="submit-register-message")

    gr.Markdown(t("ui.submit.queue_title"))
    with gr.Row():
        # Custom values allowed: API callers name their checkpoint (the queue checks it).
        run_checkpoint = gr.Dropdown(label=t("ui.common.checkpoint"), choices=[], allow_custom_value=True, elem_id="submit-run-checkpoint")
        run_suite = gr.Dropdown(
            label=t("ui.submit.suite"), choices=suites, value=suites[0] if suites else None, allow_custom_value=not suites,
            elem_id="submit-run-suite",
        )
        run_adapters = gr.Textbox(label=t("ui.submit.loras_optional"), placeholder="lora-id:0.8", max_lines=1)
        run_seeds = gr.Number(label=t("ui.submit.seeds"), value=2, minimum=1, maximum=16, precision=0)
        run_limit = gr.Number(label=t("ui.submit.limit"), value=0, minimum=0, precision=0, elem_id="submit-run-limit")
    queue_button = gr.Button(t("ui.submit.queue"), variant="primary", elem_id="submit-queue")
    queue_message = gr.Markdown(elem_id="submit-queue-message")

    gr.Markdown(t("ui.submit.status_title"))
    refresh = gr.Button(t("ui.common.refresh"), size="sm")
    with translated_tab("ui.submit.runs_tab"):
        runs = gr.Dataframe(interactive=False, wrap=True, elem_id="submit-runs")
    with translated_tab("ui.submit.checkpoints_tab"):
        checkpoints = gr.Dataframe(interactive=False, wrap=True)

    private = {"api_visibility": "private", "concurrency_limit": 4}
    # On the API for authors' scripts (gradio_client): signed-in users only, within their quotas.
    public = {"concurrency_limit": 4}
    register_button.click(
        register, inputs=[new_id, new_name, kind, location, family],
        outputs=[register_message, checkpoints, run_checkpoint], api_name="register_checkpoint", **public,
    )
    queue_button.click(
        queue, inputs=[run_checkpoint, run_suite, run_adapters, run_seeds, run_limit],
        outputs=[queue_message, runs], api_name="queue_eval", **public,
    )
    refresh.click(status, outputs=[checkpoints, runs, run_checkpoint], **private)
    root = gr.context.Context.root_block
    if root is not None:
        root.load(status, outputs=[checkpoints, runs, run_checkpoint], **private)
    galleries_section(ctx, suites)
