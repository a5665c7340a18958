"""Loaded models: one checkpoint resident on the device, others in CPU memory within a budget (LRU);
task pipelines derived by the family (`from_pipe`: shared weights); LoRAs as named peft adapters; compile.

Only the engine's worker calls into this class (under the engine's GPU lock), so it needs no lock.
"""

from __future__ import annotations

import gc
import logging
import re
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from typing import Any

import torch

from core.errors import first_line
from hub.checkpoints import load_pipeline, lora_weight_file
from hub.config import CheckpointSpec, HubConfig
from hub.engine.registry import ModelRegistry
from hub.errors import EngineError, HubInputError
from hub.families import Family, get_family

log = logging.getLogger(__name__)

HOTSWAP_SLOT = "hub_slot"


@dataclass
class LoadedModel:
    spec: CheckpointSpec
    family: Family
    base: Any
    version: str
    bytes: int
    derived: dict[str, Any] = field(default_factory=dict)
    adapters: OrderedDict[str, str] = field(default_factory=OrderedDict)  # adapter name -> lora id
    lora_disabled: bool = False
    is_compiled: bool = False

    @property
    def model_hash(self) -> str:
        """The short hash written into recipes (A1111's `Model hash`)."""
        return self.version[:10]


def adapter_name(lora_id: str) -> str:
    """peft adapter names become module keys: no dots or dashes allowed there."""
    return "lora_" + re.sub(r"[^a-z0-9_]", "_", lora_id)


def module_bytes(pipe: Any) -> int:
    total = 0
    for component in pipe.components.values():
        if isinstance(component, torch.nn.Module):
            total += sum(p.numel() * p.element_size() for p in component.parameters())
    return total


def free_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


