"""`python -m evals reproduce` on a tiny world: tables built from real runs, compared with a README copy."""

from __future__ import annotations

import pytest

from evals.reproduce import Row, Table, compare, readme_table, reproduce
from evals.runner import EvalRunner
from hub.config import load_config
from tests.test_eval_runner import write_world


@pytest.fixture(scope="module")
def runner(tmp_path_factory):
    from hub.engine import Engine
    from leaderboards.db import init_db

    root = tmp_path_factory.mktemp("reproduce")
    config = load_config(write_world(root))
    engine = Engine(config, device="cpu")
    db = init_db(f"sqlite:///{root / 'hub.sqlite3'}")
    yield EvalRunner(engine, db, config, data_dir=root / "data", prompts_dir=root / "prompts")
    engine.shutdown()
    db.dispose()


TABLES = (
    Table("tiny", "Tiny hit rates", "hit_rate", (Row("`demo-random`", "demo-random", "tiny-chars", seeds=2),)),
    Table("tiny-tiers", "Tiny tiers", "hit_rate", (Row("`demo-random`", "demo-random", "tiny-chars", seeds=2),),
          by="group", groups=("popular", "niche", "non_anime")),
)


def test_tables_are_regenerated_and_compared_with_the_readme(runner, tmp_path):
    readme = tmp_path / "README.md"
    first = reproduce(runner, TABLES, readme, progress=False)
    assert "generated=18" in first  # 3 characters x 3 languages x 2 seeds
    assert "<!-- reproduce:tiny -->" in first and "| `demo-random` |" in first
    assert "judges: tagger `demo-random-tagger`" in first and "2 seeds per item" in first
    assert "the README has no table `tiny` yet" in first
    tiers = readme_table("<!-- reproduce:tiny-tiers -->" + first.split("<!-- reproduce:tiny-tiers -->")[1], "tiny-tiers")
    assert tiers[0][3] == "—" and tiers[0][-1] == "demo-random-tagger"  # non_anime: no judge here, and who judged
    # The tables pasted into the README: a second call generates nothing and finds every cell unchanged.
    readme.write_text("# Hub\n" + first + "\n", encoding="utf-8")
    second = reproduce(runner, TABLES, readme, progress=False)
    assert "generated=0 reused=18" in second
    assert "largest change 0.00, all within their new 95% intervals" in second
    # A README cell far from the new number is flagged.
    rows = readme_table(readme.read_text(encoding="utf-8"), "tiny")
    estimate = {"mean": 0.5, "lower": 0.4, "upper": 0.6}
    assert compare([["x", "0.95"]], [[estimate]]) == (pytest.approx(0.45), 1, 1)
    assert rows and rows[0][0] == "`demo-random`"
