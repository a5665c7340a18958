"""What the hub hands out when it is open to the public: CSV downloads whose user text can never run as
a spreadsheet formula (OWASP CSV injection), one still image wherever one image is expected (no
animated or multi-frame uploads), and no server path in a message or a table."""

from __future__ import annotations

import csv
import io
import random
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from evals.galleries import list_galleries, save_gallery
from hub.errors import HubInputError
from hub.images import MULTI_FRAME_MESSAGE, open_upload
from hub.revisions import HubCacheResolver, RevisionError
from leaderboards.arena import Arena, ArenaLimits, SessionHasher
from leaderboards.arena_votes import export_votes
from leaderboards.boards import export_csv
from leaderboards.csv_safe import FORMULA_PREFIXES, formula_cells, neutralize_cell, safe_frame, to_csv_bytes, write_csv
from leaderboards.db import init_db
from leaderboards.results import upsert_checkpoint
from tests import name_world as world
from tests.conftest import ROOT, write_config

MODELS = {"m-alpha": "Alpha", "m-beta": "Beta"}
HYPERLINK = '=HYPERLINK("http://x","click")'
# One prompt per formula prefix (and the classic payloads), as a voter could type them.
# A line break inside a cell must not start a new row with a formula in it.
PROMPTS = ["=1+2", "+SUM(A1:A9)", "-1+2", "@cmd", "\tTAB=1", "\rCR=1", HYPERLINK, "=cmd|' /C calc'!A0",
           "1girl, red scarf", "smile\r=2+3", "smile\n@SUM(1)", "smile\r\n-1+1"]
PYTHON = ROOT / ".venv" / "bin" / "python"


# ------------------------------------------------------------------------------------------ csv_safe
@pytest.mark.parametrize("prefix", FORMULA_PREFIXES)
def test_each_formula_prefix_gets_a_leading_quote(prefix):
    value = f"{prefix}1+2"
    assert neutralize_cell(value) == "'" + value
    assert formula_cells(f"a,b\nok,\"{value}\"\n") == [(1, 1, value)]
    assert formula_cells(f"a,b\nok,\"'{value}\"\n") == []


def test_numbers_and_plain_text_are_left_alone():
    for value in (-1, -0.25, 3, 1.5, None, True, "1girl, red scarf", "", "a=b", "'=already quoted"):
        assert neutralize_cell(value) is value
    assert neutralize_cell("-1+2") == "'-1+2" and neutralize_cell("-1") == "'-1"  # text, even if it looks numeric
    assert formula_cells("score\n-0.25\n+3\n-1e-05\n") == []  # a number is not a formula
    assert formula_cells("x\n-inf\n") == [(1, 0, "-inf")]


def test_safe_frame_neutralizes_text_cells_and_column_names_and_keeps_numbers():
    frame = pd.DataFrame({"name": [HYPERLINK, "@me", "plain"], "score": [-1.5, 2.0, -3.0], "=total": [-1, 0, 1],
                          "tag": pd.Categorical(["+x", "y", "+x"])})
    safe = safe_frame(frame)
    assert list(safe.columns) == ["name", "score", "'=total", "tag"]
    assert list(safe["name"]) == ["'" + HYPERLINK, "'@me", "plain"] and list(safe["tag"]) == ["'+x", "y", "'+x"]
    assert safe["score"].tolist() == [-1.5, 2.0, -3.0] and safe["'=total"].dtype.kind == "i"
    assert list(frame.columns)[2] == "=total" and frame["name"][0] == HYPERLINK  # the input is untouched
    text = to_csv_bytes(frame).decode("utf-8")
    assert formula_cells(text) == [] and "-1.5" in text
    buffer = io.StringIO()
    write_csv(frame, buffer)
    assert buffer.getvalue() == text  # index=False by default, the same bytes
    broken = pd.DataFrame({"prompt": ["smile\r=2+3", "ok"]})
    assert formula_cells(broken.to_csv(index=False)) == [(2, 0, "=2+3")]  # a bare CR splits the row...
    assert formula_cells(to_csv_bytes(broken).decode()) == []  # ...unless the cell is quoted (CRLF rows)
    assert formula_cells(frame.to_csv(index=False))  # what the plain pandas writer would have shipped


# ------------------------------------------------------------------------------------------ votes download
@pytest.fixture
def voted_db(tmp_path):
    """A real SQLite database with one counted vote on a battle for each prompt in PROMPTS."""
    database = init_db(f"sqlite:///{tmp_path / 'hub.sqlite3'}")
    with database.session() as s:
        for cid, name in MODELS.items():
            upsert_checkpoint(s, cid, name, "sdxl", f"builtin:{cid}", None, False)
    arena = Arena(database, tmp_path / "arena", SessionHasher(b"csv-salt"), candidates=lambda: list(MODELS),
                  limits=ArenaLimits(votes_per_minute=1000, battles_per_minute=1000), rng=random.Random(3))
    for i, prompt in enumerate(PROMPTS):
        battle = arena.record_battle("m-alpha", "m-beta", prompt, "a.png", "b.png")
        arena.record_vote(battle, "model_a", session_id=f"voter-{i}")
    yield database
    database.dispose()


def exported_prompts(path: Path) -> list[str]:
    with open(path, newline="", encoding="utf-8") as handle:
        return [row["prompt"] for row in csv.DictReader(handle)]


