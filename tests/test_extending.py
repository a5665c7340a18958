"""docs/EXTENDING.md, followed: a throwaway model family, judge kind, suite kind and board, each written
in a temp folder as a contributor would and registered with one line, then used through the hub's own
loaders (the engine, the judge registry, the suite loader, the storage CLI)."""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import io
import shutil
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from evals import kinds as suite_kinds
from evals.judges import registry as judge_registry
from hub import families
from leaderboards import boards

ROOT = Path(__file__).resolve().parent.parent

JUDGE_MODULE = '''
import numpy as np
from evals.judges.base import ImageTextJudge, JudgeKind


class Brightness:
    """Scores how bright an image is, whatever the text: a judge kind in a dozen lines."""

    def __init__(self, info):
        self.info = info

    def image_embeddings(self, images):
        return np.array([[np.asarray(image.convert("L"), dtype=float).mean() / 255] for image in images])

    def scores(self, images, texts):
        return np.repeat(self.image_embeddings(images), len(texts), axis=1)


KIND = JudgeKind("brightness", roles=("image_text",), protocol=ImageTextJudge, build=lambda ctx: Brightness(ctx.info))
'''


@pytest.fixture
def registrations(monkeypatch):
    """Whatever the test registers is gone afterwards (the registries are process-wide)."""
    monkeypatch.setattr(families, "FAMILIES", dict(families.FAMILIES))
    monkeypatch.setattr(judge_registry, "_KIND_MODULES", dict(judge_registry._KIND_MODULES))
    monkeypatch.setattr(suite_kinds, "KINDS", dict(suite_kinds.KINDS))
    monkeypatch.setattr(boards, "BOARDS", list(boards.BOARDS))


def test_a_family_registered_in_one_line_is_loadable_by_config_and_served(registrations, tmp_path, builtin_root,
                                                                         monkeypatch):
    from hub.config import load_config
    from hub.engine import Engine, GenerationRequest
    from tests.conftest import write_config

    families.register_family(dataclasses.replace(families.FAMILIES["sd15"], name="my-sd", description="a copy of sd15"))
    with pytest.raises(ValueError, match="already registered"):
        families.register_family(families.FAMILIES["my-sd"])
    monkeypatch.delenv("HUB_DATA_DIR", raising=False)
    config = load_config(write_config(tmp_path, default_checkpoint="mine", checkpoints=[{
        "id": "mine", "name": "Mine", "family": "my-sd", "source": f"folder:{builtin_root / 'demo-random'}",
        "defaults": {"width": 64, "height": 64, "steps": 2, "cfg": 5.0, "sampler": "euler_a"}}]))
    engine = Engine(config, device="cpu")
    try:
        image = engine.generate(GenerationRequest("1girl", seed=3))[0]
    finally:
        engine.shutdown()
    assert image.image.size == (64, 64) and image.recipe.model == "mine"


def test_a_judge_kind_registered_in_one_line_is_built_from_a_config_entry(registrations, tmp_path, monkeypatch):
    (tmp_path / "my_judge_kind.py").write_text(JUDGE_MODULE, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    judge_registry.register_judge_kind("brightness", "my_judge_kind")
    assert "image_text" in judge_registry.judge_kind("brightness").roles
    judge = judge_registry.build_judge({"id": "bright", "kind": "brightness", "source": f"folder:{tmp_path}"},
                                       data_dir=tmp_path, use_cache=False)
    white, black = Image.new("RGB", (8, 8), "white"), Image.new("RGB", (8, 8), "black")
    scores = judge.scores([white, black], ["a", "b"])
    assert scores.shape == (2, 2) and scores[0, 0] == pytest.approx(1.0) and scores[1, 0] == pytest.approx(0.0)
    assert judge.info.id == "bright"
    importlib.invalidate_caches()


def test_a_suite_kind_registered_in_one_line_loads_its_suites(registrations, tmp_path):
    from evals.kinds.multilingual import MultilingualKind
    from evals.suites import SuiteError, load_suite_file

    class SceneWordsKind(MultilingualKind):
        name = "scene_words"

    suite_kinds.register_kind(SceneWordsKind())
    (tmp_path / "vocab").mkdir()
    shutil.copy(ROOT / "prompts" / "vocab" / "demo_tags.txt", tmp_path / "vocab" / "demo_tags.txt")
    text = (ROOT / "prompts" / "demo-multilingual.yaml").read_text(encoding="utf-8")
    (tmp_path / "mine.yaml").write_text(text.replace("kind: multilingual_fidelity", "kind: scene_words")
                                        .replace("suite: demo-multilingual", "suite: my-scenes"), encoding="utf-8")
    suite = load_suite_file(tmp_path / "mine.yaml")[0]
    assert (suite.name, suite.kind, type(suite.spec)) == ("my-scenes", "scene_words", SceneWordsKind)
    rows = suite.rows(["en", "ja"], limit=2)
    assert len(rows) == 4 and all(row.text for row in rows)
    (tmp_path / "other.yaml").write_text(text.replace("kind: multilingual_fidelity", "kind: not_registered"),
                                         encoding="utf-8")
    with pytest.raises(SuiteError, match="unknown kind 'not_registered'"):
        load_suite_file(tmp_path / "other.yaml")


def test_a_board_registered_in_one_line_shows_in_the_storage_cli(registrations, tmp_path):
    from leaderboards.__main__ import main

    def build(source: boards.BoardSource) -> pd.DataFrame:
        return pd.DataFrame({"checkpoint": ["a", "b"], "score": [0.25, 0.75]})

    boards.register_board(boards.BoardSpec("my-board", "My board", "Two rows.", "Nothing yet.", build=build,
                                           display=lambda frame: frame.sort_values("score", ascending=False),
                                           plot=lambda frame: None))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["--db", f"sqlite:///{tmp_path / 'hub.sqlite3'}", "boards"]) == 0
    text = out.getvalue()
    assert "# My board" in text
    rows = [line.split() for line in text.split("# My board", 1)[1].strip().splitlines()[1:]]
    assert rows == [["b", "0.75"], ["a", "0.25"]]  # through its display: best first
