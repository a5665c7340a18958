"""Arena tab: blind battles between two checkpoints, one vote each; identities shown after the vote.

API endpoints (gradio_client):
- `/battle(prompt) -> (battle_id, image_a, image_b)`: no model name anywhere (ids are random tokens, image
  files have random names and carry no metadata at all: even an anonymous recipe's steps or size can
  fingerprint a model). The images keep their stored pixels; the page enlarges them for display.
- `/vote(battle_id, outcome) -> (model_a, model_b)`: outcome is one of model_a | model_b | tie |
  tie (bothbad); refused with a clear message for a second vote, an unknown or expired battle, a battle
  served to another session, an unknown outcome, or too many votes.
- `/undo_vote(battle_id) -> message`: takes back this session's last vote within 30 s (once per battle);
  the battle can then be voted on again (that vote counts on the personal board only: the names were
  already shown).
- `/personal_board() -> (message, table)`: this session's own Bradley–Terry board beside the community's,
  after 20 votes (before: a message saying how many more). It takes no session id: the session is the
  caller's own.
- `/category_board(language, tier) -> (table, message)`: the arena board of one category ("all" for any).
- `/export_votes(format) -> file`: the anonymised votes (csv | parquet).
- `/edit_battle(image, instruction) -> (battle_id, image_a, image_b)`: the edit arena. `image` is a file;
  two anonymous edit-capable checkpoints edit it with the same instruction and seed. Voting goes through
  `/vote`; edit votes are rated on their own board (Leaderboard tab, "Edit arena").

In the page: the two images side by side at one size, small ones enlarged with nearest-neighbour
(click one for full screen); keys 1 = A, 2 = B, 3 = tie, 4 = both bad (only while both images are
shown and the buttons are enabled); an "Undo my vote" button for 30 s after a vote. Every text is
translated (`hub/ui/locales`); messages and errors come back in the page's language.

Sessions are the server-issued signed cookie (`hub.ui.identity`) plus the trusted client address
(`server.trusted_proxies`), stored only as salted hashes; a client-chosen Gradio session_hash is never used.
The edit arena's "Random demo portrait" button uses `ctx.demo_portrait` (a callable returning
(image, instruction)) and is hidden when the context has none. Prompts go through the content filter's
blocklist, and the arena asks `ctx.is_withheld` about both images before a battle is served.
"""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import gradio as gr
import pandas as pd
from PIL import Image

from hub.errors import EngineError, HubInputError
from hub.images import open_upload
from hub.ui.arena_parts import (  # noqa: F401 - re-exported: tests and tools import them from here
    ALL,
    CATEGORY_COLUMNS,
    CATEGORY_REFRESH_S,
    EDIT_TASKS,
    KEYS,
    PAGE_JS,
    SECOND_VOTE_MARK,
    VOTE_BUTTONS,
    _load,
    _write_export,
    arena_candidates,
    edit_arena_candidates,
    make_arena,
    vote_panel,
)
from hub.ui.common import gpu_event_options, gpu_function, translated_tab, user_error
from hub.ui.context import HubContext
from hub.ui.identity import allowed
from hub.ui.i18n import LocalizedError, page_language, t, tr
from leaderboards.arena_boards import PERSONAL_COLUMNS, arena_categories, category_board
from leaderboards.arena_votes import EXPORT_FORMATS
from leaderboards.boards import sampling_table
from leaderboards.schema import VOTE_OUTCOMES

log = logging.getLogger(__name__)


