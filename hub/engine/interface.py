"""What every engine offers: the registry's answers, the request checks and the calls themselves.

`Engine` (this process owns the device) and `hub.remote.RemoteEngine` (replicas on Ray Serve) both
derive from `EngineInterface`, so the UI, the arena and the evals call one interface whatever the
backend, and a bad request gets the same message before anything reaches a device. `generate`,
`edit`, `generate_many` and `run_many` are written once, here; a backend says only how it runs one
checked job (`_run_job`) and several together (`_run_jobs`, where compatible ones share calls).
"""

from __future__ import annotations

from typing import Any, Callable

from hub.checkpoints import Availability
from hub.config import CheckpointSpec, HubConfig, LoraSpec
from hub.engine.registry import ModelRegistry
from hub.engine.requests import (
    CancelToken,
    EditRequest,
    GeneratedImage,
    GenerationRequest,
    Job,
    ProgressCallback,
    job_settings,
    resolve_edit,
    resolve_generation,
)


class EngineInterface:
    config: HubConfig
    registry: ModelRegistry

    # -- registry (what can be loaded) ------------------------------------------------------------
    @property
    def checkpoint_resolver(self) -> Callable[[str], CheckpointSpec | None] | None:
        return self.registry.checkpoint_resolver

    @checkpoint_resolver.setter
    def checkpoint_resolver(self, resolver: Callable[[str], CheckpointSpec | None] | None) -> None:
        self.registry.checkpoint_resolver = resolver

    def checkpoint_specs(self) -> list[CheckpointSpec]:
        return self.registry.checkpoint_specs()

    def checkpoint_spec(self, checkpoint_id: str) -> CheckpointSpec:
        return self.registry.checkpoint_spec(checkpoint_id)

    def availability(self) -> dict[str, Availability]:
        return self.registry.availability()

    def checkpoint_ids(self, available_only: bool = True, task: str | None = None) -> list[str]:
        return self.registry.checkpoint_ids(available_only, task)

    def spec(self, checkpoint_id: str | None) -> CheckpointSpec:
        return self.registry.spec(checkpoint_id)

    def checkpoint_version(self, checkpoint_id: str) -> str:
        """Pinned commit (hub) or weights sha256 (local): the identity in cache keys and boards."""
        return self.registry.version(checkpoint_id)

    def lora_specs(self) -> list[LoraSpec]:
        return self.registry.lora_specs()

    def lora_spec(self, lora_id: str) -> LoraSpec:
        return self.registry.lora_spec(lora_id)

    def lora_hash(self, lora_id: str) -> str:
        return self.registry.lora_hash(lora_id)

    def register_lora(self, spec: LoraSpec) -> None:
        self.registry.register_lora(spec)

    @property
    def trained_lora_dir(self) -> Any:
        return self.registry.trained_lora_dir

    def estimated_wait(self, priority: int = 0) -> float:
        """Seconds of work ahead of a new job; 0 where the engine cannot tell (remote replicas)."""
        return 0.0

    # -- request checks ---------------------------------------------------------------------------
    def resolve_generation(self, request: GenerationRequest) -> Job:
        return resolve_generation(request, self.registry, self.config)

    def resolve_edit(self, request: EditRequest) -> Job:
        return resolve_edit(request, self.registry, self.config)

    def resolve_settings(self, request: GenerationRequest | EditRequest) -> dict[str, Any]:
        """The effective settings of a request (defaults filled in), e.g. for cache keys."""
        return job_settings(self.resolve(request))

    def resolve(self, request: GenerationRequest | EditRequest) -> Job:
        return self.resolve_edit(request) if isinstance(request, EditRequest) else self.resolve_generation(request)

    # -- calls --------------------------------------------------------------------------------------
    def generate(self, request: GenerationRequest, progress: ProgressCallback | None = None,
                 cancel: CancelToken | None = None) -> list[GeneratedImage]:
        return self._run_job(self.resolve_generation(request), progress, cancel)

    def edit(self, request: EditRequest, progress: ProgressCallback | None = None,
             cancel: CancelToken | None = None) -> list[GeneratedImage]:
        return self._run_job(self.resolve_edit(request), progress, cancel)

    def generate_many(self, requests: list[GenerationRequest]) -> list[list[GeneratedImage]]:
        """Submitted all at once, so compatible requests share pipeline calls."""
        return self.run_many(list(requests))

    def run_many(self, requests: list[GenerationRequest | EditRequest],
                 cancel: CancelToken | None = None) -> list[list[GeneratedImage]]:
        """Generation and edit requests together (compatible ones share calls), results in order."""
        jobs = [self.resolve(request) for request in requests]
        return self._run_jobs(jobs, cancel) if jobs else []

    def _run_job(self, job: Job, progress: ProgressCallback | None, cancel: CancelToken | None) -> list[GeneratedImage]:
        raise NotImplementedError

    def _run_jobs(self, jobs: list[Job], cancel: CancelToken | None) -> list[list[GeneratedImage]]:
        raise NotImplementedError
