"""Arena tab: blind battles between two checkpoints, one vote each; identities shown after the vote.

API endpoints (gradio_client):
- `/battle(prompt) -> (battle_id, image_a, image_b)`: no model name anywhere (ids are random tokens, image
  files have random names and carry no metadata at all: even an anonymous recipe's steps or size can
  fingerprint a model).
- `/vote(battle_id, outcome) -> (model_a, model_b)`: outcome is one of model_a | model_b | tie |
  tie (bothbad); refused with a clear message for a second vote, an unknown or expired battle, a battle
  served to another session, an unknown outcome, or too many votes.

- `/edit_battle(image, instruction) -> (battle_id, image_a, image_b)`: the edit arena. `image` is a file;
  two anonymous edit-capable checkpoints edit it with the same instruction and seed. Voting goes through
  `/vote`; edit votes are rated on their own board (Leaderboard tab, "Edit arena").

Sessions are Gradio session hashes plus the client IP, stored only as salted hashes.
"""

from __future__ import annotations

import logging
import random
from typing import Any

import gradio as gr
from PIL import Image

from hub.engine import EditRequest, GenerationRequest
from hub.errors import EngineError, HubInputError
from hub.families import get_family
from hub.images import open_upload
from hub.ui.common import gpu_event_options, gpu_function
from hub.ui.context import HubContext
from leaderboards.arena import Arena, ArenaLimits, SessionHasher, load_salt
from leaderboards.boards import sampling_table
from leaderboards.schema import VOTE_OUTCOMES

log = logging.getLogger(__name__)

VOTE_BUTTONS = (("A is better", "model_a"), ("B is better", "model_b"), ("Tie", "tie"), ("Both bad", "tie (bothbad)"))


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


def random_demo_portrait(seed: int | None = None) -> tuple[Image.Image, str]:
    """A demo-world portrait and an English edit instruction the demo edit model knows."""
    from demoworld import catalog
    from demoworld.renderer import character_attributes, render

    rng = random.Random(seed)
    character = rng.choice(catalog.trained_characters())
    kind, value = rng.choice(catalog.edit_kinds())
    image = render(character_attributes(character), seed=rng.randrange(2**31), size=64)
    return image, catalog.edit_instruction(kind, value, "en")


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
    )
    ctx._arena = arena  # type: ignore[attr-defined]
    return arena


def vote_panel() -> tuple[Any, ...]:
    """Images A and B, the four vote buttons (enabled once a battle is served), the thank-you line
    and the two names revealed after the vote: the same panel for both arenas."""
    with gr.Row():
        image_a = gr.Image(label="A", type="filepath", format="png", interactive=False, buttons=["fullscreen"])
        image_b = gr.Image(label="B", type="filepath", format="png", interactive=False, buttons=["fullscreen"])
    with gr.Row():
        buttons = [gr.Button(text, interactive=False) for text, _ in VOTE_BUTTONS]
    result = gr.Markdown()
    with gr.Row():
        name_a = gr.Textbox(label="Model A", info="revealed after the vote", interactive=False)
        name_b = gr.Textbox(label="Model B", info="revealed after the vote", interactive=False)
    return image_a, image_b, buttons, result, name_a, name_b


