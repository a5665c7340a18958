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
shown and the buttons are enabled); an "Undo my vote" button for 30 s after a vote.

Sessions are Gradio session hashes plus the client IP, stored only as salted hashes.
The edit arena's "Random demo portrait" button uses `ctx.demo_portrait` (a callable returning
(image, instruction)) and is hidden when the context has none.
"""

from __future__ import annotations

import logging
import os
import secrets
import tempfile
import time
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd
from PIL import Image

from hub.engine import EditRequest, GenerationRequest
from hub.errors import EngineError, HubInputError
from hub.families import get_family
from hub.images import open_upload
from hub.ui.common import gpu_event_options, gpu_function
from hub.ui.context import HubContext
from leaderboards.arena import UNDO_WINDOW, Arena, ArenaLimits, SessionHasher, load_salt
from leaderboards.arena_boards import NO_TIER, PERSONAL_COLUMNS, arena_categories, category_board
from leaderboards.arena_votes import EXPORT_FORMATS, export_votes
from leaderboards.boards import sampling_table
from leaderboards.schema import VOTE_OUTCOMES

log = logging.getLogger(__name__)

VOTE_BUTTONS = (("A is better", "model_a"), ("B is better", "model_b"), ("Tie", "tie"), ("Both bad", "tie (bothbad)"))
KEYS = {"model_a": "1", "model_b": "2", "tie": "3", "tie (bothbad)": "4"}
ALL = "all"
IMAGE_HEIGHT = 512
CATEGORY_REFRESH_S = 60.0
SECOND_VOTE_NOTE = " (A second vote on this battle: it counts on your personal board only.)"
CATEGORY_COLUMNS = ["rank", "checkpoint", "name", "rating", "interval", "battles", "provisional"]


def _dom_id(outcome: str) -> str:
    return outcome.replace("tie (bothbad)", "bothbad")


# Installed once per page: nearest-neighbour enlargement of the battle images, click for full screen,
# and the vote keys. A key votes only when its button is visible and enabled and both images are
# loaded, and never while the focus is in a text field (prompts are typed with digits too).
PAGE_JS = """
() => {
  if (window.__sakugaArena) return;
  window.__sakugaArena = true;
  const style = document.createElement('style');
  style.textContent = `
    .arena-image img {
      image-rendering: pixelated !important; object-fit: contain !important;
      width: 100% !important; height: 100% !important; max-width: none !important; max-height: none !important;
      cursor: zoom-in;
    }
    .arena-image img:fullscreen { background: #111; cursor: zoom-out; }
  `;
  document.head.appendChild(style);
  const KEYS = {'1': 'model_a', '2': 'model_b', '3': 'tie', '4': 'bothbad'};
  const visible = (el) => !!el && el.getClientRects().length > 0;
  const loaded = (id) => {
    const img = document.querySelector('#' + id + ' img');
    return visible(img) && img.complete && img.naturalWidth > 0;
  };
  document.addEventListener('keydown', (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey || event.repeat) return;
    const target = event.target;
    if (target && (target.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(target.tagName))) return;
    const outcome = KEYS[event.key];
    if (!outcome) return;
    for (const prefix of ['arena', 'edit-arena']) {
      const button = document.getElementById(prefix + '-vote-' + outcome);
      if (!visible(button) || button.disabled) continue;
      if (!loaded(prefix + '-image-a') || !loaded(prefix + '-image-b')) continue;
      event.preventDefault();
      button.click();
      return;
    }
  });
  document.addEventListener('click', (event) => {
    const img = event.target.closest ? event.target.closest('.arena-image img') : null;
    if (!img) return;
    if (document.fullscreenElement) document.exitFullscreen();
    else if (img.requestFullscreen) img.requestFullscreen();
  });
}
"""


def client_ip(request: gr.Request | None) -> str | None:
    """The client's IP: the first X-Forwarded-For hop behind a proxy (Spaces), else the socket peer."""
    if request is None:
        return None
    headers = getattr(request, "headers", None) or {}
    forwarded = headers.get("x-forwarded-for", "") if hasattr(headers, "get") else ""
    if forwarded:
        return forwarded.split(",")[0].strip() or None
    client = getattr(request, "client", None)
    return getattr(client, "host", None)