class ArenaHandlers:
    """What the tab's events call, one method each (API names are given where they are wired)."""

    def __init__(self, ctx: HubContext) -> None:
        self.ctx = ctx
        self.arena = make_arena(ctx)
        self.limits = ctx.config.limits
        self.demo_portrait = getattr(ctx, "demo_portrait", None)
        self.export_dir = Path(tempfile.mkdtemp(prefix="hub-arena-votes-"))  # served: outside the data dir
        self.content_filter = ctx.content_filter
        self._category_cache: dict[str, Any] = {"at": -1e9, "choices": ([ALL], [ALL])}

    def caller(self, request: gr.Request, action: str) -> tuple[str | None, str | None]:
        # The server-issued session and the trusted client address (never the client's session_hash
        # or a forwarded-for header from an untrusted peer); refused when the role may not `action`.
        who = allowed(self.ctx, request, action)
        return who.session_id, who.client_ip

    @gpu_function
    def battle(self, prompt: str, request: gr.Request) -> tuple[str, Image.Image, Image.Image]:
        try:
            if self.content_filter is not None:
                self.content_filter.check_prompt(prompt)
            served = self.arena.create_battle(prompt, *self.caller(request, "generate"))
        except (HubInputError, EngineError) as err:
            raise user_error(err, request) from None
        # Returned as pixels: Gradio stores them under content-hash names (the data dir is not served).
        return served.battle_id, _load(served.image_a), _load(served.image_b)

    @gpu_function
    def edit_battle(self, image: str | None, instruction: str, request: gr.Request) -> tuple[str, Image.Image, Image.Image]:
        try:
            if not image:
                raise LocalizedError("err.upload_first")
            if self.content_filter is not None:
                self.content_filter.check_prompt(instruction)
            # Our own reader checks size and format before decoding a pixel.
            source = open_upload(image, max_bytes=self.limits.max_upload_bytes, max_pixels=self.limits.max_upload_pixels)
            served = self.arena.create_edit_battle(source, instruction, *self.caller(request, "generate"))
        except (HubInputError, EngineError) as err:
            raise user_error(err, request) from None
        return served.battle_id, _load(served.image_a), _load(served.image_b)

    def edit_battle_from_page(self, image: str | None, instruction: str,
                              request: gr.Request) -> tuple[str, Image.Image, Image.Image]:
        # Its own function (edit_battle holds the GPU): an event reusing `edit_battle` would take the
        # "edit_battle" API name first.
        return self.edit_battle(image, instruction, request)

    def vote(self, battle_id: str, outcome: str, request: gr.Request) -> tuple[str, str]:
        try:
            result = self.arena.record_vote(battle_id, outcome, *self.caller(request, "vote"))
        except HubInputError as err:
            raise user_error(err, request) from None
        return result.name_a, result.name_b

    def vote_from_button(self, battle_id: str, outcome: str, request: gr.Request) -> tuple[Any, ...]:
        lang = page_language(request)
        try:
            if not battle_id:
                raise LocalizedError("err.start_battle_first")
            result = self.arena.record_vote(battle_id, outcome, *self.caller(request, "vote"))
        except HubInputError as err:
            raise user_error(err, request) from None
        label = tr(lang, dict((o, k) for k, o in VOTE_BUTTONS)[outcome].replace("ui.", "msg.", 1))
        message = tr(lang, "msg.arena.thanks", label=label, name_a=result.name_a, name_b=result.name_b)
        if not result.counted:
            message += " " + tr(lang, "msg.arena.second_vote") + SECOND_VOTE_MARK
        disabled = [gr.update(interactive=False) for _ in VOTE_BUTTONS]
        return (message, result.name_a, result.name_b, *disabled)

    def undo_vote_api(self, battle_id: str, request: gr.Request) -> str:
        """Undo this session's last vote (within 30 s, once per battle). Returns a short message."""
        try:
            self.arena.undo_vote(battle_id, *self.caller(request, "vote"))
        except HubInputError as err:
            raise user_error(err, request) from None
        return tr(page_language(request), "msg.arena.undone")

    def undo_from_button(self, battle_id: str, request: gr.Request) -> tuple[Any, ...]:
        message = self.undo_vote_api(battle_id, request)
        enabled = [gr.update(interactive=True) for _ in VOTE_BUTTONS]
        return (message, "", "", *enabled, gr.update(visible=False), gr.Timer(active=False))

    def personal_board(self, request: gr.Request) -> tuple[str, pd.DataFrame]:
        lang = page_language(request)
        try:
            table = self.arena.personal_board(self.caller(request, "vote")[0])
        except HubInputError as err:
            return user_error(err, request).message, pd.DataFrame(columns=PERSONAL_COLUMNS)
        return tr(lang, "msg.arena.personal", votes=table.attrs["votes"]), table

    def category_options(self) -> tuple[Any, Any]:
        # Every page load asks; the categories change slowly and counting them scans the votes.
        if time.monotonic() - self._category_cache["at"] > CATEGORY_REFRESH_S:
            categories = arena_categories(self.ctx.db)
            languages = [ALL, *sorted(set(categories["language"]))] if not categories.empty else [ALL]
            tiers = [ALL, *sorted(set(categories["tier"]))] if not categories.empty else [ALL]
            self._category_cache.update(at=time.monotonic(), choices=(languages, tiers))
        languages, tiers = self._category_cache["choices"]
        return gr.update(choices=languages), gr.update(choices=tiers)

    def category_view(self, language: str | None, tier: str | None, request: gr.Request) -> tuple[pd.DataFrame, str]:
        lang = page_language(request)
        language = (language or ALL).strip()
        tier = (tier or ALL).strip()
        if len(language) > 16 or len(tier) > 32:
            raise user_error(LocalizedError("err.unknown_category"), request)
        board = category_board(
            self.ctx.db, language=None if language == ALL else language, tier=None if tier == ALL else tier
        )
        if board.empty:
            return pd.DataFrame(columns=CATEGORY_COLUMNS), tr(lang, "msg.arena.category_empty", language=language, tier=tier)
        return board[CATEGORY_COLUMNS], tr(lang, "msg.arena.category", language=language, tier=tier)

    def rates(self) -> tuple[Any, Any]:
        pairs = self.arena.pair_rates()
        if not pairs.empty:
            pairs = pairs.assign(
                probability=[f"{p:.1%}" for p in pairs["probability"]],
                weight=pairs["weight"].round(1),
                width_a=pairs["width_a"].round(),
                width_b=pairs["width_b"].round(),
            )
        return sampling_table(self.ctx.db), pairs

    def suite_prompt(self, request: gr.Request) -> str:
        try:
            return self.arena.random_suite_prompt()
        except HubInputError as err:
            raise user_error(err, request) from None

    def export(self, fmt: str, request: gr.Request) -> str:
        try:
            return _write_export(self.export_dir, fmt, self.ctx.db)
        except HubInputError as err:
            raise user_error(err, request) from None

    def portrait(self, request: gr.Request = None) -> tuple[Image.Image, str]:  # type: ignore[assignment]
        if self.demo_portrait is None:
            raise user_error(LocalizedError("err.no_portraits"), request)
        return self.demo_portrait()


