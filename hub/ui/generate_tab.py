"""Generate tab and the `/generate` API endpoint.

Two modes: text to image, and "character from references" (a prompt plus reference images of the
character, no input image; families that take references). `/generate` keeps its positional parameters;
`references` (a list of image files) is the last, optional one.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import gradio as gr

from hub.engine import GenerationRequest
from hub.families import get_family
from hub.ui.common import (
    checkpoint_choices,
    checkpoint_note,
    engine_call,
    gpu_event_options,
    gpu_function,
    load_references,
    owner_of,
    size_sliders,
    stop_button,
    throttled_progress,
    user_errors,
    wire_stop,
)
from hub.ui.context import HubContext
from hub.ui.identity import charge_images
from hub.ui.i18n import page_language, t, tr
from hub.validation import MAX_SEED, SAMPLERS, check_int, parse_lora_list

MODES = ("text", "references")


@dataclass
class GenerateTab:
    gallery: gr.Gallery
    selected_path: gr.State
    send_to_edit: gr.Button
    note: gr.Markdown
    checkpoint: gr.Dropdown


def _lora_choices(ctx: HubContext) -> list[tuple[str, str]]:
    return [(f"{lora.name} ({lora.base_family})", lora.id) for lora in ctx.engine.lora_specs()]


def reference_checkpoints(ctx: HubContext) -> list[tuple[str, str]]:
    """Checkpoints that draw a character from reference images."""
    return [(label, cid) for label, cid in checkpoint_choices(ctx)
            if get_family(ctx.engine.checkpoint_spec(cid).family).supports("reference")]


def gallery_items(ctx: HubContext, images: list[Any], lang: str, caption: Any) -> list[tuple[str, str]]:
    """Save the outputs (withheld ones as their placeholder) and caption each; the reason when withheld."""
    checked = ctx.content_filter.filter_outputs(images)
    paths = ctx.save_outputs([item for item, _ in checked])
    items = []
    for (item, verdict), path in zip(checked, paths, strict=True):
        text = caption(item)
        if verdict is not None:
            text = tr(lang, verdict.message_key, **verdict.values)
        items.append((path, text))
    return items


def make_generate_fn(ctx: HubContext):
    limits = ctx.config.limits

    @gpu_function
    @user_errors
    def generate(
        prompt: str,
        negative_prompt: str | None = None,  # None defaults make the API parameters optional
        checkpoint: str | None = None,
        loras: str | None = None,
        width: float | None = None,
        height: float | None = None,
        steps: float | None = None,
        cfg: float | None = None,
        sampler: str | None = None,
        seed: float = 0,
        batch: float = 1,
        references: list[Any] | None = None,
        request: gr.Request = None,  # type: ignore[assignment]
        progress: gr.Progress = gr.Progress(),
    ) -> tuple[list[tuple[str, str]], str]:
        lang = page_language(request)
        ctx.content_filter.check_prompt(prompt, negative_prompt)
        wanted = GenerationRequest(
            prompt=prompt,
            negative_prompt=negative_prompt or "",
            checkpoint=checkpoint or None,
            loras=parse_lora_list(loras, limits),
            width=width,
            height=height,
            steps=steps,
            cfg=cfg,
            sampler=sampler or None,
            seed=seed,
            batch=batch,
            references=load_references(references, limits),
            owner=owner_of(ctx, request),
        )
        charge_images(ctx, request, check_int(batch or 1, "Batch count", 1, limits.max_batch))
        with engine_call(ctx, request, "generate", progress, lang) as cancel:
            images = ctx.engine.generate(wanted, progress=throttled_progress(progress, tr(lang, "msg.progress.denoising")),
                                         cancel=cancel)
        gallery = gallery_items(ctx, images, lang, lambda item: tr(lang, "msg.seed_caption", seed=item.seed))
        first = images[0].recipe
        info = tr(lang, "msg.generate.info", model=first.model, width=first.width, height=first.height, steps=first.steps,
                  cfg=f"{first.cfg:g}", seeds=", ".join(str(item.seed) for item in images))
        return gallery, info

    return generate


def build_tab(ctx: HubContext) -> GenerateTab:
    config = ctx.config
    default = config.checkpoint(config.default_checkpoint)
    # The sliders are built to the hub's limits (the API checks against these, for every checkpoint);
    # each page narrows them to the chosen checkpoint's own (on load and on every change).
    limits = config.limits
    text_choices = checkpoint_choices(ctx, task="text2img")
    with gr.Row():
        with gr.Column(scale=3):
            mode = gr.Radio(choices=[(t("ui.generate.mode_text"), "text"), (t("ui.generate.mode_references"), "references")],
                            value="text", label=t("ui.generate.mode"), elem_id="generate-mode")
            references = gr.File(file_count="multiple", file_types=["image"], type="filepath", visible=False,
                                 label=t("ui.common.references"), elem_id="generate-references")
            references_help = gr.Markdown(t("ui.generate.references_help"), visible=False)
            prompt = gr.Textbox(label=t("ui.common.prompt"), lines=3, max_length=limits.max_prompt_chars, placeholder="1girl, solo, ...")
            negative = gr.Textbox(label=t("ui.common.negative_prompt"), lines=2, max_length=limits.max_prompt_chars)
            with gr.Row():
                checkpoint = gr.Dropdown(
                    choices=text_choices,
                    value=default.id,
                    label=t("ui.common.checkpoint"),
                    allow_custom_value=True,  # our own check gives the clearer message
                )
                sampler = gr.Dropdown(choices=list(SAMPLERS), value=default.defaults.sampler, label=t("ui.generate.sampler"),
                                      allow_custom_value=True)
            note = gr.Markdown(checkpoint_note(ctx, default.id), elem_id="generate-note")
            with gr.Row():
                loras = gr.Textbox(label=t("ui.common.loras"), placeholder="demo-lora-...:0.8")
                add_lora = gr.Dropdown(choices=_lora_choices(ctx), value=None, label=t("ui.generate.add_lora"))
            with gr.Row():
                presets = gr.Dropdown(
                    choices=[f"{w}x{h}" for w, h in (default.size_presets or [(default.defaults.width, default.defaults.height)])],
                    value=f"{default.defaults.width}x{default.defaults.height}",
                    label=t("ui.generate.size_preset"),
                )
                width = gr.Slider(limits.min_size, limits.max_size, value=default.defaults.width, step=8, label=t("ui.generate.width"),
                                  elem_id="generate-width")
                height = gr.Slider(limits.min_size, limits.max_size, value=default.defaults.height, step=8, label=t("ui.generate.height"),
                                   elem_id="generate-height")
            with gr.Row():
                steps = gr.Slider(1, limits.max_steps, value=default.defaults.steps, step=1, label=t("ui.common.steps"),
                                  elem_id="generate-steps")
                cfg = gr.Slider(0, limits.max_cfg, value=default.defaults.cfg, step=0.5, label=t("ui.common.cfg"))
                batch = gr.Slider(1, limits.max_batch, value=1, step=1, label=t("ui.generate.batch"), elem_id="generate-batch")
            with gr.Row():
                seed = gr.Number(value=0, precision=0, label=t("ui.common.seed"), minimum=0, maximum=MAX_SEED)
                randomize = gr.Checkbox(value=True, label=t("ui.generate.random_seed"))
            with gr.Row():
                run = gr.Button(t("ui.generate.run"), variant="primary", elem_id="generate-button", scale=3)
                stop = stop_button("generate")
        with gr.Column(scale=2):
            gallery = gr.Gallery(label=t("ui.generate.images"), format="png", columns=2, elem_id="generate-gallery", interactive=False)
            info = gr.Markdown(elem_id="generate-info")
            selected_path = gr.State(None)
            send_to_edit = gr.Button(t("ui.generate.send_to_edit"))

    def on_checkpoint(checkpoint_id: str, request: gr.Request):
        try:
            spec = ctx.engine.checkpoint_spec(checkpoint_id)
        except KeyError:
            return gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip(), ""
        d = spec.defaults
        sizes = [f"{w}x{h}" for w, h in (spec.size_presets or [(d.width, d.height)])]
        # The sliders stop where this checkpoint's limits do.
        width_slider, height_slider, steps_slider = size_sliders(spec, config.limits)
        return (
            gr.Dropdown(choices=sizes, value=f"{d.width}x{d.height}"),
            width_slider,
            height_slider,
            steps_slider,
            d.cfg,
            d.sampler,
            checkpoint_note(ctx, checkpoint_id, page_language(request)),
        )

    gr.on([checkpoint.change, gr.context.Context.root_block.load], on_checkpoint, [checkpoint],
          [presets, width, height, steps, cfg, sampler, note], api_visibility="private")

    def on_mode(chosen: str):
        # References travel only in reference mode: switching back clears them.
        by_reference = chosen == "references"
        choices = reference_checkpoints(ctx) if by_reference else text_choices
        ids = [cid for _, cid in choices]
        value = ids[0] if ids else None
        if not by_reference and default.id in ids:
            value = default.id
        return (gr.update(visible=by_reference, value=None), gr.update(visible=by_reference),
                gr.Dropdown(choices=choices, value=value))

    mode.change(on_mode, [mode], [references, references_help, checkpoint], api_visibility="private")

    def on_preset(preset: str):
        try:
            w, h = (int(part) for part in preset.split("x"))
        except (AttributeError, ValueError):
            return gr.skip(), gr.skip()
        return w, h

    presets.change(on_preset, [presets], [width, height], api_visibility="private")

    def on_add_lora(current: str, lora_id: str | None):
        if not lora_id:
            return gr.skip(), None
        weight = ctx.engine.lora_spec(lora_id).default_weight
        items = [item.strip() for item in (current or "").split(",") if item.strip()]
        if not any(item.split(":")[0] == lora_id for item in items):
            items.append(f"{lora_id}:{weight:g}")
        return ", ".join(items), None

    add_lora.change(on_add_lora, [loras, add_lora], [loras, add_lora], api_visibility="private")

    def maybe_randomize(enabled: bool, current: float):
        return random.randint(0, MAX_SEED) if enabled else current

    generating = run.click(maybe_randomize, [randomize, seed], [seed], api_visibility="private", queue=False).then(
        make_generate_fn(ctx),
        inputs=[prompt, negative, checkpoint, loras, width, height, steps, cfg, sampler, seed, batch, references],
        outputs=[gallery, info],
        api_name="generate",
        api_description="Text to image. `references` (optional, last): image files of a character for checkpoints "
        "that draw from references (character-from-references mode).",
        **gpu_event_options(ctx),
    )
    wire_stop(ctx, stop, "generate", generating)

    def on_select(event: gr.SelectData):
        value = event.value
        if isinstance(value, dict):
            image = value.get("image") or {}
            return image.get("path") if isinstance(image, dict) else None
        return None

    gallery.select(on_select, None, [selected_path], api_visibility="private")
    return GenerateTab(gallery=gallery, selected_path=selected_path, send_to_edit=send_to_edit, note=note, checkpoint=checkpoint)
