"""The Gradio UI: one module per tab; `build_app` puts them together with the language menu, and
`launch_kwargs` gives `launch` what the page needs (translations, blocked paths, upload size)."""

from __future__ import annotations

from typing import Any

import gradio as gr

from hub.ui import (
    account,
    arena_tab,
    edit_tab,
    generate_tab,
    grid_tab,
    leaderboard_tab,
    lora_tab,
    maintainer_tab,
    probe_tab,
    report_card_tab,
    submit_tab,
)
from hub.ui.common import checkpoint_note, status_markdown, translated_tab, translated_tabs, user_error
from hub.ui.context import HubContext
from hub.ui.i18n import (
    APPLY_LANGUAGE_JS,
    DEFAULT_LANGUAGE,
    PICK_LANGUAGE_JS,
    TABS_STALE_JS,
    LocalizedError,
    catalog,
    check_language,
    i18n_for,
    language_menu_choices,
    page_language,
    t,
    tr,
    ui_params,
)
from hub.ui.identity import middleware_for, trust_only_our_proxies
from leaderboards.arena_boards import NO_TIER


def build_app(ctx: HubContext) -> gr.Blocks:
    with gr.Blocks(title=ctx.config.title) as demo:
        with gr.Row(equal_height=True):
            with gr.Column(scale=4):
                gr.Markdown(t("ui.app.intro"), elem_id="hub-intro")
            with gr.Column(scale=1, min_width=220):
                language = gr.Dropdown(choices=language_menu_choices(), value=DEFAULT_LANGUAGE, label=t("ui.app.language"),
                                       info=t("ui.app.language_info"), elem_id="language-menu", allow_custom_value=False)
        account_status, account_changes = account.build_bar(ctx)
        with gr.Accordion(t("ui.app.models"), open=False):
            models = gr.Markdown(status_markdown(ctx), elem_id="hub-models")
        with gr.Tabs() as tabs:
            with translated_tab("ui.tab.generate", id="generate", elem_id="tab-generate"):
                generate = generate_tab.build_tab(ctx)
            with translated_tab("ui.tab.edit", id="edit", elem_id="tab-edit"):
                edit = edit_tab.build_tab(ctx)
            with translated_tab("ui.tab.grid", id="grid", elem_id="tab-grid"):
                grid_tab.build_tab(ctx)
            with translated_tab("ui.tab.lora", id="lora", elem_id="tab-lora"):
                lora_choice, lora_card = lora_tab.build_tab(ctx)
            with translated_tab("ui.tab.arena", id="arena", elem_id="tab-arena"):
                arena_tab.build_tab(ctx)
            with translated_tab("ui.tab.leaderboard", id="leaderboard", elem_id="tab-leaderboard"):
                leaderboard_tab.build_tab(ctx)
            with translated_tab("ui.tab.probe", id="probe", elem_id="tab-probe"):
                probe_tab.build_tab(ctx)
            with translated_tab("ui.tab.report", id=report_card_tab.TAB_ID, elem_id="tab-report"):
                _, (fill_report, report_outputs) = report_card_tab.build_tab(ctx)
            with translated_tab("ui.tab.submit", id="submit", elem_id="tab-submit"):
                submit_tab.build_tab(ctx)
            maintainer = maintainer_tab.build_tab(ctx)
        generate.send_to_edit.click(
            lambda path: (path, gr.Tabs(selected="edit")),
            inputs=[generate.selected_path],
            outputs=[edit.editor, tabs],
            api_visibility="private",
        )

        # Text the server writes (model table, checkpoint notes) follows the page's language, written on load
        # and after a switch; so do the tab labels, which Gradio draws once (a switch in place leaves all
        # but the selected tab in the old language until their labels are sent again).
        tab_labels = translated_tabs(demo)

        def localized_text(generate_checkpoint: str | None, edit_checkpoint: str | None, lora_id: str | None,
                           tabs_stale: bool, request: gr.Request) -> tuple[Any, ...]:
            lang = page_language(request)
            tabs = [gr.update(label=t(key)) if tabs_stale else gr.skip() for _, key in tab_labels]
            return (status_markdown(ctx, lang), checkpoint_note(ctx, generate_checkpoint, lang),
                    edit_tab.tasks_note(ctx, edit_checkpoint, lang), lora_tab.card_text(ctx, lora_id, lang), *tabs)

        def initial_language(asked: str | None, request: gr.Request) -> str:
            """The page's first language: what the page asked for (?lang=, cookie, browser), if ours."""
            try:
                return check_language(asked)
            except LocalizedError as err:
                gr.Warning(user_error(err, request).message)
                return page_language(request)

        def set_language(code: str, request: gr.Request) -> str:
            """Check a language code for the page (en, es, ja, zh-CN, ko, pt) and say its name in that
            language; an unknown code is refused in the current page language."""
            try:
                chosen = check_language(code)
            except LocalizedError as err:
                raise user_error(err, request) from None
            return tr(chosen, "msg.language_set", name=catalog().languages[chosen].menu_label)

        def choose_language(code: str | None, request: gr.Request) -> str:
            return set_language(code, request)  # type: ignore[arg-type]

        private = {"api_visibility": "private", "queue": False}
        text_outputs = [models, generate.note, edit.tasks_note, lora_card, *[tab for tab, _ in tab_labels]]
        tabs_stale = gr.Checkbox(visible=False, value=False)
        text_inputs = [generate.checkpoint, edit.checkpoint, lora_choice, tabs_stale]
        # The page's pick (?lang=, cookie, browser) arrives as text: an unknown ?lang= must reach the server
        # to be refused in words, not be stopped by the menu's list of choices.
        asked = gr.Textbox(visible=False, value="", elem_id="language-asked")
        # Queued (not `queue=False`): a warning reaches the page only through the queue.
        demo.load(initial_language, inputs=[asked], outputs=[language], js=PICK_LANGUAGE_JS, api_visibility="private",
                  concurrency_limit=None).then(
            None, inputs=[language], outputs=None, js=APPLY_LANGUAGE_JS, **private
        ).then(localized_text, inputs=text_inputs, outputs=text_outputs, js=TABS_STALE_JS, **private).then(
            None, js="() => { window.__sakugaReady = true; }", **private  # the page is drawn in its language
        )
        # Who the caller is: the account line and the maintainer tab (its endpoints check the role again).
        def account_view(request: gr.Request) -> tuple[str, Any]:
            return account.status_text(ctx, request), maintainer_tab.visibility(ctx, request)

        demo.load(account_view, None, [account_status, maintainer], **private)

        def deep_link(request: gr.Request) -> tuple[Any, ...]:
            """`?model=ID` opens that checkpoint's report card (an unknown id is a warning, nothing else)."""
            model = request.query_params.get("model") if request is not None else None
            if not model:
                return tuple(gr.skip() for _ in range(1 + len(report_outputs)))
            try:
                filled = fill_report(model, request)
            except gr.Error as err:
                gr.Warning(err.message)
                return tuple(gr.skip() for _ in range(1 + len(report_outputs)))
            return (gr.Tabs(selected=report_card_tab.TAB_ID), *filled)

        # Queued: a warning reaches the page only through the queue.
        demo.load(deep_link, None, [tabs, *report_outputs], api_visibility="private", concurrency_limit=4)
        for change in account_changes:
            change.then(account_view, None, [account_status, maintainer], **private)
        status = gr.Markdown(visible=False)
        gr.api(set_language, api_name="set_language", concurrency_limit=None)
        language.input(choose_language, inputs=[language], outputs=[status], **private).success(
            None, inputs=[language], outputs=None, js=APPLY_LANGUAGE_JS, **private
        ).then(localized_text, inputs=text_inputs, outputs=text_outputs, js=TABS_STALE_JS, **private)
    ctx.calls.app = demo  # its queue tells which pages went away (hub/ui/cancel.py)
    return demo