PRIVATE = {"api_visibility": "private", "concurrency_limit": None}


def clear_panel() -> tuple[Any, ...]:
    # Until the new pair arrives: no vote buttons, no undo, no old result.
    return ("", "", "", *[gr.update(interactive=False) for _ in VOTE_BUTTONS], gr.update(visible=False), gr.Timer(active=False))


def ready_panel() -> tuple[Any, ...]:
    return tuple(gr.update(interactive=True) for _ in VOTE_BUTTONS)


def show_undo(message: str) -> tuple[Any, Any]:
    if SECOND_VOTE_MARK in (message or ""):  # a battle's vote is undone at most once
        return gr.update(visible=False), gr.Timer(active=False)
    return gr.update(visible=True, interactive=True), gr.Timer(active=True)


def hide_undo() -> tuple[Any, Any]:
    return gr.update(visible=False), gr.Timer(active=False)


def _wire_panel(handlers: ArenaHandlers, bid: Any, buttons: list[Any], result: Any, name_a: Any, name_b: Any,
                undo: Any, timer: Any) -> None:
    """Vote buttons, undo and its timer for one panel (the events are private: the API has /vote)."""

    def button_handler(outcome: str):  # noqa: ANN202
        def handler(battle: str, request: gr.Request) -> tuple[Any, ...]:
            return handlers.vote_from_button(battle, outcome, request)

        return handler

    for button, (_, outcome) in zip(buttons, VOTE_BUTTONS, strict=True):
        button.click(
            button_handler(outcome), inputs=[bid], outputs=[result, name_a, name_b, *buttons], **PRIVATE
        ).success(show_undo, inputs=[result], outputs=[undo, timer], **PRIVATE)
    undo.click(handlers.undo_from_button, inputs=[bid], outputs=[result, name_a, name_b, *buttons, undo, timer], **PRIVATE)
    timer.tick(hide_undo, outputs=[undo, timer], **PRIVATE)


