"""Maintainer tab: shown to maintainers only, and every endpoint refuses anyone else.

- checkpoints waiting for approval: approve / reject; hide a checkpoint, its samples kept or purged;
- reference galleries waiting for review: accept (it replaces the one in use) / reject;
- eval runs: cancel a queued or running one, requeue a failed one;
- voters (salted session and IP hashes): void their votes (ratings recomputed, votes kept and marked),
  ban a session or an IP hash;
- the audit log of every such action, downloadable as CSV (cells never become formulas).

API (gradio_client, maintainers only): `/moderate_checkpoint(checkpoint, action)` with action
approve | reject | hide | purge; `/moderate_gallery(stage_id, action)` with accept | reject;
`/moderate_run(run_id, action)` with cancel | requeue; `/moderate_votes(kind, value_hash, action)` with
kind session | ip and action void | ban; `/maintainer_view()` -> the five tables; `/export_audit()`.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd
import yaml

from evals.galleries import accept_gallery, pending_galleries, reject_gallery
from evals.probe import check_name, promotion_entry
from evals.suites import get_suite
from hub.errors import HubInputError
from hub.ui.common import user_error
from hub.ui.context import HubContext
from hub.ui.i18n import LocalizedError, page_language, t, tr
from hub.ui.identity import allowed, identify
from leaderboards import moderation, probes, submissions
from leaderboards.csv_safe import write_csv

CHECKPOINT_ACTIONS = ("approve", "reject", "hide", "purge")
GALLERY_ACTIONS = ("accept", "reject")
RUN_ACTIONS = ("cancel", "requeue")
VOTE_ACTIONS = ("void", "ban")
GALLERY_COLUMNS = ["stage_id", "suite", "character_id", "owner", "n_images", "sha256"]


def _pending_galleries(ctx: HubContext) -> pd.DataFrame:
    rows = [(g.stage_id, g.suite, g.character_id, g.owner, g.n_images, g.sha256[:12]) for g in pending_galleries(ctx.data_dir)]
    return pd.DataFrame(rows, columns=GALLERY_COLUMNS)


def _choice(value: str, choices: tuple[str, ...]) -> str:
    value = (value or "").strip().lower()
    if value not in choices:
        raise LocalizedError("err.maintainer.unknown_action", action=value[:20], known=", ".join(choices))
    return value


def _delete_sample_files(ctx: HubContext, paths: list[str]) -> int:
    """Purged samples' images, only where they lie inside the data folder."""
    root = ctx.data_dir.resolve()
    removed = 0
    for raw in paths:
        path = Path(raw).resolve()
        if root in path.parents and path.is_file():
            path.unlink()
            removed += 1
    return removed


