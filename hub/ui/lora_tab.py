"""Character LoRA tab: try a registered character LoRA, compare with and without it."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import gradio as gr

from core.settings import repo_path as resolve_path
from evals.judgeset import load_judges
from hub.config import LoraSpec
from hub.engine import GenerationRequest
from hub.errors import HubInputError, JobCancelled
from hub.images import open_upload
from hub.lora_training import LoraTrainingConfig, train_character_lora, validate_trigger_word
from hub.ui.common import (
    checkpoint_choices,
    engine_call,
    gpu_event_options,
    gpu_function,
    owner_of,
    stop_button,
    user_errors,
    wire_stop,
)
from hub.ui.context import HubContext
from hub.ui.generate_tab import gallery_items
from hub.ui.i18n import LocalizedError, page_language, t, tr
from hub.ui.identity import allowed, charge_images, quota_spent
from hub.validation import MAX_SEED, check_id_format, check_int

log = logging.getLogger(__name__)


def _lora_card(ctx: HubContext, lora_id: str | None, lang: str = "en") -> tuple[str, str | None, str]:
    """(markdown card, preview image path, prompt suggestion) for a registered LoRA."""
    if not lora_id:
        return tr(lang, "msg.lora.none_selected"), None, ""
    lora = ctx.engine.lora_spec(lora_id)
    triggers = ", ".join(f"`{word}`" for word in lora.trigger_words) or tr(lang, "msg.lora.no_triggers")
    card = f"### {lora.name}\n" + tr(lang, "msg.lora.card", family=lora.base_family, triggers=triggers)
    if lora.description:
        card += f"\n\n{lora.description}"
    preview = None
    if lora.preview:
        path = resolve_path(lora.preview)
        preview = str(path) if path.is_file() else None
    return card, preview, ", ".join(lora.trigger_words)


def _lora_choices(ctx: HubContext) -> list[tuple[str, str]]:
    return [(f"{lora.name} ({lora.base_family})", lora.id) for lora in ctx.engine.lora_specs()]


def _compatible_checkpoints(ctx: HubContext, lora_id: str | None) -> list[tuple[str, str]]:
    if not lora_id:
        return []
    lora = ctx.engine.lora_spec(lora_id)
    return [
        (label, cid)
        for label, cid in checkpoint_choices(ctx, task="text2img")
        if ctx.engine.checkpoint_spec(cid).family == lora.base_family and (not lora.base_checkpoints or cid in lora.base_checkpoints)
    ]


def make_compare_fn(ctx: HubContext):
    @gpu_function
    @user_errors
    def compare(
        lora_id: str,
        prompt: str,
        checkpoint: str | None = None,
        weight: float = 0.8,
        seed: float = 0,
        steps: float | None = None,
        request: gr.Request = None,  # type: ignore[assignment]
        progress: gr.Progress = gr.Progress(),
    ) -> tuple[str, str]:
        """The same prompt and seed with and without the LoRA: what the LoRA adds, side by side."""
        lang = page_language(request)
        check_id_format(lora_id, "LoRA")
        try:
            ctx.engine.lora_spec(lora_id)
        except KeyError:
            raise HubInputError(f"Unknown LoRA {lora_id!r}.") from None
        if not checkpoint:
            choices = _compatible_checkpoints(ctx, lora_id)
            if not choices:
                raise LocalizedError("err.lora_no_checkpoint", lora=repr(lora_id))
            checkpoint = choices[0][1]
        ctx.content_filter.check_prompt(prompt)
        steps = None if steps in (None, 0, "") else steps  # 0: the checkpoint's default
        owner = owner_of(ctx, request)
        with_lora = GenerationRequest(prompt=prompt, checkpoint=checkpoint, loras=((lora_id, weight),), seed=seed, steps=steps,
                                      owner=owner)
        without = GenerationRequest(prompt=prompt, checkpoint=checkpoint, seed=seed, steps=steps, owner=owner)
        charge_images(ctx, request, 2)
        # Both submitted together: checked first, and one batched call when the engine can share it.
        with engine_call(ctx, request, "lora", progress, lang) as cancel:
            first, second = ctx.engine.run_many([with_lora, without], cancel=cancel)
        (with_path, _), (without_path, _) = gallery_items(ctx, first + second, lang, lambda item: "")
        return with_path, without_path

    return compare


def card_text(ctx: HubContext, lora_id: str | None, lang: str) -> str:
    """The LoRA card in `lang` (the page's language); empty for an unknown LoRA."""
    try:
        return _lora_card(ctx, lora_id, lang)[0]
    except KeyError:
        return ""


def build_tab(ctx: HubContext) -> tuple[gr.Dropdown, gr.Markdown]:
    """The tab; returns the LoRA choice and its card (the app writes the card in the page's language)."""
    loras = _lora_choices(ctx)
    first = loras[0][1] if loras else None
    card, preview, suggestion = _lora_card(ctx, first)
    compatible = _compatible_checkpoints(ctx, first)
    if not loras:
        gr.Markdown(t("ui.lora.none_registered"))
    with gr.Row():
        with gr.Column(scale=2):
            lora = gr.Dropdown(choices=loras, value=first, label=t("ui.lora.lora"), allow_custom_value=True, elem_id="lora-choice")
            card_md = gr.Markdown(card, elem_id="lora-card")
            preview_image = gr.Image(value=preview, label=t("ui.lora.preview"), interactive=False, height=160)
        with gr.Column(scale=3):
            prompt = gr.Textbox(label=t("ui.common.prompt"), value=suggestion, lines=2, max_length=ctx.config.limits.max_prompt_chars,
                                elem_id="lora-prompt")
            with gr.Row():
                checkpoint = gr.Dropdown(
                    choices=compatible, value=compatible[0][1] if compatible else None, label=t("ui.common.checkpoint"),
                    allow_custom_value=True,
                )
                weight = gr.Slider(
                    -1.0, 2.0, value=ctx.engine.lora_spec(first).default_weight if first else 0.8, step=0.05,
                    label=t("ui.lora.weight"),
                )
                seed = gr.Number(value=0, precision=0, minimum=0, maximum=MAX_SEED, label=t("ui.common.seed"))
            steps = gr.Slider(0, ctx.config.limits.max_steps, value=0, step=1, label=t("ui.common.steps_default"), elem_id="lora-steps")
            with gr.Row():
                run = gr.Button(t("ui.lora.compare"), variant="primary", elem_id="lora-compare-button", scale=3)
                stop = stop_button("lora")
            with gr.Row():
                with_image = gr.Image(label=t("ui.lora.with"), format="png", interactive=False, elem_id="lora-with")
                without_image = gr.Image(label=t("ui.lora.without"), format="png", interactive=False, elem_id="lora-without")

    def on_lora(lora_id: str | None, request: gr.Request):
        try:
            card, preview, suggestion = _lora_card(ctx, lora_id, page_language(request))
        except KeyError:
            return gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()
        choices = _compatible_checkpoints(ctx, lora_id)
        default_weight = ctx.engine.lora_spec(lora_id).default_weight if lora_id else 0.8
        return card, preview, suggestion, gr.Dropdown(choices=choices, value=choices[0][1] if choices else None), default_weight

    lora.change(on_lora, [lora], [card_md, preview_image, prompt, checkpoint, weight], api_visibility="private")
    lora_training_section(ctx, lora)
    comparing = run.click(
        make_compare_fn(ctx),
        inputs=[lora, prompt, checkpoint, weight, seed, steps],
        outputs=[with_image, without_image],
        api_name="lora_compare",
        **gpu_event_options(ctx),
    )
    wire_stop(ctx, stop, "lora", comparing)
    return lora, card_md


# -- training a character LoRA from uploads --------------------------------------------------------

TRAINABLE_FAMILIES = ("sd15",)


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:48]


