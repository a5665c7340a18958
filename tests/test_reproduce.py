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
    result = reproduce(runner, TABLES, readme, progress=False)
    first = result.text
    # No README tables yet: that fails the reproduction, naming each table.
    assert not result.ok and result.failures == ["tiny: not in the README", "tiny-tiers: not in the README"]
    assert "generated=18" in first  # 3 characters x 3 languages x 2 seeds
    assert "<!-- reproduce:tiny -->" in first and "| `demo-random` |" in first
    assert "judges: tagger `demo-random-tagger`" in first and "2 seeds per item" in first
    assert "the README has no table `tiny` yet" in first
    tiers = readme_table("<!-- reproduce:tiny-tiers -->" + first.split("<!-- reproduce:tiny-tiers -->")[1], "tiny-tiers")
    assert tiers[0][3] == "—" and tiers[0][-1] == "demo-random-tagger"  # non_anime: no judge here, and who judged
    # The tables pasted into the README: a second call generates nothing and finds every cell unchanged.
    readme.write_text("# Hub\n" + first + "\n", encoding="utf-8")
    again = reproduce(runner, TABLES, readme, progress=False)
    second = again.text
    assert again.ok, again.failures
    assert "generated=0 reused=18" in second
    assert "largest change 0.00, all within their new 95% intervals" in second
    # The bold overall cell with its interval is a claim too: moved far from the new run, it fails.
    overall = readme_table(readme.read_text(encoding="utf-8"), "tiny")[0][-1]
    assert overall.startswith("**") and "[" in overall
    low, high = (float(x) for x in overall.split("[")[1].rstrip("]").split(","))
    claim = high + 0.05 if high <= 0.9 else low - 0.05  # outside the run's own interval
    drifted = f"**{claim:.2f}** [0.00, 1.00]"
    readme.write_text(readme.read_text(encoding="utf-8").replace(overall, drifted, 1), encoding="utf-8")
    third = reproduce(runner, TABLES, readme, progress=False)
    assert not third.ok and third.failures[0].startswith("tiny: 1 of") and "1 outside" in third.text
    # A README cell far from the new number is flagged.
    rows = readme_table(readme.read_text(encoding="utf-8"), "tiny")
    estimate = {"mean": 0.5, "lower": 0.4, "upper": 0.6}
    assert compare([["x", "0.95"]], [[estimate]]) == (pytest.approx(0.45), 1, 1)
    assert compare([["x", "**0.95** [0.90, 0.99]"]], [[estimate]]) == (pytest.approx(0.45), 1, 1)
    assert compare([["x", "—", "**0.55** [0.50, 0.60]"]], [[estimate, estimate]]) == (pytest.approx(0.05), 1, 0)
    assert rows and rows[0][0] == "`demo-random`"


@pytest.mark.slow
def test_reproduce_on_a_reduced_plan_builds_and_compares_every_readme_table(tmp_path, capsys, monkeypatch):
    """The real command on the committed weights and README, shrunk to 1 seed and 2 items per suite
    (about 3 minutes on 2 cores; the full plan takes about 30): every README table is built, found in
    the README and compared cell by cell. Not in the default run: `pytest -m slow` runs it."""
    from evals.__main__ import main
    from evals.reproduce import TABLES as README_TABLES

    monkeypatch.setenv("HUB_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("HUB_DATABASE_URL", raising=False)
    out = tmp_path / "tables.md"
    code = main(["reproduce", "--db", f"sqlite:///{tmp_path / 'reproduce.sqlite3'}", "--seeds", "1", "--limit", "2",
                 "--out", str(out), "--no-progress"])
    err = capsys.readouterr().err
    text = out.read_text(encoding="utf-8")
    assert "not in the README" not in err and "has no table" not in text
    for table in README_TABLES:
        assert f"<!-- reproduce:{table.id} -->" in text
    compared = [line for line in text.splitlines() if line.startswith("_against the README:")]
    assert len(compared) == len(README_TABLES) and all(" 0 cells" not in line for line in compared), compared
    assert code in (0, 1)  # on 2 items a cell may fall outside its interval: exit 1 says which, in `err`
    if code == 1:
        assert "reproduce: FAILED: " in err and "outside their new 95% interval" in err
