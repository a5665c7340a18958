"""Boards and their UI: eval-board queries on synthetic scores, plots, CSV export, and the real app's
Arena/Leaderboard/Submit tabs (blind /battle and /vote over HTTP, buttons disabled after a vote,
board views with empty states)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from PIL import Image

from leaderboards import plots
from leaderboards.boards import export_csv, filter_rows
from leaderboards.db import init_db
from leaderboards.results import (
    CHARACTER_COLUMNS,
    MULTILINGUAL_COLUMNS,
    character_board,
    get_or_create_suite,
    multilingual_board,
    upsert_checkpoint,
)
from leaderboards.schema import Sample, Score

try:
    from tests.hub_app import running_app
except ImportError:
    from hub_app import running_app


@pytest.fixture
def eval_db(tmp_path):
    """Two checkpoints, a character suite (2 tiers x 2 languages) and a multilingual suite, scored."""
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
        key = 0
        for cid in ("good", "weak"):
            for prompt in characters:
                for seed in range(8):
                    key += 1
                    sample = Sample(cache_key=str(key), checkpoint_id=cid, adapters="", suite_id=suite.id, prompt_id=None,
                                    item_id=prompt["item_id"], language=prompt["language"], prompt_text=prompt["text"],
                                    seed=seed, settings_hash="h", image_path="x.png")
                    s.add(sample)
                    s.flush()
                    hit = float(rng.random() < hit_rates[(cid, prompt["meta"]["tier"])])
                    s.add(Score(sample_id=sample.id, judge_id="tagger", metric="character_hit", value=hit))
            for prompt in scenes:
                for seed in range(5):
                    key += 1
                    sample = Sample(cache_key=str(key), checkpoint_id=cid, adapters="", suite_id=msuite.id,
                                    item_id=prompt["item_id"], language=prompt["language"], prompt_text=prompt["text"],
                                    seed=seed, settings_hash="h", image_path="x.png")
                    s.add(sample)
                    s.flush()
                    drop = {"en": 0.0, "es": 0.1, "zh": 0.3 if cid == "weak" else 0.05}[prompt["language"]]
                    s.add(Score(sample_id=sample.id, judge_id="tagger", metric="tag_recall", value=0.8 - drop + rng.normal(0, 0.02)))
                    s.add(Score(sample_id=sample.id, judge_id="siglip", metric="anchored_alignment", value=1.0 - drop))
    yield db
    db.dispose()


def test_character_board_per_tier_and_language(eval_db):
    with eval_db.session() as s:
        board = character_board(s, include_totals=True)
    assert list(board.columns) == CHARACTER_COLUMNS
    rows = board.set_index(["checkpoint", "tier", "language"])
    assert rows.loc[("good", "popular", "en"), "n"] == 5 * 8
    assert rows.loc[("good", "popular", "all"), "n"] == 2 * 5 * 8
    assert rows.loc[("good", "all", "all"), "n"] == 4 * 5 * 8
    assert ((board["lower"] <= board["hit_rate"]) & (board["hit_rate"] <= board["upper"])).all()
    assert rows.loc[("good", "popular", "all"), "hit_rate"] > rows.loc[("weak", "popular", "all"), "upper"]
    assert rows.loc[("good", "popular", "all"), "lower"] > 0.75
    with eval_db.session() as s:
        plain = character_board(s)
    assert set(plain["tier"]) == {"popular", "niche"} and set(plain["language"]) == {"en", "ja"}


def test_multilingual_board_gap_to_english(eval_db):
    with eval_db.session() as s:
        board = multilingual_board(s)
    assert list(board.columns) == MULTILINGUAL_COLUMNS
    rows = board.set_index(["checkpoint", "language", "metric"])
    assert rows.loc[("weak", "en", "anchored_alignment"), "gap_to_english"] == 0
    assert rows.loc[("weak", "zh", "anchored_alignment"), "gap_to_english"] == pytest.approx(-0.3)
    assert rows.loc[("good", "zh", "anchored_alignment"), "gap_to_english"] == pytest.approx(-0.05)
    assert rows.loc[("weak", "zh", "tag_recall"), "upper"] < rows.loc[("weak", "en", "tag_recall"), "lower"]
    assert ((board["lower"] <= board["value"] + 1e-12) & (board["value"] <= board["upper"] + 1e-12)).all()


def test_empty_boards_and_plots(tmp_path):
    db = init_db(f"sqlite:///{tmp_path / 'empty.sqlite3'}")
    with db.session() as s:
        assert character_board(s).empty and list(character_board(s).columns) == CHARACTER_COLUMNS
        assert multilingual_board(s).empty
    db.dispose()
    for figure in (plots.rating_interval_plot(pd.DataFrame()), plots.language_heatmap(pd.DataFrame(), "tag_recall"),
                   plots.tier_bars(pd.DataFrame())):
        assert isinstance(figure, Figure)
        figure.savefig(io.BytesIO(), format="png")


def test_plots_render(eval_db):
    with eval_db.session() as s:
        characters = character_board(s, include_totals=True)
        multilingual = multilingual_board(s)
    arena = pd.DataFrame({"checkpoint": ["a", "b"], "name": ["A", "B"], "rating": [1100, 900], "lower": [1050, 850],
                          "upper": [1150, 950], "provisional": [False, True]})
    for figure in (plots.rating_interval_plot(arena), plots.language_heatmap(multilingual, "tag_recall"),
                   plots.language_heatmap(multilingual, "anchored_alignment", value="value"), plots.tier_bars(characters),
                   plots.tier_bars(character_board_plain(eval_db))):
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
        assert Image.open(io.BytesIO(buffer.getvalue())).size[0] > 100


def character_board_plain(db):
    with db.session() as s:
        return character_board(s)


def test_csv_export_and_filters(tmp_path):
    frame = pd.DataFrame({"checkpoint": ["a", "b", "c"], "tier": ["popular", "niche", "popular"], "hit_rate": [0.5, 0.25, 1.0]})
    assert filter_rows(frame, tier=["popular"])["checkpoint"].tolist() == ["a", "c"]
    assert len(filter_rows(frame, tier=[], checkpoint=None)) == 3
    path = export_csv(frame, tmp_path / "out", "../char board")
    assert path.parent == tmp_path / "out" and path.name == "char_board.csv"
    pd.testing.assert_frame_equal(pd.read_csv(path), frame)


def _find(demo, name: str):
    for block_fn in demo.fns.values():
        if getattr(block_fn.fn, "__name__", "") == name:
            return block_fn.fn
    raise LookupError(name)


@pytest.mark.timeout(300)
def test_app_tabs_battle_vote_and_boards(tmp_path):
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

        table, figure, note = _find(demo, "arena_view")(True)
        assert set(table["checkpoint"]) <= set(ids) and len(table) == 2 and isinstance(figure, Figure)
        assert {"rating", "lower", "upper", "interval", "battles", "rank", "provisional"} <= set(table.columns)
        csv = Path(_find(demo, "arena_csv")())
        assert csv.is_file() and not str(csv).startswith(str(app.data_dir))
        characters, _, note, _, _ = _find(demo, "character_view")(None, None)
        assert characters.empty and "No character-recognition results yet" in note
        multilingual, _, note, _ = _find(demo, "multilingual_view")("tag_recall", None)
        assert multilingual.empty and "No multilingual results yet" in note
        checkpoints, runs, _ = _find(demo, "status")()
        assert set(ids) <= set(checkpoints["checkpoint"]) and runs.empty
        with pytest.raises(gr.Error, match="Unknown family"):
            _find(demo, "register")("new-model", "", "hub", "org/model", "sd3")
        message, _, _ = _find(demo, "register")("new-model", "New", "hub", "org/model", "sdxl")
        assert "Registered" in message
        message, runs = _find(demo, "queue")("new-model", runs_suite(), "", 1, 0)
        assert "Queued run" in message and runs["status"].tolist() == ["queued"]


def runs_suite() -> str:
    from hub.ui.submit_tab import suite_names

    return (suite_names() or ["characters"])[0]
