"""Report card tab: one checkpoint's numbers from every board (with intervals and ranks), its arena
rating, sample images per tier and language, the characters it fails on and its recipe defaults
(`leaderboards/report_cards.py`), downloadable as Markdown (for a model card) and PNG.

Deep link: `?model=ID` opens this tab on that checkpoint; every board links its checkpoints here.
API (read-only): `/report_card(checkpoint)` -> the card as Markdown.
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path
from typing import Any

import gradio as gr
from sqlalchemy import select

from hub.errors import HubInputError
from hub.ui.common import user_errors
from hub.ui.context import HubContext
from hub.ui.i18n import t
from leaderboards.boards import BoardSource
from leaderboards.report_cards import ReportCard, build_report_card, report_markdown, report_png
from leaderboards.schema import Checkpoint

TAB_ID = "report"
PRIVATE = {"api_visibility": "private", "concurrency_limit": 4}


def card_ids(ctx: HubContext) -> list[str]:
    """Checkpoints a card can show: every one on record that is not hidden."""
    with ctx.db.session() as session:
        return list(session.execute(select(Checkpoint.id).where(Checkpoint.hidden.is_(False)).order_by(Checkpoint.id)).scalars())


def defaults_of(ctx: HubContext, checkpoint: str) -> dict[str, Any]:
    try:
        spec = ctx.engine.checkpoint_spec(checkpoint)
    except KeyError:
        return {}
    return spec.defaults.model_dump()


def load_card(ctx: HubContext, source: BoardSource, checkpoint: Any) -> ReportCard:
    if not isinstance(checkpoint, str) or not checkpoint.strip():
        raise HubInputError("Choose a checkpoint.")
    checkpoint = checkpoint.strip()
    try:
        return build_report_card(source, checkpoint, defaults_of(ctx, checkpoint))
    except KeyError:
        raise HubInputError(f"Unknown checkpoint '{checkpoint[:100]}': no report card.") from None


def card_links(ids: list[str]) -> str:
    """Markdown links to the report cards of `ids` (a board's checkpoints)."""
    return " · ".join(f"[{cid}](?model={cid})" for cid in ids)


def build_tab(ctx: HubContext) -> tuple[gr.Dropdown, Any]:
    """The tab; returns its checkpoint menu and the function that fills the card (for the deep link)."""
    source = BoardSource(ctx.db)
    export_dir = Path(tempfile.mkdtemp(prefix="hub-cards-"))  # served: outside the data dir

    gr.Markdown(t("ui.report.intro"))
    with gr.Row():
        checkpoint = gr.Dropdown(choices=card_ids(ctx), label=t("ui.report.checkpoint"), allow_custom_value=True,
                                 elem_id="report-checkpoint")
        show = gr.Button(t("ui.report.show"), variant="primary", elem_id="report-show", scale=0)
        markdown_file = gr.DownloadButton(t("ui.report.download_md"), interactive=False, elem_id="report-download-md", scale=0)
        png_file = gr.DownloadButton(t("ui.report.download_png"), interactive=False, elem_id="report-download-png", scale=0)
    card_text = gr.Markdown(elem_id="report-card")
    images = gr.Gallery(label=t("ui.report.samples"), columns=8, height=200, fit_columns=False, format="png",
                        interactive=False, elem_id="report-samples")

    @user_errors
    def report_card(checkpoint: str, request: gr.Request = None) -> str:  # type: ignore[assignment]
        """One checkpoint's report card as Markdown: every board's headline number with its 95% interval
        and rank, the arena rating, the characters it fails on, its recipe defaults."""
        return report_markdown(load_card(ctx, source, checkpoint))

    @user_errors
    def fill(checkpoint: str, request: gr.Request = None) -> tuple[Any, ...]:  # type: ignore[assignment]
        card = load_card(ctx, source, checkpoint)
        text = report_markdown(card)
        folder = export_dir / hashlib.sha256(text.encode()).hexdigest()[:16]
        folder.mkdir(parents=True, exist_ok=True)
        md_path = folder / f"{card.checkpoint}_report_card.md"
        md_path.write_text(text, encoding="utf-8")
        png_path = report_png(card, folder / f"{card.checkpoint}_report_card.png")
        shown = [(path, f"{tier} · {lang}") for tier, lang, path in card.samples]
        return (text, shown, gr.update(value=str(md_path), interactive=True), gr.update(value=str(png_path), interactive=True),
                gr.update(choices=card_ids(ctx), value=card.checkpoint))

    outputs = [card_text, images, markdown_file, png_file, checkpoint]
    show.click(fill, inputs=[checkpoint], outputs=outputs, **PRIVATE)
    checkpoint.input(fill, inputs=[checkpoint], outputs=outputs, **PRIVATE)
    gr.api(report_card, api_name="report_card", concurrency_limit=4)
    return checkpoint, (fill, outputs)
