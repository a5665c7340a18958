"""Pinned `hub:` checkpoints, offline: a local Hugging Face cache layout and a resolver pointed at it.

A `hub:` checkpoint resolves to a commit when first loaded (or registered), is loaded at that commit,
and that commit is its version: samples are keyed by it, boards show it, and new weights pushed to the
same repo are a new version only when the pin is refreshed — old samples are never mixed with new ones.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from hub.config import load_config
from hub.engine import Engine, GenerationRequest
from hub.errors import HubInputError
from hub.revisions import HubCacheResolver, RevisionError

COMMIT_A = "a" * 40
COMMIT_B = "b" * 40


def publish(cache: Path, repo: str, commit: str, weights_from: Path) -> None:
    """What `huggingface_hub` leaves on disk after a download: refs/main -> commit, snapshots/<commit>/."""
    folder = cache / ("models--" + repo.replace("/", "--"))
    shutil.copytree(weights_from, folder / "snapshots" / commit)
    (folder / "refs").mkdir(parents=True, exist_ok=True)
    (folder / "refs" / "main").write_text(commit)


@pytest.fixture
def hub_world(tmp_path, builtin_root, monkeypatch):
    cache = tmp_path / "hf-cache"
    publish(cache, "org/anime-model", COMMIT_A, builtin_root / "demo-random")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.delenv("HUB_DATA_DIR", raising=False)
    monkeypatch.delenv("HUB_DATABASE_URL", raising=False)
    config = {
        "default_checkpoint": "anime",
        "data_dir": str(tmp_path / "data"),
        "checkpoints": [{"id": "anime", "name": "Anime (hub)", "family": "sd15", "source": "hub:org/anime-model",
                         "defaults": {"width": 32, "height": 32, "steps": 2, "cfg": 2.0}},
                        {"id": "anime-pinned", "name": "Anime (pinned)", "family": "sd15",
                         "source": f"hub:org/anime-model@{COMMIT_A}",
                         "defaults": {"width": 32, "height": 32, "steps": 2, "cfg": 2.0}}],
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return load_config(path), cache, builtin_root


def test_resolver_reads_a_local_cache(tmp_path, builtin_root):
    cache = tmp_path / "cache"
    publish(cache, "org/m", COMMIT_A, builtin_root / "demo-random")
    resolver = HubCacheResolver(cache)
    assert resolver.resolve("org/m") == COMMIT_A
    assert resolver.resolve("org/m", COMMIT_A) == COMMIT_A
    with pytest.raises(RevisionError, match="not in the local Hub cache"):
        resolver.resolve("org/other")
    with pytest.raises(RevisionError, match="no snapshot"):
        resolver.resolve("org/m", COMMIT_B)


def pixels(engine: Engine, checkpoint: str) -> np.ndarray:
    return np.asarray(engine.generate(GenerationRequest("1girl", checkpoint=checkpoint, seed=3))[0].image)


def test_hub_checkpoint_is_pinned_loaded_at_its_commit_and_versioned(hub_world):
    config, cache, builtin = hub_world
    engine = Engine(config, device="cpu")
    try:
        assert engine.checkpoint_version("anime") == COMMIT_A  # resolved once, then pinned
        image = engine.generate(GenerationRequest("1girl", checkpoint="anime", seed=3))[0]
        assert image.recipe.model_hash == COMMIT_A[:10]
        before = np.asarray(image.image)
        # The author pushes new weights: main now points at another commit with other weights.
        publish(cache, "org/anime-model", COMMIT_B, builtin / "demo-random-b")
        assert engine.checkpoint_version("anime") == COMMIT_A  # still the pinned version...
        assert np.array_equal(pixels(engine, "anime"), before)  # ...and still its weights
        # Refreshing the pin makes the new weights a new version.
        engine.registry.revision_store.set("anime", engine.registry.revision_resolver.resolve("org/anime-model"))
        fresh = Engine(config, device="cpu")
        fresh.registry.revision_store = engine.registry.revision_store
        try:
            assert fresh.checkpoint_version("anime") == COMMIT_B
            after = pixels(fresh, "anime")
            assert np.abs(after.astype(int) - before).mean() > 10  # other weights, another image
            assert fresh.checkpoint_version("anime-pinned") == COMMIT_A  # `@commit` pins explicitly
            assert np.array_equal(pixels(fresh, "anime-pinned"), before)  # commit A's weights again
        finally:
            fresh.shutdown()
    finally:
        engine.shutdown()


def test_eval_samples_of_two_versions_are_never_mixed(hub_world, tmp_path):
    """A rerun after the pin moved generates every sample again under the new version; the board shows
    the new version only (the old samples stay stored, keyed by the old commit)."""
    from evals.runner import EvalRunner, RunOptions, attach_registered_checkpoints
    from leaderboards.db import init_db
    from leaderboards.eval_boards import CHARACTER_BOARD, build_eval_board
    from leaderboards.schema import Checkpoint, Sample
    from tests.test_eval_runner import write_world

    config, cache, builtin = hub_world
    world = load_config(write_world(tmp_path / "world"))
    config = config.model_copy(update={"judges": world.judges, "default_judges": world.default_judges})
    db = init_db(f"sqlite:///{tmp_path / 'versions.sqlite3'}")
    engine = Engine(config, device="cpu")
    attach_registered_checkpoints(engine, db)  # pins live on the checkpoint rows
    runner = EvalRunner(engine, db, config, data_dir=tmp_path / "data", prompts_dir=tmp_path / "world" / "prompts")
    options = RunOptions("anime", "tiny-chars", seeds=1, languages=("en",))
    try:
        first = runner.run(options, progress=False)
        assert first.generated == 3
        with db.session() as s:
            assert s.get(Checkpoint, "anime").revision == COMMIT_A
        assert runner.run(options, progress=False).generated == 0
        publish(cache, "org/anime-model", COMMIT_B, builtin / "demo-random-b")
        assert runner.run(options, progress=False).generated == 0  # pinned: the push changes nothing yet
        from evals.__main__ import main

        assert main(["refresh", "anime", "--db", str(db.url), "--config", str(config.source_path)]) == 0
        assert engine.checkpoint_version("anime") == COMMIT_B  # the pin on the checkpoint's row moved
        loads = engine.stats["checkpoint_loads"]
        second = runner.run(options, progress=False)
        assert second.generated == 3 and second.reused == 0
        assert engine.stats["checkpoint_loads"] == loads + 1  # the running engine loaded the new version itself
        with db.session() as s:
            versions = sorted({v for (v,) in s.query(Sample.checkpoint_version).all()})
        assert versions == [COMMIT_A, COMMIT_B]
        board = build_eval_board(db, CHARACTER_BOARD)
        assert set(board["version"]) == {COMMIT_B[:10]}
        assert board[(board["group"] == "all") & (board["language"] == "all")]["n"].iloc[0] == 2  # 2 judged items, new version
    finally:
        engine.shutdown()
        db.dispose()


def test_unresolvable_hub_checkpoint_is_unavailable_with_the_reason(hub_world, tmp_path):
    config, _, _ = hub_world
    missing = config.model_copy(update={"checkpoints": [*config.checkpoints, config.checkpoints[0].model_copy(
        update={"id": "gone", "source": "hub:org/not-downloaded"})]})
    engine = Engine(missing, device="cpu")
    try:
        status = engine.availability()["gone"]
        assert not status.available and "not in the local Hub cache" in status.reason
        with pytest.raises(HubInputError, match="not available here"):
            engine.generate(GenerationRequest("x", checkpoint="gone"))
    finally:
        engine.shutdown()
