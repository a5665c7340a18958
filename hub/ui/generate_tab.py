"""Generate tab and the `/generate` API endpoint."""

from __future__ import annotations

import random
from dataclasses import dataclass

import gradio as gr

from hub.engine import GenerationRequest
from hub.ui.common import (
    throttled_progress,
    checkpoint_choices,
    checkpoint_note,
    gpu_event_options,
    gpu_function,
    user_errors,
)
from hub.ui.context import HubContext
from hub.validation import MAX_SEED, SAMPLERS, parse_lora_list


@dataclass
class GenerateTab:
    gallery: gr.Gallery
    selected_path: gr.State
    send_to_edit: gr.Button


def _lora_choices(ctx: HubContext) -> list[tuple[str, str]]:
    return [(f"{lora.name} ({lora.base_family})", lora.id) for lora in ctx.engine.lora_specs()]


def make_generate_fn(ctx: HubContext):
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
        progress: gr.Progress = gr.Progress(),
    ) -> tuple[list[tuple[str, str]], str]:
        request = GenerationRequest(
            prompt=prompt,
            negative_prompt=negative_prompt or "",
            checkpoint=checkpoint or None,
            loras=parse_lora_list(loras, ctx.config.limits),
            width=width,
            height=height,
            steps=steps,
            cfg=cfg,
            sampler=sampler or None,
            seed=seed,
            batch=batch,
        )
        progress(0, desc="Queued")
        images = ctx.engine.generate(request, progress=throttled_progress(progress, "Denoising"))
        paths = ctx.save_outputs(images)
        gallery = [(path, f"seed {item.seed}") for path, item in zip(paths, images)]
        first = images[0].recipe
        info = f"`{first.model}` · {first.width}x{first.height} · {first.steps} steps · CFG {first.cfg:g} · seeds " + ", ".join(
            str(item.seed) for item in images
        )
        return gallery, info

    return generate


def build_tab(ctx: HubContext) -> GenerateTab:
    config = ctx.config
    default = config.checkpoint(config.default_checkpoint)
    limits = config.limits
    with gr.Row():
        with gr.Column(scale=3):
            prompt = gr.Textbox(label="Prompt", lines=3, max_length=limits.max_prompt_chars, placeholder="1girl, solo, ...")
            negative = gr.Textbox(label="Negative prompt", lines=2, max_length=limits.max_prompt_chars)
            with gr.Row():
                checkpoint = gr.Dropdown(
                    choices=checkpoint_choices(ctx, task="text2img"),
                    value=default.id,
                    label="Checkpoint",
                    allow_custom_value=True,  # our own check gives the clearer message
                )
                sampler = gr.Dropdown(choices=list(SAMPLERS), value=default.defaults.sampler, label="Sampler", allow_custom_value=True)
            note = gr.Markdown(checkpoint_note(ctx, default.id))
            with gr.Row():
                loras = gr.Textbox(label="LoRAs (id:weight, ...)", placeholder="demo-lora-...:0.8")
                add_lora = gr.Dropdown(choices=_lora_choices(ctx), value=None, label="Add a LoRA")
            with gr.Row():
                presets = gr.Dropdown(
                    choices=[f"{w}x{h}" for w, h in (default.size_presets or [(default.defaults.width, default.defaults.height)])],
                    value=f"{default.defaults.width}x{default.defaults.height}",
                    label="Size preset",
                )
                width = gr.Slider(limits.min_size, limits.max_size, value=default.defaults.width, step=8, label="Width")
                height = gr.Slider(limits.min_size, limits.max_size, value=default.defaults.height, step=8, label="Height")
            with gr.Row():
                steps = gr.Slider(1, limits.max_steps, value=default.defaults.steps, step=1, label="Steps")
                cfg = gr.Slider(0, limits.max_cfg, value=default.defaults.cfg, step=0.5, label="CFG")
                batch = gr.Slider(1, limits.max_batch, value=1, step=1, label="Batch count")
            with gr.Row():
                seed = gr.Number(value=0, precision=0, label="Seed", minimum=0, maximum=MAX_SEED)
                randomize = gr.Checkbox(value=True, label="Random seed each run")
            run = gr.Button("Generate", variant="primary", elem_id="generate-button")
        with gr.Column(scale=2):
            gallery = gr.Gallery(label="Images", format="png", columns=2, elem_id="generate-gallery", interactive=False)
            info = gr.Markdown(elem_id="generate-info")
            selected_path = gr.State(None)
            send_to_edit = gr.Button("Send to Edit")

    def on_checkpoint(checkpoint_id: str):
        try:
            spec = ctx.engine.checkpoint_spec(checkpoint_id)
        except KeyError:
            return gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip(), ""
        d = spec.defaults
        sizes = [f"{w}x{h}" for w, h in (spec.size_presets or [(d.width, d.height)])]
        return (
            gr.Dropdown(choices=sizes, value=f"{d.width}x{d.height}"),
            d.width,
            d.height,
            d.steps,
            d.cfg,
            d.sampler,
            checkpoint_note(ctx, checkpoint_id),
        )

    checkpoint.change(
        on_checkpoint, [checkpoint], [presets, width, height, steps, cfg, sampler, note], api_visibility="private"
    )

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

    run.click(maybe_randomize, [randomize, seed], [seed], api_visibility="private", queue=False).then(
        make_generate_fn(ctx),
        inputs=[prompt, negative, checkpoint, loras, width, height, steps, cfg, sampler, seed, batch],
        outputs=[gallery, info],
        api_name="generate",
        **gpu_event_options(ctx),
    )

    def on_select(event: gr.SelectData):
        value = event.value
        if isinstance(value, dict):
            image = value.get("image") or {}
            return image.get("path") if isinstance(image, dict) else None
        return None

    gallery.select(on_select, None, [selected_path], api_visibility="private")
    return GenerateTab(gallery=gallery, selected_path=selected_path, send_to_edit=send_to_edit)
