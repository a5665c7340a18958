"""The app served by Gradio, driven over HTTP with gradio_client: /generate, /edit (with and without
reference images), /xy_grid, bad input, and errors in the caller's language (Accept-Language)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from gradio_client import Client, handle_file
from PIL import Image

from hub.recipe import read_recipe
from tests.hub_app import client_session, running_app


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    folder = tmp_path_factory.mktemp("app")
    with running_app(folder / "data", f"sqlite:///{folder / 'hub.sqlite3'}") as (url, ctx):
        yield Client(url, verbose=False), ctx, folder


def image_paths(result) -> list[str]:
    gallery = result[0] if isinstance(result, (tuple, list)) and result and isinstance(result[0], list) else result
    return [item["image"] if isinstance(item["image"], str) else item["image"]["path"] for item in gallery]


def test_generate_returns_pngs_with_recipes(app):
    client, ctx, _ = app
    result = client.predict("1girl, aqua hair", "lowres", "demo-random", "", 64, 64, 4, 5.0, "euler_a", 11, 2, api_name="/generate")
    paths = image_paths(result)
    assert len(paths) == 2
    for path, seed in zip(paths, (11, 12)):
        with Image.open(path) as image:
            assert image.format == "PNG" and image.size == (64, 64)
            assert "parameters" in image.info and "Seed: " in image.info["parameters"]
        recipe = read_recipe(path)
        assert (recipe.prompt, recipe.negative_prompt, recipe.seed, recipe.model) == ("1girl, aqua hair", "lowres", seed, "demo-random")
        assert recipe.model_hash == ctx.engine.checkpoint_version("demo-random")[:10]


def test_generate_only_prompt_uses_defaults_and_is_reproducible(app):
    client, ctx, _ = app
    first = image_paths(client.predict("a quiet street", api_name="/generate"))
    again = image_paths(client.predict("a quiet street", api_name="/generate"))
    spec = ctx.config.checkpoint(ctx.config.default_checkpoint)
    recipe = read_recipe(first[0])
    assert (recipe.width, recipe.height, recipe.steps) == (spec.defaults.width, spec.defaults.height, spec.defaults.steps)
    assert np.array_equal(np.asarray(Image.open(first[0])), np.asarray(Image.open(again[0])))


def _png_file(folder: Path, name: str, image: Image.Image) -> str:
    path = folder / name
    image.save(path, format="PNG")
    return str(path)


def test_edit_img2img_and_inpaint(app):
    client, _, folder = app
    source = _png_file(folder, "source.png", Image.new("RGB", (64, 64), (200, 120, 40)))
    mask_image = Image.new("L", (64, 64), 0)
    mask_image.paste(255, (0, 0, 32, 64))
    mask = _png_file(folder, "mask.png", mask_image)
    plain = image_paths(client.predict(handle_file(source), "make it blue", None, 0.5, "demo-random", 3, 4, api_name="/edit"))
    assert read_recipe(plain[0]).task == "img2img"
    painted = image_paths(client.predict(handle_file(source), "a window", handle_file(mask), 0.9, "demo-random", 3, 4, api_name="/edit"))
    recipe = read_recipe(painted[0])
    assert recipe.task == "inpaint" and recipe.strength == 0.9
    assert Image.open(painted[0]).size == (64, 64)


def _bad_files(folder: Path) -> dict[str, str]:
    text = folder / "notes.png"
    text.write_text("this is not an image")
    corrupt = folder / "corrupt.png"
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), "red").save(buffer, format="PNG")
    corrupt.write_bytes(buffer.getvalue()[:60])
    bomb = folder / "bomb.png"
    Image.new("1", (6000, 6000)).save(bomb, format="PNG")  # 36 Mpx, a few kB on disk
    small_mask = folder / "small_mask.png"
    Image.new("L", (16, 16), 255).save(small_mask)
    good = folder / "good.png"
    Image.new("RGB", (64, 64), "white").save(good)
    return {"text": str(text), "corrupt": str(corrupt), "bomb": str(bomb), "small_mask": str(small_mask), "good": str(good)}


GENERATE_CASES = [
    (("",), "prompt is empty"),
    (("x" * 1500,), "limit"),
    (("x", "", "no-such-model"), "Unknown checkpoint"),
    (("x", "", "../../etc/passwd"), "not a valid id"),
    (("x", "", "/etc/passwd"), "not a valid id"),
    (("x", "", "demo-random", "nope:0.5"), "Unknown LoRA"),
    (("x", "", "demo-random", "../evil:0.5"), "not a valid id"),
    (("x", "", "demo-random", "", 64, 64, 4, 5.0, "euler_a", -5), "Seed|less than minimum"),
    (("x", "", "demo-random", "", 64, 64, 4, 5.0, "warp", 1), "sampler"),
]


@pytest.mark.parametrize("args, message", GENERATE_CASES)
def test_generate_bad_input_is_refused(app, args, message):
    client, ctx, _ = app
    before = ctx.engine.stats["pipeline_calls"]
    with pytest.raises(Exception, match=message):
        client.predict(*args, api_name="/generate")
    assert ctx.engine.stats["pipeline_calls"] == before  # refused before any work


@pytest.mark.parametrize(
    "kwargs, message",
    [({"steps": -3}, "Value -3 is less than minimum value 1"), ({"steps": 10_000}, "Value 10000 is greater than maximum value 100"),
     ({"width": 100_000}, "Value 100000 is greater than maximum value 1536"), ({"cfg": -1}, "Value -1 is less than minimum value 0"),
     ({"batch": 0}, "Value 0 is less than minimum value 1")],
)
def test_generate_out_of_range_numbers_are_refused(app, kwargs, message):
    """The sliders' own bounds (the config's limits) refuse these before the engine; the engine's checks
    behind them are tested in test_engine."""
    client, _, _ = app
    with pytest.raises(Exception, match=message):
        client.predict("x", **kwargs, api_name="/generate")


@pytest.mark.parametrize(
    "case, message",
    [("text", "not a readable image"), ("corrupt", "not a readable image"), ("bomb", "limit"), ("small_mask", "mask is 16x16")],
)
def test_edit_bad_uploads_are_refused(app, case, message):
    client, ctx, folder = app
    files = _bad_files(folder)
    before = ctx.engine.stats["pipeline_calls"]
    if case == "small_mask":
        args = (handle_file(files["good"]), "x", handle_file(files["small_mask"]))
    else:
        args = (handle_file(files[case]), "x")
    with pytest.raises(Exception, match=message):
        client.predict(*args, api_name="/edit")
    assert ctx.engine.stats["pipeline_calls"] == before


@pytest.mark.parametrize("index", [6, 7])  # steps, cfg
def test_nan_sent_over_raw_http_is_refused(app, index):
    """gradio_client will not send NaN, but any HTTP client can: the server must refuse it."""
    import httpx

    client, ctx, _ = app
    data = ["x", "", "demo-random", "", 64, 64, 4, 5.0, "euler_a", 1, 1, None, 1]  # references, clip_skip
    data[index] = "__NaN__"
    body = json.dumps({"data": data}).replace('"__NaN__"', "NaN")
    base = client.src.rstrip("/")
    before = ctx.engine.stats["pipeline_calls"]
    posted = httpx.post(f"{base}/gradio_api/call/generate", content=body, headers={"content-type": "application/json"}, timeout=30)
    assert posted.status_code == 200, posted.text
    event_id = posted.json()["event_id"]
    stream = httpx.get(f"{base}/gradio_api/call/generate/{event_id}", timeout=60).text
    assert "event: error" in stream and "finite" in stream, stream
    assert ctx.engine.stats["pipeline_calls"] == before


def test_edit_without_image_is_refused(app):
    client, _, _ = app
    with pytest.raises(Exception, match="image to edit is required"):
        client.predict(None, "make it red", api_name="/edit")


def test_server_still_serves_after_bad_input(app):
    client, _, _ = app
    assert len(image_paths(client.predict("after the storm", api_name="/generate"))) == 1


# ------------------------------------------------------------------------------- reference images


def _portrait_file(folder: Path, name: str = "portrait.png", size: int = 64) -> str:
    image = Image.new("RGB", (size, size), (240, 235, 250))
    for x in range(size // 4, 3 * size // 4):
        for y in range(size // 6, 5 * size // 6):
            image.putpixel((x, y), (60, 180, 190) if y < size // 2 else (200, 60, 90))
    return _png_file(folder, name, image)


def test_generate_from_references_keeps_old_positional_calls(app):
    client, ctx, folder = app
    portrait = handle_file(_portrait_file(folder))
    # A family that draws from references (the demo editor): the recipe records the reference's hash.
    result = client.predict("1girl, on a beach", "", "demo-edit", "", 64, 64, 2, 4.0, "euler_a", 4, 1, [portrait],
                            api_name="/generate")
    (path,) = image_paths(result)
    recipe = read_recipe(path)
    assert recipe.task == "reference" and recipe.model == "demo-edit" and len(recipe.references) == 1
    # A family that takes none: the engine's short message, and no pipeline call.
    before = ctx.engine.stats["pipeline_calls"]
    with pytest.raises(Exception, match="does not take reference images"):
        client.predict("1girl", "", "demo-random", "", 64, 64, 2, 5.0, "euler_a", 1, 1, [portrait], api_name="/generate")
    assert ctx.engine.stats["pipeline_calls"] == before


def test_edit_references_parameter_is_last_and_optional(app):
    client, ctx, folder = app
    source = handle_file(_portrait_file(folder, "source.png"))
    reference = handle_file(_portrait_file(folder, "reference.png"))
    before = ctx.engine.stats["pipeline_calls"]
    with pytest.raises(Exception, match="Reference images go with instruction edits"):  # sd15: image to image only
        client.predict(source, "make her hair red", None, 0.5, "demo-random", 1, 2, [reference], api_name="/edit")
    with pytest.raises(Exception, match="edits one image at a time"):
        client.predict(source, "make her hair red", None, 0.5, "demo-edit", 1, 2, [reference], api_name="/edit")
    assert ctx.engine.stats["pipeline_calls"] == before
    paths = image_paths(client.predict(source, "make her hair red", None, 0.5, "demo-edit", 1, 2, api_name="/edit"))
    assert read_recipe(paths[0]).task == "instruct"


# ----------------------------------------------------------------------------------- X/Y grid


def test_xy_grid_endpoint_cells_and_limit(app):
    client, ctx, _ = app
    grid, cells, info = client.predict("1girl, smile", "cfg", "2, 6", "steps", "2, 3", "demo-random", 7, api_name="/xy_grid")
    assert len(cells) == 4 and "4" in info
    recipes = [read_recipe(item["image"] if isinstance(item["image"], str) else item["image"]["path"]) for item in cells]
    assert {r.seed for r in recipes} == {7}  # one seed for every cell
    assert [(r.cfg, r.steps) for r in recipes] == [(2.0, 2), (6.0, 2), (2.0, 3), (6.0, 3)]  # rows = Y, columns = X
    with Image.open(grid) as picture:
        assert picture.width > 2 * 64 and picture.height > 2 * 64 and "xy_grid" in picture.info
    grids = ctx.data_dir / "grids"
    saved = sorted(grids.rglob("*.png"))
    before = ctx.engine.stats["pipeline_calls"]
    with pytest.raises(Exception, match="The grid has 20 cells; the limit is 16"):
        client.predict("1girl", "steps", "1-5", "cfg", "1, 2, 3, 4", "demo-random", api_name="/xy_grid")
    assert ctx.engine.stats["pipeline_calls"] == before and sorted(grids.rglob("*.png")) == saved  # nothing half-way


# ------------------------------------------------------------------------ errors in the page language


def _client_in(url: str, language: str) -> Client:
    return Client(url, verbose=False, headers={"Accept-Language": language})


def test_errors_come_back_in_the_callers_language(app):
    from datetime import timedelta

    from hub.ui.arena_tab import arena_candidates
    from leaderboards.schema import Vote

    client, ctx, _ = app
    url = client.src
    japanese, spanish = _client_in(url, "ja-JP,ja;q=0.9"), _client_in(url, "es-ES,es;q=0.9")
    arena = ctx._arena
    a, b = arena_candidates(ctx)[:2]

    # Undo of someone else's vote: refused in Japanese, the vote still stands.
    battle = arena.record_battle(a, b, "p", "a.png", "b.png", session_hash=arena.hasher.hash(client_session(ctx.data_dir, spanish)))
    spanish.predict(battle, "model_a", api_name="/vote")
    with pytest.raises(Exception, match="取り消せるのは自分の投票だけです"):
        japanese.predict(battle, api_name="/undo_vote")
    # Undo after 30 s: refused in Spanish, nothing changed.
    with ctx.db.write_session() as session:
        (vote,) = session.query(Vote).filter(Vote.battle_id == battle).all()
        vote.created_at = vote.created_at - timedelta(seconds=60)
    with pytest.raises(Exception, match="Demasiado tarde: un voto solo se puede deshacer durante 30 segundos"):
        spanish.predict(battle, api_name="/undo_vote")
    with ctx.db.session() as session:
        (vote,) = session.query(Vote).filter(Vote.battle_id == battle).all()
        assert vote.undone_at is None
    # A personal board with too few votes: the message in Japanese (and English for a plain client).
    message, _ = japanese.predict(api_name="/personal_board")
    assert "20票" in message and "あと20回" in message
    assert "vote on 20 more battles" in client.predict(api_name="/personal_board")[0]
    # A grid over the cell limit, an unknown language code: Spanish.
    with pytest.raises(Exception, match="La cuadrícula tiene 20 celdas; el límite es 16"):
        spanish.predict("1girl", "steps", "1-5", "cfg", "1, 2, 3, 4", api_name="/xy_grid")
    with pytest.raises(Exception, match="Código de idioma desconocido 'xx'"):
        spanish.predict("xx", api_name="/set_language")
    assert spanish.predict("ja", api_name="/set_language") == "言語：日本語 (機械翻訳)"
    # Engine messages: by their template where one exists, else the English text behind a translated lead-in.
    with pytest.raises(Exception, match="不明なチェックポイント 'nope' です"):
        japanese.predict("x", "", "nope", api_name="/generate")
    with pytest.raises(Exception, match="リクエストは受け付けられませんでした（原文は英語）：.*multiples of 8"):
        japanese.predict("x", "", "demo-random", "", 65, 64, api_name="/generate")


def test_bootstrap_evals_are_queued_once_on_a_fresh_database(hub_config_path):
    """A fresh database gets the config's bootstrap runs queued (the worker runs them and the Leaderboard
    tab shows their progress); a database that has runs gets none again."""
    from hub.config import BootstrapEval, load_config
    from hub.ui.context import close_context, create_context, queue_bootstrap_evals
    from leaderboards.schema import EvalRun

    config = load_config(hub_config_path)
    config = config.model_copy(update={"bootstrap_evals": [BootstrapEval(checkpoint="demo-random", suite="demo-characters", seeds=1),
                                                           BootstrapEval(checkpoint="demo-random-b", suite="demo-characters", seeds=1)]})
    ctx = create_context(config, start_worker=False)
    try:
        queued = queue_bootstrap_evals(ctx)
        assert len(queued) == 2
        with ctx.db.session() as session:
            runs = session.query(EvalRun).all()
        assert sorted((r.checkpoint_id, r.suite_name, r.status) for r in runs) == [
            ("demo-random", "demo-characters", "queued"), ("demo-random-b", "demo-characters", "queued")]
        assert queue_bootstrap_evals(ctx) == []  # not a fresh database any more
    finally:
        close_context(ctx)
