"""What every engine offers beyond running jobs: the registry's answers and the request checks.

`Engine` (this process owns the device) and `hub.remote.RemoteEngine` (replicas on Ray Serve) both
derive from `EngineInterface`, so the UI, the arena and the evals call one interface whatever the
backend, and a bad request gets the same message before anything reaches a device.
"""

from __future__ import annotations

from typing import Any, Callable

from hub.checkpoints import Availability
from hub.config import CheckpointSpec, HubConfig, LoraSpec
from hub.engine.registry import ModelRegistry
from hub.engine.requests import EditRequest, GenerationRequest, Job, job_settings, resolve_edit, resolve_generation


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
        job = self.resolve_edit(request) if isinstance(request, EditRequest) else self.resolve_generation(request)
        return job_settings(job)