def _blind_tab(ctx: HubContext) -> SimpleNamespace:
    """The blind arena's components (wired in `build_tab`)."""
    with translated_tab("ui.arena.blind_tab", id="arena-blind"):
        gr.Markdown(t("ui.arena.blind_intro"))
        with gr.Row():
            prompt = gr.Textbox(
                label=t("ui.common.prompt"), placeholder="1girl, silver hair, school uniform, cherry blossoms", scale=4,
                elem_id="arena-prompt",
            )
            with gr.Column(scale=1, min_width=160):
                start = gr.Button(t("ui.arena.new_battle"), variant="primary", elem_id="arena-new-battle")
                random_prompt = gr.Button(t("ui.arena.random_prompt"), size="sm", elem_id="arena-random-prompt")
        battle_id = gr.Textbox(visible=False, label="battle id")
        outcome_box = gr.Textbox(visible=False, label="outcome")
        image_a, image_b, buttons, result, name_a, name_b, undo = vote_panel("arena")
        undo_timer = gr.Timer(ctx.config.limits.undo_seconds, active=False)
        with gr.Accordion(t("ui.arena.personal_title"), open=False, elem_id="arena-personal"):
            gr.Markdown(t("ui.arena.personal_help"))
            show_personal = gr.Button(t("ui.arena.personal_show"), size="sm", elem_id="arena-personal-show")
            personal_note = gr.Markdown(elem_id="arena-personal-note")
            personal_table = gr.Dataframe(interactive=False, wrap=True)
        with gr.Accordion(t("ui.arena.category_title"), open=False):
            with gr.Row():
                language_choice = gr.Dropdown([ALL], value=ALL, label=t("ui.arena.category_language"), allow_custom_value=True)
                tier_choice = gr.Dropdown([ALL], value=ALL, label=t("ui.arena.category_tier"), allow_custom_value=True)
                show_category = gr.Button(t("ui.arena.category_show"), size="sm")
            category_note = gr.Markdown()
            category_table = gr.Dataframe(interactive=False, wrap=True)
        with gr.Accordion(t("ui.arena.rates_title"), open=False):
            gr.Markdown(t("ui.arena.rates_help"))
            rates_table = gr.Dataframe(interactive=False, label=t("ui.arena.rates_per_checkpoint"))
            pair_table = gr.Dataframe(interactive=False, label=t("ui.arena.rates_per_pair"))
            refresh_rates = gr.Button(t("ui.common.refresh"), size="sm")
        with gr.Accordion(t("ui.arena.export_title"), open=False):
            gr.Markdown(t("ui.arena.export_help"))
            with gr.Row():
                export_format = gr.Radio(list(EXPORT_FORMATS), value="csv", label=t("ui.arena.export_format"))
                export_button = gr.Button(t("ui.arena.export_run"), size="sm")
            export_file = gr.File(label=t("ui.arena.export_file"), interactive=False)
        # Hidden trigger behind the public /vote endpoint (the buttons use their own private events).
        vote_trigger = gr.Button(visible=False)

    return SimpleNamespace(
        prompt=prompt,
        start=start,
        random_prompt=random_prompt,
        battle_id=battle_id,
        outcome_box=outcome_box,
        image_a=image_a,
        image_b=image_b,
        buttons=buttons,
        result=result,
        name_a=name_a,
        name_b=name_b,
        undo=undo,
        undo_timer=undo_timer,
        show_personal=show_personal,
        personal_note=personal_note,
        personal_table=personal_table,
        language_choice=language_choice,
        tier_choice=tier_choice,
        show_category=show_category,
        category_note=category_note,
        category_table=category_table,
        rates_table=rates_table,
        pair_table=pair_table,
        refresh_rates=refresh_rates,
        export_format=export_format,
        export_button=export_button,
        export_file=export_file,
        vote_trigger=vote_trigger,
    )


def _edit_tab(ctx: HubContext, handlers: ArenaHandlers) -> SimpleNamespace:
    """The edit arena's components (wired in `build_tab`)."""
    limits = ctx.config.limits
    with translated_tab("ui.arena.edit_tab", id="arena-edit"):
        gr.Markdown(t("ui.arena.edit_intro"))
        with gr.Row():
            with gr.Column(scale=1):
                edit_input = gr.Image(
                    label=t("ui.arena.input_image"), type="filepath", format="png", sources=["upload", "clipboard"], height=256
                )
                portrait_button = gr.Button(t("ui.arena.random_portrait"), size="sm", visible=handlers.demo_portrait is not None,
                                            elem_id="edit-arena-portrait")
            with gr.Column(scale=2):
                instruction = gr.Textbox(
                    label=t("ui.arena.instruction"), placeholder="make her hair red", lines=2, max_length=limits.max_prompt_chars
                )
                edit_start = gr.Button(t("ui.arena.new_edit_battle"), variant="primary")
        edit_battle_id = gr.Textbox(visible=False, label="edit battle id")
        edit_a, edit_b, edit_buttons, edit_result, edit_name_a, edit_name_b, edit_undo = vote_panel("edit-arena")
        edit_undo_timer = gr.Timer(ctx.config.limits.undo_seconds, active=False)
        # The API endpoint takes a plain file (like /edit); hidden from the page.
        with gr.Row(visible=False):
            api_image = gr.File(type="filepath", label="image")
            api_edit_trigger = gr.Button("edit battle (API)")

    return SimpleNamespace(
        edit_input=edit_input,
        portrait_button=portrait_button,
        instruction=instruction,
        edit_start=edit_start,
        edit_battle_id=edit_battle_id,
        edit_a=edit_a,
        edit_b=edit_b,
        edit_buttons=edit_buttons,
        edit_result=edit_result,
        edit_name_a=edit_name_a,
        edit_name_b=edit_name_b,
        edit_undo=edit_undo,
        edit_undo_timer=edit_undo_timer,
        api_image=api_image,
        api_edit_trigger=api_edit_trigger,
    )