def build_tab(ctx: HubContext) -> gr.Tab:
    export_dir = Path(tempfile.mkdtemp(prefix="hub-audit-"))  # served: outside the data dir

    def view(request: gr.Request) -> tuple[pd.DataFrame, ...]:
        """Pending checkpoints, pending galleries, runs, voters, the audit log and the most-asked probe names
        (maintainers only)."""
        try:
            allowed(ctx, request, "moderate")
        except HubInputError as err:
            raise user_error(err, request) from None
        return (moderation.moderation_table(ctx.db), _pending_galleries(ctx), submissions.runs_table(ctx.db, limit=100),
                moderation.voters_table(ctx.db), moderation.audit_table(ctx.db), probes.most_asked(ctx.db))

    def promote_name(name: str, request: gr.Request) -> tuple[str, str]:
        """A most-asked probe name -> a draft entry for the probe suite (YAML to complete and add to the
        suite file: a new suite version by its content hash); the name is marked promoted."""
        try:
            who = allowed(ctx, request, "moderate")
            name = check_name(name, ctx.config.probe.max_name_chars)
            entry = promotion_entry(ctx.db, get_suite(ctx.config.probe.suite), name)
            with ctx.db.write_session() as session:
                probes.mark_promoted(session, name)
            moderation.record(ctx.db, who.user or "?", "promote_probe_name", name, entry["id"])
        except HubInputError as err:
            raise user_error(err, request) from None
        draft = yaml.safe_dump([entry], allow_unicode=True, sort_keys=False)
        return tr(page_language(request), "msg.probe.promoted", name=name, suite=ctx.config.probe.suite), draft

    def moderate_checkpoint(checkpoint: str, action: str, request: gr.Request) -> str:
        try:
            who = allowed(ctx, request, "moderate")
            action = _choice(action, CHECKPOINT_ACTIONS)
            checkpoint = submissions.check_checkpoint_id(checkpoint)
            if action in ("approve", "reject"):
                moderation.set_approval(ctx.db, who.user or "?", checkpoint, approve=action == "approve")
            elif any(spec.id == checkpoint for spec in ctx.config.checkpoints):
                raise LocalizedError("err.maintainer.config_checkpoint", id=checkpoint)
            else:
                paths = moderation.hide_checkpoint(ctx.db, who.user or "?", checkpoint, purge_samples=action == "purge")
                ctx.engine.registry.forget(checkpoint)
                if paths:
                    _delete_sample_files(ctx, paths)
        except HubInputError as err:
            raise user_error(err, request) from None
        if action == "approve" and ctx.eval_worker is not None:
            ctx.eval_worker.wake()  # its queued runs may start now
        return tr(page_language(request), f"msg.maintainer.checkpoint_{action}", id=checkpoint)

    def moderate_gallery(stage_id: str, action: str, request: gr.Request) -> str:
        try:
            who = allowed(ctx, request, "moderate")
            action = _choice(action, GALLERY_ACTIONS)
            stage_id = (stage_id or "").strip()
            if action == "accept":
                record = accept_gallery(ctx.data_dir, stage_id)
                detail = f"{record.suite}/{record.character_id} sha256 {record.sha256[:12]}"
            else:
                reject_gallery(ctx.data_dir, stage_id)
                detail = ""
            moderation.record(ctx.db, who.user or "?", f"{action}_gallery", stage_id, detail)
        except HubInputError as err:
            raise user_error(err, request) from None
        return tr(page_language(request), f"msg.maintainer.gallery_{action}", id=stage_id)

    def moderate_run(run_id: float, action: str, request: gr.Request) -> str:
        try:
            who = allowed(ctx, request, "moderate")
            action = _choice(action, RUN_ACTIONS)
            if run_id is None or not float(run_id).is_integer() or run_id < 1:
                raise LocalizedError("err.maintainer.run_id")
            if action == "cancel":
                moderation.cancel_run(ctx.db, who.user or "?", int(run_id))
            else:
                moderation.requeue_run(ctx.db, who.user or "?", int(run_id))
        except (HubInputError, OverflowError, ValueError) as err:
            if not isinstance(err, HubInputError):
                err = LocalizedError("err.maintainer.run_id")
            raise user_error(err, request) from None
        if action == "requeue" and ctx.eval_worker is not None:
            ctx.eval_worker.wake()
        return tr(page_language(request), f"msg.maintainer.run_{action}", id=int(run_id))

    def moderate_votes(kind: str, value_hash: str, action: str, request: gr.Request) -> str:
        try:
            who = allowed(ctx, request, "moderate")
            action = _choice(action, VOTE_ACTIONS)
            kind = _choice(kind, moderation.BAN_KINDS)
            if action == "void":
                voided = moderation.void_votes(ctx.db, who.user or "?", **{f"{kind}_hash": value_hash})
                return tr(page_language(request), "msg.maintainer.voided", n=voided)
            moderation.ban(ctx.db, who.user or "?", kind, value_hash)
        except HubInputError as err:
            raise user_error(err, request) from None
        return tr(page_language(request), "msg.maintainer.banned", kind=kind)

    def export_audit(request: gr.Request) -> str:
        try:
            allowed(ctx, request, "moderate")
        except HubInputError as err:
            raise user_error(err, request) from None
        path = Path(tempfile.mkdtemp(dir=export_dir)) / "audit_log.csv"
        write_csv(moderation.audit_table(ctx.db, limit=100_000), path)
        return str(path)

    with gr.Tab(t("ui.tab.maintainer"), id="maintainer", elem_id="tab-maintainer", visible=False) as tab:
        gr.Markdown(t("ui.maintainer.help"))
        refresh = gr.Button(t("ui.common.refresh"), size="sm", elem_id="maintainer-refresh")
        message = gr.Markdown(elem_id="maintainer-message")
        with gr.Row():
            checkpoint = gr.Textbox(label=t("ui.common.checkpoint"), max_lines=1, elem_id="maintainer-checkpoint")
            checkpoint_action = gr.Radio(choices=list(CHECKPOINT_ACTIONS), value="approve", label=t("ui.maintainer.action"),
                                         elem_id="maintainer-checkpoint-action")
            checkpoint_go = gr.Button(t("ui.maintainer.apply"), variant="primary", elem_id="maintainer-checkpoint-go")
        checkpoints = gr.Dataframe(interactive=False, wrap=True, label=t("ui.maintainer.checkpoints"), elem_id="maintainer-checkpoints")
        with gr.Row():
            stage = gr.Textbox(label=t("ui.maintainer.stage_id"), max_lines=1, elem_id="maintainer-stage")
            gallery_action = gr.Radio(choices=list(GALLERY_ACTIONS), value="accept", label=t("ui.maintainer.action"))
            gallery_go = gr.Button(t("ui.maintainer.apply"), elem_id="maintainer-gallery-go")
        galleries = gr.Dataframe(interactive=False, wrap=True, label=t("ui.maintainer.galleries"))
        with gr.Row():
            run = gr.Number(label=t("ui.maintainer.run_id"), value=None, precision=0, minimum=1, elem_id="maintainer-run")
            run_action = gr.Radio(choices=list(RUN_ACTIONS), value="cancel", label=t("ui.maintainer.action"))
            run_go = gr.Button(t("ui.maintainer.apply"), elem_id="maintainer-run-go")
        runs = gr.Dataframe(interactive=False, wrap=True, label=t("ui.maintainer.runs"))
        with gr.Row():
            vote_kind = gr.Radio(choices=list(moderation.BAN_KINDS), value="session", label=t("ui.maintainer.kind"))
            value_hash = gr.Textbox(label=t("ui.maintainer.hash"), max_lines=1, elem_id="maintainer-hash")
            vote_action = gr.Radio(choices=list(VOTE_ACTIONS), value="void", label=t("ui.maintainer.action"))
            vote_go = gr.Button(t("ui.maintainer.apply"), variant="stop", elem_id="maintainer-votes-go")
        voters = gr.Dataframe(interactive=False, wrap=True, label=t("ui.maintainer.voters"), elem_id="maintainer-voters")
        audit = gr.Dataframe(interactive=False, wrap=True, label=t("ui.maintainer.audit"), elem_id="maintainer-audit")
        asked = gr.Dataframe(interactive=False, wrap=True, label=t("ui.probe.most_asked"), elem_id="maintainer-most-asked")
        with gr.Row():
            promote = gr.Textbox(label=t("ui.probe.promote_name"), max_lines=1, elem_id="maintainer-promote-name")
            promote_go = gr.Button(t("ui.probe.promote"), elem_id="maintainer-promote-go")
        draft = gr.Code(label=t("ui.probe.promote_draft"), language="yaml", interactive=False, elem_id="maintainer-promote-draft")
        export = gr.Button(t("ui.maintainer.export"), size="sm", elem_id="maintainer-export")
        audit_file = gr.File(label=t("ui.maintainer.audit_file"), interactive=False)

    tables = [checkpoints, galleries, runs, voters, audit, asked]
    promote_go.click(promote_name, [promote], [message, draft], api_name="promote_probe_name", concurrency_limit=4).success(
        view, None, tables, api_visibility="private")
    refresh.click(view, None, tables, api_name="maintainer_view", concurrency_limit=4)
    for button, fn, inputs, name in (
        (checkpoint_go, moderate_checkpoint, [checkpoint, checkpoint_action], "moderate_checkpoint"),
        (gallery_go, moderate_gallery, [stage, gallery_action], "moderate_gallery"),
        (run_go, moderate_run, [run, run_action], "moderate_run"),
        (vote_go, moderate_votes, [vote_kind, value_hash, vote_action], "moderate_votes"),
    ):
        button.click(fn, inputs, [message], api_name=name, concurrency_limit=4).success(
            view, None, tables, api_visibility="private")
    export.click(export_audit, None, [audit_file], api_name="export_audit", concurrency_limit=4)
    return tab


def visibility(ctx: HubContext, request: Any) -> Any:
    """The tab for maintainers only (the endpoints check the role again)."""
    try:
        return gr.update(visible=identify(ctx, request).is_maintainer)
    except HubInputError:
        return gr.update(visible=False)
