"""Who can draw…? tab: type a character's name in any of the suite's languages; every served checkpoint
(or the ones picked) draws it with a few seeds at eval priority, and the card says how often each one
was recognised, with its interval, the images, and who judged (`evals/probe.py`).

API: `/probe_character(name, language, checkpoints, seeds)` (GPU work: an identity with the
`probe_character` permission, charged to the daily eval quota for the images not already cached) and
`/probe_answers(name, language)` (read-only: the answers on record, nothing drawn).
"""

from __future__ import annotations

from typing import Any

import gradio as gr
import pandas as pd

from evals.probe import (
    ZERO_SHOT,
    ProbeCard,
    ProbeContext,
    ProbeError,
    check_name,
    check_request,
    cost_images,
    run_probe,
    served_checkpoints,
)
from hub.ui.common import user_errors
from hub.ui.context import HubContext
from hub.ui.i18n import page_language, t, tr
from hub.ui.identity import allowed, quota_spent
from leaderboards import probes
from leaderboards.intervals import format_estimate
from leaderboards.plots import hit_rate_plot

PROBE_CONCURRENCY = {"concurrency_id": "probe", "concurrency_limit": 1}  # beside, not inside, the interactive GPU queue


def probe_context(ctx: HubContext) -> ProbeContext:
    """One probe context per app (it keeps the loaded judges)."""
    if ctx.probe is None:
        ctx.probe = ProbeContext(ctx.engine, ctx.db, ctx.config, ctx.data_dir)
    return ctx.probe


def card_markdown(card: ProbeCard, lang: str) -> str:
    """The card's text: the question, who judged (zero-shot said plainly), one line per checkpoint."""
    judges = ", ".join(sorted({row.judge_id for row in card.rows}))
    lines = [f"### {tr(lang, 'msg.probe.title', name=card.name)}",
             tr(lang, "msg.probe.prompt", prompt=card.prompt, language=card.language)]
    if card.decided_by == ZERO_SHOT:
        lines.append("⚠️ " + tr(lang, "msg.probe.zero_shot", judge=judges))
    elif card.decided_by == "tagger":
        lines.append(tr(lang, "msg.probe.by_tagger", judge=judges))
    else:
        lines.append(tr(lang, "msg.probe.by_suite", judge=judges, character=card.character or card.name, suite=card.suite))
    lines += ["", f"| {tr(lang, 'msg.probe.col_checkpoint')} | {tr(lang, 'msg.probe.col_hits')} | "
                  f"{tr(lang, 'msg.probe.col_rate')} |", "|---|---|---|"]
    for row in sorted(card.rows, key=lambda r: -r.rate):
        cached = " · " + tr(lang, "msg.probe.cached") if row.cached else ""
        lines.append(f"| {row.checkpoint} | {row.hits}/{row.n}{cached} | {format_estimate(row.rate, row.lower, row.upper, percent=True)} |")
    lines += ["", tr(lang, "msg.probe.interval_note")]
    if card.generated == 0:
        lines.append(tr(lang, "msg.probe.all_cached"))
    return "\n".join(lines)


def card_gallery(card: ProbeCard) -> list[tuple[str, str]]:
    return [(path, f"{row.checkpoint} #{i + 1}") for row in card.rows for i, path in enumerate(row.images)]


def card_plot(card: ProbeCard) -> Any:
    frame = pd.DataFrame([{"checkpoint": r.checkpoint, "hit_rate": r.rate, "lower": r.lower, "upper": r.upper} for r in card.rows])
    return hit_rate_plot(frame, title=f"Who can draw {card.name}?")


def make_probe_fn(ctx: HubContext):
    @user_errors
    def probe_character(name: str, language: str = "en", checkpoints: list[str] | None = None, seeds: float = 4,
                        request: gr.Request = None,  # type: ignore[assignment]
                        progress: gr.Progress = gr.Progress()) -> tuple[str, list[tuple[str, str]], Any, dict[str, Any]]:
        """Who can draw this character? Every served checkpoint (or those given) draws `name` with `seeds`
        seeds in the probe suite's template of `language`; returns the card (Markdown), the images, a plot
        of hit rates with 95% intervals, and the card as data. Answers already on record are reused."""
        probe = probe_context(ctx)
        who = allowed(ctx, request, "probe_character")
        name, language, chosen, seeds = check_request(probe, probe.suite, name, language, checkpoints, seeds)
        images = cost_images(probe, name, language, chosen, seeds)
        quotas = ctx.config.quotas
        limit = quotas.eval_gpu_hours_per_day * 3600

        def report(done: int, total: int, desc: str) -> None:
            progress(done / max(total, 1), desc=desc)

        # The images still to draw cost eval GPU time (given back when the probe fails); cached answers are free.
        with quota_spent(ctx, who, "eval_gpu_seconds", images * quotas.eval_gpu_seconds_per_image, limit):
            card = run_probe(probe, name, language, chosen, seeds, progress=report)
        lang = page_language(request)
        return card_markdown(card, lang), card_gallery(card), card_plot(card), card.as_dict()

    return probe_character


def make_answers_fn(ctx: HubContext):
    @user_errors
    def probe_answers(name: str, language: str = "en", request: gr.Request = None) -> list[dict[str, Any]]:  # type: ignore[assignment]
        """Probe answers already on record for a character name in a language (read-only: nothing is drawn):
        checkpoint, its version, seeds, hits, judge and whether the verdict was zero-shot."""
        rows = probes.answers_on_record(ctx.db, check_name(name, ctx.config.probe.max_name_chars), language)
        return [{**row, "zero_shot": row["decided_by"] == ZERO_SHOT} for row in rows]

    return probe_answers


def build_tab(ctx: HubContext) -> None:
    probe = probe_context(ctx)
    limits = ctx.config.probe
    try:
        suite = probe.suite
        languages = list(suite.languages)
    except ProbeError:
        languages = ["en"]
    served = served_checkpoints(probe)
    gr.Markdown(t("ui.probe.intro"))
    with gr.Row():
        with gr.Column(scale=2):
            name = gr.Textbox(label=t("ui.probe.name"), placeholder="Green Ogre", max_length=limits.max_name_chars, elem_id="probe-name")
            language = gr.Dropdown(choices=languages, value="en" if "en" in languages else languages[0], label=t("ui.probe.language"),
                                   allow_custom_value=True, elem_id="probe-language")
            checkpoints = gr.CheckboxGroup(choices=served, value=served, label=t("ui.probe.checkpoints"), elem_id="probe-checkpoints")
            seeds = gr.Slider(1, limits.max_seeds, value=min(limits.default_seeds, limits.max_seeds), step=1, label=t("ui.probe.seeds"),
                              elem_id="probe-seeds")
            run = gr.Button(t("ui.probe.run"), variant="primary", elem_id="probe-button")
        with gr.Column(scale=3):
            card = gr.Markdown(elem_id="probe-card")
            plot = gr.Plot(label=t("ui.probe.plot"), elem_id="probe-plot")
            images = gr.Gallery(label=t("ui.probe.images"), columns=4, height=260, fit_columns=False, format="png",
                                interactive=False, elem_id="probe-images")
            data = gr.JSON(visible=False)
    run.click(make_probe_fn(ctx), inputs=[name, language, checkpoints, seeds], outputs=[card, images, plot, data],
              api_name="probe_character", **PROBE_CONCURRENCY)
    gr.api(make_answers_fn(ctx), api_name="probe_answers", concurrency_limit=None)
