"""Boards and their UI: eval-board queries on synthetic scores, plots, CSV export, and the real app's
Arena/Leaderboard/Submit tabs (blind /battle and /vote over HTTP, buttons disabled after a vote,
board views with empty states)."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from PIL import Image

from leaderboards import plots
from leaderboards.boards import BOARDS, BoardSource, board, export_csv, filter_rows
from leaderboards.db import init_db
from leaderboards.eval_boards import CHARACTER_BOARD, LONG_COLUMNS, MULTILINGUAL_BOARD, build_eval_board, display_eval_board
from leaderboards.results import get_or_create_suite, upsert_checkpoint
from leaderboards.schema import EvalRun, Sample, Score, utcnow

try:
    from tests.hub_app import running_app
except ImportError:
    from hub_app import running_app


def _complete_run(s, checkpoint: str, suite, kind: str) -> None:
    s.add(EvalRun(checkpoint_id=checkpoint, suite_id=suite.id, suite_name=suite.name, adapters="", status="complete",
                  settings_hash="h", checkpoint_version="v1", finished_at=utcnow(),
                  settings={"kind": kind, "judges": {"tagger": {"id": "tagger"}, "image_text": {"id": "siglip"}}}))


@pytest.fixture
def eval_db(tmp_path):
    """Two checkpoints, a character suite (2 tiers x 2 languages) and a multilingual suite, scored, with
    the complete runs that make them current."""
    db = init_db(f"sqlite:///{tmp_path / 'evals.sqlite3'}")
    rng = np.random.default_rng(0)
    hit_rates = {("good", "popular"): 0.9, ("good", "niche"): 0.5, ("weak", "popular"): 0.4, ("weak", "niche"): 0.1}
    with db.session() as s:
        for cid in ("good", "weak"):
            upsert_checkpoint(s, cid, cid.title(), "sdxl", f"hub:org/{cid}", None, False)
        characters = [{"item_id": f"{tier}{i}", "language": lang, "text": f"{tier}{i} {lang}", "meta": {"tier": tier}}
                      for tier in ("popular", "niche") for i in range(5) for lang in ("en", "ja")]
        suite = get_or_create_suite(s, "characters", "c1", characters)
        scenes = [{"item_id": f"scene{i}", "language": lang, "text": f"scene{i} {lang}", "meta": {}}
                  for i in range(4) for lang in ("en", "es", "zh")]
        msuite = get_or_create_suite(s, "multilingual", "m1", scenes)
        s.flush()
        prompt_ids = {(p.item_id, p.language): p.id for p in suite.prompts}
        key = 0
        for cid in ("good", "weak"):
            for prompt in characters:
                for seed in range(8):
                    key += 1
                    sample = Sample(cache_key=str(key), checkpoint_id=cid, adapters="", suite_id=suite.id,
                                    prompt_id=prompt_ids[(prompt["item_id"], prompt["language"])], item_id=prompt["item_id"],
                                    language=prompt["language"], prompt_text=prompt["text"], seed=seed, settings_hash="h",
                                    checkpoint_version="v1", image_path="x.png")
                    s.add(sample)
                    s.flush()
                    hit = float(rng.random() < hit_rates[(cid, prompt["meta"]["tier"])])
                    s.add(Score(sample_id=sample.id, judge_id="tagger", metric="character_hit", value=hit))
            for prompt in scenes:
                for seed in range(5):
                    key += 1
                    sample = Sample(cache_key=str(key), checkpoint_id=cid, adapters="", suite_id=msuite.id,
                                    item_id=prompt["item_id"], language=prompt["language"], prompt_text=prompt["text"],
                                    seed=seed, settings_hash="h", checkpoint_version="v1", image_path="x.png")
                    s.add(sample)
                    s.flush()
                    drop = {"en": 0.0, "es": 0.1, "zh": 0.3 if cid == "weak" else 0.05}[prompt["language"]]
                    s.add(Score(sample_id=sample.id, judge_id="tagger", metric="tag_recall", value=0.8 - drop + rng.normal(0, 0.02)))
                    s.add(Score(sample_id=sample.id, judge_id="siglip", metric="anchored_alignment", value=1.0 - drop))
            _complete_run(s, cid, suite, "character_recognition")
            _complete_run(s, cid, msuite, "multilingual_fidelity")
        # A sample of an older checkpoint version: never mixed into the current board.
        stale = Sample(cache_key="stale", checkpoint_id="good", adapters="", suite_id=suite.id, item_id="popular0",
                       language="en", prompt_text="x", seed=0, settings_hash="h", checkpoint_version="v0", image_path="x.png")
        s.add(stale)
        s.flush()
        s.add(Score(sample_id=stale.id, judge_id="tagger", metric="character_hit", value=0.0))
    yield db
    db.dispose()


def test_character_board_per_tier_and_language(eval_db):
    long = build_eval_board(eval_db, CHARACTER_BOARD)
    assert list(long.columns) == LONG_COLUMNS
    rows = long.set_index(["checkpoint", "group", "language"])
    assert rows.loc[("good", "popular", "en"), "n"] == 5 * 8  # the v0 sample is not counted
    assert rows.loc[("good", "popular", "all"), "n"] == 2 * 5 * 8
    assert rows.loc[("good", "all", "all"), "n"] == 4 * 5 * 8 and rows.loc[("good", "all", "all"), "n_items"] == 10
    assert ((long["lower"] <= long["value"]) & (long["value"] <= long["upper"])).all()
    assert rows.loc[("good", "popular", "all"), "value"] > rows.loc[("weak", "popular", "all"), "upper"]
    assert rows.loc[("good", "popular", "all"), "lower"] > 0.7
    # Intervals resample characters, not single samples: wider than a binomial interval on 80 samples.
    p = rows.loc[("good", "all", "all"), "value"]
    binomial_half_width = 1.96 * np.sqrt(p * (1 - p) / (4 * 5 * 8))
    cluster = rows.loc[("good", "all", "all")]
    assert (cluster["upper"] - cluster["lower"]) / 2 > binomial_half_width
    shown = display_eval_board(long, CHARACTER_BOARD)
    assert list(shown.columns[:6]) == ["checkpoint", "version", "tier", "metric", "all", "en"]
    good_popular = shown[(shown["checkpoint"] == "good") & (shown["tier"] == "popular")].iloc[0]
    assert good_popular["all"].startswith("★ ")  # the best value of the column is marked
    value = rows.loc[("good", "popular", "all")]
    assert good_popular["all"] == f"★ {value['value']:.2f} [{value['lower']:.2f}, {value['upper']:.2f}]"


def test_multilingual_board_gap_to_english(eval_db):
    long = build_eval_board(eval_db, MULTILINGUAL_BOARD)
    rows = long.set_index(["checkpoint", "language", "metric"])
    assert pd.isna(rows.loc[("weak", "en", "anchored_alignment"), "gap_to_english"])
    assert rows.loc[("weak", "zh", "anchored_alignment"), "gap_to_english"] == pytest.approx(-0.3)
    assert rows.loc[("good", "zh", "anchored_alignment"), "gap_to_english"] == pytest.approx(-0.05)
    assert rows.loc[("weak", "zh", "tag_recall"), "upper"] < rows.loc[("weak", "en", "tag_recall"), "lower"]
    assert ((long["lower"] <= long["value"] + 1e-12) & (long["value"] <= long["upper"] + 1e-12)).all()
    shown = display_eval_board(long, MULTILINGUAL_BOARD)
    assert list(shown.columns) == ["checkpoint", "version", "metric", "all", "en", "es", "zh"]


def test_every_board_renders_empty_and_full(eval_db, tmp_path):
    empty = BoardSource(init_db(f"sqlite:///{tmp_path / 'empty.sqlite3'}"))
    full = BoardSource(eval_db)
    for spec in BOARDS:
        for source in (empty, full):
            table = spec.table(source)
            shown = spec.display(table)
            figure = spec.plot(table)
            assert isinstance(figure, Figure)
            buffer = io.BytesIO()
            figure.savefig(buffer, format="png")
            assert Image.open(io.BytesIO(buffer.getvalue())).size[0] > 100
            if source is empty:
                assert table.empty and shown.empty
    assert not board("characters").table(full).empty and not board("multilingual").table(full).empty
    arena = pd.DataFrame({"checkpoint": ["a", "b"], "name": ["A", "B"], "rating": [1100, 900], "lower": [1050, 850],
                          "upper": [1150, 950], "provisional": [False, True]})
    assert isinstance(plots.rating_interval_plot(arena), Figure)


def test_csv_export_keeps_full_precision_and_filters(eval_db, tmp_path):
    long = build_eval_board(eval_db, CHARACTER_BOARD)
    path = export_csv(filter_rows(long, group=["popular"]), tmp_path / "out", "../char board")
    assert path.parent == tmp_path / "out" and path.name == "char_board.csv"
    back = pd.read_csv(path)
    assert set(back["group"]) == {"popular"}
    assert np.allclose(back["value"].to_numpy(), long[long["group"] == "popular"]["value"].to_numpy())  # not rounded
    assert len(filter_rows(long, group=[], checkpoint=None)) == len(long)


def _find(demo, name: str):
    for block_fn in demo.fns.values():
        if getattr(block_fn.fn, "__name__", "") == name:
            return block_fn.fn
    raise LookupError(name)


@pytest.mark.timeout(300)
def test_app_tabs_battle_vote_and_boards(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    import gradio as gr
    from gradio_client import Client

    with running_app(tmp_path / "data", f"sqlite:///{tmp_path / 'app.sqlite3'}") as (url, ctx):
        client = Client(url, verbose=False, ssl_verify=False)
        endpoints = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
        assert {"/battle", "/vote"} <= set(endpoints)
        assert [p["parameter_name"] for p in endpoints["/battle"]["parameters"]] == ["prompt"]
        assert [p["parameter_name"] for p in endpoints["/vote"]["parameters"]] == ["battle_id", "outcome"]

        battle_id, image_a, image_b = client.predict("1girl, silver hair", api_name="/battle")
        ids = [c.id for c in ctx.config.checkpoints]
        names = [c.name for c in ctx.config.checkpoints]
        for value in (battle_id, image_a, image_b):
            assert not any(i in value for i in ids)
        for path in (image_a, image_b):
            data = Path(path).read_bytes()
            assert not any(n.encode() in data for n in ids + names)
            with Image.open(path) as image:
                assert not getattr(image, "text", {})
        name_a, name_b = client.predict(battle_id, "model_b", api_name="/vote")
        assert {name_a, name_b} <= set(names) and name_a != name_b
        with pytest.raises(Exception, match="already has a vote"):
            client.predict(battle_id, "model_a", api_name="/vote")
        with pytest.raises(Exception, match="Unknown outcome"):
            client.predict(battle_id, "bothbad", api_name="/vote")
        with pytest.raises(Exception, match="Unknown battle"):
            client.predict("x" * 32, "model_a", api_name="/vote")

        from hub.ui import build_app
        from leaderboards.schema import Battle

        app = ctx
        demo = build_app(app)  # a second Blocks on the same context, to call its handlers directly
        # Buttons: a vote through the UI disables all four vote buttons and reveals the names.
        arena = app._arena
        served = arena.create_battle("another prompt", session_id="ui-session")
        request = gr.Request(session_hash="ui-session")
        handler = next(fn.fn for fn in demo.fns.values() if getattr(fn.fn, "__name__", "") == "handler")
        message, shown_a, shown_b, *buttons = handler(served.battle_id, request)
        assert "A was" in message and shown_a in names and shown_b in names
        assert all(b.get("interactive") is False for b in buttons)
        with app.db.session() as s:
            assert s.get(Battle, served.battle_id) is not None

        source = BoardSource(app.db)
        table = board("arena").table(source)
        assert set(table["checkpoint"]) <= set(ids) and len(table) == 2
        assert {"rating", "lower", "upper", "interval", "battles", "rank", "provisional"} <= set(table.columns)
        assert board("characters").table(source).empty and board("multilingual").table(source).empty
        checkpoints, runs, _ = _find(demo, "status")()
        assert set(ids) <= set(checkpoints["checkpoint"]) and runs.empty
        with pytest.raises(gr.Error, match="Unknown family"):
            _find(demo, "register")("new-model", "", "hub", "org/model", "sd3")
        with pytest.raises(gr.Error, match="Cannot pin org/model"):  # offline and not in the local Hub cache
            _find(demo, "register")("new-model", "New", "hub", "org/model", "sdxl")
        commit = "a" * 40
        cache = Path(os.environ["HF_HUB_CACHE"]) / "models--org--model"
        (cache / "snapshots" / commit).mkdir(parents=True)
        (cache / "refs").mkdir()
        (cache / "refs" / "main").write_text(commit)
        message, _, _ = _find(demo, "register")("new-model", "New", "hub", "org/model", "sdxl")
        assert "Registered" in message
        from leaderboards.schema import Checkpoint

        with app.db.session() as s:
            assert s.get(Checkpoint, "new-model").revision == commit  # pinned at registration
        with pytest.raises(gr.Error, match="needs a GPU"):  # a hub: checkpoint is served on GPU deployments only
            _find(demo, "queue")("new-model", runs_suite(), "", 1, 0)
        message, runs = _find(demo, "queue")("demo-random", runs_suite(), "", 1, 0)
        assert "Queued run" in message and "queued" in runs["status"].tolist()


def runs_suite() -> str:
    from hub.ui.submit_tab import suite_names

    return (suite_names() or ["characters"])[0]
