"""Board plots (matplotlib, headless Agg backend): figures the UI shows with `gr.Plot`.

Every function returns a Figure, also for an empty board (with a short "no data" note), and never
calls pyplot's global state, so figures can be built from several threads.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure


def _empty(message: str) -> Figure:
    fig = Figure(figsize=(6, 2))
    ax = fig.subplots()
    ax.axis("off")
    ax.text(0.5, 0.5, message, ha="center", va="center", fontsize=11, color="#666")
    return fig


def rating_interval_plot(board: pd.DataFrame, title: str = "Arena rating (95% interval)") -> Figure:
    """Horizontal dot-and-whisker plot: rating with its bootstrap interval, best on top."""
    if board is None or board.empty:
        return _empty("No votes yet: ratings appear after the first arena votes.")
    data = board.sort_values("rating", ascending=True)
    labels = [str(x) for x in data.get("name", data["checkpoint"])]
    y = np.arange(len(data))
    rating = data["rating"].to_numpy(dtype=float)
    lower = data["lower"].to_numpy(dtype=float)
    upper = data["upper"].to_numpy(dtype=float)
    provisional = data["provisional"].to_numpy(dtype=bool) if "provisional" in data else np.zeros(len(data), bool)
    fig = Figure(figsize=(7, max(2.0, 0.45 * len(data) + 1.0)))
    ax = fig.subplots()
    ax.errorbar(
        rating, y, xerr=[rating - lower, upper - rating], fmt="none", ecolor="#4C72B0", elinewidth=2, capsize=3
    )
    ax.scatter(rating[~provisional], y[~provisional], color="#4C72B0", zorder=3, label="rated")
    if provisional.any():
        ax.scatter(rating[provisional], y[provisional], facecolors="white", edgecolors="#DD8452", zorder=3, label="provisional")
        ax.legend(loc="lower right", fontsize=8)
    ax.set_yticks(y, labels)
    ax.axvline(1000, color="#999", linewidth=0.8, linestyle=":")
    ax.set_xlabel("rating (1000 = average; +400 = 10x odds)")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def language_heatmap(board: pd.DataFrame, metric: str, value: str = "gap_to_english", group: str = "all") -> Figure:
    """Language-by-checkpoint heatmap of one eval metric (default: the gap to English) from an eval
    board's long frame (`leaderboards.eval_boards.LONG_COLUMNS`)."""
    if board is None or board.empty or metric not in set(board["metric"]):
        return _empty("No results yet: they appear here as eval runs finish.")
    data = board[(board["metric"] == metric) & (board["language"] != "all") & (board["group"] == group)]
    data = data.pivot_table(index="checkpoint", columns="language", values=value, aggfunc="first", dropna=False)
    if data.empty:
        return _empty("No per-language results for this metric yet.")
    columns = sorted(data.columns, key=lambda lang: (lang != "en", lang))
    data = data[columns]
    matrix = data.to_numpy(dtype=float)
    fig = Figure(figsize=(max(5.0, 0.7 * data.shape[1] + 3), max(2.0, 0.45 * data.shape[0] + 1.5)))
    ax = fig.subplots()
    finite = matrix[np.isfinite(matrix)]
    if value == "gap_to_english":
        bound = float(np.abs(finite).max()) if finite.size and np.abs(finite).max() > 0 else 1.0
        image = ax.imshow(matrix, cmap="RdBu", vmin=-bound, vmax=bound, aspect="auto")
    else:
        image = ax.imshow(matrix, cmap="viridis", aspect="auto")
    ax.set_xticks(np.arange(data.shape[1]), [str(c) for c in data.columns])
    ax.set_yticks(np.arange(data.shape[0]), [str(i) for i in data.index])
    for (i, j), v in np.ndenumerate(matrix):
        if np.isfinite(v):
            ax.text(j, i, f"{v:+.2f}" if value == "gap_to_english" else f"{v:.2f}", ha="center", va="center", fontsize=7)
    fig.colorbar(image, ax=ax, label=f"{metric}: {value.replace('_', ' ')}")
    ax.set_title(f"{metric} by prompt language" + (" (gap to English)" if value == "gap_to_english" else ""))
    fig.tight_layout()
    return fig


def group_bars(board: pd.DataFrame, metric: str, group_label: str = "tier") -> Figure:
    """Grouped bars: one metric per group (tier, category) for each checkpoint, all languages pooled,
    with 95% interval whiskers, from an eval board's long frame."""
    if board is None or board.empty or metric not in set(board["metric"]):
        return _empty("No results yet: they appear here as eval runs finish.")
    data = board[(board["metric"] == metric) & (board["language"] == "all")]
    if (data["group"] != "all").any():
        data = data[data["group"] != "all"]
    checkpoints = list(dict.fromkeys(data["checkpoint"]))
    groups = list(dict.fromkeys(data["group"]))
    width = 0.8 / max(1, len(checkpoints))
    fig = Figure(figsize=(max(5.0, 1.6 * len(groups) + 2), 3.5))
    ax = fig.subplots()
    for k, checkpoint in enumerate(checkpoints):
        rows = data[data["checkpoint"] == checkpoint].drop_duplicates("group").set_index("group").reindex(groups)
        x = np.arange(len(groups)) + (k - (len(checkpoints) - 1) / 2) * width
        value = rows["value"].to_numpy(dtype=float)
        err = np.vstack([value - rows["lower"].to_numpy(dtype=float), rows["upper"].to_numpy(dtype=float) - value])
        ax.bar(x, value, width, label=checkpoint, yerr=np.nan_to_num(np.clip(err, 0, None)), capsize=2)
    ax.set_xticks(np.arange(len(groups)), groups)
    ax.set_ylim(0, 1)
    ax.set_ylabel(metric.replace("_", " "))
    ax.set_title(f"{metric.replace('_', ' ')} by {group_label} (95% interval)")
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    return fig


def hit_rate_plot(frame: pd.DataFrame, title: str) -> Figure:
    """Hit rate per checkpoint (columns `checkpoint`, `hit_rate`, `lower`, `upper`) as dots with their
    intervals on a 0-100% axis, best on top: a probe card's answer at a glance."""
    if frame is None or frame.empty:
        return _empty("No answer yet.")
    data = frame.sort_values("hit_rate", ascending=True)
    y = np.arange(len(data))
    rate = 100 * data["hit_rate"].to_numpy(dtype=float)
    lower = 100 * data["lower"].to_numpy(dtype=float)
    upper = 100 * data["upper"].to_numpy(dtype=float)
    fig = Figure(figsize=(7, max(1.8, 0.45 * len(data) + 1.0)))
    ax = fig.subplots()
    ax.errorbar(rate, y, xerr=[rate - lower, upper - rate], fmt="none", ecolor="#4C72B0", elinewidth=2, capsize=3)
    ax.scatter(rate, y, color="#4C72B0", zorder=3)
    ax.set_yticks(y, [str(x) for x in data["checkpoint"]])
    ax.set_xlim(-2, 102)
    ax.set_xlabel("hit rate, % (95% interval over seeds)")
    ax.set_title(title)
    fig.tight_layout()
    return fig
