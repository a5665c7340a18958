"""Several app replicas end to end: two real app processes (the app as `app.py` builds it, with the
Ray backend) on one PostgreSQL server, one Ray instance and one shared data folder.

- a battle served by one replica is voted through the other; votes cast through both all count;
  the per-session vote limit holds exactly under a burst split over both replicas;
- queued runs are each executed once, by one replica's eval worker (generating on the Ray replicas);
- a replica killed mid-run: the other takes the run over once its lease has expired, and finishes it
  with every sample exactly once;
- the eval CLI joins the same cluster (`--backend ray --workers 1`), and a wrong address stops it
  with a message naming the address.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import yaml
from sqlalchemy import func, insert, select

try:
    import ray
except ImportError:
    from tests.needs import missing

    missing("REQUIRE_RAY", "ray[serve] is not installed (see requirements.txt)", module=True)

try:
    from tests.pg import postgres_server  # noqa: F401 - fixture
except ImportError:  # tests/ is not a package
    from pg import postgres_server  # noqa: F401

from leaderboards import queue  # noqa: E402
from leaderboards.db import Database  # noqa: E402
from tests.ray_local import local_ray  # noqa: E402
from tests.tiny_suites import character_suite, write_prompts  # noqa: E402
from leaderboards.schema import Battle, EvalRun, Sample, Vote, utcnow  # noqa: E402

# Ray clusters in this process: the second stage of scripts/test.sh (`pytest -m "claims or cluster"`).
pytestmark = pytest.mark.cluster

ROOT = Path(__file__).resolve().parent.parent
LEASE_S = 4.0
DEFAULTS = {"width": 64, "height": 64, "steps": 3, "cfg": 5.0, "sampler": "euler_a"}


# One app replica: what `python app.py` builds (hub.ui.context.create_context, build_app, launch), with
# the eval worker's lease and poll shortened so that the test does not wait minutes.
APP = """\
import json, os, socket, sys, time
root, config_path, prompts, lease = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
sys.path.insert(0, root)
from evals.runner import EvalRunner
from evals.worker import EvalWorker
from hub.config import load_config
from hub.ui import build_app, launch_kwargs
from hub.ui.context import create_context

config = load_config(config_path)
ctx = create_context(config, start_worker=False)
runner = EvalRunner(ctx.engine, ctx.db, config, prompts_dir=prompts, lease_seconds=lease, render_input=ctx.demo.render_input)
ctx.eval_worker = EvalWorker(runner, poll_seconds=0.5).start()
demo = build_app(ctx)
demo.queue(default_concurrency_limit=8)
with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, **launch_kwargs(ctx))
print("READY " + json.dumps({"url": demo.local_url, "pid": os.getpid(), "worker_id": runner.worker_id}), flush=True)
while True:
    time.sleep(3600)
