"""Edit tab (image-to-image, inpainting with a painted mask, instruction edits with optional reference
images of the character) and `/edit`. `/edit` keeps its positional parameters; `references` (image
files, for checkpoints that take a list) is the last, optional one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr
from PIL import Image, ImageChops

from hub.engine import EditRequest
from hub.families import get_family
from hub.images import open_upload
from hub.ui.common import (
    checkpoint_choices,
    engine_call,
    gpu_event_options,
    gpu_function,
    load_references,
    owner_of,
    stop_button,
    throttled_progress,
    user_errors,
    wire_stop,
)
from hub.ui.context import HubContext
from hub.ui.identity import charge_images
from hub.ui.generate_tab import gallery_items
from hub.ui.i18n import LocalizedError, page_language, t, tr
from hub.validation import MAX_SEED

EDIT_TASKS = ("img2img", "inpaint", "instruct")


@dataclass
class EditTab:
    editor: gr.ImageEditor
    checkpoint: gr.Dropdown
    tasks_note: gr.Markdown


def _edit_checkpoints(ctx: HubContext) -> list[tuple[str, str]]:
    return [
        (label, cid)
        for label, cid in checkpoint_choices(ctx)
        if any(get_family(ctx.engine.checkpoint_spec(cid).family).supports(t) for t in EDIT_TASKS)
    ]


def tasks_note(ctx: HubContext, checkpoint_id: str | None, lang: str = "en") -> str:
    try:
        family = get_family(ctx.engine.checkpoint_spec(checkpoint_id or ctx.config.default_checkpoint).family)
    except KeyError:
        return ""
    offered = [task for task in EDIT_TASKS if family.supports(task)]
    note = tr(lang, "msg.edit.offers", tasks=", ".join(tr(lang, f"msg.edit.task.{task}") for task in offered))
    if family.supports("instruct"):
        note += " " + tr(lang, "msg.edit.instruct_hint")
    allowed = min(family.max_references, ctx.config.limits.max_references) - 1
    if family.supports("instruct") and allowed > 0:
        note += " " + tr(lang, "msg.edit.references_hint", count=allowed)
    return note


def mask_from_layers(layers: list[Any], size: tuple[int, int], limits) -> Image.Image | None:
    """The painted strokes of an ImageEditor value as a white-on-black mask (None if nothing painted)."""
    mask = None
    for layer in layers or []:
        if layer is None:
            continue
        image = open_upload(layer, max_bytes=limits.max_upload_bytes, max_pixels=limits.max_upload_pixels, what="mask layer")
        alpha = image.convert("RGBA").getchannel("A").point(lambda value: 255 if value > 0 else 0)
        if alpha.size != size:
            alpha = alpha.resize(size, Image.Resampling.NEAREST)
        mask = alpha if mask is None else ImageChops.lighter(mask, alpha)
    if mask is None or mask.getextrema()[1] == 0:
        return None
    return mask


def make_edit_fn(ctx: HubContext):
    limits = ctx.config.limits

    def run(image: Image.Image, mask: Image.Image | None, prompt, strength, checkpoint, seed, steps, references,
            http: gr.Request, progress) -> list[tuple[str, str]]:
        ctx.content_filter.check_prompt(prompt)
        lang = page_language(http)
        request = EditRequest(
            image=image,
            prompt=prompt or "",
            mask=mask,
            strength=strength,
            checkpoint=checkpoint or None,
            seed=seed,
            steps=None if steps in (None, 0, "") else steps,
            references=load_references(references, limits),
            owner=owner_of(ctx, http),
        )
        with engine_call(ctx, http, "edit", progress, lang) as cancel:
            images = ctx.engine.edit(request, progress=throttled_progress(progress, tr(lang, "msg.progress.editing")), cancel=cancel)
        return gallery_items(ctx, images, lang, lambda item: tr(lang, "msg.edit.caption", task=item.recipe.task, seed=item.seed))

    @gpu_function
    @user_errors
    def edit_api(
        image: str | None,
        prompt: str | None = None,
        mask: str | None = None,
        strength: float = 0.6,
        checkpoint: str | None = None,
        seed: float = 0,
        steps: float | None = None,
        references: list[Any] | None = None,
        request: gr.Request = None,  # type: ignore[assignment]
        progress: gr.Progress = gr.Progress(),
    ) -> list[tuple[str, str]]:
        if not image:
            raise LocalizedError("err.image_required")
        source = open_upload(image, max_bytes=limits.max_upload_bytes, max_pixels=limits.max_upload_pixels)
        mask_image = None
        if mask:
            mask_image = open_upload(mask, max_bytes=limits.max_upload_bytes, max_pixels=limits.max_upload_pixels, what="mask")
        charge_images(ctx, request, 1)
        return run(source, mask_image, prompt, strength, checkpoint, seed, steps, references, request, progress)

    @gpu_function
    @user_errors
    def edit_ui(editor: dict | None, prompt: str, strength: float, checkpoint: str, seed: float, steps: float,
                references: list[Any] | None, request: gr.Request, progress: gr.Progress = gr.Progress()):
        if not editor or not editor.get("background"):
            raise LocalizedError("err.upload_first")
        source = open_upload(editor["background"], max_bytes=limits.max_upload_bytes, max_pixels=limits.max_upload_pixels)
        mask = mask_from_layers(editor.get("layers") or [], source.size, limits)
        charge_images(ctx, request, 1)
        return run(source, mask, prompt, strength, checkpoint, seed, steps, references, request, progress)

    return edit_api, edit_ui


def build_tab(ctx: HubContext) -> EditTab:
    config = ctx.config
    choices = _edit_checkpoints(ctx)
    default_id = config.default_checkpoint if any(cid == config.default_checkpoint for _, cid in choices) else (choices[0][1] if choices else None)
    edit_api, edit_ui = make_edit_fn(ctx)
    with gr.Row():
        with gr.Column(scale=3):
            editor = gr.ImageEditor(
                label=t("ui.edit.editor"),
                type="filepath",
                format="png",
                sources=["upload", "clipboard"],
                elem_id="edit-editor",
            )
            prompt = gr.Textbox(label=t("ui.edit.prompt"), lines=2, max_length=config.limits.max_prompt_chars, elem_id="edit-prompt")
            with gr.Row():
                checkpoint = gr.Dropdown(choices=choices, value=default_id, label=t("ui.common.checkpoint"), allow_custom_value=True,
                                         elem_id="edit-checkpoint")
                strength = gr.Slider(0.05, 1.0, value=0.6, step=0.05, label=t("ui.edit.strength"))
            note = gr.Markdown(tasks_note(ctx, default_id), elem_id="edit-tasks-note")
            with gr.Accordion(t("ui.edit.references"), open=False):
                gr.Markdown(t("ui.edit.references_help"))
                references = gr.File(file_count="multiple", file_types=["image"], type="filepath",
                                     label=t("ui.common.references"), elem_id="edit-references")
            with gr.Row():
                seed = gr.Number(value=0, precision=0, label=t("ui.common.seed"), minimum=0, maximum=MAX_SEED)
                steps = gr.Slider(0, config.limits.max_steps, value=0, step=1, label=t("ui.common.steps_default"),
                                  elem_id="edit-steps")
            with gr.Row():
                run = gr.Button(t("ui.edit.run"), variant="primary", elem_id="edit-button", scale=3)
                stop = stop_button("edit")
        with gr.Column(scale=2):
            gallery = gr.Gallery(label=t("ui.edit.edited"), format="png", columns=2, interactive=False, elem_id="edit-gallery")
    def on_checkpoint(checkpoint_id: str | None, request: gr.Request):
        try:
            spec = ctx.engine.checkpoint_spec(checkpoint_id or "")
        except KeyError:
            return tasks_note(ctx, checkpoint_id, page_language(request)), gr.skip()
        # Steps stop where this checkpoint's limit does (0 keeps "the checkpoint's default").
        most = spec.limits_within(config.limits).max_steps
        return tasks_note(ctx, checkpoint_id, page_language(request)), gr.Slider(maximum=most, value=0)

    gr.on([checkpoint.change, gr.context.Context.root_block.load], on_checkpoint, [checkpoint], [note, steps],
          api_visibility="private")
    editing = run.click(
        edit_ui,
        inputs=[editor, prompt, strength, checkpoint, seed, steps, references],
        outputs=[gallery],
        api_visibility="private",
        **gpu_event_options(ctx),
    )
    wire_stop(ctx, stop, "edit", editing)
    # The API endpoint takes plain files (image, optional mask) so programs need no editor format.
    with gr.Row(visible=False):
        # gr.File, not gr.Image: our own reader checks size and format before decoding a pixel.
        api_image = gr.File(type="filepath", label="image")
        api_mask = gr.File(type="filepath", label="mask")
        api_run = gr.Button("edit (API)")
    api_run.click(
        edit_api,
        inputs=[api_image, prompt, api_mask, strength, checkpoint, seed, steps, references],
        outputs=[gallery],
        api_name="edit",
        api_description="Edit an image: inpainting with a mask, else the checkpoint's edit task. `references` (optional, "
        "last): extra image files of the character for instruction edits on checkpoints that take a list.",
        **gpu_event_options(ctx),
    )
    return EditTab(editor=editor, checkpoint=checkpoint, tasks_note=note)