def build_tab(ctx: HubContext) -> None:
    arena = make_arena(ctx)
    limits = ctx.config.limits

    @gpu_function
    def battle(prompt: str, request: gr.Request) -> tuple[str, Image.Image, Image.Image]:
        try:
            served = arena.create_battle(prompt, session_id(request), client_ip(request))
        except HubInputError as err:
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
        name_a, name_b = vote(battle_id, outcome, request)
        label = dict((o, t) for t, o in VOTE_BUTTONS)[outcome]
        message = f"Thanks! You voted **{label}**. A was **{name_a}**, B was **{name_b}**."
        disabled = [gr.update(interactive=False) for _ in VOTE_BUTTONS]
        return (message, name_a, name_b, *disabled)

    def rates() -> Any:
        return sampling_table(ctx.db)

    def demo_portrait() -> tuple[Image.Image, str]:
        return random_demo_portrait()

    with gr.Tab("Blind arena"):
        gr.Markdown(
            "### Blind arena\nTwo anonymous checkpoints draw your prompt. Vote for the better image; "
            "the names appear after your vote. One vote per battle."
        )
        with gr.Row():
            prompt = gr.Textbox(label="Prompt", placeholder="1girl, silver hair, school uniform, cherry blossoms", scale=4)
            start = gr.Button("New battle", variant="primary", scale=1)
        battle_id = gr.Textbox(visible=False, label="battle id")
        outcome_box = gr.Textbox(visible=False, label="outcome")
        image_a, image_b, buttons, result, name_a, name_b = vote_panel()
        with gr.Accordion("Sampling rates (how often each checkpoint is served)", open=False):
            rates_table = gr.Dataframe(interactive=False)
            refresh_rates = gr.Button("Refresh", size="sm")
        # Hidden trigger behind the public /vote endpoint (the buttons use their own private events).
        vote_trigger = gr.Button(visible=False)

    with gr.Tab("Edit arena"):
        gr.Markdown(
            "### Edit arena\nTwo anonymous edit-capable checkpoints edit the same image with your instruction "
            "(same seed). Vote for the better edit; the names appear after your vote. Edit votes are rated on "
            "their own board (Leaderboard → Edit arena)."
        )
        with gr.Row():
            with gr.Column(scale=1):
                edit_input = gr.Image(
                    label="Input image", type="filepath", format="png", sources=["upload", "clipboard"], height=256
                )
                portrait = gr.Button("Random demo portrait", size="sm")
            with gr.Column(scale=2):
                instruction = gr.Textbox(
                    label="Instruction", placeholder="make her hair red", lines=2, max_length=limits.max_prompt_chars
                )
                edit_start = gr.Button("New edit battle", variant="primary")
        edit_battle_id = gr.Textbox(visible=False, label="edit battle id")
        edit_a, edit_b, edit_buttons, edit_result, edit_name_a, edit_name_b = vote_panel()
        # The API endpoint takes a plain file (like /edit); hidden from the page.
        with gr.Row(visible=False):
            api_image = gr.File(type="filepath", label="image")
            api_edit_trigger = gr.Button("edit battle (API)")

    reset = (lambda: ("", "", "", *[gr.update(interactive=True) for _ in VOTE_BUTTONS]))
    start.click(
        battle,
        inputs=[prompt],
        outputs=[battle_id, image_a, image_b],
        api_name="battle",
        **gpu_event_options(ctx),
    ).success(reset, outputs=[result, name_a, name_b, *buttons], api_visibility="private", queue=False)
    def button_handler(outcome: str):  # noqa: ANN202
        def handler(bid: str, request: gr.Request) -> tuple[Any, ...]:
            return vote_from_button(bid, outcome, request)

        return handler

    for button, (_, outcome) in zip(buttons, VOTE_BUTTONS, strict=True):
        button.click(
            button_handler(outcome),
            inputs=[battle_id],
            outputs=[result, name_a, name_b, *buttons],
            api_visibility="private",
            concurrency_limit=None,
        )
    vote_trigger.click(
        vote,
        inputs=[battle_id, outcome_box],
        outputs=[name_a, name_b],
        api_name="vote",
        api_description=f"Vote on a served battle. outcome: one of {', '.join(VOTE_OUTCOMES)}. Returns (model_a, model_b).",
        concurrency_limit=None,
    )
    refresh_rates.click(rates, outputs=[rates_table], api_visibility="private", concurrency_limit=None)

    # ---------------------------------------------------------------- edit arena
    edit_outputs = [edit_battle_id, edit_a, edit_b]
    edit_reset_outputs = [edit_result, edit_name_a, edit_name_b, *edit_buttons]
    edit_start.click(
        edit_battle_from_page, inputs=[edit_input, instruction], outputs=edit_outputs, api_visibility="private",
        **gpu_event_options(ctx),
    ).success(reset, outputs=edit_reset_outputs, api_visibility="private", queue=False)
    api_edit_trigger.click(
        edit_battle,
        inputs=[api_image, instruction],
        outputs=edit_outputs,
        api_name="edit_battle",
        api_description="Blind edit battle: two anonymous edit-capable checkpoints edit `image` (a file) with "
        "`instruction`. Returns (battle_id, image_a, image_b); vote with /vote.",
        **gpu_event_options(ctx),
    )
    portrait.click(demo_portrait, outputs=[edit_input, instruction], api_visibility="private", concurrency_limit=None)

    def edit_button_handler(outcome: str):  # noqa: ANN202
        def edit_vote_handler(bid: str, request: gr.Request) -> tuple[Any, ...]:
            return vote_from_button(bid, outcome, request)

        return edit_vote_handler

    for button, (_, outcome) in zip(edit_buttons, VOTE_BUTTONS, strict=True):
        button.click(
            edit_button_handler(outcome),
            inputs=[edit_battle_id],
            outputs=edit_reset_outputs,
            api_visibility="private",
            concurrency_limit=None,
        )

    root = gr.context.Context.root_block
    if root is not None:
        root.load(rates, outputs=[rates_table], api_visibility="private", concurrency_limit=None)
