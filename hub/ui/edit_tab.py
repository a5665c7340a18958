"""Edit tab (image-to-image, inpainting with a painted mask, instruction edits) and `/edit`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr
from PIL import Image, ImageChops

from hub.engine import EditRequest
from hub.errors import HubInputError
from hub.families import get_family
from hub.images import open_upload
from hub.ui.common import checkpoint_choices, gpu_event_options, gpu_function, throttled_progress, user_errors
from hub.ui.context import HubContext
from hub.validation import MAX_SEED

TASK_LABELS = {"img2img": "image to image", "inpaint": "inpainting (paint a mask)", "instruct": "instruction edit"}


@dataclass
class EditTab:
    editor: gr.ImageEditor


def _edit_checkpoints(ctx: HubContext) -> list[tuple[str, str]]:
    return [
        (label, cid)
        for label, cid in checkpoint_choices(ctx)
        if any(get_family(ctx.engine.checkpoint_spec(cid).family).supports(t) for t in ("img2img", "inpaint", "instruct"))
    ]


def _tasks_note(ctx: HubContext, checkpoint_id: str | None) -> str:
    try:
        family = get_family(ctx.engine.checkpoint_spec(checkpoint_id or ctx.config.default_checkpoint).family)
    except KeyError:
        return ""
    offered = [TASKS for TASKS in ("img2img", "inpaint", "instruct") if family.supports(TASKS)]
    text = "This checkpoint offers: " + ", ".join(TASK_LABELS[t] for t in offered) + "."
    if family.supports("instruct"):
        text += " Write the edit as an instruction (\"make her hair red\")."
    return text


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

    def run(image: Image.Image, mask: Image.Image | None, prompt, strength, checkpoint, seed, steps, progress) -> list[tuple[str, str]]:
        request = EditRequest(
            image=image,
            prompt=prompt or "",
            mask=mask,
            strength=strength,
            checkpoint=checkpoint or None,
            seed=seed,
            steps=None if steps in (None, 0, "") else steps,
        )
        progress(0, desc="Queued")
        images = ctx.engine.edit(request, progress=throttled_progress(progress, "Editing"))
        paths = ctx.save_outputs(images)
        return [(path, f"{item.recipe.task} · seed {item.seed}") for path, item in zip(paths, images)]

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
        progress: gr.Progress = gr.Progress(),
    ) -> list[tuple[str, str]]:
        if not image:
            raise HubInputError("An image to edit is required.")
        source = open_upload(image, max_bytes=limits.max_upload_bytes, max_pixels=limits.max_upload_pixels)
        mask_image = None
        if mask:
            mask_image = open_upload(mask, max_bytes=limits.max_upload_bytes, max_pixels=limits.max_upload_pixels, what="mask")
        return run(source, mask_image, prompt, strength, checkpoint, seed, steps, progress)

    @gpu_function
    @user_errors
    def edit_ui(editor: dict | None, prompt: str, strength: float, checkpoint: str, seed: float, steps: float, progress: gr.Progress = gr.Progress()):
        if not editor or not editor.get("background"):
            raise HubInputError("Upload an image to edit first.")
        source = open_upload(editor["background"], max_bytes=limits.max_upload_bytes, max_pixels=limits.max_upload_pixels)
        mask = mask_from_layers(editor.get("layers") or [], source.size, limits)
        return run(source, mask, prompt, strength, checkpoint, seed, steps, progress)

    return edit_api, edit_ui


def build_tab(ctx: HubContext) -> EditTab:
    config = ctx.config
    choices = _edit_checkpoints(ctx)
    default_id = config.default_checkpoint if any(cid == config.default_checkpoint for _, cid in choices) else (choices[0][1] if choices else None)
    edit_api, edit_ui = make_edit_fn(ctx)
    with gr.Row():
        with gr.Column(scale=3):
            editor = gr.ImageEditor(
                label="Image — paint over the area to change for inpainting; leave unpainted for a whole-image edit",
                type="filepath",
                format="png",
                sources=["upload", "clipboard"],
                elem_id="edit-editor",
            )
            prompt = gr.Textbox(label="Prompt or instruction", lines=2, max_length=config.limits.max_prompt_chars)
            with gr.Row():
                checkpoint = gr.Dropdown(choices=choices, value=default_id, label="Checkpoint", allow_custom_value=True)
                strength = gr.Slider(0.05, 1.0, value=0.6, step=0.05, label="Strength (image to image, inpainting)")
            tasks_note = gr.Markdown(_tasks_note(ctx, default_id))
            with gr.Row():
                seed = gr.Number(value=0, precision=0, label="Seed", minimum=0, maximum=MAX_SEED)
                steps = gr.Slider(0, config.limits.max_steps, value=0, step=1, label="Steps (0 = checkpoint default)")
            run = gr.Button("Edit", variant="primary", elem_id="edit-button")
        with gr.Column(scale=2):
            gallery = gr.Gallery(label="Edited", format="png", columns=2, interactive=False)
    checkpoint.change(lambda cid: _tasks_note(ctx, cid), [checkpoint], [tasks_note], api_visibility="private")
    run.click(
        edit_ui,
        inputs=[editor, prompt, strength, checkpoint, seed, steps],
        outputs=[gallery],
        api_visibility="private",
        **gpu_event_options(ctx),
    )
    # The API endpoint takes plain files (image, optional mask) so programs need no editor format.
    with gr.Row(visible=False):
        # gr.File, not gr.Image: our own reader checks size and format before decoding a pixel.
        api_image = gr.File(type="filepath", label="image")
        api_mask = gr.File(type="filepath", label="mask")
        api_run = gr.Button("edit (API)")
    api_run.click(
        edit_api,
        inputs=[api_image, prompt, api_mask, strength, checkpoint, seed, steps],
        outputs=[gallery],
        api_name="edit",
        **gpu_event_options(ctx),
    )
    return EditTab(editor=editor)
