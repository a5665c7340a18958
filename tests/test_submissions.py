"""Submissions: register checkpoints (Hub id, diffusers folder, single .safetensors) with every refusal
reason, queue eval runs that survive a restart, hand each queued run to exactly one worker, and the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from hub.errors import HubInputError
from leaderboards import submissions
from leaderboards.db import Database, init_db
from leaderboards.results import upsert_checkpoint
from leaderboards.schema import Checkpoint, EvalRun
from tests.pg import postgres_server, postgres_url  # noqa: F401 - fixtures

REPO_ROOT = Path(__file__).resolve().parent.parent
FAMILIES = ("sd15", "sdxl", "flux2-klein")


@pytest.fixture
def db(tmp_path):
    database = init_db(f"sqlite:///{tmp_path / 'sub.sqlite3'}")
    yield database
    database.dispose()


@pytest.fixture
def root(tmp_path) -> Path:
    folder = tmp_path / "uploads"
    folder.mkdir()
    return folder


def make_weights(path: Path, value: float = 1.0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({"weight": np.full((2, 2), value, dtype=np.float32)}, str(path))
    return path


def make_diffusers_folder(folder: Path) -> Path:
    (folder / "unet").mkdir(parents=True)
    (folder / "model_index.json").write_text('{"_class_name": "StableDiffusionPipeline"}')
    make_weights(folder / "unet" / "diffusion_pytorch_model.safetensors")
    return folder


def register(db, root, checkpoint_id, source, family="sdxl"):
    return submissions.register_checkpoint(db, checkpoint_id, source, family, families=FAMILIES, allowed_roots=[root])


def test_register_hub_folder_and_file(db, root):
    hub = register(db, root, "my-model", "hub:someone/My_Model-v1.0")
    assert (hub.status, hub.source, hub.sha256) == ("registered", "hub:someone/My_Model-v1.0", None)
    folder = register(db, root, "my-folder", f"folder:{make_diffusers_folder(root / 'model')}")
    assert folder.source == f"folder:{(root / 'model').resolve()}"
    weights = make_weights(root / "single.safetensors")
    single = register(db, root, "my-file", "file:single.safetensors")  # relative to the upload folder
    import hashlib

    assert single.sha256 == hashlib.sha256(weights.read_bytes()).hexdigest()
    table = submissions.checkpoints_table(db)
    assert set(table["checkpoint"]) == {"my-model", "my-folder", "my-file"}


def test_duplicates_are_refused(db, root):
    register(db, root, "first", "hub:org/model")
    with pytest.raises(HubInputError, match="'first' is already registered"):
        register(db, root, "first", "hub:org/other")
    with pytest.raises(HubInputError, match="already registered as 'first'"):
        register(db, root, "second", "hub:org/model")
    make_weights(root / "a.safetensors", 3.0)
    make_weights(root / "copy" / "b.safetensors", 3.0)  # same bytes under another name
    register(db, root, "weights-a", "file:a.safetensors")
    with pytest.raises(HubInputError, match="same weights are already registered as 'weights-a'"):
        register(db, root, "weights-b", "file:copy/b.safetensors")
    with db.session() as s:  # a configured checkpoint counts too
        upsert_checkpoint(s, "demo-random", "Demo", "sd15", "builtin:demo-random", None, True)
    with pytest.raises(HubInputError, match="already registered"):
        register(db, root, "demo-random", "hub:org/x")


@pytest.mark.parametrize(
    "checkpoint_id, source, family, message",
    [
        ("ok", "hub:org/model", "sd3", "Unknown family 'sd3'"),
        ("Bad Id", "hub:org/model", "sdxl", "Checkpoint id"),
        ("a..b", "hub:org/model", "sdxl", "Checkpoint id"),
        ("ok", "hub:not-a-repo", "sdxl", "not a Hugging Face repository id"),
        ("ok", "hub:org/../../x", "sdxl", "not a Hugging Face repository id"),
        ("ok", "https://evil.example/model", "sdxl", "Unknown source kind"),
        ("ok", "org/model", "sdxl", "Source must be"),
        ("ok", "file:model.ckpt", "sdxl", "must be .safetensors"),
        ("ok", "file:model.bin", "sdxl", "must be .safetensors"),
        ("ok", "file:../outside.safetensors", "sdxl", "'..'"),
        ("ok", "file:/etc/passwd.safetensors", "sdxl", "inside the upload folder"),
        ("ok", "file:~/x.safetensors", "sdxl", "not allowed"),
        ("ok", "file:a\x00b.safetensors", "sdxl", "not allowed"),
        ("ok", "folder:/", "sdxl", "inside the upload folder"),
        ("ok", "file:missing.safetensors", "sdxl", "Nothing found"),
    ],
)
def test_bad_registrations_are_refused_with_reason(db, root, checkpoint_id, source, family, message):
    with pytest.raises(HubInputError, match=message):
        register(db, root, checkpoint_id, source, family)
    with db.session() as s:
        assert s.query(Checkpoint).count() == 0


def test_non_safetensors_and_broken_files_are_refused(db, root):
    (root / "fake.safetensors").write_bytes(b"\x80\x02}q\x00.")  # a pickle renamed
    with pytest.raises(HubInputError, match="not a safetensors file"):
        register(db, root, "fake", "file:fake.safetensors")
    pickled = make_diffusers_folder(root / "pickled")
    (pickled / "unet" / "diffusion_pytorch_model.bin").write_bytes(b"\x80\x02")
    with pytest.raises(HubInputError, match=r"Only \.safetensors weights.*diffusion_pytorch_model\.bin"):
        register(db, root, "pickled", "folder:pickled")
    no_index = root / "no-index"
    make_weights(no_index / "unet" / "w.safetensors")
    with pytest.raises(HubInputError, match="model_index.json"):
        register(db, root, "no-index", "folder:no-index")
    empty = root / "empty"
    empty.mkdir()
    (empty / "model_index.json").write_text("{}")
    with pytest.raises(HubInputError, match="No .safetensors weights"):
        register(db, root, "empty", "folder:empty")


def test_symlinks_out_of_the_upload_folder_are_refused(db, root, tmp_path):
    outside = make_weights(tmp_path / "elsewhere" / "w.safetensors")
    (root / "link.safetensors").symlink_to(outside)
    with pytest.raises(HubInputError, match="inside the upload folder"):
        register(db, root, "link", "file:link.safetensors")
    folder = make_diffusers_folder(root / "linked-folder")
    (folder / "text_encoder").mkdir()
    (folder / "text_encoder" / "model.safetensors").symlink_to(outside)
    with pytest.raises(HubInputError, match="links outside the upload folder"):
        register(db, root, "linked", "folder:linked-folder")
    (root / "dirlink").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    with pytest.raises(HubInputError, match="inside the upload folder"):
        register(db, root, "dirlink", "folder:dirlink")


def test_queue_runs_refusals_and_restart(db, root, tmp_path):
    from leaderboards import queue

    register(db, root, "model-a", "hub:org/model-a")
    run_id = queue.queue_run(db, "model-a", "characters", known_suites={"characters", "multilingual"},
                             adapters="zeta:1, alpha:0.80", settings={"seeds": 2})
    with db.session() as s:
        run = s.get(EvalRun, run_id)
        assert (run.status, run.adapters, run.settings) == ("queued", "alpha:0.8,zeta:1", {"seeds": 2})
    with pytest.raises(HubInputError, match="already queued or running"):
        queue.queue_run(db, "model-a", "characters", adapters="alpha:0.8,zeta:1.0", settings={"seeds": 2})
    queue.queue_run(db, "model-a", "characters", adapters="alpha:0.8,zeta:1", settings={"seeds": 3})  # another request
    with pytest.raises(HubInputError, match="Unknown checkpoint"):
        queue.queue_run(db, "nope", "characters")
    with pytest.raises(HubInputError, match="Unknown suite"):
        queue.queue_run(db, "model-a", "nope", known_suites={"characters"})
    with pytest.raises(HubInputError, match="not a valid id"):
        queue.queue_run(db, "model-a", "characters", adapters="../alpha=1")
    with db.write_session() as s:
        s.get(Checkpoint, "model-a").status = "retired"
    with pytest.raises(HubInputError, match="retired"):
        queue.queue_run(db, "model-a", "multilingual")
    # A restart: a fresh handle on the same database still sees the queued runs.
    db.dispose()
    reopened = Database(db.url, migrate=True)
    table = submissions.runs_table(reopened)
    assert sorted(table["status"]) == ["queued", "queued"] and set(table["checkpoint"]) == {"model-a"}
    reopened.dispose()


def claim_concurrently(db, runs: int, workers: int) -> list[int]:
    from leaderboards import queue

    claimed: list[int] = []
    lock = threading.Lock()

    def worker(name: str) -> None:
        while (run := queue.claim_next_run(db, name)) is not None:
            with lock:
                claimed.append(run.id)

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return claimed


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_each_queued_run_is_claimed_once(tmp_path, root, backend, request):
    from leaderboards import queue

    url = f"sqlite:///{tmp_path / 'claims.sqlite3'}" if backend == "sqlite" else request.getfixturevalue("postgres_url")
    db = init_db(url)
    ids = []
    for i in range(12):
        register(db, root, f"m{i}", f"hub:org/m{i}")
        ids.append(queue.queue_run(db, f"m{i}", "characters"))
    claimed = claim_concurrently(db, 12, workers=6)
    assert sorted(claimed) == sorted(ids)  # every run once, none twice
    assert set(submissions.runs_table(db)["status"]) == {"running"}
    db.dispose()


def test_an_expired_lease_is_taken_over_and_a_live_one_is_not(db, root):
    import datetime as dt

    from leaderboards import queue

    register(db, root, "m", "hub:org/m")
    run_id = queue.queue_run(db, "m", "characters")
    first = queue.claim_next_run(db, "replica-a", lease_seconds=60)
    assert first.id == run_id and first.worker_id == "replica-a"
    assert queue.claim_next_run(db, "replica-b") is None  # live lease: another replica's start takes nothing
    assert queue.renew_lease(db, run_id, "replica-a", lease_seconds=60)
    assert not queue.renew_lease(db, run_id, "replica-b")  # only the holder renews
    later = queue.utcnow() + dt.timedelta(seconds=61)
    taken = queue.claim_next_run(db, "replica-b", now=later)
    assert taken.id == run_id and taken.worker_id == "replica-b"
    assert not queue.renew_lease(db, run_id, "replica-a")  # the dead replica has lost it
    queue.finish_run(db, run_id, status="complete")
    with db.session() as s:
        run = s.get(EvalRun, run_id)
        assert run.status == "complete" and run.lease_expires_at is None
    assert queue.claim_next_run(db, "replica-c", now=later + dt.timedelta(hours=1)) is None  # finished runs stay finished


def test_cli_register_queue_runs(tmp_path, root, monkeypatch, capsys):
    from evals.__main__ import main as evals_main

    url = f"sqlite:///{tmp_path / 'cli.sqlite3'}"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "HUB_DATA_DIR": str(tmp_path / "data"), "HF_HUB_OFFLINE": "1"}

    def cli(module: str, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", module, *args, "--db", url],
                              capture_output=True, text=True, env=env, timeout=120, cwd=REPO_ROOT)

    def cli_in_process(*args: str) -> tuple[int, str]:  # the same entry point, without a fresh interpreter
        monkeypatch.setenv("HUB_DATA_DIR", str(tmp_path / "data"))
        code = evals_main([*args, "--db", url])
        return code, capsys.readouterr().err

    make_weights(root / "w.safetensors")
    out = cli("evals", "register", "cli-model", "file:w.safetensors", "sdxl", "--root", str(root))
    assert out.returncode == 0, out.stderr
    code, err = cli_in_process("register", "cli-model", "file:w.safetensors", "sdxl", "--root", str(root))
    assert code == 2 and "already registered" in err
    code, err = cli_in_process("register", "other", "hub:org/x", "not-a-family")
    assert code == 2 and "Unknown family" in err
    out = cli("evals", "register", "other", "hub:org/x", "sdxl")  # offline and not in the local Hub cache
    assert out.returncode == 2 and "not in the local Hub cache" in out.stderr
    out = cli("evals", "queue", "cli-model", "characters")
    assert out.returncode == 0, out.stderr
    out = cli("leaderboards", "runs")
    assert out.returncode == 0 and "cli-model" in out.stdout and "queued" in out.stdout
    out = cli("leaderboards", "checkpoints")
    assert out.returncode == 0 and "cli-model" in out.stdout
    out = cli("leaderboards", "register", "x", "hub:org/x", "sdxl")
    assert out.returncode == 2 and "python -m evals register" in out.stderr