def session_id(request: gr.Request | None) -> str | None:
    return getattr(request, "session_hash", None) if request is not None else None


def _load(path: Any) -> Image.Image:
    with Image.open(path) as image:
        image.load()
        image.info = {}
        return image


def arena_candidates(ctx: HubContext) -> list[str]:
    """Checkpoints that may appear in battles: the configured list, or every available text2img one."""
    available = ctx.engine.checkpoint_ids(available_only=True, task="text2img")
    wanted = list(getattr(ctx.config, "arena_checkpoints", []) or [])
    return [c for c in wanted if c in available] if wanted else available


EDIT_TASKS = ("instruct", "img2img")  # whole-image edits from an instruction (inpainting needs a mask)


def edit_arena_candidates(ctx: HubContext) -> list[str]:
    """Checkpoints that may appear in edit battles: the configured list, or every available one that
    edits a whole image from an instruction (instruction-edit families, else image-to-image)."""
    available = [
        cid
        for cid in ctx.engine.checkpoint_ids(available_only=True)
        if any(get_family(ctx.engine.checkpoint_spec(cid).family).supports(t) for t in EDIT_TASKS)
    ]
    wanted = list(getattr(ctx.config, "edit_arena_checkpoints", []) or [])
    return [c for c in wanted if c in available] if wanted else available


def make_arena(ctx: HubContext) -> Arena:
    """The process's Arena for this context (kept on the context so tabs and tests share it)."""
    existing = getattr(ctx, "_arena", None)
    if existing is not None:
        return existing
    # One common size for every battle: different sizes would tell the models apart.
    specs = [ctx.engine.checkpoint_spec(c) for c in ctx.engine.checkpoint_ids(available_only=False, task="text2img")]
    width = min((s.defaults.width for s in specs), default=None)
    height = min((s.defaults.height for s in specs), default=None)

    def generate(checkpoint_id: str, prompt: str, seed: int) -> tuple[Any, Any]:
        images = ctx.engine.generate(
            GenerationRequest(prompt=prompt, checkpoint=checkpoint_id, seed=seed, width=width, height=height)
        )
        return images[0].image, None  # no recipe: arena images carry pixels only

    def edit(checkpoint_id: str, image: Image.Image, instruction: str, seed: int) -> tuple[Any, Any]:
        # Both sides get the same input, so their outputs have the same size (size cannot tell them apart).
        images = ctx.engine.edit(EditRequest(image=image, prompt=instruction, checkpoint=checkpoint_id, seed=seed))
        return images[0].image, None

    arena = Arena(
        ctx.db,
        ctx.data_dir / "arena",
        SessionHasher(load_salt(ctx.data_dir)),
        candidates=lambda: arena_candidates(ctx),
        generate=generate,
        edit_candidates=lambda: edit_arena_candidates(ctx),
        edit=edit,
        limits=ArenaLimits.from_config(ctx.config.limits),
        # The content filter, once the context has one: `(image) -> reason | None`.
        is_withheld=getattr(ctx, "is_withheld", None),
    )
    ctx._arena = arena  # type: ignore[attr-defined]
    return arena


def vote_panel(prefix: str) -> tuple[Any, ...]:
    """Images A and B side by side, the four vote buttons (enabled once a battle is served), the
    thank-you line, the two names revealed after the vote, and the undo button: the same panel for
    both arenas. `prefix` names the elements for the page script (keys, enlargement)."""
    with gr.Row(equal_height=True):
        images = [
            gr.Image(
                label=side, type="filepath", format="png", interactive=False, height=IMAGE_HEIGHT,
                buttons=["fullscreen"], elem_id=f"{prefix}-image-{side.lower()}", elem_classes=["arena-image"],
                scale=1,
            )
            for side in ("A", "B")
        ]
    with gr.Row():
        buttons = [
            gr.Button(f"{text}  [{KEYS[outcome]}]", interactive=False, elem_id=f"{prefix}-vote-{_dom_id(outcome)}")
            for text, outcome in VOTE_BUTTONS
        ]
    result = gr.Markdown(elem_id=f"{prefix}-result")
    with gr.Row():
        name_a = gr.Textbox(label="Model A", info="revealed after the vote", interactive=False, elem_id=f"{prefix}-name-a")
        name_b = gr.Textbox(label="Model B", info="revealed after the vote", interactive=False, elem_id=f"{prefix}-name-b")
    undo = gr.Button(
        f"Undo my vote (within {UNDO_WINDOW.seconds} s)", visible=False, size="sm", variant="secondary",
        elem_id=f"{prefix}-undo",
    )
    return images[0], images[1], buttons, result, name_a, name_b, undo


