"""The same-seed comparison grid, engine side (hub/grid.py): axes, the plan of cells, the cell limit,
batching through the real engine, and the labelled picture."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from hub.engine import GenerationRequest
from hub.errors import HubInputError
from hub.grid import Axis, compose_grid, parse_axis, plan_grid, run_grid


@pytest.mark.parametrize(
    "kind, text, values",
    [
        ("cfg", "2, 4.5,7", (2.0, 4.5, 7.0)),
        ("steps", "1-4", (1, 2, 3, 4)),
        ("steps", "10-30 (+10)", (10, 20, 30)),
        ("cfg", "2-8 [4]", (2.0, 4.0, 6.0, 8.0)),
        ("cfg", "9-3 (-3)", (9.0, 6.0, 3.0)),
        ("lora_weight", "-0.5, 0, 1", (-0.5, 0.0, 1.0)),
        ("checkpoint", " demo-a ,demo-b ", ("demo-a", "demo-b")),
        ("prompt", "1girl, red hair | 1girl, blue hair\n1boy", ("1girl, red hair", "1girl, blue hair", "1boy")),
        ("prompt_sr", "red hair, blue hair", ("red hair", "blue hair")),
        ("STEPS", "5", (5,)),
    ],
)
def test_axes_parse_lists_and_ranges(kind, text, values):
    axis = parse_axis(kind, text)
    assert axis.values == values and axis.kind == kind.lower()


@pytest.mark.parametrize(
    "kind, text, message",
    [
        ("sampler", "euler", "Unknown grid axis 'sampler'"),
        ("cfg", " , ", "The CFG axis has no values"),
        ("cfg", "high", "'high' is not a number"),
        ("cfg", "nan", "is not a number"),
        ("steps", "1-1000", "not a usable range"),
        ("steps", "5-1 (+1)", "not a usable range"),
        ("cfg", "1-2 (+0)", "not a usable range"),
        ("checkpoint", ",".join(f"c{i}" for i in range(100)), "The grid has 100 cells"),
    ],
)
def test_bad_axes_are_refused(kind, text, message):
    with pytest.raises(HubInputError, match=message):
        parse_axis(kind, text)


def test_no_axis():
    assert parse_axis("none", "whatever") is None and parse_axis(None, None) is None


BASE = GenerationRequest(prompt="1girl, red hair, smile", checkpoint="demo-random", seed=42, batch=3, loras=(("lora-a", 0.8),))


def test_plan_rows_are_y_columns_are_x_one_seed():
    plan = plan_grid(BASE, parse_axis("cfg", "2, 6"), parse_axis("prompt_sr", "red hair, blue hair, green hair"), max_cells=16)
    assert [len(row) for row in plan] == [2, 2, 2]
    assert [[(r.cfg, r.prompt) for r in row] for row in plan] == [
        [(2.0, "1girl, red hair, smile"), (6.0, "1girl, red hair, smile")],
        [(2.0, "1girl, blue hair, smile"), (6.0, "1girl, blue hair, smile")],
        [(2.0, "1girl, green hair, smile"), (6.0, "1girl, green hair, smile")],
    ]
    cells = [r for row in plan for r in row]
    assert {r.seed for r in cells} == {42} and {r.batch for r in cells} == {1}
    weights = plan_grid(BASE, parse_axis("lora_weight", "0, 1.2"), max_cells=16)[0]
    assert [r.loras for r in weights] == [(("lora-a", 0.0),), (("lora-a", 1.2),)]


def test_plan_refusals():
    with pytest.raises(HubInputError, match="The grid has 20 cells; the limit is 16"):
        plan_grid(BASE, parse_axis("steps", "1-5"), parse_axis("cfg", "1,2,3,4"), max_cells=16)
    assert len(plan_grid(BASE, parse_axis("steps", "1-4"), parse_axis("cfg", "1,2,3,4"), max_cells=16)) == 4  # exactly at the limit
    with pytest.raises(HubInputError, match="must differ"):
        plan_grid(BASE, parse_axis("cfg", "1,2"), parse_axis("cfg", "3"), max_cells=16)
    with pytest.raises(HubInputError, match="needs a LoRA"):
        plan_grid(GenerationRequest(prompt="x"), parse_axis("lora_weight", "0, 1"), max_cells=16)
    with pytest.raises(HubInputError, match="'purple hair', which is not in the prompt"):
        plan_grid(BASE, parse_axis("prompt_sr", "purple hair, red hair"), max_cells=16)
    only_y = plan_grid(BASE, None, parse_axis("steps", "2,3"), max_cells=16)  # a lone Y axis becomes X
    assert [r.steps for r in only_y[0]] == [2, 3]


def test_compose_labels_enlarges_and_centres():
    red = Image.new("RGB", (32, 32), (255, 0, 0))
    checker = Image.fromarray((np.indices((32, 32)).sum(axis=0) % 2 * 255).astype(np.uint8)).convert("RGB")
    small = Image.new("RGB", (16, 16), (0, 0, 255))
    grid = compose_grid([[red, checker], [small, red]], ["CFG: 2", "CFG: 6"], ["Steps: 2", "Steps: 3"], min_cell=128)
    pixels = np.asarray(grid)
    assert grid.width >= 120 + 2 * 128 and grid.height >= 2 * 128
    # The checkerboard was enlarged 4x with nearest-neighbour: blocks of 4 equal pixels, only black and white.
    rows, cols = np.where((pixels[:, :, 0] == 0) & (pixels[:, :, 2] == 0) & (pixels[:, :, 1] == 0))
    assert len(rows) > 0
    block = pixels[rows.min():rows.min() + 8, cols.min():cols.min() + 8, 0]
    assert set(np.unique(block)) <= {0, 255} and (block[:4, :4] == block[0, 0]).all()
    # The labels are drawn (dark text pixels above the cells and left of them).
    assert (pixels[:20, 130:, :] < 100).any()
    dark_rows = np.where((pixels[:, :100, :] < 100).any(axis=(1, 2)))[0]  # row labels, one per row of cells
    assert dark_rows.min() < grid.height / 2 < dark_rows.max()
    # The 16 px cell is centred in its 128 px slot (enlarged 8x to 128).
    assert (pixels[:, :, 2] > 200).sum() >= 128 * 128


def test_grid_through_the_real_engine_shares_pipeline_calls(hub_config_path):
    """Cells that differ only in their prompt share one pipeline call; every cell keeps the seed."""
    from hub.config import load_config
    from hub.engine import Engine

    engine = Engine(load_config(hub_config_path), device="cpu")
    try:
        before = engine.stats["pipeline_calls"]
        result = run_grid(engine, GenerationRequest(prompt="1girl", checkpoint="demo-random", seed=5, steps=2),
                          parse_axis("prompt", "1girl | 1boy | a cat | a dog"), max_cells=16)
        assert engine.stats["pipeline_calls"] - before < 4
        assert [c.recipe.prompt for c in result.flat] == ["1girl", "1boy", "a cat", "a dog"]
        assert {c.seed for c in result.flat} == {5}
        alone = run_grid(engine, GenerationRequest(prompt="a dog", checkpoint="demo-random", seed=5, steps=2),
                         Axis("prompt", ("a dog",)), max_cells=16)
        # Same seed, same settings: the cell drawn alone is the cell drawn in the grid.
        assert np.array_equal(np.asarray(alone.flat[0].image), np.asarray(result.flat[3].image))
        # Two axes: rows are Y, columns X, each cell drawn with its own settings; over the limit nothing runs.
        base = GenerationRequest(prompt="1girl", checkpoint="demo-random", seed=5, steps=2)
        two = run_grid(engine, base, parse_axis("steps", "2,3,4"), parse_axis("cfg", "1,2"), max_cells=16)
        assert len(two.cells) == 2 and len(two.cells[0]) == 3
        assert [[(c.recipe.steps, c.recipe.cfg) for c in row] for row in two.cells] == [[(2, 1.0), (3, 1.0), (4, 1.0)],
                                                                                         [(2, 2.0), (3, 2.0), (4, 2.0)]]
        assert two.cell_label(1, 2) == "Steps: 4 · CFG: 2"
        calls = engine.stats["pipeline_calls"]
        with pytest.raises(HubInputError, match="The grid has 18 cells; the limit is 16"):
            run_grid(engine, base, parse_axis("steps", "1-9"), parse_axis("cfg", "1,2"), max_cells=16)
        assert engine.stats["pipeline_calls"] == calls
    finally:
        engine.shutdown()
