"""One request must not stall the hub (issue 23): per-checkpoint limits, cost-based admission,
cancellation (a token, a disconnected client), step-level interleaving, turn-taking and the watchdog.

Real engines on the builtin tiny checkpoints; the app served by Gradio and called over HTTP. No test
asserts a wall-clock limit: each asserts an order of events (the small request finished while the long
one was still running) or a step count (the long job stopped early)."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from hub.config import load_config
from hub.engine import EVAL, CancelToken, Engine, GenerationRequest
from hub.errors import HubInputError, JobCancelled, OverBudget
from tests.conftest import write_config
from tests.hub_app import running_app

ROOT = Path(__file__).resolve().parent.parent
# The test config's checkpoints draw at 64x64: their own limit is 2x that area (64x128) and 128 px.
LONG = {"width": 64, "height": 128, "batch": 4, "steps": 40}


def make_engine(tmp_path: Path, builtin_root: Path, **limits) -> Engine:
    data = tmp_path / "data"
    data.mkdir(parents=True, exist_ok=True)
    if not (data / "builtin").exists():
        (data / "builtin").symlink_to(builtin_root, target_is_directory=True)
    config = load_config(write_config(tmp_path, limits=limits) if limits else write_config(tmp_path))
    return Engine(config, device="cpu")


def wait_for(condition, what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def in_thread(fn) -> tuple[threading.Thread, dict]:
    box: dict = {}

    def run() -> None:
        try:
            box["result"] = fn()
        except BaseException as err:  # noqa: BLE001 - the test reads it
            box["error"] = err

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, box


@pytest.fixture
def engine(tmp_path, builtin_root):
    # Admission is tested on its own: here a slow machine must not turn the long job away.
    engine = make_engine(tmp_path, builtin_root, max_request_seconds=3600)
    engine.generate(GenerationRequest("warm up", seed=1))  # loads the checkpoint
    engine.generate(GenerationRequest("measure", seed=2))  # the first measured call
    yield engine
    engine.shutdown()


def test_each_checkpoint_has_its_own_size_and_step_limits(engine):
    spec = engine.checkpoint_spec("demo-random")
    limits = spec.limits_within(engine.config.limits)
    assert (limits.max_size, limits.max_pixels) == (128, 2 * 64 * 64)
    with pytest.raises(HubInputError, match=r"Width for 'demo-random' must be between 32 and 128"):
        engine.generate(GenerationRequest("x", width=256, height=64))
    with pytest.raises(HubInputError, match=r"128x128 is over the limit of 8,192 pixels for 'demo-random'"):
        engine.generate(GenerationRequest("x", width=128, height=128))
    # An edit's image is scaled down to fit the checkpoint instead.
    from PIL import Image

    from hub.engine import EditRequest

    edited = engine.edit(EditRequest(image=Image.new("RGB", (512, 512), "white"), prompt="x", task="img2img", steps=2))
    assert edited[0].image.width * edited[0].image.height <= limits.max_pixels


def test_the_cost_model_learns_and_a_request_over_the_limit_is_refused_with_its_estimate(tmp_path, builtin_root):
    engine = make_engine(tmp_path, builtin_root, max_request_seconds=0.5)
    try:
        engine.generate(GenerationRequest("warm up", seed=1))
        # Unmeasured: the checkpoint's own default request is let through (it measures the speed).
        assert not engine.costs.measured(engine.resolve_generation(GenerationRequest("x")))
        engine.generate(GenerationRequest("measure", seed=2))
        job = engine.resolve_generation(GenerationRequest("x", **LONG))
        assert engine.costs.measured(job)
        estimate = engine.costs.estimate(job)
        assert estimate > 0.5
        calls = engine.stats["pipeline_calls"]
        with pytest.raises(OverBudget, match=r"would take about \d+ s on this hub's CPU with 'demo-random' \(the limit is 0.5 s\)"):
            engine.generate(GenerationRequest("too much", **LONG))
        assert engine.stats["pipeline_calls"] == calls  # refused before any work
        # Eval work is not refused: it is batched to the eval limit instead.
        assert len(engine.generate(GenerationRequest("eval", priority=EVAL, steps=2))) == 1
        # What it measured survives a restart.
        assert (engine.config.data_path / "cost_model.json").is_file()
        again = Engine(engine.config, device="cpu")
        try:
            assert again.costs.measured(job) and again.costs.estimate(job) == pytest.approx(estimate, rel=0.5)
        finally:
            again.shutdown()
    finally:
        engine.shutdown()


@pytest.mark.parametrize("priority", [EVAL, 0])
def test_a_small_request_is_served_between_the_steps_of_a_long_job(engine, priority):
    alone = engine.generate(GenerationRequest("long", seed=5, priority=priority, **LONG))
    steps = engine.stats["steps"]
    long_thread, long_box = in_thread(lambda: engine.generate(GenerationRequest("long", seed=5, priority=priority, owner="a", **LONG)))
    wait_for(lambda: engine.stats["steps"] > steps + 3, "the long job to be denoising")
    small = engine.generate(GenerationRequest("small", seed=9, owner="b", checkpoint="demo-random-b"))
    assert long_thread.is_alive(), "the small request waited for the whole long job"
    assert len(small) == 1 and engine.stats["interleaved_calls"] >= 1
    long_thread.join(120)
    # The long job resumed from its own latents: the same pixels as without the interruption.
    for a, b in zip(alone, long_box["result"], strict=True):
        assert np.array_equal(np.asarray(a.image), np.asarray(b.image))


def test_owners_take_turns_so_a_queue_of_grid_cells_does_not_starve_a_newcomer(engine):
    started = engine.stats["steps"]
    # One owner queues many cells (a big grid); they run one after another.
    cells, cell_box = in_thread(lambda: engine.run_many(
        [GenerationRequest(f"cell {i}", seed=i, owner="grid", steps=20, cfg=float(i % 7)) for i in range(12)]))
    wait_for(lambda: engine.stats["steps"] > started + 3, "the grid to be running")
    calls = engine.stats["pipeline_calls"]
    small = engine.generate(GenerationRequest("newcomer", seed=3, owner="newcomer", steps=20, cfg=1.5))
    assert len(small) == 1
    # The newcomer went next (nested or right after the running cell), not after the eleven others.
    assert engine.stats["pipeline_calls"] - calls <= 2
    cells.join(120)
    assert len(cell_box["result"]) == 12


def test_a_cancelled_job_stops_within_a_step_and_the_engine_serves_on(engine):
    token = CancelToken()
    steps = engine.stats["steps"]
    thread, box = in_thread(lambda: engine.generate(GenerationRequest("long", **LONG), cancel=token))
    wait_for(lambda: engine.stats["steps"] > steps + 3, "the job to be denoising")
    token.cancel("Stopped.")
    thread.join(60)
    assert isinstance(box.get("error"), JobCancelled) and str(box["error"]) == "Stopped."
    ran = engine.stats["steps"] - steps
    assert ran < LONG["steps"], "the job ran to the end"
    assert engine.stats["cancelled_calls"] == 1
    # A job cancelled while it waits never runs.
    waiting = CancelToken()
    waiting.cancel()
    with pytest.raises(JobCancelled, match="Cancelled."):
        engine.generate(GenerationRequest("never", seed=4), cancel=waiting)
    assert len(engine.generate(GenerationRequest("next", seed=4))) == 1


def test_the_watchdog_stops_a_call_past_the_hard_limit_and_the_engine_stays_healthy(tmp_path, builtin_root):
    engine = make_engine(tmp_path, builtin_root, max_call_seconds=0.3)
    try:
        engine.generate(GenerationRequest("warm up", steps=1))
        with pytest.raises(JobCancelled, match=r"the limit for one call here is 0.3 s"):
            engine.generate(GenerationRequest("long", priority=EVAL, **LONG))
        assert engine.stats["watchdog_stops"] >= 1 and engine.healthy
        assert len(engine.generate(GenerationRequest("next", steps=1))) == 1
    finally:
        engine.shutdown()


# ------------------------------------------------------------------------------------- over HTTP

CLIENT = """
import sys
from gradio_client import Client
client = Client(sys.argv[1], verbose=False, ssl_verify=False)
client.predict("a long one", "", "demo-random", "", 128, 256, 100, 5, "euler_a", 1, 4, api_name="/generate")
"""


def test_over_http_limits_follow_the_checkpoint_and_a_disconnected_client_stops_its_job(tmp_path):
    from gradio_client import Client

    with running_app(tmp_path / "data", f"sqlite:///{tmp_path / 'hub.sqlite3'}") as (url, ctx):
        client = Client(url, verbose=False, ssl_verify=False)
        with pytest.raises(Exception, match=r"Width for 'demo-multilingual' must be between 32 and 128"):
            client.predict("x", "", "demo-multilingual", "", 256, 64, 2, 3, "euler_a", 1, 1, api_name="/generate")
        # Measure demo-random once, then ask for its largest admissible job and walk away.
        client.predict("warm", "", "demo-random", "", 128, 128, 2, 5, "euler_a", 1, 1, api_name="/generate")
        client.predict("measure", "", "demo-random", "", 128, 128, 4, 5, "euler_a", 2, 1, api_name="/generate")
        engine = ctx.engine
        steps = engine.stats["steps"]
        leaver = subprocess.Popen([sys.executable, "-c", CLIENT, url], cwd=ROOT)
        try:
            wait_for(lambda: engine.stats["steps"] > steps + 2, "the long job to be denoising")
        finally:
            leaver.kill()
            leaver.wait()
        wait_for(lambda: engine.stats["cancelled_calls"] >= 1, "the job of the client that left to stop", timeout=60)
        ran = engine.stats["steps"] - steps
        time.sleep(1.0)
        assert engine.stats["steps"] - steps == ran, "the step counter still advances"
        assert ran < 100, "the job ran to the end although its client had gone"
        # The next request is served.
        gallery, _ = client.predict("next", "", "demo-random", "", 128, 128, 2, 5, "euler_a", 3, 1, api_name="/generate")
        assert len(gallery) == 1


def test_eval_batches_stop_growing_at_the_eval_time_limit(tmp_path, builtin_root):
    engine = make_engine(tmp_path, builtin_root, max_eval_batch_seconds=1e-6)
    try:
        engine.generate(GenerationRequest("warm up", seed=1))
        engine.generate(GenerationRequest("measure", seed=2))
        calls = engine.stats["pipeline_calls"]
        # Compatible eval requests would share one call; each alone is already over the eval limit.
        results = engine.run_many([GenerationRequest(f"eval {i}", seed=i, priority=EVAL) for i in range(4)])
        assert len(results) == 4 and engine.stats["pipeline_calls"] - calls == 4
    finally:
        engine.shutdown()
    roomy = make_engine(tmp_path / "roomy", builtin_root)
    try:
        roomy.generate(GenerationRequest("warm up", seed=1))
        calls = roomy.stats["pipeline_calls"]
        roomy.run_many([GenerationRequest(f"eval {i}", seed=i, priority=EVAL) for i in range(4)])
        assert roomy.stats["pipeline_calls"] - calls == 1
    finally:
        roomy.shutdown()
