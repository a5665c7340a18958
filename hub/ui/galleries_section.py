"""Submit tab section: reference galleries from authors (issue #13).

An author uploads 3-20 images of one character for a character id of a suite (characters the tagger
does not know are judged against such a gallery by the reference judge). Stored through
`evals.galleries.save_gallery(data_dir, suite_name, character_id, images)` (a record with `.path`,
`.sha256`, `.n_images`); the table lists `evals.galleries.list_galleries(data_dir)`. The page never
sees a gallery's folder (a server path): the table shows only GALLERY_COLUMNS, and messages name the
suite and character.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd

from hub.errors import HubInputError
from hub.images import open_upload
from hub.ui.common import file_path, user_error
from hub.ui.context import HubContext
from hub.ui.i18n import GALLERY_MAX_IMAGES, GALLERY_MIN_IMAGES, LocalizedError, page_language, t, tr
from hub.ui.identity import allowed, quota_spent
from hub.validation import check_id_format

log = logging.getLogger(__name__)
GALLERY_COLUMNS = ["suite", "character_id", "n_images", "sha256"]


def _galleries_module() -> Any:
    try:
        from evals import galleries
    except ImportError:
        return None
    return galleries


def suite_characters(suite_name: str | None) -> list[str]:
    """The character ids of a suite (items of character and reference suites)."""
    if not suite_name:
        return []
    try:
        from evals.suites import get_suite

        suite = get_suite(suite_name)
    except Exception:  # noqa: BLE001 - an unknown suite simply offers no ids
        return []
    ids = []
    for item in suite.items:
        character = getattr(item, "character", None)
        ids.append(str(character if isinstance(character, str) and character else item.id))
    return list(dict.fromkeys(ids))


def _record_row(record: Any) -> dict[str, Any]:
    if isinstance(record, dict):
        data = dict(record)
    elif dataclasses.is_dataclass(record):
        data = dataclasses.asdict(record)
    elif hasattr(record, "model_dump"):
        data = record.model_dump()
    else:
        data = {k: v for k, v in vars(record).items() if not k.startswith("_")}
    data = {("suite" if k == "suite_name" else k): (str(v) if isinstance(v, Path) else v) for k, v in data.items()}
    return data


def galleries_table(ctx: HubContext) -> pd.DataFrame:
    """The stored galleries for the page: only GALLERY_COLUMNS (a record's `path` is a server folder)."""
    module = _galleries_module()
    if module is None:
        return pd.DataFrame(columns=GALLERY_COLUMNS)
    listed = module.list_galleries(ctx.data_dir)
    frame = listed if isinstance(listed, pd.DataFrame) else pd.DataFrame([_record_row(r) for r in listed or []])
    if frame.empty:
        return pd.DataFrame(columns=GALLERY_COLUMNS)
    return frame[[c for c in GALLERY_COLUMNS if c in frame.columns]].reset_index(drop=True)


def save_uploaded_gallery(ctx: HubContext, suite_name: str | None, character_id: str | None, files: Any,
                          owner: str | None = None) -> Any:
    """Check and store one gallery; nothing is written unless every check passes. With an `owner`
    (anyone but a maintainer) it waits for a maintainer's review instead of replacing the one in use."""
    limits = ctx.config.limits
    module = _galleries_module()
    if module is None:
        raise LocalizedError("err.galleries_unavailable")
    if not suite_name:
        raise LocalizedError("err.gallery_suite")
    character = check_id_format((character_id or "").strip(), "character id")
    paths = [p for p in (file_path(item) for item in (files or [])) if p]
    if not GALLERY_MIN_IMAGES <= len(paths) <= GALLERY_MAX_IMAGES:
        raise LocalizedError("err.gallery_count", low=GALLERY_MIN_IMAGES, high=GALLERY_MAX_IMAGES, count=len(paths))
    images = []
    for path in paths:
        try:
            images.append(open_upload(path, max_bytes=limits.max_upload_bytes, max_pixels=limits.max_upload_pixels))
        except HubInputError as err:
            raise HubInputError(f"{Path(path).name}: {err}") from None
    if owner is not None:
        return module.stage_gallery(ctx.data_dir, suite_name, character, images, owner=owner)
    return module.save_gallery(ctx.data_dir, suite_name, character, images)


def galleries_section(ctx: HubContext, suites: list[str]) -> None:
    gr.Markdown(t("ui.galleries.title"))
    gr.Markdown(t("ui.galleries.help"))
    if _galleries_module() is None:
        gr.Markdown(t("ui.galleries.unavailable"))
    with gr.Row():
        suite = gr.Dropdown(label=t("ui.submit.suite"), choices=suites, value=suites[0] if suites else None,
                            allow_custom_value=not suites, elem_id="gallery-suite")
        character = gr.Dropdown(label=t("ui.galleries.character"), choices=suite_characters(suites[0] if suites else None),
                                allow_custom_value=True, elem_id="gallery-character")
    files = gr.File(file_count="multiple", file_types=["image"], type="filepath", label=t("ui.galleries.images"),
                    elem_id="gallery-files")
    save = gr.Button(t("ui.galleries.save"), variant="primary", elem_id="gallery-save")
    message = gr.Markdown(elem_id="gallery-message")
    table = gr.Dataframe(interactive=False, wrap=True, label=t("ui.galleries.table"), elem_id="gallery-table")

    def on_suite(suite_name: str | None) -> Any:
        return gr.Dropdown(choices=suite_characters(suite_name), value=None)

    def on_save(suite_name: str | None, character_id: str | None, uploads: Any, request: gr.Request) -> tuple[str, Any, Any]:
        try:
            who = allowed(ctx, request, "upload_gallery")
            # Galleries decide scores: a maintainer's upload is used at once, anyone else's is reviewed.
            owner = None if who.is_maintainer else who.user
            with quota_spent(ctx, who, "gallery", 1, ctx.config.quotas.galleries_per_day):
                record = save_uploaded_gallery(ctx, suite_name, character_id, uploads, owner=owner)
        except HubInputError as err:
            raise user_error(err, request) from None
        if owner is not None:
            text = tr(page_language(request), "msg.galleries.pending", n=record.n_images, suite=suite_name,
                      character=character_id, sha=record.sha256[:12])
            return text, galleries_table(ctx), gr.update(value=None)
        text = tr(page_language(request), "msg.galleries.saved", n=getattr(record, "n_images", "?"), suite=suite_name,
                  character=character_id, sha=str(getattr(record, "sha256", ""))[:12])
        return text, galleries_table(ctx), gr.update(value=None)

    private = {"api_visibility": "private", "concurrency_limit": 2}
    suite.change(on_suite, [suite], [character], **private)
    # `/upload_gallery(suite, character, files)`: signed-in users; reviewed by a maintainer before use.
    save.click(on_save, [suite, character, files], [message, table, files], api_name="upload_gallery", concurrency_limit=2)
    root = gr.context.Context.root_block
    if root is not None:
        root.load(lambda: galleries_table(ctx), outputs=[table], **private)
