"""What the Generate tab offers around the prompt box: the token count, recipes brought in from images,
and each checkpoint's examples."""

from __future__ import annotations

from typing import Any

import gradio as gr
from PIL import Image

from hub.errors import HubInputError
from hub.families import get_family
from hub.images import open_upload
from hub.prompt_tokens import count_tokens
from hub.recipe_import import NoRecipe, map_recipe, read_image_recipe
from hub.ui.common import file_path, user_errors
from hub.ui.context import HubContext
from hub.ui.i18n import page_language, tr


def token_note(ctx: HubContext, checkpoint_id: str | None, prompt: str | None, lang: str) -> str:
    """"12 tokens (1 chunk of 75)" for CLIP families; "600 of 512 tokens used; the rest is ignored" past
    an LLM encoder's limit; "" when there is nothing to count or no tokenizer here."""
    if not prompt or not prompt.strip() or len(prompt) > ctx.config.limits.max_prompt_chars:
        return ""
    try:
        spec = ctx.engine.checkpoint_spec(checkpoint_id or ctx.config.default_checkpoint)
    except KeyError:
        return ""
    count = count_tokens(prompt, spec, ctx.config)
    if count is None:
        return ""
    if count.limit is None:
        return tr(lang, "msg.tokens.chunks", tokens=count.tokens, chunks=count.chunks)
    if count.ignored:
        return tr(lang, "msg.tokens.cut", used=count.limit, tokens=count.tokens)
    return tr(lang, "msg.tokens.within", tokens=count.tokens, limit=count.limit)


def make_read_recipe(ctx: HubContext):
    limits = ctx.config.limits

    @user_errors
    def read_recipe(image: Any, request: gr.Request = None) -> dict[str, Any]:  # type: ignore[assignment]
        """The settings of a recipe image (A1111, Forge, ComfyUI, InvokeAI, NovelAI, Fooocus or this hub),
        with the checkpoint and LoRAs mapped to this hub's ids and a list of what could not be mapped."""
        path = file_path(image)
        if not path:
            raise HubInputError("Upload a PNG that carries a recipe.")
        # Checked as every upload is (size, pixels, one frame); read again as the file it is, since the
        # readers look at its format and chunks, which a decoded copy no longer has.
        open_upload(path, max_bytes=limits.max_upload_bytes, max_pixels=limits.max_upload_pixels)
        try:
            with Image.open(path) as picture:
                source, recipe = read_image_recipe(picture)
        except NoRecipe:
            raise HubInputError("No recipe found in this image.") from None
        mapped = map_recipe(source, recipe, ctx.engine)
        if mapped.checkpoint and not get_family(ctx.engine.checkpoint_spec(mapped.checkpoint).family).supports("text2img"):
            mapped.unmapped.append(f"checkpoint {mapped.checkpoint} (it edits images: use the Edit tab)")
            mapped.checkpoint = None
        return mapped.as_dict()

    return read_recipe


def recipe_note(recipe: dict[str, Any], lang: str) -> str:
    note = tr(lang, "msg.recipe.read", source=recipe["source"])
    if recipe["unmapped"]:
        note += " " + tr(lang, "msg.recipe.unmapped", items="; ".join(recipe["unmapped"]))
    return note


def example_rows(ctx: HubContext, checkpoint_id: str | None) -> list[list[Any]]:
    try:
        spec = ctx.engine.checkpoint_spec(checkpoint_id or ctx.config.default_checkpoint)
    except KeyError:
        return []
    return [[example.prompt, example.seed] for example in spec.examples]


__all__ = ["example_rows", "make_read_recipe", "recipe_note", "token_note"]
