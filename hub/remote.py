"""The remote engine: the `Engine` interface, served by engine replicas on Ray Serve.

`get_engine(config)` returns one of these when `engine.backend: ray`. The UI, the arena and the evals
call it exactly as they call the local engine; what differs happens underneath:

- Checks run here, in the front end, against a registry built from the same config (plus the
  checkpoints authors registered in the database): bad input never reaches the cluster, and is refused
  with the local engine's message. A checkpoint that needs a GPU is refused when the replicas have
  none, with that reason.
- The checked job travels as plain data (`hub.serving.wire`: arrays, not PIL objects) through a Serve
  handle, with `multiplexed_model_id=<checkpoint>` so it reaches a replica that already holds the
  weights. With a progress callback the call is streamed and each denoising step is reported.
- Cancellation: a call given a `CancelToken` is cancelled through Serve when the token is set (the
  caller left or pressed Stop); the replica sets its job's token, so the replica's engine stops the
  call at the next denoising step, exactly as the local engine does.
- Errors come back as `HubInputError` / `EngineError` with the replica engine's message; a replica that
  died mid-request (`RayActorError`, Serve's unavailable errors) is retried once on another replica,
  then reported as a short `EngineError`.
- Priorities: each request keeps its priority (interactive, or eval for eval runs) and the replica's
  engine orders its queue by it; see `hub.serving.replica`.
- `pipeline()` and `run_exclusive()` (LoRA training) need the weights in this process: they use a local
  engine created on first use (on this machine's device).
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable

import torch

from core.errors import first_line
from hub.checkpoints import Availability, HashCache
from hub.config import CheckpointSpec, HubConfig, LoraSpec, RaySettings
from hub.engine import Engine
from hub.engine.interface import EngineInterface
from hub.engine.registry import ModelRegistry
from hub.engine.requests import INTERACTIVE, CancelToken, GeneratedImage, Job, ProgressCallback
from hub.errors import EngineError, HubInputError, JobCancelled
from hub.serving import wire
from hub.serving.cluster import ServingCluster
from hub.serving.wire import ReplicaLostError

log = logging.getLogger(__name__)

REPLICA_RETRIES = 1  # a request whose replica died is sent once more (generation is idempotent)


def _retryable_errors() -> tuple[type[BaseException], ...]:
    from ray.exceptions import ActorDiedError, ActorUnavailableError, RayActorError, WorkerCrashedError
    from ray.serve.exceptions import BackPressureError, DeploymentUnavailableError, ReplicaUnavailableError

    return (ActorDiedError, ActorUnavailableError, RayActorError, WorkerCrashedError, BackPressureError,
            DeploymentUnavailableError, ReplicaUnavailableError)


class ClusterRegistry(ModelRegistry):
    """The front end's registry: the same checks as a replica's, with the replicas' device."""

    def __init__(self, config: HubConfig, device: str, hashes: HashCache, no_gpu_reason: str):
        super().__init__(config, device, hashes)
        self.no_gpu_reason = no_gpu_reason

    def availability(self) -> dict[str, Availability]:
        result = super().availability()
        if self.device != "cuda":
            for spec in self.checkpoint_specs():
                if spec.requires_gpu and spec.id not in self.load_errors:
                    result[spec.id] = Availability(False, self.no_gpu_reason)
        return result


