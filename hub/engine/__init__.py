"""The one engine per process that owns the accelerator.

- `requests.py`: request types and their checks (`GenerationRequest`, `EditRequest` -> `Job`).
- `registry.py`: what may be loaded (checkpoints, LoRAs) and each checkpoint's version.
- `models.py`: loaded models (one resident, LRU in CPU memory), derived task pipelines, LoRAs, compile.
- `call.py`: one pipeline call; the family builds its arguments; recipes; inpainting paste-back.
- `worker.py`: the priority queue with batching, and the one worker thread.

No gradio here: the CLI, the eval runner and batch workers use the engine directly. `hub.remote`
offers the same methods over Ray Serve (engine.backend: ray).
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import Future
from typing import Any, Callable

from hub.checkpoints import HashCache, pick_device
from hub.config import HubConfig
from hub.engine.call import make_scheduler, run_jobs
from hub.engine.interface import EngineInterface
from hub.engine.models import ModelCache, adapter_name
from hub.engine.registry import ModelRegistry
from hub.engine.requests import (
    EVAL,
    INTERACTIVE,
    EditRequest,
    GeneratedImage,
    GenerationRequest,
    Job,
    ProgressCallback,
)
from hub.engine.worker import JobQueue, Worker, execute
from leaderboards.keys import sha256_hex

__all__ = [
    "EVAL",
    "INTERACTIVE",
    "EditRequest",
    "Engine",
    "GeneratedImage",
    "GenerationRequest",
    "adapter_name",
    "get_engine",
    "make_scheduler",
]


class Engine(EngineInterface):
    def __init__(self, config: HubConfig, device: str | None = None):
        self.config = config
        self.device, self.dtype = pick_device(device or config.engine.device)
        self.stats = {"pipeline_calls": 0, "images": 0, "checkpoint_loads": 0, "lora_loads": 0}
        self.registry = ModelRegistry(config, self.device, HashCache(config.data_path / "hash_cache.json"))
        self.models = ModelCache(config, self.registry, self.device, self.dtype, self.stats)
        # Held by the worker for each pipeline call and by direct pipeline access (tests, tools).
        self._gpu_lock = threading.RLock()
        self.queue = JobQueue(max_batch_images=config.engine.max_batch_images, batch_window_ms=config.engine.batch_window_ms)
        # On ZeroGPU the GPU exists only inside the request's `spaces.GPU` call: run work inline
        # there. Everywhere else one worker thread owns the device and batches the queue.
        self.inline = bool(os.environ.get("SPACES_ZERO_GPU"))
        self._worker = Worker(self.queue, self._run, self._gpu_lock)
        if not self.inline:
            self._worker.start()

    def _run(self, jobs: list[Job]) -> list[list[GeneratedImage]]:
        return run_jobs(self.models, jobs, mask_blur=self.config.engine.mask_blur)

    def submit(self, job: Job) -> Future:
        if self.inline:
            execute([job], self._run, self._gpu_lock)
            return job.future
        return self.queue.put(job)

    def generate(self, request: GenerationRequest, progress: ProgressCallback | None = None) -> list[GeneratedImage]:
        job = self.resolve_generation(request)
        job.progress = progress
        return self.submit(job).result()

    def generate_many(self, requests: list[GenerationRequest]) -> list[list[GeneratedImage]]:
        """Submit all at once so compatible requests share pipeline calls."""
        return self.run_many(list(requests))

    def run_many(self, requests: list[GenerationRequest | EditRequest]) -> list[list[GeneratedImage]]:
        """Generation and edit requests submitted together (compatible ones share calls), in order."""
        jobs = [self.resolve_edit(r) if isinstance(r, EditRequest) else self.resolve_generation(r) for r in requests]
        futures = [self.submit(job) for job in jobs]
        return [future.result() for future in futures]

    def edit(self, request: EditRequest, progress: ProgressCallback | None = None) -> list[GeneratedImage]:
        job = self.resolve_edit(request)
        job.progress = progress
        return self.submit(job).result()

    def run_exclusive(self, fn: Callable[[], Any], priority: int = INTERACTIVE) -> Any:
        """Run `fn` on the engine's worker, between pipeline calls (e.g. LoRA training)."""
        return self.submit(Job(task="exclusive", spec=None, call=fn, priority=priority)).result()

    def pipeline(self, checkpoint_id: str, task: str = "text2img") -> Any:
        """The task pipeline for a checkpoint (loading it if needed). For tools and tests."""
        with self._gpu_lock:
            loaded = self.models.ensure_loaded(self.spec(checkpoint_id))
            return self.models.task_pipeline(loaded, task)

    def shutdown(self) -> None:
        self.queue.close()
        self._worker.join(timeout=30)


_ENGINES: dict[str, Engine] = {}
_ENGINES_LOCK = threading.Lock()


def _closed(engine: Any) -> bool:
    return engine.queue.closed if isinstance(engine, Engine) else bool(getattr(engine, "closed", False))


def get_engine(config: HubConfig) -> Engine:
    """The process's engine for this config (one per process owns the accelerator). Keyed by the
    config's content and data folder, not by object identity, so an equal config reuses the engine.

    `engine.backend: ray` gives a `hub.remote.RemoteEngine` instead: the same methods and errors, the
    work done by engine replicas on Ray Serve. Only then is Ray imported."""
    key = sha256_hex({"config": config.model_dump(mode="json"), "data": str(config.data_path)})
    with _ENGINES_LOCK:
        engine = _ENGINES.get(key)
        if engine is None or _closed(engine):
            if config.engine.backend == "ray":
                from hub.remote import RemoteEngine

                engine = RemoteEngine(config)  # type: ignore[assignment]
            else:
                engine = Engine(config)
            _ENGINES[key] = engine
        return engine