def expected_csv_prompts() -> list[str]:
    return ["'" + p if p.startswith(FORMULA_PREFIXES) else p for p in PROMPTS]


def test_votes_csv_has_no_formula_cell_and_parquet_keeps_the_text(voted_db, tmp_path):
    path = export_votes(voted_db, tmp_path / "out" / "votes.csv", "csv")
    text = path.read_bytes().decode("utf-8")
    assert formula_cells(text) == []
    assert exported_prompts(path) == expected_csv_prompts()  # still readable, with the quote
    assert list(pd.read_csv(path, keep_default_na=False)["prompt"]) == expected_csv_prompts()
    parquet = export_votes(voted_db, tmp_path / "out" / "votes.parquet", "parquet")
    assert list(pd.read_parquet(parquet)["prompt"]) == PROMPTS  # no formulas in Parquet: the raw text


def test_votes_cli_csv_has_no_formula_cell(voted_db, tmp_path):
    out = tmp_path / "cli" / "votes.csv"
    python = str(PYTHON if PYTHON.exists() else sys.executable)
    done = subprocess.run([python, "-m", "leaderboards", "--db", voted_db.url, "export-votes", "--format", "csv",
                           "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert formula_cells(out.read_bytes().decode("utf-8")) == []
    assert exported_prompts(out) == expected_csv_prompts()


def test_board_csv_has_no_formula_cell(tmp_path):
    frame = pd.DataFrame({"rank": [1, 2], "display_name": [HYPERLINK, "Plain"], "score": [0.5, -0.25], "delta": [-3, 2]})
    path = export_csv(frame, tmp_path / "boards", "generate_board")
    text = path.read_bytes().decode("utf-8")
    assert formula_cells(text) == []
    read = pd.read_csv(path)
    assert read["display_name"][0] == "'" + HYPERLINK and read["score"].tolist() == [0.5, -0.25] and read["delta"].tolist() == [-3, 2]


# ------------------------------------------------------------------------------------------ one still image
def animated_gif(size: int = 32) -> bytes:
    frames = [Image.new("RGB", (size, size), colour) for colour in ((200, 30, 30), (30, 30, 200))]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    data = buffer.getvalue()
    with Image.open(io.BytesIO(data)) as check:
        assert check.n_frames == 2
    return data


def test_an_animated_upload_is_refused(tmp_path):
    data = animated_gif()
    (tmp_path / "anim.gif").write_bytes(data)
    limits = {"max_bytes": 10_000_000, "max_pixels": 4096 * 4096}
    for source in (data, tmp_path / "anim.gif", str(tmp_path / "anim.gif"), Image.open(io.BytesIO(data))):
        with pytest.raises(HubInputError) as refused:
            open_upload(source, **limits)
        assert str(refused.value) == MULTI_FRAME_MESSAGE
    # A one-frame GIF is still a welcome upload.
    still = io.BytesIO()
    Image.new("RGB", (32, 32), (10, 120, 10)).save(still, format="GIF")
    assert open_upload(still.getvalue(), **limits).size == (32, 32)


def test_an_animated_gallery_image_is_refused_and_nothing_is_written(tmp_path):
    prompts = world.write_prompts(tmp_path / "prompts")
    data = tmp_path / "data"
    images = [world.render("red_ball", 0), animated_gif(), world.render("red_ball", 1)]
    with pytest.raises(HubInputError, match=MULTI_FRAME_MESSAGE) as refused:
        save_gallery(data, "shapes", "red_ball", images, prompts_dir=prompts)
    assert str(refused.value).startswith("gallery: image 2")
    assert list_galleries(data) == []
    assert not (data / "galleries").exists() or not any((data / "galleries").rglob("*"))


# ------------------------------------------------------------------------------------------ no server path
def test_revision_errors_do_not_name_the_cache_folder(tmp_path):
    cache = tmp_path / "hf-cache"
    (cache / "models--org--model" / "refs").mkdir(parents=True)
    (cache / "models--org--model" / "refs" / "main").write_text("a" * 40)
    resolver = HubCacheResolver(cache)
    for revision in ("v2", None):
        with pytest.raises(RevisionError) as err:
            resolver.resolve("org/model", revision)
        assert "local Hub cache" in str(err.value) and str(tmp_path) not in str(err.value)


def test_load_error_reasons_keep_only_file_names():
    from core.errors import without_paths as hide_paths

    text = "failed to load: no file named model.bin found in directory /srv/data/builtin/x/unet (see https://hf.co/org/m/blob/main)"
    shown = hide_paths(text)
    assert "/srv" not in shown and "unet" in shown and "model.bin" in shown and "https://hf.co/org/m/blob/main" in shown


def test_the_galleries_table_has_no_path_column(tmp_path):
    from hub.config import load_config
    from hub.ui.context import HubContext
    from hub.ui.galleries_section import GALLERY_COLUMNS, galleries_table

    config = load_config(write_config(tmp_path))
    save_gallery(config.data_path, "shapes", "red_ball", [world.render("red_ball", i) for i in range(3)],
                 prompts_dir=world.write_prompts(tmp_path / "prompts"))
    table = galleries_table(HubContext(config=config, engine=None, db=None))  # the table needs only the data folder
    assert "path" not in GALLERY_COLUMNS and list(table.columns) == GALLERY_COLUMNS
    assert list(table["character_id"]) == ["red_ball"]
    assert str(config.data_path) not in table.to_csv() and str(tmp_path) not in table.to_csv()
