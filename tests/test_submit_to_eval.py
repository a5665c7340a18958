"""A model author's path end to end: register a checkpoint, queue an eval, the worker runs it,
the new checkpoint generates over HTTP, the results reach the character board."""

from __future__ import annotations

import shutil
import time

from gradio_client import Client
from sqlalchemy import func, select

from hub.families import FAMILIES
from hub.recipe import read_recipe
from leaderboards import submissions
from evals.plan import RunOptions
from hub.ui.context import make_runner
from leaderboards.boards import BoardSource, board
from leaderboards.schema import EvalRun, Sample
from tests.hub_app import running_app

ROOT = __import__("pathlib").Path(__file__).resolve().parent.parent


def test_registered_checkpoint_is_evaluated_and_served(tmp_path):
    with running_app(tmp_path / "data", f"sqlite:///{tmp_path / 'hub.sqlite3'}", start_worker=True) as (url, ctx):
        uploads = ctx.data_dir / "uploads"
        uploads.mkdir(parents=True, exist_ok=True)
        shutil.copytree(ROOT / "models" / "demo-english", uploads / "my-model")
        submissions.register_checkpoint(
            ctx.db, "author-model", f"folder:{uploads / 'my-model'}", "sd15", families=FAMILIES, allowed_roots=[uploads]
        )
        run_id = make_runner(ctx).queue(RunOptions("author-model", "demo-characters", seeds=1, limit=2, languages=("en", "ja")))
        ctx.eval_worker.wake()
        deadline = time.monotonic() + 900  # generous: a loaded 2-core machine is slow, never wrong
        status = "queued"
        while time.monotonic() < deadline:
            with ctx.db.session() as session:
                status, error = session.execute(select(EvalRun.status, EvalRun.error).where(EvalRun.id == run_id)).one()
            if status in ("complete", "failed"):
                break
            time.sleep(1)
        assert status == "complete", error
        with ctx.db.session() as session:
            samples = session.execute(select(func.count()).select_from(Sample).where(Sample.checkpoint_id == "author-model")).scalar()
        characters = board("characters").table(BoardSource(ctx.db))
        assert samples == 4  # 2 characters x 2 languages x 1 seed
        assert "author-model" in set(characters["checkpoint"])

        client = Client(url, verbose=False, ssl_verify=False)
        gallery, _ = client.predict("1girl", checkpoint="author-model", seed=1, api_name="/generate")
        path = gallery[0]["image"] if isinstance(gallery[0]["image"], str) else gallery[0]["image"]["path"]
        assert read_recipe(path).model == "author-model"