def build_tab(ctx: HubContext) -> None:
    handlers = ArenaHandlers(ctx)
    blind = _blind_tab(ctx)
    edit = _edit_tab(ctx, handlers)

    # ---------------------------------------------------------------- blind arena
    panel_outputs = [blind.result, blind.name_a, blind.name_b, *blind.buttons, blind.undo, blind.undo_timer]
    blind.start.click(clear_panel, outputs=panel_outputs, api_visibility="private", queue=False).then(
        handlers.battle,
        inputs=[blind.prompt],
        outputs=[blind.battle_id, blind.image_a, blind.image_b],
        api_name="battle",
        **gpu_event_options(ctx),
    ).success(ready_panel, outputs=blind.buttons, api_visibility="private", queue=False)
    _wire_panel(handlers, blind.battle_id, blind.buttons, blind.result, blind.name_a, blind.name_b, blind.undo,
                blind.undo_timer)
    blind.vote_trigger.click(
        handlers.vote,
        inputs=[blind.battle_id, blind.outcome_box],
        outputs=[blind.name_a, blind.name_b],
        api_name="vote",
        api_description=f"Vote on a served battle. outcome: one of {', '.join(VOTE_OUTCOMES)}. Returns (model_a, model_b).",
        concurrency_limit=None,
    )
    gr.api(handlers.undo_vote_api, api_name="undo_vote", concurrency_limit=None)
    blind.random_prompt.click(handlers.suite_prompt, outputs=[blind.prompt], **PRIVATE)
    blind.show_personal.click(
        handlers.personal_board, outputs=[blind.personal_note, blind.personal_table], api_name="personal_board",
        api_description="Your own arena board (after 20 votes in this session) beside the community's.",
        concurrency_limit=None,
    )
    blind.show_category.click(
        handlers.category_view, inputs=[blind.language_choice, blind.tier_choice],
        outputs=[blind.category_table, blind.category_note],
        api_name="category_board", api_description="The arena board of one category: language and tier ('all' for any).",
        concurrency_limit=4,
    )
    blind.refresh_rates.click(handlers.rates, outputs=[blind.rates_table, blind.pair_table], **PRIVATE)
    blind.export_button.click(
        handlers.export, inputs=[blind.export_format], outputs=[blind.export_file], api_name="export_votes",
        api_description="The anonymised votes as a file: format csv or parquet.", concurrency_limit=2,
    )

    # ---------------------------------------------------------------- edit arena
    edit_panel_outputs = [edit.edit_result, edit.edit_name_a, edit.edit_name_b, *edit.edit_buttons, edit.edit_undo,
                          edit.edit_undo_timer]
    edit.edit_start.click(clear_panel, outputs=edit_panel_outputs, api_visibility="private", queue=False).then(
        handlers.edit_battle_from_page, inputs=[edit.edit_input, edit.instruction],
        outputs=[edit.edit_battle_id, edit.edit_a, edit.edit_b],
        api_visibility="private", **gpu_event_options(ctx),
    ).success(ready_panel, outputs=edit.edit_buttons, api_visibility="private", queue=False)
    edit.api_edit_trigger.click(
        handlers.edit_battle,
        inputs=[edit.api_image, edit.instruction],
        outputs=[edit.edit_battle_id, edit.edit_a, edit.edit_b],
        api_name="edit_battle",
        api_description="Blind edit battle: two anonymous edit-capable checkpoints edit `image` (a file) with "
        "`instruction`. Returns (battle_id, image_a, image_b); vote with /vote.",
        **gpu_event_options(ctx),
    )
    _wire_panel(handlers, edit.edit_battle_id, edit.edit_buttons, edit.edit_result, edit.edit_name_a, edit.edit_name_b,
                edit.edit_undo, edit.edit_undo_timer)
    edit.portrait_button.click(handlers.portrait, outputs=[edit.edit_input, edit.instruction], **PRIVATE)

    root = gr.context.Context.root_block
    if root is not None:
        root.load(None, js=PAGE_JS)
        root.load(handlers.rates, outputs=[blind.rates_table, blind.pair_table], **PRIVATE)
        root.load(handlers.category_options, outputs=[blind.language_choice, blind.tier_choice], **PRIVATE)
