"""Small pieces the tabs share: hub errors as gr.Error in the page's language, choices, uploads,
the ZeroGPU hook."""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Callable

import gradio as gr

from core.errors import without_paths
from hub.engine.requests import CancelToken
from hub.errors import EngineError, HubInputError
from hub.images import open_upload
from hub.ui.context import HubContext
from hub.ui.i18n import localize_error, page_language, t, tr
from hub.ui.identity import address_of, session_of

GPU_CONCURRENCY_ID = "gpu"


def find_request(args: tuple[Any, ...], kwargs: dict[str, Any]) -> gr.Request | None:
    for value in (*args, *kwargs.values()):
        if isinstance(value, gr.Request):
            return value
    return None


def user_error(err: BaseException, request: Any) -> gr.Error:
    """A hub error as a short gr.Error in the page's language, with no server path in it (a library's
    message inside an engine error often names a folder)."""
    return gr.Error(without_paths(localize_error(err, page_language(request))), print_exception=False)


def user_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Show HubInputError / EngineError as a short gr.Error in the page's language (the function takes
    a `gr.Request` for that); anything else stays a server error."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (HubInputError, EngineError) as err:
            raise user_error(err, find_request(args, kwargs)) from None

    return wrapper


def file_path(item: Any) -> str | None:
    """A path from what file and gallery inputs hand over (a path, a FileData dict, a (path, caption))."""
    if item is None:
        return None
    if isinstance(item, (list, tuple)) and item:
        return file_path(item[0])
    if isinstance(item, dict):
        for key in ("path", "name", "image"):
            if item.get(key):
                return file_path(item[key])
        return None
    path = getattr(item, "path", None) or getattr(item, "name", None)
    return str(path) if path else (str(item) if isinstance(item, str) else None)


def load_references(files: Any, limits: Any) -> tuple[Any, ...]:
    """Reference images from a multiple-file input (or the API's list of files), each checked by the
    upload reader; the engine checks how many the checkpoint takes."""
    if not files:
        return ()
    items = files if isinstance(files, (list, tuple)) else [files]
    images = []
    for number, item in enumerate(items, start=1):
        path = file_path(item)
        if not path:
            continue
        images.append(open_upload(path, max_bytes=limits.max_upload_bytes, max_pixels=limits.max_upload_pixels,
                                  what=f"reference {number}"))
    if len(images) > max(limits.max_references, 0):
        raise HubInputError(f"At most {limits.max_references} reference images per request (got {len(images)}).")
    return tuple(images)


def translated_tab(key: str, **kwargs: Any) -> gr.Tab:
    """A tab labelled with a translation key, recorded on the app being built (`translated_tabs`)."""
    tab = gr.Tab(t(key), **kwargs)
    root = gr.context.Context.root_block
    if root is not None:
        root.__dict__.setdefault("_hub_translated_tabs", []).append((tab, key))
    return tab


def translated_tabs(blocks: gr.Blocks) -> list[tuple[gr.Tab, str]]:
    """Every `translated_tab` of an app, with its key."""
    return list(blocks.__dict__.get("_hub_translated_tabs", []))


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


def size_sliders(spec: Any, hub_limits: Any, width: int | None = None, height: int | None = None,
                 steps: int | None = None) -> tuple[gr.Slider, gr.Slider, gr.Slider]:
    """Width, height and steps sliders set to a checkpoint's defaults (or the values given, e.g. a
    recipe's), ending at its own limits."""
    limits, d = spec.limits_within(hub_limits), spec.defaults
    return (gr.Slider(minimum=limits.min_size, maximum=limits.max_size, value=min(width or d.width, limits.max_size)),
            gr.Slider(minimum=limits.min_size, maximum=limits.max_size, value=min(height or d.height, limits.max_size)),
            gr.Slider(minimum=1, maximum=limits.max_steps, value=min(steps or d.steps, limits.max_steps)))


def checkpoint_note(ctx: HubContext, checkpoint_id: str | None, lang: str = "en") -> str:
    try:
        spec = ctx.engine.checkpoint_spec(checkpoint_id or ctx.config.default_checkpoint)
    except KeyError:
        return ""
    note = tr(lang, "msg.checkpoint_note", name=spec.name, family=spec.family)
    if spec.description:
        note += f" — {spec.description}"  # descriptions come from the config, in English
    return note


def status_markdown(ctx: HubContext, lang: str = "en") -> str:
    """Which checkpoints serve here, and why the others do not."""
    rows = [tr(lang, "msg.status.header"), "|---|---|---|"]
    availability = ctx.engine.availability()
    for spec in ctx.engine.checkpoint_specs():
        status = availability[spec.id]
        label = tr(lang, "msg.status.available") if status.available else tr(lang, "msg.status.unavailable", reason=status.reason)
        if status.available and spec.is_demo and "random" in spec.source:
            label += " " + tr(lang, "msg.status.random")
        rows.append(f"| {spec.name} (`{spec.id}`) | {spec.family} | {label} |")
    return "\n".join(rows)


# -- engine calls the page may stop -----------------------------------------------------------------
def owner_of(ctx: HubContext, request: Any) -> str:
    """Whose work a job is, for the engine's turn-taking: the signed session, else the address."""
    return session_of(ctx, request) or address_of(ctx.config, request) or ""


@contextmanager
def engine_call(ctx: HubContext, request: Any, tab: str, progress: Any = None, lang: str = "en") -> Iterator[CancelToken]:
    """The token for one engine call of `tab`: Stop in that tab, or the page going away, sets it.
    With `progress`, the page first shows the estimated wait."""
    if progress is not None:
        wait = ctx.engine.estimated_wait()
        desc = tr(lang, "msg.progress.waiting", seconds=f"{wait:.0f}") if wait >= 1 else tr(lang, "msg.progress.queued")
        progress(0, desc=desc)
    with ctx.calls.track(session_of(ctx, request), tab, request) as token:
        yield token


def stop_button(tab: str) -> gr.Button:
    """The Stop button of a tab (wire it with `wire_stop` once the tab's run event exists)."""
    return gr.Button(t("ui.common.stop"), variant="stop", elem_id=f"{tab}-stop")


def wire_stop(ctx: HubContext, button: gr.Button, tab: str, event: Any) -> None:
    """Stop cancels the engine work of this session's calls in `tab`, and the page stops waiting."""

    def stop(request: gr.Request) -> None:
        ctx.calls.stop(session_of(ctx, request), tab)

    button.click(stop, None, None, cancels=[event], queue=False, api_visibility="private")