class RemoteEngine(EngineInterface):
    """Same methods, same errors as `hub.engine.Engine`; the work runs on Ray Serve replicas."""

    backend = "ray"

    def __init__(self, config: HubConfig, *, cluster: ServingCluster | None = None, settings: RaySettings | None = None):
        self.config = config
        self.ray_settings = settings or config.engine.ray
        self.cluster = cluster or ServingCluster.connect(config, self.ray_settings)
        self.device = self.cluster.device
        self.dtype = torch.bfloat16 if self.device == "cuda" else torch.float32
        reason = (f"needs a GPU; the Ray cluster at {self.cluster.address!r} serves on CPUs only "
                  f"(engine.ray.num_gpus_per_replica is 0)")
        self.registry = ClusterRegistry(config, self.device, HashCache(config.data_path / "hash_cache.json"), reason)
        self._calls = ThreadPoolExecutor(max_workers=64, thread_name_prefix="remote-engine")
        self._local: Any = None
        self._local_lock = threading.Lock()
        self._counters = {"remote_calls": 0, "retries": 0}
        self._counter_lock = threading.Lock()
        self.closed = False

    def register_lora(self, spec: LoraSpec) -> None:
        super().register_lora(spec)
        if self._local is not None:
            self._local.registry._trained_loras.setdefault(spec.id, spec)

    def registry_payload(self, spec: CheckpointSpec, lora_ids: list[str]) -> dict[str, Any]:
        """What a replica must be told about a checkpoint and LoRAs beyond the config."""
        return wire.registry_to_wire(self.config, self.registry, spec, lora_ids)

    def _payload(self, job: Job) -> dict[str, Any]:
        assert job.spec is not None
        return {"request": wire.job_to_wire(job), "registry": self.registry_payload(job.spec, [name for name, _ in job.loras])}

    # -- calls ------------------------------------------------------------------------------------
    def _count(self, key: str) -> None:
        with self._counter_lock:
            self._counters[key] += 1

    def _remote(self, method: str, payload: Any, *, checkpoint_id: str | None, progress: ProgressCallback | None = None,
                cancel: CancelToken | None = None) -> dict:
        """Call a replica method; replies carrying an error are raised as the local engine raises them."""
        if self.closed:
            raise EngineError("The engine is shut down.")
        retryable = _retryable_errors()
        handle = self.cluster.handle
        if checkpoint_id:
            handle = handle.options(multiplexed_model_id=checkpoint_id)
        for attempt in range(REPLICA_RETRIES + 1):
            self._count("remote_calls")
            try:
                if progress is None:
                    response = getattr(handle, method).remote(payload)
                    reply = self._unless_cancelled(response, cancel, response.result)
                else:
                    responses = getattr(handle.options(stream=True), f"{method}_stream").remote(payload)
                    reply = self._unless_cancelled(responses, cancel, lambda: self._read_stream(responses, progress))
                return wire.raise_if_error(reply)
            except retryable as err:
                if attempt < REPLICA_RETRIES:
                    self._count("retries")
                    log.warning("engine replica lost during %s (%s); retrying on another replica", method, first_line(err))
                    continue
                raise ReplicaLostError(f"The engine replica was lost ({first_line(err)}); try again.") from None
            except (HubInputError, EngineError):
                raise
            except Exception as err:  # noqa: BLE001 - RayTaskError and friends: a bug or an infrastructure failure
                if cancel is not None and cancel.is_set():  # Serve's RequestCancelledError: we asked for it
                    raise JobCancelled(cancel.reason) from None
                log.error("engine replica call %s failed", method, exc_info=err)
                cause = getattr(err, "cause", None) or err
                raise EngineError(f"The engine replica failed: {first_line(cause)}") from None
        raise AssertionError("unreachable")

    @staticmethod
    def _unless_cancelled(response: Any, cancel: CancelToken | None, read: Callable[[], dict]) -> dict:
        """`read()` the reply of a Serve call; setting `cancel` meanwhile cancels the call in Serve."""
        if cancel is None:
            return read()
        done = threading.Event()

        def cancel_when_set() -> None:
            while not done.is_set():
                if cancel.wait(0.1):
                    response.cancel()
                    return

        threading.Thread(target=cancel_when_set, name="remote-cancel", daemon=True).start()
        try:
            return read()
        finally:
            done.set()

    @staticmethod
    def _read_stream(responses: Any, progress: ProgressCallback) -> dict:
        reply: dict = {}
        for item in responses:
            if "progress" in item:
                try:
                    progress(*item["progress"])
                except Exception:  # noqa: BLE001 - a broken progress bar must not fail the call
                    pass
            else:
                reply = item
        return reply

    def _run_job(self, job: Job, progress: ProgressCallback | None, cancel: CancelToken | None = None) -> list[GeneratedImage]:
        """One checked job on a replica (the reply streams its progress when asked for)."""
        assert job.spec is not None
        reply = self._remote("generate", self._payload(job), checkpoint_id=job.spec.id, progress=progress, cancel=cancel)
        return wire.images_from_wire(reply["images"])

    def submit(self, job: Job) -> Future:
        if job.task == "exclusive":
            return self._local_engine().submit(job)
        return self._calls.submit(self._run_job, job, job.progress)

    def _run_jobs(self, jobs: list[Job], cancel: CancelToken | None) -> list[list[GeneratedImage]]:
        """Sent together to one replica, whose engine batches the compatible ones; results in order."""
        reply = self._remote("run_many", [self._payload(job) for job in jobs], checkpoint_id=jobs[0].spec.id, cancel=cancel)
        return [wire.images_from_wire(items) for items in reply["results"]]

    def call_task(self, fn: Callable[[Any, dict[str, Any], Any], Any], payload: dict[str, Any]) -> Any:
        """Run `fn(engine, state, payload)` on one replica (see `EngineReplica.run_task`). A lost
        replica raises `ReplicaLostError` at once (no retry here: the caller decides)."""
        if self.closed:
            raise EngineError("The engine is shut down.")
        self._count("remote_calls")
        try:
            return self.cluster.handle.run_task.remote(fn, payload).result()
        except _retryable_errors() as err:
            raise ReplicaLostError(f"The engine replica was lost ({first_line(err)}).") from None

    # -- local work: the weights in this process --------------------------------------------------
    def _local_engine(self) -> Any:
        """A local engine for work that needs the pipeline object here (LoRA training, tools)."""
        with self._local_lock:
            if self._local is None:
                local = Engine(self.config.model_copy(update={"engine": self.config.engine.model_copy(update={"backend": "local"})}))
                local.registry.checkpoint_resolver = self.registry.checkpoint_resolver
                local.registry.revision_store = self.registry.revision_store
                for spec in self.registry.lora_specs():
                    if spec.id not in {lora.id for lora in local.registry.lora_specs()}:
                        local.registry._trained_loras[spec.id] = spec
                self._local = local
            return self._local

    def run_exclusive(self, fn: Callable[[], Any], priority: int = INTERACTIVE, cancel: CancelToken | None = None) -> Any:
        return self._local_engine().run_exclusive(fn, priority, cancel)

    def pipeline(self, checkpoint_id: str, task: str = "text2img") -> Any:
        return self._local_engine().pipeline(checkpoint_id, task)

    # -- state ------------------------------------------------------------------------------------
    def replica_stats(self) -> dict[str, Any]:
        """Statistics of the replica that answers (one of them, when there are several)."""
        return self.cluster.handle.stats.remote().result()

    @property
    def stats(self) -> dict[str, int]:
        """The answering replica's engine counters, plus this front end's call counters."""
        try:
            counters = dict(self.replica_stats()["engine"])
        except Exception:  # noqa: BLE001 - no replica right now
            counters = {}
        with self._counter_lock:
            counters.update(self._counters)
        return counters

    def shutdown(self) -> None:
        """Stop calling; the deployment stays up for the other front ends (and for the next start)."""
        if self.closed:
            return
        self.closed = True
        self._calls.shutdown(wait=False, cancel_futures=True)
        if self._local is not None:
            self._local.shutdown()
        self.cluster.disconnect()
