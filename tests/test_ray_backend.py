"""The Ray backend (engine.backend: ray) on a local Ray instance of 2 CPUs, against the local backend.

One Ray instance for the module; two engine deployments on it: "serve" (one replica, behind the real
app over HTTP) and "eval" (two replicas, the eval workers). Tiny builtin random checkpoints at 32-64
px and 2-3 steps; the tiny random tagger as the judge.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image
from sqlalchemy import select

try:
    import ray
except ImportError:
    from tests.needs import missing

    missing("REQUIRE_RAY", "ray[serve] is not installed (see requirements.txt)", module=True)

from evals.distributed import DistributedGenerate  # noqa: E402
from evals.plan import RunOptions  # noqa: E402
from evals.runner import EvalRunner  # noqa: E402
from hub.config import load_config  # noqa: E402
from hub.engine import EVAL, GenerationRequest  # noqa: E402
from hub.errors import EngineError, HubInputError  # noqa: E402
from hub.serving.cluster import RayClusterError, ServingCluster, parse_address  # noqa: E402
from hub.serving.replica import LoggedEngine  # noqa: E402
from leaderboards.db import init_db  # noqa: E402
from leaderboards.schema import EvalRun, Sample, Score  # noqa: E402
from tests.ray_local import local_ray  # noqa: E402
from tests.tiny_suites import character_suite, write_prompts  # noqa: E402

# Ray clusters in this process: the second stage of scripts/test.sh (`pytest -m "claims or cluster"`).
pytestmark = pytest.mark.cluster


DEFAULTS = {"width": 64, "height": 64, "steps": 3, "cfg": 5.0, "sampler": "euler_a"}


def write_world(root: Path, builtin_root: Path) -> dict[str, Path]:
    """Prompts, a data folder holding the builtin checkpoints, and one config per backend."""
    write_prompts(root / "prompts", character_suite())
    (root / "data").mkdir()
    (root / "data" / "builtin").symlink_to(builtin_root, target_is_directory=True)
    base = {
        "default_checkpoint": "demo-random",
        "data_dir": str(root / "data"),
        "database_url": f"sqlite:///{root / 'app.sqlite3'}",
        "demo_world": None,
        "checkpoints": [
            {"id": "demo-random", "name": "Demo", "family": "sd15", "source": "builtin:demo-random", "is_demo": True, "defaults": DEFAULTS},
            {"id": "demo-random-b", "name": "Demo B", "family": "sd15", "source": "builtin:demo-random-b", "is_demo": True, "defaults": DEFAULTS},
            {"id": "needs-gpu", "name": "Big model", "family": "sd15", "source": "builtin:demo-random", "requires_gpu": True, "defaults": DEFAULTS},
        ],
        "judges": [{"id": "demo-random-tagger", "kind": "tagger", "source": "builtin:demo-random-tagger", "version": "random-1",
                    "thresholds": {"general": 0.35, "character": 0.5}}],
        "default_judges": {"tagger": "demo-random-tagger"},
        # Admission has its own tests (test_no_stall.py): a slow machine must not turn these jobs away.
        "limits": {"max_request_seconds": 3600},
    }
    ray_common = {"num_gpus_per_replica": 0, "num_cpus_per_replica": 0.5, "checkpoints_per_replica": 2, "eval_workers": 2}
    engines = {
        "local": {"batch_window_ms": 30},
        "serve": {"batch_window_ms": 30, "backend": "ray", "ray": {**ray_common, "min_replicas": 1, "max_replicas": 1}},
        "eval": {"batch_window_ms": 30, "backend": "ray", "ray": {**ray_common, "min_replicas": 2, "max_replicas": 2}},
    }
    paths = {}
    for name, engine in engines.items():
        paths[name] = root / f"{name}.yaml"
        paths[name].write_text(yaml.safe_dump({**base, "engine": engine}, allow_unicode=True), encoding="utf-8")
    return paths


# ------------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def ray_address():
    """One local Ray instance (2 CPUs, no dashboard) for the module, in its own temp folder."""
    # Functions of this module run inside replicas (fault injection): ship them by value.
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    with local_ray() as address:
        yield address


@pytest.fixture(scope="module")
def world(tmp_path_factory, builtin_root):
    import torch

    root = tmp_path_factory.mktemp("rayworld")
    paths = write_world(root, builtin_root)
    # CPU float sums depend on how many threads split them: the local reference uses the replicas'
    # thread count (one: num_cpus_per_replica 0.5), so "same pixels" means bit for bit.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    local = LoggedEngine(load_config(paths["local"]), device="cpu")  # the local engine, with its call log
    yield {"root": root, "paths": paths, "local": local, "prompts": root / "prompts"}
    local.shutdown()
    torch.set_num_threads(threads)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def launched_app(config):
    """The real app (the tabs, the API), as `python app.py` builds it, on a free local port."""
    from hub.ui import build_app, launch_kwargs
    from hub.ui.context import close_context, create_context

    ctx = create_context(config, start_worker=False)
    demo = build_app(ctx)
    demo.queue(default_concurrency_limit=8)
    demo.launch(server_name="127.0.0.1", server_port=_free_port(), prevent_thread_lock=True, quiet=True, **launch_kwargs(ctx))
    try:
        yield demo.local_url, ctx
    finally:
        demo.close()
        close_context(ctx)


@pytest.fixture(scope="module")
def app(ray_address, world):
    from gradio_client import Client

    with launched_app(load_config(world["paths"]["serve"])) as (url, ctx):
        yield Client(url, verbose=False), ctx


@pytest.fixture(scope="module")
def eval_engine(ray_address, world):
    from hub.engines import get_engine

    engine = get_engine(load_config(world["paths"]["eval"]))
    yield engine
    engine.shutdown()


def arm_out_of_memory(engine, state, payload):
    """Runs where the engine is (a replica, or here): its next pipeline call fails as a GPU that runs out
    of memory fails (which cannot happen on a CPU)."""
    import torch

    worker = engine._worker
    original = worker.run

    def failing(jobs):
        worker.run = original
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    worker.run = failing
    return os.getpid()


def shard_holder(token: str):
    """A shard task for the kill test: the first replica to claim `token` (a file) writes its pid and
    holds its shard until it is killed; every other shard runs normally."""

    def hold_one_shard(engine, state, payload):
        from evals.distributed import run_shard

        try:
            os.rename(token, f"{token}.claimed")  # atomic: one replica, once
        except FileNotFoundError:
            return run_shard(engine, state, payload)
        Path(f"{token}.pid").write_text(str(os.getpid()))
        time.sleep(600)  # held: the test kills this process
        return run_shard(engine, state, payload)

    return hold_one_shard


def gallery_paths(result) -> list[str]:
    gallery = result[0]
    return [item["image"] if isinstance(item["image"], str) else item["image"]["path"] for item in gallery]


def pixels(path_or_image) -> np.ndarray:
    image = path_or_image if isinstance(path_or_image, Image.Image) else Image.open(path_or_image)
    return np.asarray(image.convert("RGB"))


# --------------------------------------------------------------------------------------- addresses


@pytest.mark.parametrize("address", ["localhost", "http://head:8265", "ray://head", "ray://head:port", "head:0"])
def test_malformed_address_is_refused_naming_it(address):
    with pytest.raises(RayClusterError, match="is not a Ray address") as caught:
        parse_address(address)
    assert repr(address) in str(caught.value)


def test_gpus_per_replica_auto_serves_on_cpus_where_the_cluster_has_no_gpu(ray_address):
    from hub.config import RaySettings
    from hub.serving.cluster import check_resources

    gpus, resolved = check_resources(ray_address, RaySettings())  # the default: auto
    assert gpus == 0 and resolved.num_gpus_per_replica == 0.0
    with pytest.raises(RayClusterError, match="has no GPU; set it to 0 \\(or auto\\)"):
        check_resources(ray_address, RaySettings(num_gpus_per_replica=1))
    assert check_resources(ray_address, RaySettings(num_gpus_per_replica=0))[1].num_gpus_per_replica == 0


def test_unreachable_address_stops_the_start_naming_it(ray_address, world, monkeypatch):
    port = _free_port()  # nothing listens there
    monkeypatch.setenv("HUB_RAY_ADDRESS", f"ray://127.0.0.1:{port}")
    with pytest.raises(RayClusterError, match=f"'ray://127.0.0.1:{port}' is unreachable"):
        ServingCluster.connect(load_config(world["paths"]["serve"]))


def test_local_backend_never_imports_ray(world):
    """engine.backend: local (the default) builds the app, the engine and the eval runner without Ray."""
    import subprocess

    code = (
        "import sys; from hub.config import load_config; from hub.engines import get_engine; import evals.runner, evals.__main__; "
        "import hub.ui, app; engine = get_engine(load_config(sys.argv[1])); "
        "assert type(engine).__name__ == 'Engine'; engine.shutdown(); "
        "assert not [m for m in sys.modules if m == 'ray' or m.startswith('ray.')], 'ray was imported'"
    )
    done = subprocess.run([sys.executable, "-c", code, str(world["paths"]["local"])], cwd=Path(__file__).resolve().parent.parent,
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]


# -------------------------------------------------------------------------------- the app over HTTP


def test_generate_over_http_gives_the_local_backends_pixels(app, world):
    client, ctx = app
    assert type(ctx.engine).__name__ == "RemoteEngine"
    result = client.predict("1girl, aqua hair", "lowres", "demo-random", "", 64, 64, 3, 5.0, "euler_a", 11, 2, api_name="/generate")
    remote = gallery_paths(result)
    local = world["local"].generate(GenerationRequest("1girl, aqua hair", "lowres", "demo-random", width=64, height=64, steps=3,
                                                      cfg=5.0, sampler="euler_a", seed=11, batch=2))
    assert len(remote) == 2
    from hub.recipe import read_recipe

    for path, item in zip(remote, local):
        assert np.array_equal(pixels(path), pixels(item.image))
        assert read_recipe(path) == item.recipe  # same recipe, model hash included
    # Edits travel as arrays too (image and mask), with the same result as locally.
    from hub.engine import EditRequest

    source = Image.new("RGB", (64, 64), (200, 120, 40))
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (0, 0, 32, 64))
    request = EditRequest(image=source, prompt="a window", mask=mask, strength=0.9, seed=4)
    assert np.array_equal(pixels(ctx.engine.edit(request)[0].image), pixels(world["local"].edit(request)[0].image))


GENERATE_CASES = [
    ("", "", "demo-random", "", 64, 64, 3, 5.0, "euler_a", 1, 1),
    ("x" * 1500, "", "demo-random", "", 64, 64, 3, 5.0, "euler_a", 1, 1),
    ("x", "", "no-such-model", "", 64, 64, 3, 5.0, "euler_a", 1, 1),
    ("x", "", "../../etc/passwd", "", 64, 64, 3, 5.0, "euler_a", 1, 1),
    ("x", "", "demo-random", "nope:0.5", 64, 64, 3, 5.0, "euler_a", 1, 1),
    ("x", "", "demo-random", "", 64, 64, 3, 5.0, "warp", 1, 1),
    ("x", "", "demo-random", "", 64, 70, 3, 5.0, "euler_a", 1, 1),
    ("x", "", "needs-gpu", "", 64, 64, 3, 5.0, "euler_a", 1, 1),
]


def test_bad_input_gets_the_local_backends_short_errors(app, world):
    client, ctx = app
    sent = ctx.engine.stats["remote_calls"]
    for args in GENERATE_CASES:
        prompt, negative, checkpoint, loras, width, height, steps, cfg, sampler, seed, batch = args
        with pytest.raises(HubInputError) as local:
            world["local"].generate(GenerationRequest(prompt, negative, checkpoint, loras=((loras.split(":")[0], 0.5),) if loras else (),
                                                      width=width, height=height, steps=steps, cfg=cfg, sampler=sampler,
                                                      seed=seed, batch=batch))
        with pytest.raises(Exception) as remote:
            client.predict(*args, api_name="/generate")
        if checkpoint == "needs-gpu":  # the one difference: the reason names the cluster instead of this machine
            assert "needs a GPU; the Ray cluster" in str(remote.value) and "serves on CPUs only" in str(remote.value)
        else:
            assert str(local.value) in str(remote.value), (args, str(local.value), str(remote.value))
    assert ctx.engine.stats["remote_calls"] == sent  # refused in the front end: no request reached a replica


def test_gpu_checkpoint_is_refused_on_a_cpu_cluster_with_the_reason(app):
    _, ctx = app
    status = ctx.engine.availability()["needs-gpu"]
    assert not status.available and "serves on CPUs only" in status.reason
    with pytest.raises(HubInputError, match="not available here: needs a GPU; the Ray cluster"):
        ctx.engine.generate(GenerationRequest("x", checkpoint="needs-gpu"))
    assert "needs-gpu" not in ctx.engine.checkpoint_ids(available_only=True)


def test_engine_failure_in_a_replica_reaches_the_user_and_the_replica_serves_on(app, world):
    client, ctx = app
    args = ("after the storm", "", "demo-random", "", 64, 64, 3, 5.0, "euler_a", 5, 1)
    before_pid = ctx.engine.cluster.replica_pids()
    arm_out_of_memory(world["local"], {}, None)
    with pytest.raises(EngineError) as local:
        world["local"].generate(GenerationRequest("after the storm", seed=5))
    assert str(local.value).startswith("Out of memory generating 1 image(s) at 64x64 with 'demo-random'")
    ctx.engine.call_task(arm_out_of_memory, {})
    with pytest.raises(Exception) as remote:
        client.predict(*args, api_name="/generate")
    assert str(local.value) in str(remote.value)
    # The same replica (not a replacement) serves the next request, with the local pixels.
    paths = gallery_paths(client.predict(*args, api_name="/generate"))
    assert np.array_equal(pixels(paths[0]), pixels(world["local"].generate(GenerationRequest("after the storm", seed=5))[0].image))
    assert ctx.engine.cluster.replica_pids() == before_pid


def _hold_the_device(engine, state, payload) -> None:
    """Runs in the replica: hold its device with an exclusive job until the test writes `release`."""
    held, release = Path(payload["held"]), Path(payload["release"])

    def wait() -> None:
        held.write_text("held")
        deadline = time.monotonic() + 120
        while not release.exists() and time.monotonic() < deadline:
            time.sleep(0.02)

    engine.run_exclusive(wait)


def test_compatible_requests_from_several_users_share_pipeline_calls(app, tmp_path):
    """The replica's device is held until all 4 requests wait in its queue, so the batch they form does
    not depend on how fast the threads start (no timing window): exactly one pipeline call serves them."""
    _, ctx = app
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the holder runs in the replica
    before = ctx.engine.replica_stats()["engine"]["pipeline_calls"]
    signals = {"held": str(tmp_path / "held"), "release": str(tmp_path / "release")}
    holder = threading.Thread(target=ctx.engine.call_task, args=(_hold_the_device, signals))
    holder.start()
    _wait_for(lambda: Path(signals["held"]).exists(), "the replica's device to be held")
    results: list = [None] * 4
    threads = [threading.Thread(target=lambda i=i: results.__setitem__(i, ctx.engine.generate(GenerationRequest(f"user {i}", seed=i))))
               for i in range(4)]
    for thread in threads:
        thread.start()
    try:
        _wait_for(lambda: sum(ctx.engine.replica_stats()["pending"].values()) >= 4, "all four requests to wait in the replica's queue")
    finally:
        Path(signals["release"]).write_text("go")
    for thread in (holder, *threads):
        thread.join(120)
    assert all(len(images) == 1 for images in results)
    assert ctx.engine.replica_stats()["engine"]["pipeline_calls"] - before == 1


def test_multiplexing_routes_by_checkpoint_and_keeps_an_lru(app):
    _, ctx = app
    for checkpoint in ("demo-random", "demo-random-b", "demo-random"):
        ctx.engine.generate(GenerationRequest("x", checkpoint=checkpoint, seed=1))
    stats = ctx.engine.replica_stats()
    assert set(stats["loaded"]) <= {"demo-random", "demo-random-b"} and stats["resident"] == "demo-random"


# ------------------------------------------------------------------------------- no stall on Ray

LONG = {"width": 64, "height": 128, "batch": 4, "steps": 100}  # the checkpoint's own limit: 2x its 64x64 area


def _replica_engine(ctx) -> dict:
    return ctx.engine.replica_stats()["engine"]


def _wait_for(condition, what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_on_ray_a_small_request_is_served_inside_a_long_job_and_a_cancelled_one_stops(app):
    from hub.engine import CancelToken
    from hub.errors import JobCancelled

    _, ctx = app
    ctx.engine.generate(GenerationRequest("warm", seed=1))
    before = _replica_engine(ctx)
    token, box = CancelToken(), {}

    def long_job() -> None:
        try:
            box["images"] = ctx.engine.generate(GenerationRequest("long", owner="a", **LONG), cancel=token)
        except BaseException as err:  # noqa: BLE001 - read below
            box["error"] = err

    thread = threading.Thread(target=long_job)
    thread.start()
    _wait_for(lambda: _replica_engine(ctx)["steps"] > before["steps"] + 3, "the long job to be denoising")
    small = ctx.engine.generate(GenerationRequest("small", owner="b", seed=3))
    assert len(small) == 1 and thread.is_alive(), "the small request waited for the whole long job"
    assert _replica_engine(ctx)["interleaved_calls"] > before["interleaved_calls"]
    token.cancel("Stopped.")
    thread.join(120)
    assert isinstance(box.get("error"), JobCancelled), box
    _wait_for(lambda: _replica_engine(ctx)["cancelled_calls"] > before["cancelled_calls"], "the replica to stop the call")
    ran = _replica_engine(ctx)["steps"] - before["steps"]
    time.sleep(1.0)
    assert _replica_engine(ctx)["steps"] - before["steps"] == ran < LONG["steps"] + 20
    assert len(ctx.engine.generate(GenerationRequest("next", seed=4))) == 1


# ------------------------------------------------------------------------------------- priorities


def _calls(engine) -> list[dict]:
    if isinstance(engine, LoggedEngine):
        return list(engine.calls)
    return engine.replica_stats()["calls"]


@pytest.mark.parametrize("backend", ["local", "ray"])
def test_interactive_request_goes_before_the_running_evals_next_batch(backend, app, world, tmp_path):
    engine = world["local"] if backend == "local" else app[1].engine
    config = load_config(world["paths"]["local" if backend == "local" else "serve"])
    db = init_db(f"sqlite:///{tmp_path / 'priority.sqlite3'}")
    runner = EvalRunner(engine, db, config, data_dir=world["root"] / "data", prompts_dir=world["prompts"])
    seen = len(_calls(engine))
    done = threading.Event()
    run = threading.Thread(target=lambda: (runner.run(RunOptions("demo-random", "tiny-chars", seeds=3, batch_size=2,
                                                                 overrides={"width": 32, "height": 32}), progress=False),
                                           done.set()))
    run.start()
    deadline = time.monotonic() + 120
    while not any(call["priority"] == EVAL for call in _calls(engine)[seen:]):  # the run is generating
        assert time.monotonic() < deadline and run.is_alive()
        time.sleep(0.02)
    probe = engine.generate(GenerationRequest("interactive probe", seed=9))
    run.join(timeout=300)
    assert done.is_set() and len(probe) == 1
    calls = _calls(engine)[seen:]
    mine = next(call for call in calls if "interactive probe" in call["prompts"])
    queued = mine["queued"][mine["prompts"].index("interactive probe")]
    # While the person waited, at most the one eval batch already taken from the queue ran.
    waited_behind = [call for call in calls if call["priority"] == EVAL and call["end"] > queued and call["start"] < mine["start"]]
    assert len(waited_behind) <= 1, waited_behind
    assert any(call["priority"] == EVAL and call["start"] >= mine["end"] for call in calls), "the run was not in progress"
    db.dispose()


# --------------------------------------------------------------------------------- evals on Ray


def _rows(db) -> tuple[dict, dict]:
    with db.session() as session:
        samples = {s.cache_key: (s.item_id, s.language, s.seed, s.prompt_text, s.settings_hash, s.checkpoint_version,
                                 Path(s.image_path).name)
                   for s in session.execute(select(Sample)).scalars()}
        scores = {(key, judge, metric): value for key, judge, metric, value in session.execute(
            select(Sample.cache_key, Score.judge_id, Score.metric, Score.value).join(Score, Score.sample_id == Sample.id))}
    return samples, scores


def _pixels_by_key(db) -> dict[str, np.ndarray]:
    with db.session() as session:
        return {s.cache_key: pixels(s.image_path) for s in session.execute(select(Sample)).scalars()}


def test_eval_on_two_ray_workers_matches_local_and_survives_a_killed_worker(eval_engine, world, tmp_path):
    options = RunOptions("demo-random", "tiny-chars", seeds=4, batch_size=2, overrides={"width": 32, "height": 32})
    config = load_config(world["paths"]["local"])
    # The reference: the same run on the local backend (its own data folder and database).
    local_data = tmp_path / "local-data"
    local_data.mkdir()
    (local_data / "builtin").symlink_to(world["root"] / "data" / "builtin")
    local_db = init_db(f"sqlite:///{tmp_path / 'local.sqlite3'}")
    local = EvalRunner(world["local"], local_db, config, data_dir=local_data, prompts_dir=world["prompts"]).run(options, progress=False)
    assert local.status == "complete" and local.generated == 36

    ray_db = init_db(f"sqlite:///{tmp_path / 'ray.sqlite3'}")
    ray_config = load_config(world["paths"]["eval"])
    ray_data = world["root"] / "data"

    # 1. Two seeds on two workers: the same rows, scores and pixels as locally.
    first = EvalRunner(eval_engine, ray_db, ray_config, data_dir=ray_data, prompts_dir=world["prompts"]).run(
        RunOptions(**{**options.__dict__, "seeds": 2}), progress=False)
    assert first.status == "complete" and first.generated == 18
    pids = eval_engine.cluster.replica_pids()
    assert len(pids) == 2

    # 2. All four seeds (two new): one worker's process is killed (by its pid) while it works on a
    #    shard; the shard is retried on the other worker.
    token = tmp_path / "hold-one-shard"
    token.write_text("")
    killed: list[int] = []

    def kill_the_holder() -> None:
        pid_file = Path(f"{token}.pid")
        deadline = time.monotonic() + 120
        while not pid_file.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        pid = int(pid_file.read_text())
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)

    killer = threading.Thread(target=kill_the_holder, daemon=True)
    killer.start()
    step = DistributedGenerate(prompts_dir=world["prompts"], workers=2, task=shard_holder(str(token)))
    second = EvalRunner(eval_engine, ray_db, ray_config, data_dir=ray_data, prompts_dir=world["prompts"],
                        generate_step=step).run(options, progress=False)
    killer.join(timeout=5)
    assert killed and killed[0] in pids and second.status == "complete"
    assert (second.generated, second.reused) == (18, 18)
    assert step.lost_shards >= 1  # the killed worker's shard was lost, then done by the other

    ray_samples, ray_scores = _rows(ray_db)
    local_samples, local_scores = _rows(local_db)
    assert ray_samples == local_samples  # every sample exactly once (36 keys), the same rows
    assert ray_scores.keys() == local_scores.keys()
    for key, value in local_scores.items():
        assert ray_scores[key] == pytest.approx(value, abs=1e-6)
    remote_pixels, local_pixels = _pixels_by_key(ray_db), _pixels_by_key(local_db)
    assert all(np.array_equal(remote_pixels[key], local_pixels[key]) for key in local_pixels)
    with ray_db.session() as session:
        runs = session.execute(select(EvalRun.status, EvalRun.n_generated)).all()
    assert sorted(runs) == [("complete", 18), ("complete", 18)]

    # 3. A rerun generates nothing.
    again = EvalRunner(eval_engine, ray_db, ray_config, data_dir=ray_data, prompts_dir=world["prompts"]).run(options, progress=False)
    assert (again.generated, again.reused, again.scored) == (0, 36, 0)
    local_db.dispose()
    ray_db.dispose()