def _captioner(ctx: HubContext):
    """Tags for captions from the hub's tagger judge; None (trigger word only) if none loads."""
    try:
        tagger = load_judges(ctx.config, ["tagger"], data_dir=ctx.data_dir).tagger
    except Exception:  # noqa: BLE001 - captions are a nicety; the trigger word still trains
        log.exception("no tagger for LoRA captions")
        return None
    if tagger is None:
        return None
    return lambda images: [[tag for tag in found if not tag.startswith("rating")] for found in tagger.tag_images(images)]


def make_train_fn(ctx: HubContext):
    limits = ctx.config.limits

    @gpu_function
    @user_errors
    def train(files: list[str] | None, name: str, trigger: str, checkpoint: str, steps: float,
              request: gr.Request = None, progress: gr.Progress = gr.Progress()):  # type: ignore[assignment]

        who = allowed(ctx, request, "train_lora")  # GPU time: signed-in users only, within their quota
        files = [f for f in (files or []) if f]
        if not limits.lora_upload_min_images <= len(files) <= limits.lora_upload_max_images:
            raise LocalizedError("err.lora_upload_count", low=limits.lora_upload_min_images, high=limits.lora_upload_max_images,
                                 count=len(files))
        images = []
        for path in files:
            try:
                images.append(open_upload(path, max_bytes=limits.max_upload_bytes, max_pixels=limits.max_upload_pixels))
            except HubInputError as err:
                raise HubInputError(f"{Path(path).name}: {err}") from None
        if not (name or "").strip():
            raise LocalizedError("err.lora_name")
        lora_id = "user-" + _slug(name)
        check_id_format(lora_id, "LoRA")
        if any(spec.id == lora_id for spec in ctx.engine.lora_specs()):
            raise HubInputError(f"A LoRA named {name!r} already exists; choose another name.")
        trigger = validate_trigger_word(trigger)
        spec = ctx.engine.spec(checkpoint)
        if spec.family not in TRAINABLE_FAMILIES:
            raise HubInputError(f"LoRA training here supports {', '.join(TRAINABLE_FAMILIES)} checkpoints; {spec.id!r} is {spec.family}.")
        steps_int = check_int(steps, "Training steps", 10, 2000)
        lang = page_language(request)
        progress(0, desc=tr(lang, "msg.lora.captioning"))
        captioner = _captioner(ctx)
        out_dir = ctx.engine.trained_lora_dir / lora_id

        def job(cancel):
            def step_done(step: int, total: int, loss: float) -> None:
                # Stop or the watchdog: the training stops here, before anything is written.
                if cancel.is_set():
                    raise JobCancelled(cancel.reason)
                progress((step, total), desc=tr(lang, "msg.lora.training", loss=f"{loss:.3f}"))

            pipe = ctx.engine.pipeline(spec.id)
            # The trainer checks the count again: with the hub's limits, not its library defaults.
            training = LoraTrainingConfig(steps=steps_int, min_images=limits.lora_upload_min_images,
                                          max_images=limits.lora_upload_max_images)
            return train_character_lora(pipe, images, trigger, out_dir, config=training, tagger=captioner,
                                        progress=step_done)

        progress(0, desc=tr(lang, "msg.lora.waiting"))
        with quota_spent(ctx, who, "lora_training", 1, ctx.config.quotas.lora_trainings_per_day), \
                engine_call(ctx, request, "lora-train") as cancel:
            result = ctx.engine.run_exclusive(lambda: job(cancel), cancel=cancel)
        images[0].convert("RGB").save(out_dir / "preview.png")
        ctx.engine.register_lora(
            LoraSpec(
                id=lora_id,
                name=name.strip()[:80],
                source=f"folder:{out_dir}",
                base_family=spec.family,
                base_checkpoints=[spec.id],
                trigger_words=[trigger],
                preview=str(out_dir / "preview.png"),
                description=f"Trained on this hub from {len(images)} images, {result.steps} steps on {spec.id}.",
            )
        )
        summary = tr(lang, "msg.lora.trained", lora=lora_id, checkpoint=spec.id, steps=result.steps, seconds=f"{result.seconds:.0f}",
                     loss=f"{result.final_loss:.4f}", trigger=trigger)
        return summary, gr.Dropdown(choices=_lora_choices(ctx), value=lora_id)

    return train


