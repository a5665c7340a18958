"""X/Y grid tab and the `/xy_grid` API endpoint: one seed, one or two axes, a labelled grid image plus
every cell as its own PNG with its recipe. The logic lives in `hub/grid.py`; this file is the page."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone
from typing import Any

import gradio as gr
from PIL.PngImagePlugin import PngInfo

from hub.engine import GenerationRequest
from hub.grid import AXIS_KINDS, compose_grid, parse_axis, plan_grid, run_grid
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
from hub.ui.identity import charge_images
from hub.ui.i18n import page_language, t, tr
from hub.validation import MAX_SEED, parse_lora_list


def _axis_choices(with_none: bool) -> list[tuple[Any, str]]:
    choices = [(t(f"ui.grid.axis.{kind}"), kind) for kind in AXIS_KINDS]
    return ([(t("ui.grid.axis.none"), "none")] if with_none else []) + choices


def make_grid_fn(ctx: HubContext):
    limits = ctx.config.limits

    @gpu_function
    @user_errors
    def xy_grid(
        prompt: str,
        x_type: str,
        x_values: str,
        y_type: str | None = None,
        y_values: str | None = None,
        checkpoint: str | None = None,
        seed: float = 0,
        negative_prompt: str | None = None,
        loras: str | None = None,
        steps: float | None = None,
        cfg: float | None = None,
        request: gr.Request = None,  # type: ignore[assignment]
        progress: gr.Progress = gr.Progress(),
    ) -> tuple[str, list[tuple[str, str]], str]:
        """A same-seed comparison grid: returns (grid PNG, the cells as PNGs with their recipes, a summary)."""
        lang = page_language(request)
        x = parse_axis(x_type, x_values)
        y = parse_axis(y_type, y_values)
        base = GenerationRequest(
            prompt=prompt or "",
            negative_prompt=negative_prompt or "",
            checkpoint=checkpoint or None,
            loras=parse_lora_list(loras, limits),
            steps=None if steps in (None, 0, "") else steps,
            cfg=None if cfg in (None, "") or (isinstance(cfg, (int, float)) and cfg < 0) else cfg,
            seed=seed,
            owner=owner_of(ctx, request),
        )
        plan = plan_grid(base, x, y, max_cells=limits.max_grid_cells)  # refused here, before any work
        ctx.content_filter.check_prompt(*{cell.prompt for row in plan for cell in row}, base.negative_prompt)
        charge_images(ctx, request, sum(len(row) for row in plan))
        with engine_call(ctx, request, "grid", progress, lang) as cancel:
            result = run_grid(ctx.engine, base, x, y, max_cells=limits.max_grid_cells, cancel=cancel)
        checked = ctx.content_filter.filter_outputs(result.flat)
        shown = [item for item, _ in checked]
        paths = ctx.save_outputs(shown, folder="grids")
        width = len(result.cells[0])
        captions = []
        for index, ((item, verdict), path) in enumerate(zip(checked, paths, strict=True)):
            caption = result.cell_label(index // width, index % width)
            if verdict is not None:
                caption += " · " + tr(lang, verdict.message_key, **verdict.values)
            captions.append((path, caption))
        rows = [[item.image for item in shown[r * width:(r + 1) * width]] for r in range(len(result.cells))]
        grid = compose_grid(rows, result.x.labels, result.y.labels if result.y is not None else None)
        grid_path = _save_grid(ctx, grid, result, base)
        first = result.flat[0]
        withheld = sum(verdict is not None for _, verdict in checked)
        info = tr(lang, "msg.grid.summary", cells=len(shown), seed=first.seed, calls=_calls(result))
        if withheld:
            info += " " + tr(lang, "msg.grid.withheld", count=withheld)
        return grid_path, captions, info

    return xy_grid


def _calls(result: Any) -> int:
    """How many pipeline calls the cells took (cells with equal settings share one)."""
    keys = {(c.checkpoint, c.recipe.width, c.recipe.height, c.recipe.steps, c.recipe.cfg, c.recipe.sampler, c.recipe.loras)
            for c in result.flat}
    return len(keys)


def _save_grid(ctx: HubContext, grid: Any, result: Any, base: GenerationRequest) -> str:
    day = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    path = ctx.data_dir / "grids" / day / f"grid-{uuid.uuid4().hex}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    info = PngInfo()
    info.add_text("xy_grid", json.dumps({
        "x": {"kind": result.x.kind, "values": list(result.x.values)},
        "y": {"kind": result.y.kind, "values": list(result.y.values)} if result.y is not None else None,
        "seed": result.flat[0].seed, "prompt": base.prompt,
    }, ensure_ascii=False))
    grid.save(path, format="PNG", pnginfo=info)
    return str(path)


def build_tab(ctx: HubContext) -> None:
    config = ctx.config
    limits = config.limits
    choices = checkpoint_choices(ctx, task="text2img")
    ids = [cid for _, cid in choices]
    gr.Markdown(t("ui.grid.intro"))
    with gr.Row():
        with gr.Column(scale=3):
            prompt = gr.Textbox(label=t("ui.common.prompt"), lines=2, max_length=limits.max_prompt_chars,
                                value="1girl, smile", elem_id="grid-prompt")
            negative = gr.Textbox(label=t("ui.common.negative_prompt"), lines=1, max_length=limits.max_prompt_chars)
            with gr.Row():
                checkpoint = gr.Dropdown(choices=choices, value=config.default_checkpoint if config.default_checkpoint in ids else None,
                                         label=t("ui.grid.base_checkpoint"), allow_custom_value=True)
                loras = gr.Textbox(label=t("ui.common.loras"), placeholder="demo-lora-...:0.8")
                seed = gr.Number(value=0, precision=0, minimum=0, maximum=MAX_SEED, label=t("ui.common.seed"))
            with gr.Row():
                steps = gr.Slider(0, limits.max_steps, value=0, step=1, label=t("ui.common.steps_default"), elem_id="grid-steps")
                cfg = gr.Slider(-1, limits.max_cfg, value=-1, step=0.5, label=t("ui.grid.cfg_default"))
            with gr.Row():
                x_type = gr.Dropdown(choices=_axis_choices(False), value="checkpoint", label=t("ui.grid.x_type"), elem_id="grid-x-type")
                x_values = gr.Textbox(value=", ".join(ids[:2]), label=t("ui.grid.x_values"), info=t("ui.grid.values_help"),
                                      elem_id="grid-x-values")
            with gr.Row():
                y_type = gr.Dropdown(choices=_axis_choices(True), value="cfg", label=t("ui.grid.y_type"), elem_id="grid-y-type")
                y_values = gr.Textbox(value="2, 5", label=t("ui.grid.y_values"), elem_id="grid-y-values")
            with gr.Row():
                run = gr.Button(t("ui.grid.run"), variant="primary", elem_id="grid-button", scale=3)
                stop = stop_button("grid")
        with gr.Column(scale=3):
            grid_image = gr.Image(label=t("ui.grid.image"), type="filepath", format="png", interactive=False, elem_id="grid-image")
            info = gr.Markdown(elem_id="grid-info")
            cells = gr.Gallery(label=t("ui.grid.cells"), format="png", columns=4, height=240, interactive=False, elem_id="grid-cells")
    drawing = run.click(
        make_grid_fn(ctx),
        inputs=[prompt, x_type, x_values, y_type, y_values, checkpoint, seed, negative, loras, steps, cfg],
        outputs=[grid_image, cells, info],
        api_name="xy_grid",
        api_description="Same-seed comparison grid. x_type / y_type: one of " + ", ".join(AXIS_KINDS)
        + " (y_type may be 'none'). Values are comma-separated (prompts: '|'-separated); numbers also as ranges "
        "'1-5', '1-9 (+2)', '2-8 [4]'. Returns (grid image, cells with their recipes, summary).",
        **gpu_event_options(ctx),
    )
    wire_stop(ctx, stop, "grid", drawing)
