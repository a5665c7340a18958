"""Character LoRA tab: try a registered character LoRA, compare with and without it."""

from __future__ import annotations

import gradio as gr

from hub.config import resolve_path
from hub.engine import GenerationRequest
from hub.errors import HubInputError
from hub.ui.common import checkpoint_choices, gpu_event_options, gpu_function, user_errors
from hub.ui.context import HubContext
from hub.validation import MAX_SEED, check_id_format


def _lora_card(ctx: HubContext, lora_id: str | None) -> tuple[str, str | None, str]:
    """(markdown card, preview image path, prompt suggestion) for a registered LoRA."""
    if not lora_id:
        return "No character LoRA selected.", None, ""
    lora = ctx.config.lora(lora_id)
    triggers = ", ".join(f"`{word}`" for word in lora.trigger_words) or "none"
    card = f"### {lora.name}\nBase family: `{lora.base_family}` · trigger words: {triggers}"
    if lora.description:
        card += f"\n\n{lora.description}"
    preview = None
    if lora.preview:
        path = resolve_path(lora.preview)
        preview = str(path) if path.is_file() else None
    return card, preview, ", ".join(lora.trigger_words)


def _compatible_checkpoints(ctx: HubContext, lora_id: str | None) -> list[tuple[str, str]]:
    if not lora_id:
        return []
    family = ctx.config.lora(lora_id).base_family
    return [(label, cid) for label, cid in checkpoint_choices(ctx, task="text2img") if ctx.config.checkpoint(cid).family == family]


def make_compare_fn(ctx: HubContext):
    @gpu_function
    @user_errors
    def compare(
        lora_id: str,
        prompt: str,
        checkpoint: str | None = None,
        weight: float = 0.8,
        seed: float = 0,
        progress: gr.Progress = gr.Progress(),
    ) -> tuple[str, str]:
        """The same prompt and seed with and without the LoRA: what the LoRA adds, side by side."""
        check_id_format(lora_id, "LoRA")
        try:
            ctx.config.lora(lora_id)
        except KeyError:
            raise HubInputError(f"Unknown LoRA {lora_id!r}.") from None
        if not checkpoint:
            choices = _compatible_checkpoints(ctx, lora_id)
            if not choices:
                raise HubInputError(f"No available checkpoint takes LoRA {lora_id!r} here.")
            checkpoint = choices[0][1]
        with_lora = GenerationRequest(prompt=prompt, checkpoint=checkpoint, loras=((lora_id, weight),), seed=seed)
        without = GenerationRequest(prompt=prompt, checkpoint=checkpoint, seed=seed)
        progress(0, desc="Generating with the LoRA")
        first = ctx.engine.generate(with_lora, progress=lambda s, t: progress((s, 2 * t), desc="With the LoRA"))
        second = ctx.engine.generate(without, progress=lambda s, t: progress((t + s, 2 * t), desc="Without"))
        paths = ctx.save_outputs(first + second)
        return paths[0], paths[1]

    return compare


def build_tab(ctx: HubContext) -> None:
    loras = [(f"{lora.name} ({lora.base_family})", lora.id) for lora in ctx.config.loras]
    first = loras[0][1] if loras else None
    card, preview, suggestion = _lora_card(ctx, first)
    compatible = _compatible_checkpoints(ctx, first)
    if not loras:
        gr.Markdown("No character LoRAs are registered on this hub yet. Train one below, or add one in `spaces_config.yaml`.")
    with gr.Row():
        with gr.Column(scale=2):
            lora = gr.Dropdown(choices=loras, value=first, label="Character LoRA", allow_custom_value=True)
            card_md = gr.Markdown(card)
            preview_image = gr.Image(value=preview, label="Preview", interactive=False, height=160)
        with gr.Column(scale=3):
            prompt = gr.Textbox(label="Prompt", value=suggestion, lines=2, max_length=ctx.config.limits.max_prompt_chars)
            with gr.Row():
                checkpoint = gr.Dropdown(
                    choices=compatible, value=compatible[0][1] if compatible else None, label="Checkpoint", allow_custom_value=True
                )
                weight = gr.Slider(-1.0, 2.0, value=0.8, step=0.05, label="LoRA weight")
                seed = gr.Number(value=0, precision=0, minimum=0, maximum=MAX_SEED, label="Seed")
            run = gr.Button("Compare with / without", variant="primary", elem_id="lora-compare-button")
            with gr.Row():
                with_image = gr.Image(label="With the LoRA", format="png", interactive=False)
                without_image = gr.Image(label="Without", format="png", interactive=False)

    def on_lora(lora_id: str | None):
        try:
            card, preview, suggestion = _lora_card(ctx, lora_id)
        except KeyError:
            return gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()
        choices = _compatible_checkpoints(ctx, lora_id)
        default_weight = ctx.config.lora(lora_id).default_weight if lora_id else 0.8
        return card, preview, suggestion, gr.Dropdown(choices=choices, value=choices[0][1] if choices else None), default_weight

    lora.change(on_lora, [lora], [card_md, preview_image, prompt, checkpoint, weight], api_visibility="private")
    run.click(
        make_compare_fn(ctx),
        inputs=[lora, prompt, checkpoint, weight, seed],
        outputs=[with_image, without_image],
        api_name="lora_compare",
        **gpu_event_options(ctx),
    )
