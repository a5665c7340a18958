"""Small pieces the tabs share: turning hub errors into gr.Error, choices, the ZeroGPU hook."""

from __future__ import annotations

import functools
import os
import time
from typing import Any, Callable

import gradio as gr

from hub.errors import EngineError, HubInputError
from hub.ui.context import HubContext

GPU_CONCURRENCY_ID = "gpu"


def user_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Show HubInputError / EngineError as a short gr.Error; anything else stays a server error."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (HubInputError, EngineError) as err:
            raise gr.Error(str(err), print_exception=False) from None

    return wrapper


def gpu_function(fn: Callable[..., Any]) -> Callable[..., Any]:
    """On ZeroGPU Spaces, mark the function with `spaces.GPU`; elsewhere leave it as it is."""
    if os.environ.get("SPACES_ZERO_GPU"):
        try:
            import spaces  # type: ignore[import-not-found]
        except ImportError:
            return fn
        return spaces.GPU(duration=120)(fn)
    return fn


def throttled_progress(progress: Any, desc: str, every_s: float = 0.25) -> Callable[[int, int], None]:
    """Forward engine step callbacks to a gr.Progress at most every `every_s` seconds (and the last
    step): each update is a message to the browser, and a fast model would otherwise send dozens."""
    last = [0.0]

    def update(step: int, total: int) -> None:
        now = time.monotonic()
        if step >= total or now - last[0] >= every_s:
            last[0] = now
            progress((step, total), desc=desc)

    return update


def gpu_event_options(ctx: HubContext) -> dict[str, Any]:
    """Every GPU event shares one queue. Its limit lets compatible requests reach the engine
    together, where the one worker thread batches them; GPU work itself is never concurrent."""
    return {"concurrency_id": GPU_CONCURRENCY_ID, "concurrency_limit": ctx.config.engine.max_batch_images}


def checkpoint_choices(ctx: HubContext, task: str | None = None) -> list[tuple[str, str]]:
    ids = ctx.engine.checkpoint_ids(available_only=True, task=task)
    return [(ctx.engine.checkpoint_spec(cid).name, cid) for cid in ids]


def checkpoint_note(ctx: HubContext, checkpoint_id: str | None) -> str:
    try:
        spec = ctx.engine.checkpoint_spec(checkpoint_id or ctx.config.default_checkpoint)
    except KeyError:
        return ""
    note = f"**{spec.name}** · family `{spec.family}`"
    if spec.description:
        note += f" — {spec.description}"
    return note


def status_markdown(ctx: HubContext) -> str:
    """Which checkpoints serve here, and why the others do not."""
    rows = ["| checkpoint | family | status |", "|---|---|---|"]
    for spec in ctx.engine.checkpoint_specs():
        status = ctx.engine.availability()[spec.id]
        label = "available" if status.available else f"unavailable: {status.reason}"
        if status.available and spec.is_demo and "random" in spec.source:
            label += " (random weights: images are noise)"
        rows.append(f"| {spec.name} (`{spec.id}`) | {spec.family} | {label} |")
    return "\n".join(rows)
