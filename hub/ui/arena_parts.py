"""The arena's parts that do not depend on one page: the page script (enlargement, vote keys), the
which checkpoints battle, the process's `Arena` (with the content filter's
`is_withheld` hook), the vote panel, and the vote export. `arena_tab.py` builds the page from them."""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path
from collections.abc import Callable
from typing import Any

import gradio as gr
from PIL import Image

from hub.engine import EditRequest, GenerationRequest
from hub.errors import HubInputError
from hub.families import get_family
from hub.ui.context import HubContext
from hub.ui.i18n import t
from leaderboards.arena import Arena, ArenaLimits, SessionHasher, load_salt
from leaderboards.arena_votes import EXPORT_FORMATS, export_votes

log = logging.getLogger(__name__)

# (translation key of the button's text, outcome)
VOTE_BUTTONS = (("ui.arena.vote.model_a", "model_a"), ("ui.arena.vote.model_b", "model_b"), ("ui.arena.vote.tie", "tie"),
                ("ui.arena.vote.bothbad", "tie (bothbad)"))
KEYS = {"model_a": "1", "model_b": "2", "tie": "3", "tie (bothbad)": "4"}
ALL = "all"
IMAGE_HEIGHT = 512
CATEGORY_REFRESH_S = 60.0
# Marks a second vote on a battle in the result line (the page hides the undo button then).
SECOND_VOTE_MARK = "\u2060"
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
        if any(get_family(ctx.engine.checkpoint_spec(cid).family).supports(task) for task in EDIT_TASKS)
    ]
    wanted = list(getattr(ctx.config, "edit_arena_checkpoints", []) or [])
    return [c for c in wanted if c in available] if wanted else available


def engine_generator(engine: Any) -> Callable[[str, str, int], tuple[Any, Any]]:
    """The arena's `generate(checkpoint_id, prompt, seed)` on an engine: every battle at one common size
    (the smallest default of the text-to-image checkpoints), since different sizes would tell the models apart."""
    specs = [engine.checkpoint_spec(c) for c in engine.checkpoint_ids(available_only=False, task="text2img")]
    width = min((s.defaults.width for s in specs), default=None)
    height = min((s.defaults.height for s in specs), default=None)

    def generate(checkpoint_id: str, prompt: str, seed: int) -> tuple[Any, Any]:
        images = engine.generate(GenerationRequest(prompt=prompt, checkpoint=checkpoint_id, seed=seed, width=width, height=height))
        return images[0].image, None  # no recipe: arena images carry pixels only

    return generate


def engine_editor(engine: Any) -> Callable[[str, Image.Image, str, int], tuple[Any, Any]]:
    """The edit arena's `edit(checkpoint_id, image, instruction, seed)` on an engine."""

    def edit(checkpoint_id: str, image: Image.Image, instruction: str, seed: int) -> tuple[Any, Any]:
        # Both sides get the same input, so their outputs have the same size (size cannot tell them apart).
        images = engine.edit(EditRequest(image=image, prompt=instruction, checkpoint=checkpoint_id, seed=seed))
        return images[0].image, None

    return edit


def make_arena(ctx: HubContext) -> Arena:
    """The process's Arena for this context (kept on the context so tabs and tests share it)."""
    existing = getattr(ctx, "_arena", None)
    if existing is not None:
        return existing
    generate, edit = engine_generator(ctx.engine), engine_editor(ctx.engine)
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
            gr.Button(t(key) + f"  [{KEYS[outcome]}]", interactive=False, elem_id=f"{prefix}-vote-{_dom_id(outcome)}")
            for key, outcome in VOTE_BUTTONS
        ]
    result = gr.Markdown(elem_id=f"{prefix}-result")
    with gr.Row():
        name_a = gr.Textbox(label=t("ui.arena.model_a"), info=t("ui.arena.revealed"), interactive=False, elem_id=f"{prefix}-name-a")
        name_b = gr.Textbox(label=t("ui.arena.model_b"), info=t("ui.arena.revealed"), interactive=False, elem_id=f"{prefix}-name-b")
    undo = gr.Button(t("ui.arena.undo"), visible=False, size="sm", variant="secondary", elem_id=f"{prefix}-undo")
    return images[0], images[1], buttons, result, name_a, name_b, undo


def _write_export(directory: Path, fmt: str, db: Any) -> str:
    """Export to a fresh file, then move it into place: concurrent downloads each get a whole file."""
    fmt = str(fmt or "").strip().lower()
    if fmt not in EXPORT_FORMATS:
        raise HubInputError(f"Unknown format {fmt[:20]!r}: choose csv or parquet.")  # same text as leaderboards
    partial = directory / f".arena_votes-{secrets.token_hex(8)}.{fmt}"
    export_votes(db, partial, fmt)
    final = directory / f"arena_votes.{fmt}"
    os.replace(partial, final)
    return str(final)
