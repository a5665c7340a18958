"""Edit arena: blind battles between edit-capable checkpoints on the same image and instruction.

Arena logic with the app's edit callable on a real engine (three tiny random sd15 checkpoints, which edit
by img2img): distinct pairs, same input and seed for both sides, kind 'edit', votes kept off the
generation tallies; then the real app over HTTP (gradio_client): `/edit_battle`
names no model, `/vote` reveals two different edit-capable checkpoints once, edit votes reach the edit
board and not the generation board, and bad inputs get short errors.
"""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image
from sqlalchemy import select

from hub.errors import HubInputError
from leaderboards.arena import Arena, ArenaLimits, SessionHasher, rebuild_tallies, sampling_rates, tallies_frame, vote_counts
from leaderboards.boards import ArenaBoard
from leaderboards.db import init_db
from leaderboards.ratings import bradley_terry
from leaderboards.results import upsert_checkpoint
from leaderboards.schema import Battle

try:
    from tests.hub_app import running_app
except ImportError:
    from hub_app import running_app

EDITORS = {"secret-editor-one": "Editor One", "secret-editor-two": "Editor Two", "secret-editor-three": "Editor Three"}
GENERATORS = {"secret-gen-a": "Gen A", "secret-gen-b": "Gen B"}


@pytest.fixture(scope="module")
def edit_engine(tmp_path_factory):
    from hub.config import load_config
    from hub.engine import Engine
    from tests.conftest import write_config

    folder = tmp_path_factory.mktemp("edit-engine")
    defaults = {"width": 64, "height": 64, "steps": 2, "cfg": 5.0, "sampler": "euler_a"}
    checkpoints = [{"id": cid, "name": name, "family": "sd15", "source": f"builtin:demo-random{'-b' if i % 2 else ''}",
                    "is_demo": True, "defaults": defaults} for i, (cid, name) in enumerate({**EDITORS, **GENERATORS}.items())]
    engine = Engine(load_config(write_config(folder, checkpoints=checkpoints, default_checkpoint="secret-editor-one")), device="cpu")
    yield engine
    engine.shutdown()


class EditSpy:
    """The app's edit-arena callable on the real engine, recording (checkpoint, input bytes, instruction, seed)."""

    def __init__(self, engine) -> None:
        from hub.ui.arena_parts import engine_editor

        self.edit = engine_editor(engine)
        self.calls: list[tuple[str, bytes, str, int]] = []

    def __call__(self, checkpoint: str, image: Image.Image, instruction: str, seed: int):
        self.calls.append((checkpoint, image.tobytes(), instruction, seed))
        return self.edit(checkpoint, image, instruction, seed)


@pytest.fixture
def arena(tmp_path, edit_engine):
    db = init_db(f"sqlite:///{tmp_path / 'arena.sqlite3'}")
    with db.session() as s:
        for cid, name in {**EDITORS, **GENERATORS}.items():
            upsert_checkpoint(s, cid, name, "sd15", f"builtin:{cid}", None, False)
    editor = EditSpy(edit_engine)
    arena = Arena(
        db, tmp_path / "arena", SessionHasher(b"salt"), candidates=lambda: list(GENERATORS),
        edit_candidates=lambda: list(EDITORS), edit=editor,
        limits=ArenaLimits(votes_per_minute=1000, battles_per_minute=1000), rng=random.Random(3),
    )
    yield arena, editor
    db.dispose()


