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
from hub.samplers import sampler_choices
from hub.ui.prompt_tools import example_rows, make_read_recipe, recipe_note, token_note
from hub.validation import MAX_SEED, check_int, parse_lora_list

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


def _takes_clip_skip(ctx: HubContext, checkpoint_id: str | None) -> bool:
    try:
        spec = ctx.engine.checkpoint_spec(checkpoint_id or ctx.config.default_checkpoint)
    except KeyError:
        return True  # the engine's check names the unknown checkpoint
    return get_family(spec.family).clip_skip_default is not None


def _clip_skip_setting(spec: Any) -> dict[str, Any]:
    """The clip skip slider for a checkpoint: its default, shown only for CLIP families."""
    family = get_family(spec.family)
    takes = family.clip_skip_default is not None
    return {"value": (spec.defaults.clip_skip or family.clip_skip_default) if takes else 1, "visible": takes}


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
        clip_skip: float | None = None,
        request: gr.Request = None,  # type: ignore[assignment]
        progress: gr.Progress = gr.Progress(),
    ) -> tuple[list[tuple[str, str]], str]:
        lang = page_language(request)
        ctx.content_filter.check_prompt(prompt, negative_prompt)
        if clip_skip is not None and not _takes_clip_skip(ctx, checkpoint):
            clip_skip = None  # the page sends its (hidden) slider for every checkpoint
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
            clip_skip=clip_skip,
        )
        charge_images(ctx, request, check_int(batch or 1, "Batch count", 1, limits.max_batch))
        with engine_call(ctx, request, "generate", progress, lang) as cancel:
            images = ctx.engine.generate(wanted, progress=throttled_progress(progress, tr(lang, "msg.progress.denoising")),
                                         cancel=cancel)
        gallery = gallery_items(ctx, images, lang, lambda item: tr(lang, "msg.seed_caption", seed=item.seed))
        first = images[0].recipe
        info = tr(lang, "msg.generate.info", model=first.model, width=first.width, height=first.height, steps=first.steps,
                  cfg=f"{first.cfg:g}", seeds=", ".join(str(item.seed) for item in images))
        tokens = token_note(ctx, first.model, prompt, lang)
        return gallery, f"{info}  \n{tokens}" if tokens else info

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
            prompt = gr.Textbox(label=t("ui.common.prompt"), lines=3, max_length=limits.max_prompt_chars, placeholder="1girl, solo, ...",
                                elem_id="generate-prompt")
            tokens = gr.Markdown(elem_id="generate-tokens")
            negative = gr.Textbox(label=t("ui.common.negative_prompt"), lines=2, max_length=limits.max_prompt_chars,
                                  elem_id="generate-negative")
            examples = gr.Dataset(components=[gr.Textbox(visible=False), gr.Number(visible=False)],
                                  samples=example_rows(ctx, default.id) or [["", 0]], type="index",
                                  label=t("ui.generate.examples"), headers=[t("ui.common.prompt"), t("ui.common.seed")],
                                  visible=bool(default.examples), elem_id="generate-examples")
            with gr.Accordion(t("ui.generate.recipe"), open=False):
                recipe_file = gr.File(file_types=["image"], type="filepath", label=t("ui.generate.recipe_drop"),
                                      elem_id="generate-recipe")
                recipe_info = gr.Markdown(elem_id="generate-recipe-note")
                recipe_json = gr.JSON(visible=False)
                pending_recipe = gr.State(None)
            with gr.Row():
                checkpoint = gr.Dropdown(
                    choices=text_choices,
                    value=default.id,
                    label=t("ui.common.checkpoint"),
                    allow_custom_value=True,  # our own check gives the clearer message
                )
                sampler = gr.Dropdown(choices=sampler_choices(), value=default.defaults.sampler, label=t("ui.generate.sampler"),
                                      allow_custom_value=True, elem_id="generate-sampler")
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
                cfg = gr.Slider(0, limits.max_cfg, value=default.defaults.cfg, step=0.5, label=t("ui.common.cfg"),
                                elem_id="generate-cfg")
                batch = gr.Slider(1, limits.max_batch, value=1, step=1, label=t("ui.generate.batch"), elem_id="generate-batch")
                clip_skip = gr.Slider(1, 12, step=1, label=t("ui.generate.clip_skip"), elem_id="generate-clip-skip",
                                      **_clip_skip_setting(default))
            with gr.Row():
                seed = gr.Number(value=0, precision=0, label=t("ui.common.seed"), minimum=0, maximum=MAX_SEED,
                                 elem_id="generate-seed")
                randomize = gr.Checkbox(value=True, label=t("ui.generate.random_seed"))
            with gr.Row():
                run = gr.Button(t("ui.generate.run"), variant="primary", elem_id="generate-button", scale=3)
                stop = stop_button("generate")
        with gr.Column(scale=2):
            gallery = gr.Gallery(label=t("ui.generate.images"), format="png", columns=2, elem_id="generate-gallery", interactive=False)
            info = gr.Markdown(elem_id="generate-info")
            selected_path = gr.State(None)
            send_to_edit = gr.Button(t("ui.generate.send_to_edit"))

    def on_checkpoint(checkpoint_id: str, pending: dict | None, request: gr.Request):
        try:
            spec = ctx.engine.checkpoint_spec(checkpoint_id)
        except KeyError:
            return (gr.skip(),) * 9 + ("", None)
        d = spec.defaults
        sizes = [f"{w}x{h}" for w, h in (spec.size_presets or [(d.width, d.height)])]
        # A recipe that just chose this checkpoint: its settings win over the checkpoint's defaults.
        wanted = pending if pending and pending.get("checkpoint") == checkpoint_id else {}
        # The sliders stop where this checkpoint's limits do.
        width_slider, height_slider, steps_slider = size_sliders(spec, config.limits, wanted.get("width"), wanted.get("height"),
                                                                 wanted.get("steps"))
        cfg_value, sampler_value = wanted.get("cfg") or d.cfg, wanted.get("sampler") or d.sampler
        rows = example_rows(ctx, checkpoint_id)
        return (
            gr.Dropdown(choices=sizes, value=f"{d.width}x{d.height}"),
            width_slider,
            height_slider,
            steps_slider,
            cfg_value,
            sampler_value,
            gr.Slider(**{**_clip_skip_setting(spec), **({"value": wanted["clip_skip"]} if wanted.get("clip_skip") else {})}),
            gr.Dataset(samples=rows or [["", 0]], visible=bool(rows)),
            token_note(ctx, checkpoint_id, None, page_language(request)),
            checkpoint_note(ctx, checkpoint_id, page_language(request)),
            None,
        )

    gr.on([checkpoint.change, gr.context.Context.root_block.load], on_checkpoint, [checkpoint, pending_recipe],
          [presets, width, height, steps, cfg, sampler, clip_skip, examples, tokens, note, pending_recipe],
          api_visibility="private")

    def on_prompt(checkpoint_id: str, text: str, request: gr.Request):
        return token_note(ctx, checkpoint_id, text, page_language(request))

    gr.on([prompt.change, checkpoint.change], on_prompt, [checkpoint, prompt], [tokens], api_visibility="private",
          trigger_mode="always_last", queue=False)

    recipe_read = recipe_file.upload(
        make_read_recipe(ctx), [recipe_file], [recipe_json], api_name="read_recipe",
        api_description="The settings of a PNG's recipe (A1111, Forge, ComfyUI, InvokeAI, NovelAI, Fooocus or this hub): "
        "prompt, negative prompt, steps, sampler, CFG, seed, size, clip skip, and the checkpoint and LoRAs mapped "
        "to this hub's ids; `unmapped` lists what could not be mapped.", concurrency_limit=None)

    def fill_from_recipe(recipe: dict | None, current_checkpoint: str, request: gr.Request):
        if not recipe:
            return (gr.skip(),) * 14
        lang = page_language(request)
        chosen = recipe["checkpoint"] or current_checkpoint
        lora_text = ", ".join(f"{name}:{weight:g}" for name, weight in recipe["loras"])
        return (
            recipe["prompt"], recipe["negative_prompt"], chosen, lora_text,
            recipe["width"] or gr.skip(), recipe["height"] or gr.skip(), recipe["steps"] or gr.skip(),
            recipe["cfg"] or gr.skip(), recipe["sampler"] or gr.skip(), recipe["seed"], False,
            recipe["clip_skip"] or gr.skip(), recipe_note(recipe, lang),
            # Applied again by the checkpoint's change event, which would otherwise reset them to its defaults.
            {**recipe, "checkpoint": chosen} if chosen != current_checkpoint else None,
        )

    recipe_read.success(fill_from_recipe, [recipe_json, checkpoint],
                        [prompt, negative, checkpoint, loras, width, height, steps, cfg, sampler, seed, randomize, clip_skip,
                         recipe_info, pending_recipe], api_visibility="private")

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

    generate_fn = make_generate_fn(ctx)
    generate_inputs = [prompt, negative, checkpoint, loras, width, height, steps, cfg, sampler, seed, batch, references, clip_skip]
    generating = run.click(maybe_randomize, [randomize, seed], [seed], api_visibility="private", queue=False).then(
        generate_fn,
        inputs=generate_inputs,
        outputs=[gallery, info],
        api_name="generate",
        api_description="Text to image. `references` (optional): image files of a character for checkpoints "
        "that draw from references (character-from-references mode). `clip_skip` (optional, last): A1111 "
        "numbering, CLIP families only (ignored by the others). Prompts take A1111 syntax: (tag:1.2), [tag], "
        "BREAK, <lora:id:weight>.",
        **gpu_event_options(ctx),
    )
    wire_stop(ctx, stop, "generate", generating)

    def fill_from_example(checkpoint_id: str, index: int | None):
        try:
            example = ctx.engine.checkpoint_spec(checkpoint_id).examples[int(index)]
        except (KeyError, IndexError, TypeError, ValueError):
            return (gr.skip(),) * 6
        spec = ctx.engine.checkpoint_spec(checkpoint_id)
        return (example.prompt, example.negative_prompt, example.seed, False,
                example.steps or spec.defaults.steps, spec.defaults.cfg if example.cfg is None else example.cfg)

    # An example fills the prompt and settings and draws at once: a newcomer's first click gives an image.
    example_run = examples.click(fill_from_example, [checkpoint, examples], [prompt, negative, seed, randomize, steps, cfg],
                                 api_visibility="private", queue=False).then(
        generate_fn, inputs=generate_inputs, outputs=[gallery, info], api_visibility="private", **gpu_event_options(ctx))
    wire_stop(ctx, stop, "generate", example_run)

    def on_select(event: gr.SelectData):
        value = event.value
        if isinstance(value, dict):
            image = value.get("image") or {}
            return image.get("path") if isinstance(image, dict) else None
        return None

    gallery.select(on_select, None, [selected_path], api_visibility="private")
    return GenerateTab(gallery=gallery, selected_path=selected_path, send_to_edit=send_to_edit, note=note, checkpoint=checkpoint)