def lora_training_section(ctx: HubContext, lora_dropdown: gr.Dropdown) -> None:
    trainable = [(label, cid) for label, cid in checkpoint_choices(ctx, task="text2img") if ctx.engine.checkpoint_spec(cid).family in TRAINABLE_FAMILIES]
    with gr.Accordion(t("ui.lora.train_title"), open=False):
        gr.Markdown(t("ui.lora.train_help"))
        files = gr.File(file_count="multiple", file_types=["image"], type="filepath", label=t("ui.lora.train_images"))
        with gr.Row():
            name = gr.Textbox(label=t("ui.lora.train_name"), placeholder="My character")
            trigger = gr.Textbox(label=t("ui.lora.train_trigger"), placeholder="my_character")
            checkpoint = gr.Dropdown(choices=trainable, value=trainable[0][1] if trainable else None, label=t("ui.lora.train_base"),
                                     allow_custom_value=True)
            steps = gr.Slider(10, 1000, value=300, step=10, label=t("ui.lora.train_steps"))
        with gr.Row():
            train_button = gr.Button(t("ui.lora.train_run"), variant="primary", scale=3)
            stop = stop_button("lora-train")
        result = gr.Markdown()
    training = train_button.click(
        make_train_fn(ctx),
        inputs=[files, name, trigger, checkpoint, steps],
        outputs=[result, lora_dropdown],
        api_name="train_lora",
        **gpu_event_options(ctx),
    )
    wire_stop(ctx, stop, "lora-train", training)