"""


class AppProcess:
    def __init__(self, name: str, folder: Path, config: Path, prompts: Path, env: dict[str, str]):
        self.name = name
        self.log = folder / f"{name}.log"
        script = folder / "app_replica.py"
        script.write_text(APP, encoding="utf-8")
        self.process = subprocess.Popen(
            [sys.executable, str(script), str(ROOT), str(config), str(prompts), str(LEASE_S)],
            stdout=self.log.open("w"), stderr=subprocess.STDOUT, env=env, cwd=ROOT,
        )
        self.info: dict = {}

    def wait_ready(self, timeout: float = 240) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.log.read_text(errors="replace").splitlines():
                if line.startswith("READY "):
                    self.info = json.loads(line[len("READY "):])
                    return self.info
            if self.process.poll() is not None:
                break
            time.sleep(0.2)
        raise AssertionError(f"app replica {self.name} did not start:\n{self.log.read_text(errors='replace')[-4000:]}")

    def kill(self) -> None:
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, builtin_root, postgres_server):
    """Ray (2 CPUs) in this process, a PostgreSQL database, a shared data folder, the engine deployed,
    and two app replicas joined to all three."""
    from hub.config import load_config
    from hub.serving.cluster import ServingCluster

    root = tmp_path_factory.mktemp("replicas")
    database_url = postgres_server.create_database()
    write_prompts(root / "prompts", character_suite())
    (root / "data").mkdir()
    (root / "data" / "builtin").symlink_to(builtin_root, target_is_directory=True)
    config_path = root / "config.yaml"
    config_path.write_text(yaml.safe_dump({
        "default_checkpoint": "demo-random",
        "data_dir": str(root / "data"),
        "database_url": database_url,
        "demo_world": None,
        "engine": {"batch_window_ms": 20, "backend": "ray",
                   "ray": {"num_gpus_per_replica": 0, "num_cpus_per_replica": 1, "min_replicas": 1, "max_replicas": 1,
                           "eval_workers": 1}},
        "limits": {"votes_per_minute": 5},
        "checkpoints": [
            {"id": "demo-random", "name": "Demo", "family": "sd15", "source": "builtin:demo-random", "is_demo": True, "defaults": DEFAULTS},
            {"id": "demo-random-b", "name": "Demo B", "family": "sd15", "source": "builtin:demo-random-b", "is_demo": True,
             "defaults": DEFAULTS},
        ],
        "judges": [{"id": "demo-random-tagger", "kind": "tagger", "source": "builtin:demo-random-tagger", "version": "random-1",
                    "thresholds": {"general": 0.35, "character": 0.5}}],
        "default_judges": {"tagger": "demo-random-tagger"},
    }, allow_unicode=True), encoding="utf-8")

    apps: list[AppProcess] = []
    with local_ray() as address:
        try:
            # Deploy the engine once, before the app replicas start (they find it running and share it).
            ServingCluster.connect(load_config(config_path))
            env = {**os.environ, "HUB_RAY_ADDRESS": address, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1",
                   "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
            apps = [AppProcess(name, root, config_path, root / "prompts", env) for name in ("a", "b")]
            for app in apps:
                app.wait_ready()
            db = Database(database_url)
            yield {"root": root, "config": config_path, "db": db, "apps": apps, "address": address, "env": env,
                   "database_url": database_url}
            db.dispose()
        finally:
            for app in apps:
                app.stop()


def client(url: str, session: str, data: Path):
    """A client carrying `session`'s signed cookie: the replicas share the data folder's salt, so a
    session issued by one is the same session on the other."""
    from tests.hub_app import signed_client

    return signed_client(url, data, session)


# ----------------------------------------------------------------------------------------- arena


def test_votes_through_both_replicas_all_count_and_limits_hold_exactly(cluster):
    from leaderboards.arena_sessions import SessionHasher, load_salt

    a, b = cluster["apps"]
    db = cluster["db"]
    # A battle served by one replica is voted through the other (both directions).
    for serve_app, vote_app in ((a, b), (b, a)):
        session = uuid.uuid4().hex
        battle_id, image_a, image_b = client(serve_app.info["url"], session, cluster["root"] / "data").predict("1girl, solo", api_name="/battle")
        names = client(vote_app.info["url"], session, cluster["root"] / "data").predict(battle_id, "model_a", api_name="/vote")
        assert set(names) == {"Demo", "Demo B"}
        with db.session() as s:
            battle = s.get(Battle, battle_id)
            assert Path(battle.image_a).is_file() and Path(battle.image_b).is_file()  # in the shared data folder

    # Votes cast through both replicas at once: 4 sessions x 4 votes, every one counted.
    hasher = SessionHasher(load_salt(cluster["root"] / "data"))  # the salt both replicas share
    now = utcnow()
    sessions = [uuid.uuid4().hex for _ in range(5)]
    work: dict[str, list[str]] = {session: [] for session in sessions}
    rows = []
    for k, session in enumerate(sessions):
        for _ in range(4 if k < 4 else 12):  # the last session: a burst of 12 against a limit of 5 a minute
            battle_id = uuid.uuid4().hex
            rows.append({"id": battle_id, "kind": "generate", "model_a": "demo-random", "model_b": "demo-random-b",
                         "prompt": "p", "image_a": "a.png", "image_b": "b.png", "image_source": "generated",
                         "session_hash": hasher.hash(session, "session"), "created_at": now,
                         "expires_at": now + dt.timedelta(hours=1)})
            work[session].append(battle_id)
    with db.write_session() as s:
        s.execute(insert(Battle), rows)
    # One client per (session, replica): Gradio streams a session's events to one connection, so a
    # session's concurrent votes go through one client per replica, submitted all at once.
    jobs = []
    clients = {}
    for session, ids in work.items():
        for i, battle_id in enumerate(ids):
            app = (a, b)[i % 2]
            key = (session, app.name)
            if key not in clients:
                clients[key] = client(app.info["url"], session, cluster["root"] / "data")
            jobs.append((battle_id, clients[key].submit(battle_id, "tie", api_name="/vote")))
    accepted: list[str] = []
    refused: list[str] = []
    for battle_id, job in jobs:
        try:
            job.result(timeout=120)
            accepted.append(battle_id)
        except Exception as err:  # noqa: BLE001 - the limit's refusal
            refused.append(str(err))
    burst = set(work[sessions[-1]])
    assert len([v for v in accepted if v not in burst]) == 16  # all counted
    assert len([v for v in accepted if v in burst]) == 5 and len(refused) == 7  # exactly the limit, across replicas
    with db.session() as s:
        voted = set(s.execute(select(Vote.battle_id).where(Vote.battle_id.in_([r["id"] for r in rows]))).scalars())
    assert voted == set(accepted)


# ------------------------------------------------------------------------------------------ evals


def _wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _run(db: Database, run_id: int) -> EvalRun:
    with db.session() as s:
        return s.get(EvalRun, run_id)


def _samples(db: Database, checkpoint_id: str) -> tuple[int, int]:
    with db.session() as s:
        total = s.scalar(select(func.count()).select_from(Sample).where(Sample.checkpoint_id == checkpoint_id))
        distinct = s.scalar(select(func.count(func.distinct(Sample.cache_key))).where(Sample.checkpoint_id == checkpoint_id))
    return total, distinct


def test_queued_runs_are_each_executed_once(cluster):
    db, (a, b) = cluster["db"], cluster["apps"]
    settings = {"seeds": 2, "batch_size": 2, "overrides": {"width": 32, "height": 32}}
    runs = [queue.queue_run(db, checkpoint, "tiny-chars", settings=settings) for checkpoint in ("demo-random", "demo-random-b")]
    done = _wait(lambda: all(_run(db, r).status in ("complete", "failed") for r in runs) and [_run(db, r) for r in runs],
                 240, "both runs to finish")
    workers = {a.info["worker_id"], b.info["worker_id"]}
    for run in done:
        assert run.status == "complete", run.error
        assert run.worker_id in workers and run.n_generated == 18 and run.n_reused == 0  # one executor did it all
        assert _samples(db, run.checkpoint_id) == (18, 18)


def test_a_replica_killed_mid_run_has_its_run_finished_by_the_other_after_the_lease(cluster):
    db, apps = cluster["db"], cluster["apps"]
    settings = {"seeds": 8, "batch_size": 1}  # 54 new samples (seeds 0-1 at 64 px are new too: other size)
    run_id = queue.queue_run(db, "demo-random", "tiny-chars", settings=settings)
    first = _wait(lambda: (r := _run(db, run_id)).status == "running" and (r.n_generated or 0) >= 2 and r, 240, "the run to start")
    holder = next(app for app in apps if app.info["worker_id"] == first.worker_id)
    survivor = next(app for app in apps if app is not holder)
    holder.kill()
    killed_at = utcnow()
    done = _wait(lambda: (r := _run(db, run_id)).status in ("complete", "failed") and r, 300, "the run to finish")
    assert done.status == "complete", done.error
    assert done.worker_id == survivor.info["worker_id"]
    # Taken over only once the dead holder's lease ran out (renewed every lease/3 until the kill).
    takeover = done.started_at if done.started_at.tzinfo else done.started_at.replace(tzinfo=dt.timezone.utc)
    assert takeover >= killed_at + dt.timedelta(seconds=LEASE_S / 3)
    total, distinct = _samples(db, "demo-random")
    assert total == distinct == 18 + 72  # the earlier 32 px run's samples, and every sample of this one once
    assert done.n_generated + done.n_reused == 72 and done.n_reused >= 2  # resumed from what the dead one wrote
    apps.remove(holder)


def test_eval_cli_joins_the_cluster_and_a_wrong_address_stops_it(cluster):
    base = [sys.executable, "-m", "evals", "run", "--checkpoint", "demo-random-b", "--suite", "tiny-chars", "--seeds", "3",
            "--size", "32", "--batch-size", "2", "--config", str(cluster["config"]), "--no-progress", "--backend", "ray",
            "--workers", "1"]
    env = {**cluster["env"], "HUB_PROMPTS_DIR": str(cluster["root"] / "prompts")}
    run = subprocess.run(base, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    summary = run.stdout.strip().splitlines()[-1]
    assert summary.startswith("generated=9 reused=18 ") and summary.endswith("status=complete"), summary
    wrong = subprocess.run(base, env={**env, "HUB_RAY_ADDRESS": "127.0.0.1:1"}, cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert wrong.returncode == 2 and "'127.0.0.1:1' is unreachable" in wrong.stderr, wrong.stderr[-2000:]
