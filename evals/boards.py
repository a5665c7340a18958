"""Eval boards that live with their evals (the Leaderboard tab shows them beside `leaderboards.boards`).

`edit_board(session)`: the "Editing" board. Per checkpoint (with its adapters), prompt language (and
'all') and metric — `success`, `identity_kept`, and where inpainting cases ran `lpips_outside_mask` or
`pixel_l1_outside_mask` — the mean with a 95% cluster-bootstrap interval (edit cases resampled, so
the seeds and languages of one case are not counted as independent evidence) and the sample count.
Rows come from the `samples` / `scores` tables the edit eval writes (`evals/edits.py`).
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from sqlalchemy import select

from evals import edits
from evals.metrics import bootstrap_mean

EDIT_COLUMNS = ["checkpoint", "language", "metric", "value", "lower", "upper", "n", "n_cases"]
BOARD_METRICS = ("success", "identity_kept", "lpips_outside_mask", "pixel_l1_outside_mask")
ALL = "all"


def edit_board(
    session: Any,
    *,
    suite_name: str | None = None,
    judge_id: str | None = None,
    num_bootstrap: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """The Editing board as a DataFrame (columns `EDIT_COLUMNS`), best success first per language."""
    from leaderboards.results import checkpoint_label
    from leaderboards.schema import PromptSuite, Sample, Score

    metric_key = {edits.REPORTED[key]: key for key in BOARD_METRICS}
    query = (
        select(Sample.checkpoint_id, Sample.adapters, Sample.item_id, Sample.language, Score.metric, Score.value)
        .join(Score, Score.sample_id == Sample.id)
        .where(Score.metric.in_(list(metric_key)))
    )
    if judge_id is not None:
        query = query.where(Score.judge_id == judge_id)
    if suite_name is not None:
        query = query.join(PromptSuite, PromptSuite.id == Sample.suite_id).where(PromptSuite.name == suite_name)
    rows = session.execute(query).all()
    if not rows:
        return pd.DataFrame(columns=EDIT_COLUMNS)
    frame = pd.DataFrame(rows, columns=["checkpoint_id", "adapters", "item_id", "language", "metric", "value"])
    frame = frame[pd.notna(frame["value"])]
    frame["checkpoint"] = [checkpoint_label(c, a or "") for c, a in zip(frame["checkpoint_id"], frame["adapters"], strict=True)]
    frame["metric"] = frame["metric"].map(metric_key)
    out = []
    for language_col in ("language", ALL):
        data = frame.assign(_l=frame["language"] if language_col == "language" else ALL)
        for (checkpoint, language, metric), group in data.groupby(["checkpoint", "_l", "metric"], sort=True):
            est = bootstrap_mean(group["value"].to_numpy(float), groups=group["item_id"].tolist(), num_bootstrap=num_bootstrap, seed=seed)
            out.append((checkpoint, language, metric, est.mean, est.lower, est.upper, est.n, group["item_id"].nunique()))
    board = pd.DataFrame(out, columns=EDIT_COLUMNS)
    order = {m: i for i, m in enumerate(BOARD_METRICS)}
    board["_m"] = board["metric"].map(order)
    board["_all"] = board["language"] != ALL
    board = board.sort_values(["_all", "language", "_m", "value"], ascending=[True, True, True, False])
    return board.drop(columns=["_m", "_all"]).reset_index(drop=True)