class ModelCache:
    def __init__(self, config: HubConfig, registry: ModelRegistry, device: str, dtype: torch.dtype, stats: dict[str, int]):
        self.config = config
        self.registry = registry
        self.device = device
        self.dtype = dtype
        self.stats = stats
        self.loaded: OrderedDict[str, LoadedModel] = OrderedDict()  # least recently used first
        self.resident: str | None = None
        # Checkpoints a call is running on (a call nested between another's steps may load others):
        # never evicted, since the running call holds their modules.
        self.in_use: Counter[str] = Counter()

    @property
    def compiled(self) -> bool:
        """torch.compile the denoiser: CUDA only (a first compile on CPU takes minutes)."""
        return self.config.engine.compile and self.device == "cuda"

    # -- loading ----------------------------------------------------------------------------------
    def ensure_loaded(self, spec: CheckpointSpec) -> LoadedModel:
        loaded = self.loaded.get(spec.id)
        if loaded is not None and loaded.version != self.registry.version(spec.id):
            # The pin moved (`evals refresh`) or the weights changed on disk: a new version loads anew.
            del self.loaded[spec.id]
            if self.resident == spec.id:
                self.resident = None
            loaded = None
            free_memory()
        if loaded is None:
            loaded = self._load(spec)
            self.loaded[spec.id] = loaded
        self.loaded.move_to_end(spec.id)
        if self.resident != spec.id:
            if self.resident in self.loaded and self.device != "cpu":
                self.loaded[self.resident].base.to("cpu")
            if self.device != "cpu":
                # Modular pipelines (Anima) have no model offload of their own: they move whole.
                if self.device == "cuda" and self._wants_offload() and hasattr(loaded.base, "enable_model_cpu_offload"):
                    loaded.base.enable_model_cpu_offload()
                else:
                    loaded.base.to(self.device)
            self.resident = spec.id
        self._evict_over_budget()
        return loaded

    def _load(self, spec: CheckpointSpec) -> LoadedModel:
        try:
            version = self.registry.version(spec.id)
            revision = version if spec.source_kind == "hub" else None
            base = load_pipeline(spec, self.config, self.dtype, revision=revision)
        except HubInputError:
            raise
        except Exception as err:  # noqa: BLE001 - any load failure makes it unavailable, with the reason
            reason = first_line(err)
            self.registry.load_errors[spec.id] = f"failed to load: {reason}"
            raise EngineError(f"Checkpoint {spec.id!r} failed to load: {reason}") from err
        self.stats["checkpoint_loads"] += 1
        loaded = LoadedModel(spec=spec, family=get_family(spec.family), base=base, version=version, bytes=module_bytes(base))
        if self.compiled and loaded.family.supports_lora and hasattr(base, "enable_lora_hotswap"):
            # Must precede the first LoRA load: adapters then swap in place without recompiling.
            base.enable_lora_hotswap(target_rank=self.config.engine.lora_hotswap_rank)
        return loaded

    def _wants_offload(self) -> bool:
        """Model CPU offload when asked, or automatically on small GPUs (under 12 GB)."""
        if self.config.engine.cpu_offload:
            return True
        return torch.cuda.get_device_properties(0).total_memory < 12e9

    def _evict_over_budget(self) -> None:
        budget = self.config.engine.cpu_cache_gb * 1e9
        def evictable() -> list[str]:
            return [key for key in self.loaded if key != self.resident and not self.in_use[key]]

        while evictable() and sum(self.loaded[key].bytes for key in evictable()) > budget:
            oldest = evictable()[0]
            del self.loaded[oldest]
            free_memory()

    def task_pipeline(self, loaded: LoadedModel, task: str) -> Any:
        """The pipeline serving `task`, derived once from the base by its family (shared weights)."""
        if task not in loaded.derived:
            loaded.derived[task] = loaded.family.derive(loaded.base, task)
        return loaded.derived[task]

    # -- LoRAs and compile ------------------------------------------------------------------------
    def prepare(self, loaded: LoadedModel, loras: tuple[tuple[str, float], ...]) -> None:
        """Set the call's LoRAs, then compile where configured and ready."""
        if self.compiled:
            self._apply_loras_hotswap(loaded, loras)
            if self._ready_to_compile(loaded) and not loaded.is_compiled:
                # Compile in place (assigning a compiled wrapper breaks set_adapters).
                getattr(loaded.base, loaded.family.denoiser).compile()
                loaded.is_compiled = True
        else:
            self._apply_loras(loaded, loras)

    def _ready_to_compile(self, loaded: LoadedModel) -> bool:
        """peft must see the LoRA slot before compiling (its hot-swap preparation refuses a compiled
        model), so a model that can take LoRAs compiles after its first LoRA request; until then it
        runs eagerly. A model no registered LoRA fits compiles at once."""
        if not loaded.family.supports_lora or HOTSWAP_SLOT in loaded.adapters:
            return True
        return not any(lora.base_family == loaded.spec.family for lora in self.registry.lora_specs())

    def _apply_loras_hotswap(self, loaded: LoadedModel, loras: tuple[tuple[str, float], ...]) -> None:
        """Compiled engines keep one adapter slot and hot-swap LoRA weights into it."""
        if len(loras) > 1:
            raise HubInputError("This deployment is compiled for speed and takes one LoRA at a time.")
        base = loaded.base
        if loras:
            lora_id, weight = loras[0]
            current = loaded.adapters.get(HOTSWAP_SLOT)
            if current != lora_id:
                folder, weight_name = lora_weight_file(self.registry.lora_spec(lora_id))
                base.load_lora_weights(str(folder), weight_name=weight_name, adapter_name=HOTSWAP_SLOT, hotswap=current is not None)
                self.stats["lora_loads"] += 1
                loaded.adapters[HOTSWAP_SLOT] = lora_id
            base.set_adapters([HOTSWAP_SLOT], adapter_weights=[weight])
        elif HOTSWAP_SLOT in loaded.adapters:
            base.set_adapters([HOTSWAP_SLOT], adapter_weights=[0.0])  # "no LoRA" without unloading (no recompile)

    def _apply_loras(self, loaded: LoadedModel, loras: tuple[tuple[str, float], ...]) -> None:
        base = loaded.base
        names, weights = [], []
        for lora_id, weight in loras:
            name = adapter_name(lora_id)
            if name not in loaded.adapters:
                folder, weight_name = lora_weight_file(self.registry.lora_spec(lora_id))
                base.load_lora_weights(str(folder), weight_name=weight_name, adapter_name=name)
                self.stats["lora_loads"] += 1
                loaded.adapters[name] = lora_id
            loaded.adapters.move_to_end(name)
            names.append(name)
            weights.append(weight)
        # Keep the adapter count bounded; never drop one this call uses.
        while len(loaded.adapters) > self.config.engine.max_loaded_loras:
            victim = next(n for n in loaded.adapters if n not in names)
            base.delete_adapters(victim)
            del loaded.adapters[victim]
        if names:
            if loaded.lora_disabled:
                base.enable_lora()
                loaded.lora_disabled = False
            base.set_adapters(names, adapter_weights=weights)
        elif loaded.adapters and not loaded.lora_disabled:
            base.disable_lora()
            loaded.lora_disabled = True