def _write_export(directory: Path, fmt: str, db: Any) -> str:
    """Export to a fresh file, then move it into place: concurrent downloads each get a whole file."""
    fmt = str(fmt or "").strip().lower()
    if fmt not in EXPORT_FORMATS:
        raise HubInputError(f"Unknown format {fmt[:20]!r}: choose csv or parquet.")
    partial = directory / f".arena_votes-{secrets.token_hex(8)}.{fmt}"
    export_votes(db, partial, fmt)
    final = directory / f"arena_votes.{fmt}"
    os.replace(partial, final)
    return str(final)


def build_tab(ctx: HubContext) -> None:
    arena = make_arena(ctx)
    limits = ctx.config.limits
    demo_portrait = getattr(ctx, "demo_portrait", None)
    export_dir = Path(tempfile.mkdtemp(prefix="hub-arena-votes-"))  # served: outside the data dir

    @gpu_function
    def battle(prompt: str, request: gr.Request) -> tuple[str, Image.Image, Image.Image]:
        try:
            served = arena.create_battle(prompt, session_id(request), client_ip(request))
        except (HubInputError, EngineError) as err:
            raise gr.Error(str(err), print_exception=False) from None
        # Returned as pixels: Gradio stores them under content-hash names (the data dir is not served).
        return served.battle_id, _load(served.image_a), _load(served.image_b)

    @gpu_function
    def edit_battle(image: str | None, instruction: str, request: gr.Request) -> tuple[str, Image.Image, Image.Image]:
        try:
            if not image:
                raise HubInputError("Upload an image to edit first.")
            # Our own reader checks size and format before decoding a pixel.
            source = open_upload(image, max_bytes=limits.max_upload_bytes, max_pixels=limits.max_upload_pixels)
            served = arena.create_edit_battle(source, instruction, session_id(request), client_ip(request))
        except (HubInputError, EngineError) as err:
            raise gr.Error(str(err), print_exception=False) from None
        return served.battle_id, _load(served.image_a), _load(served.image_b)

    def edit_battle_from_page(image: str | None, instruction: str, request: gr.Request) -> tuple[str, Image.Image, Image.Image]:
        # Its own function (edit_battle holds the GPU): an event reusing `edit_battle` would take the
        # "edit_battle" API name first.
        return edit_battle(image, instruction, request)

    def vote(battle_id: str, outcome: str, request: gr.Request) -> tuple[str, str]:
        try:
            result = arena.record_vote(battle_id, outcome, session_id(request), client_ip(request))
        except HubInputError as err:
            raise gr.Error(str(err), print_exception=False) from None
        return result.name_a, result.name_b

    def vote_from_button(battle_id: str, outcome: str, request: gr.Request) -> tuple[Any, ...]:
        if not battle_id:
            raise gr.Error("Start a battle first.")
        try:
            result = arena.record_vote(battle_id, outcome, session_id(request), client_ip(request))
        except HubInputError as err:
            raise gr.Error(str(err), print_exception=False) from None
        label = dict((o, t) for t, o in VOTE_BUTTONS)[outcome]
        message = f"Thanks! You voted **{label}**. A was **{result.name_a}**, B was **{result.name_b}**."
        if not result.counted:
            message += SECOND_VOTE_NOTE
        disabled = [gr.update(interactive=False) for _ in VOTE_BUTTONS]
        return (message, result.name_a, result.name_b, *disabled)

    def undo_vote_api(battle_id: str, request: gr.Request) -> str:
        """Undo this session's last vote (within 30 s, once per battle). Returns a short message."""
        try:
            arena.undo_vote(battle_id, session_id(request), client_ip(request))
        except HubInputError as err:
            raise gr.Error(str(err), print_exception=False) from None
        return (
            "Vote undone. You may vote on this battle again; as the names were shown, that vote counts on your "
            "personal board only. Start a new battle for a blind vote."
        )

    def undo_from_button(battle_id: str, request: gr.Request) -> tuple[Any, ...]:
        message = undo_vote_api(battle_id, request)
        enabled = [gr.update(interactive=True) for _ in VOTE_BUTTONS]
        return (message, "", "", *enabled, gr.update(visible=False), gr.Timer(active=False))

    def personal_board(request: gr.Request) -> tuple[str, pd.DataFrame]:
        try:
            table = arena.personal_board(session_id(request))
        except HubInputError as err:
            return str(err), pd.DataFrame(columns=PERSONAL_COLUMNS)
        return (
            f"Your board from your {table.attrs['votes']} votes (only you see it), beside the community's.",
            table,
        )

    category_cache: dict[str, Any] = {"at": -1e9, "choices": ([ALL], [ALL])}

    def category_options() -> tuple[Any, Any]:
        # Every page load asks; the categories change slowly and counting them scans the votes.
        if time.monotonic() - category_cache["at"] > CATEGORY_REFRESH_S:
            categories = arena_categories(ctx.db)
            languages = [ALL, *sorted(set(categories["language"]))] if not categories.empty else [ALL]
            tiers = [ALL, *sorted(set(categories["tier"]))] if not categories.empty else [ALL]
            category_cache.update(at=time.monotonic(), choices=(languages, tiers))
        languages, tiers = category_cache["choices"]
        return gr.update(choices=languages), gr.update(choices=tiers)

    def category_view(language: str | None, tier: str | None) -> tuple[pd.DataFrame, str]:
        language = (language or ALL).strip()
        tier = (tier or ALL).strip()
        if len(language) > 16 or len(tier) > 32:
            raise gr.Error("Unknown category.", print_exception=False)
        board = category_board(
            ctx.db, language=None if language == ALL else language, tier=None if tier == ALL else tier
        )
        label = f"language **{language}**, tier **{tier}**"
        if board.empty:
            return pd.DataFrame(columns=CATEGORY_COLUMNS), f"No counted votes for {label} yet."
        return board[CATEGORY_COLUMNS], f"Arena board for {label} (Bradley–Terry, 95% intervals)."

    def rates() -> tuple[Any, Any]:
        pairs = arena.pair_rates()
        if not pairs.empty:
            pairs = pairs.assign(
                probability=[f"{p:.1%}" for p in pairs["probability"]],
                weight=pairs["weight"].round(1),
                width_a=pairs["width_a"].round(),
                width_b=pairs["width_b"].round(),
            )
        return sampling_table(ctx.db), pairs

    def suite_prompt() -> str:
        try:
            return arena.random_suite_prompt()
        except HubInputError as err:
            raise gr.Error(str(err), print_exception=False) from None

    def export(fmt: str) -> str:
        try:
            return _write_export(export_dir, fmt, ctx.db)
        except HubInputError as err:
            raise gr.Error(str(err), print_exception=False) from None

    def portrait() -> tuple[Image.Image, str]:
        if demo_portrait is None:
            raise gr.Error("No demo portraits here.")
        return demo_portrait()

    with gr.Tab("Blind arena"):
        gr.Markdown(
            "### Blind arena\nTwo anonymous checkpoints draw your prompt. Vote for the better image; "
            "the names appear after your vote. One vote per battle; you can undo it for "
            f"{UNDO_WINDOW.seconds} seconds. Keys: **1** = A, **2** = B, **3** = tie, **4** = both bad. "
            "Click an image to see it full screen."
        )
        with gr.Row():
            prompt = gr.Textbox(
                label="Prompt", placeholder="1girl, silver hair, school uniform, cherry blossoms", scale=4, elem_id="arena-prompt"
            )
            with gr.Column(scale=1, min_width=160):
                start = gr.Button("New battle", variant="primary", elem_id="arena-new-battle")
                random_prompt = gr.Button("Random suite prompt", size="sm")
        battle_id = gr.Textbox(visible=False, label="battle id")
        outcome_box = gr.Textbox(visible=False, label="outcome")
        image_a, image_b, buttons, result, name_a, name_b, undo = vote_panel("arena")
        undo_timer = gr.Timer(UNDO_WINDOW.seconds, active=False)
        with gr.Accordion("Your personal leaderboard", open=False):
            gr.Markdown(
                "After 20 votes, a Bradley–Terry fit of your own votes beside the community's. Only you see it "
                "(it belongs to this browser session)."
            )
            show_personal = gr.Button("Show my leaderboard", size="sm")
            personal_note = gr.Markdown()
            personal_table = gr.Dataframe(interactive=False, wrap=True)
        with gr.Accordion("Boards by category (prompt language, character tier)", open=False):
            with gr.Row():
                language_choice = gr.Dropdown([ALL], value=ALL, label="Language", allow_custom_value=True)
                tier_choice = gr.Dropdown([ALL], value=ALL, label=f"Tier ({NO_TIER} = no tier)", allow_custom_value=True)
                show_category = gr.Button("Show", size="sm")
            category_note = gr.Markdown()
            category_table = gr.Dataframe(interactive=False, wrap=True)
        with gr.Accordion("Sampling rates (how often each checkpoint and pair is served)", open=False):
            gr.Markdown(
                "Pairs are drawn with probability 1/2 · 1/(number of pairs) + 1/2 · weight / total weight, "
                "weight = (interval width of A + of B) / √(1 + votes of the pair): uncertain models and pairs "
                "with few votes come up more often, and every pair keeps at least half the uniform rate."
            )
            rates_table = gr.Dataframe(interactive=False, label="Per checkpoint")
            pair_table = gr.Dataframe(interactive=False, label="Per pair (now)")
            refresh_rates = gr.Button("Refresh", size="sm")
        with gr.Accordion("Download the votes", open=False):
            gr.Markdown(
                "Every counted vote, anonymised: battle (a hash), model_a, model_b, outcome, prompt, language, "
                "tier, kind, time. No session or IP data; undone votes and repeat votes are left out."
            )
            with gr.Row():
                export_format = gr.Radio(list(EXPORT_FORMATS), value="csv", label="Format")
                export_button = gr.Button("Prepare download", size="sm")
            export_file = gr.File(label="Votes", interactive=False)
        # Hidden trigger behind the public /vote endpoint (the buttons use their own private events).
        vote_trigger = gr.Button(visible=False)

    with gr.Tab("Edit arena"):
        gr.Markdown(
            "### Edit arena\nTwo anonymous edit-capable checkpoints edit the same image with your instruction "
            "(same seed). Vote for the better edit; the names appear after your vote. Edit votes are rated on "
            "their own board (Leaderboard → Edit arena). Keys: **1** = A, **2** = B, **3** = tie, **4** = both bad."
        )
        with gr.Row():
            with gr.Column(scale=1):
                edit_input = gr.Image(
                    label="Input image", type="filepath", format="png", sources=["upload", "clipboard"], height=256
                )
                portrait_button = gr.Button("Random demo portrait", size="sm", visible=demo_portrait is not None)
            with gr.Column(scale=2):
                instruction = gr.Textbox(
                    label="Instruction", placeholder="make her hair red", lines=2, max_length=limits.max_prompt_chars
                )
                edit_start = gr.Button("New edit battle", variant="primary")
        edit_battle_id = gr.Textbox(visible=False, label="edit battle id")
        edit_a, edit_b, edit_buttons, edit_result, edit_name_a, edit_name_b, edit_undo = vote_panel("edit-arena")
        edit_undo_timer = gr.Timer(UNDO_WINDOW.seconds, active=False)
        # The API endpoint takes a plain file (like /edit); hidden from the page.
        with gr.Row(visible=False):
            api_image = gr.File(type="filepath", label="image")
            api_edit_trigger = gr.Button("edit battle (API)")

    private = {"api_visibility": "private", "concurrency_limit": None}

    def clear_panel() -> tuple[Any, ...]:
        # Until the new pair arrives: no vote buttons, no undo, no old result.
        return ("", "", "", *[gr.update(interactive=False) for _ in VOTE_BUTTONS], gr.update(visible=False), gr.Timer(active=False))

    def ready_panel() -> tuple[Any, ...]:
        return tuple(gr.update(interactive=True) for _ in VOTE_BUTTONS)

    def show_undo(message: str) -> tuple[Any, Any]:
        if SECOND_VOTE_NOTE in (message or ""):  # a battle's vote is undone at most once
            return gr.update(visible=False), gr.Timer(active=False)
        return gr.update(visible=True, interactive=True), gr.Timer(active=True)

    def hide_undo() -> tuple[Any, Any]:
        return gr.update(visible=False), gr.Timer(active=False)

    def wire_panel(bid: Any, buttons: list[Any], result: Any, name_a: Any, name_b: Any, undo: Any, timer: Any) -> None:
        """Vote buttons, undo and its timer for one panel (the events are private: the API has /vote)."""

        def button_handler(outcome: str):  # noqa: ANN202
            def handler(battle: str, request: gr.Request) -> tuple[Any, ...]:
                return vote_from_button(battle, outcome, request)

            return handler

        for button, (_, outcome) in zip(buttons, VOTE_BUTTONS, strict=True):
            button.click(
                button_handler(outcome), inputs=[bid], outputs=[result, name_a, name_b, *buttons], **private
            ).success(show_undo, inputs=[result], outputs=[undo, timer], **private)
        undo.click(undo_from_button, inputs=[bid], outputs=[result, name_a, name_b, *buttons, undo, timer], **private)
        timer.tick(hide_undo, outputs=[undo, timer], **private)

    # ---------------------------------------------------------------- blind arena
    panel_outputs = [result, name_a, name_b, *buttons, undo, undo_timer]
    start.click(clear_panel, outputs=panel_outputs, api_visibility="private", queue=False).then(
        battle,
        inputs=[prompt],
        outputs=[battle_id, image_a, image_b],
        api_name="battle",
        **gpu_event_options(ctx),
    ).success(ready_panel, outputs=buttons, api_visibility="private", queue=False)
    wire_panel(battle_id, buttons, result, name_a, name_b, undo, undo_timer)
    vote_trigger.click(
        vote,
        inputs=[battle_id, outcome_box],
        outputs=[name_a, name_b],
        api_name="vote",
        api_description=f"Vote on a served battle. outcome: one of {', '.join(VOTE_OUTCOMES)}. Returns (model_a, model_b).",
        concurrency_limit=None,
    )
    gr.api(undo_vote_api, api_name="undo_vote", concurrency_limit=None)
    random_prompt.click(suite_prompt, outputs=[prompt], **private)
    show_personal.click(
        personal_board, outputs=[personal_note, personal_table], api_name="personal_board",
        api_description="Your own arena board (after 20 votes in this session) beside the community's.",
        concurrency_limit=None,
    )
    show_category.click(
        category_view, inputs=[language_choice, tier_choice], outputs=[category_table, category_note],
        api_name="category_board", api_description="The arena board of one category: language and tier ('all' for any).",
        concurrency_limit=4,
    )
    refresh_rates.click(rates, outputs=[rates_table, pair_table], **private)
    export_button.click(
        export, inputs=[export_format], outputs=[export_file], api_name="export_votes",
        api_description="The anonymised votes as a file: format csv or parquet.", concurrency_limit=2,
    )

    # ---------------------------------------------------------------- edit arena
    edit_panel_outputs = [edit_result, edit_name_a, edit_name_b, *edit_buttons, edit_undo, edit_undo_timer]
    edit_start.click(clear_panel, outputs=edit_panel_outputs, api_visibility="private", queue=False).then(
        edit_battle_from_page, inputs=[edit_input, instruction], outputs=[edit_battle_id, edit_a, edit_b],
        api_visibility="private", **gpu_event_options(ctx),
    ).success(ready_panel, outputs=edit_buttons, api_visibility="private", queue=False)
    api_edit_trigger.click(
        edit_battle,
        inputs=[api_image, instruction],
        outputs=[edit_battle_id, edit_a, edit_b],
        api_name="edit_battle",
        api_description="Blind edit battle: two anonymous edit-capable checkpoints edit `image` (a file) with "
        "`instruction`. Returns (battle_id, image_a, image_b); vote with /vote.",
        **gpu_event_options(ctx),
    )
    wire_panel(edit_battle_id, edit_buttons, edit_result, edit_name_a, edit_name_b, edit_undo, edit_undo_timer)
    portrait_button.click(portrait, outputs=[edit_input, instruction], **private)

    root = gr.context.Context.root_block
    if root is not None:
        root.load(None, js=PAGE_JS)
        root.load(rates, outputs=[rates_table, pair_table], **private)
        root.load(category_options, outputs=[language_choice, tier_choice], **private)