def launch_kwargs(ctx: HubContext) -> dict[str, Any]:
    """Arguments for `demo.launch` that the hub needs wherever it runs (app, tests, benchmarks)."""
    # Returned images are copied into Gradio's cache under new names. The database, the session
    # salt and the weights in the data folder are never served, whatever path a client asks for.
    data = ctx.data_dir
    secrets = [data / name for name in ("hub.sqlite3", "hub.sqlite3-wal", "hub.sqlite3-shm", "session_salt", "builtin", "hash_cache.json")]
    limits = ctx.config.limits
    params = {"undo_seconds": limits.undo_seconds, "personal_board_min_votes": limits.personal_board_min_votes, "no_tier": NO_TIER}

    trust_only_our_proxies(ctx.config.server.proxies)
    return {
        # Server-issued signed session cookies and nosniff on every response (hub/ui/identity.py).
        "app_kwargs": {"middleware": middleware_for(ctx)},
        "blocked_paths": [str(path) for path in secrets],
        "max_file_size": ctx.config.limits.max_upload_bytes,
        # The read-only API as MCP tools (hub/ui/mcp.py prunes the rest right after launch).
        "mcp_server": ctx.config.mcp.enabled,
        "i18n": i18n_for(ctx.config, params=params),
    }


__all__ = ["build_app", "launch_kwargs", "ui_params"]