def test_edit_battles_are_blind_balanced_and_rated_apart(arena):
    arena, editor = arena
    source = Image.new("RGB", (64, 64), (10, 200, 30))
    pairs = Counter()
    outcomes = ["model_a", "model_b", "tie", "model_a", "tie (bothbad)", "model_b"] * 2
    rows = []
    for i in range(12):
        served = arena.create_edit_battle(source, "  make her hair red ", session_id=f"s{i}")
        with Image.open(served.image_a) as image:
            assert not image.info and image.size == (64, 64)
        assert not any(cid in str(served.image_a) + str(served.image_b) + served.battle_id for cid in EDITORS)
        (model_a, _, text_a, seed_a), (model_b, _, text_b, seed_b) = editor.calls[-2:]
        assert model_a != model_b and {model_a, model_b} <= set(EDITORS)
        assert text_a == text_b == "make her hair red" and seed_a == seed_b  # same input, instruction, seed
        assert editor.calls[-1][1] == editor.calls[-2][1] == source.tobytes()
        pairs[frozenset((model_a, model_b))] += 1
        arena.record_vote(served.battle_id, outcomes[i], session_id=f"s{i}")
        rows.append((model_a, model_b, outcomes[i]))
    assert len(pairs) == 3  # every pair came up (the edit board has its own sampler state)
    with pytest.raises(HubInputError, match="already has a vote"):
        arena.record_vote(served.battle_id, "model_b", session_id="s11")

    generation = arena.record_battle("secret-gen-a", "secret-gen-b", "1girl", "a.png", "b.png")
    arena.record_vote(generation, "model_b")
    with arena.db.session() as s:
        assert {r.kind for r in s.scalars(select(Battle))} == {"edit", "generate"}
        gen_counts = tallies_frame(s)
        assert gen_counts.to_dict("records") == [
            {"model_a": "secret-gen-a", "model_b": "secret-gen-b", "winner": "model_b", "count": 1}
        ]
        assert vote_counts(s, "edit")["count"].sum() == 12
    with arena.db.write_session() as s:
        rebuild_tallies(s)  # the repair tool keeps edit votes out too
    with arena.db.session() as s:
        assert tallies_frame(s).to_dict("records") == gen_counts.to_dict("records")
        assert set(sampling_rates(s, "edit")["checkpoint"]) == set(EDITORS)
        assert set(sampling_rates(s)["checkpoint"]) == set(GENERATORS)
    edit_board = ArenaBoard(arena.db, kind="edit", num_bootstrap=10, min_battles=1)
    edit_board.wait_for_elo()
    table = edit_board.table()
    battles_per_model = Counter(m for a, b, _ in rows for m in (a, b))
    assert set(table["checkpoint"]) == set(EDITORS)
    assert dict(zip(table["checkpoint"], table["battles"], strict=True)) == battles_per_model
    direct = bradley_terry(pd.DataFrame(rows, columns=["model_a", "model_b", "winner"]), num_bootstrap=10, min_battles=1)
    assert list(table["checkpoint"]) == list(direct.index)
    assert list(table["rating"]) == [round(r) for r in direct["rating"]]
    assert all(table["elo"].notna())
    assert set(ArenaBoard(arena.db, num_bootstrap=10).table()["checkpoint"]) == set(GENERATORS)


def test_edit_battle_refusals(arena):
    arena, editor = arena
    source = Image.new("RGB", (32, 32))
    for image, instruction, message in [
        (None, "make her hair red", "Upload an image"),
        ("not an image", "make her hair red", "Upload an image"),
        (source, "   ", "Enter an edit instruction"),
        (source, "x" * 1001, "too long"),
    ]:
        with pytest.raises(HubInputError, match=message):
            arena.create_edit_battle(image, instruction)
    assert editor.calls == []

    def picky_edit(checkpoint: str, image: Image.Image, instruction: str, seed: int):
        raise HubInputError(f"Checkpoint {checkpoint!r} needs an image of at least 64 px on each side.")

    arena.edit = picky_edit
    with pytest.raises(HubInputError, match="one of the checkpoints needs an image") as refused:
        arena.create_edit_battle(source, "make her hair red")
    assert not any(cid in str(refused.value) for cid in EDITORS)  # the error does not unblind the battle
    arena.edit = editor
    arena.edit_candidates = lambda: ["secret-editor-one", "secret-editor-one"]
    with pytest.raises(HubInputError, match="at least two"):
        arena.create_edit_battle(source, "make her hair red")
    assert editor.calls == []


# ------------------------------------------------------------------------------------------ over HTTP
@pytest.fixture(scope="module")
def app(tmp_path_factory):
    from hub.engine import EditRequest

    folder = tmp_path_factory.mktemp("edit-arena")
    # A small upload pixel limit, so that "too large" needs no large file.
    with running_app(folder / "data", f"sqlite:///{folder / 'app.sqlite3'}", max_upload_pixels=40_000) as (url, ctx):
        from hub.ui.arena_tab import make_arena

        arena = make_arena(ctx)
        real_edit = arena.edit

        def quick_edit(checkpoint_id: str, image: Image.Image, instruction: str, seed: int):
            # The real engine with few steps: the test checks plumbing, not edit quality.
            images = ctx.engine.edit(EditRequest(image=image, prompt=instruction, checkpoint=checkpoint_id, seed=seed, steps=2))
            return images[0].image, None

        arena.edit = quick_edit
        try:
            yield url, ctx, folder
        finally:
            arena.edit = real_edit


def _portrait(folder: Path) -> Path:
    """A 64 px stand-in portrait (the test checks the plumbing, not what the editor makes of it)."""
    image = Image.new("RGB", (64, 64), (250, 240, 230))
    for x in range(16, 48):
        for y in range(12, 56):
            image.putpixel((x, y), (200, 120, 60) if y < 30 else (40, 60, 160))
    path = folder / "portrait.png"
    image.save(path)
    return path


@pytest.mark.timeout(300)
def test_edit_battle_over_http(app):
    from gradio_client import Client, handle_file

    from hub.ui import build_app
    from hub.ui.arena_tab import edit_arena_candidates

    url, ctx, folder = app
    client = Client(url, verbose=False, ssl_verify=False)
    endpoints = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    assert [p["parameter_name"] for p in endpoints["/edit_battle"]["parameters"]] == ["image", "instruction"]
    assert [p["parameter_name"] for p in endpoints["/battle"]["parameters"]] == ["prompt"]

    # A generation battle with a vote, so the generation board has something to keep unchanged.
    arena = ctx._arena
    generation_models = ctx.engine.checkpoint_ids(available_only=True, task="text2img")[:2]
    generation = arena.record_battle(*generation_models, "1girl", "a.png", "b.png")
    client.predict(generation, "model_a", api_name="/vote")
    generation_board = ArenaBoard(ctx.db, num_bootstrap=10)
    before = generation_board.table(with_elo=False)

    battle_id, image_a, image_b = client.predict(handle_file(_portrait(folder)), "make her hair red", api_name="/edit_battle")
    ids = [c.id for c in ctx.config.checkpoints]
    names = [c.name for c in ctx.config.checkpoints]
    for value in (battle_id, image_a, image_b):
        assert not any(i in value for i in ids)
    for path in (image_a, image_b):
        data = Path(path).read_bytes()
        assert not any(n.encode() in data for n in ids + names)
        with Image.open(path) as image:
            assert not getattr(image, "text", {}) and image.size == (64, 64)

    name_a, name_b = client.predict(battle_id, "model_b", api_name="/vote")
    by_name = {c.name: c.id for c in ctx.config.checkpoints}
    editors = set(edit_arena_candidates(ctx))
    assert name_a != name_b and {by_name[name_a], by_name[name_b]} <= editors
    with pytest.raises(Exception, match="already has a vote"):
        client.predict(battle_id, "model_a", api_name="/vote")
    with ctx.db.session() as s:
        assert s.get(Battle, battle_id).kind == "edit"

    after = generation_board.table(with_elo=False)
    assert after[["checkpoint", "rating", "battles"]].equals(before[["checkpoint", "rating", "battles"]])
    from leaderboards.boards import BoardSource, board, export_csv

    source = BoardSource(ctx.db)  # what the Leaderboard tab reads
    table = board("edit-arena").table(source)
    assert set(table["checkpoint"]) == {by_name[name_a], by_name[name_b]}
    assert table["battles"].tolist() == [1, 1] and board("edit-arena").plot(table) is not None
    csv = export_csv(table, folder / "csv", "edit-arena")
    assert by_name[name_a] in csv.read_text()
    arena_table = board("arena").table(source)
    assert set(arena_table["checkpoint"]) == set(generation_models)


@pytest.mark.timeout(120)
def test_edit_battle_bad_inputs_over_http(app):
    from gradio_client import Client, handle_file

    url, ctx, folder = app
    client = Client(url, verbose=False, ssl_verify=False)
    portrait = handle_file(_portrait(folder))
    text = folder / "notes.png"
    text.write_text("not an image at all")
    large = folder / "large.png"
    Image.new("RGB", (300, 200)).save(large)  # 60,000 pixels > the 40,000 limit of this app
    cases = [
        (None, "make her hair red", "Upload an image"),
        (handle_file(text), "make her hair red", "not a readable image"),
        (handle_file(large), "make her hair red", "the limit is 40,000 pixels"),
        (portrait, "   ", "Enter an edit instruction"),
    ]
    for image, instruction, message in cases:
        with pytest.raises(Exception, match=message):
            client.predict(image, instruction, api_name="/edit_battle")
    arena = ctx._arena
    saved = arena.edit_candidates
    arena.edit_candidates = lambda: ["demo-edit"]
    try:
        with pytest.raises(Exception, match="at least two"):
            client.predict(portrait, "make her hair red", api_name="/edit_battle")
    finally:
        arena.edit_candidates = saved
