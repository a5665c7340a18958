"""The registry of what the engine may load: checkpoints and LoRAs, where they are, who they are.

Checkpoints come from the config, plus those model authors registered (looked up in the database
through `checkpoint_resolver`); LoRAs from the config, plus those trained on this hub (a registration
file under `<data_dir>/loras/`). Nothing else can be loaded.

Identity: `version(checkpoint_id)` is what sample cache keys and boards use. For `hub:` sources it is
the commit the checkpoint is pinned to (see `hub/revisions.py`: resolved once, stored through
`revision_store`, used for every load); for folders, files and builtins it is the sha256 of the
weights and configs. New weights are therefore always a new version.

Why a checkpoint is unavailable reaches the page (and the API), so it never names a server path: a load
error (often a library's message with the folder in it) shows only the file's base name.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from core.errors import without_paths
from core.settings import repo_path as resolve_path
from hub.checkpoints import Availability, HashCache, checkpoint_availability, local_folder, lora_weight_file
from hub.config import CheckpointSpec, HubConfig, LoraSpec
from hub.errors import HubInputError
from hub.families import get_family
from hub.revisions import RevisionError, RevisionResolver, default_resolver
from hub.validation import check_id_format

log = logging.getLogger(__name__)

class RevisionStore(Protocol):
    """Where pinned revisions live (the checkpoints table); the app wires the database in."""

    def get(self, checkpoint_id: str) -> str | None: ...

    def set(self, checkpoint_id: str, revision: str) -> None: ...


class MemoryRevisionStore:
    """Pins kept for this process only (CLI runs without a database, tests)."""

    def __init__(self) -> None:
        self._pins: dict[str, str] = {}

    def get(self, checkpoint_id: str) -> str | None:
        return self._pins.get(checkpoint_id)

    def set(self, checkpoint_id: str, revision: str) -> None:
        self._pins[checkpoint_id] = revision


class ModelRegistry:
    def __init__(self, config: HubConfig, device: str, hashes: HashCache):
        self.config = config
        self.device = device
        self.hashes = hashes
        self.load_errors: dict[str, str] = {}
        self._registered: dict[str, CheckpointSpec] = {}
        self._trained_loras: dict[str, LoraSpec] = {}
        self._lock = threading.Lock()
        # Checkpoints registered after start (e.g. in the database); None: config only.
        self.checkpoint_resolver: Callable[[str], CheckpointSpec | None] | None = None
        self.revision_resolver: RevisionResolver = default_resolver()
        self.revision_store: RevisionStore = MemoryRevisionStore()
        self._load_trained_loras()

    # -- checkpoints ------------------------------------------------------------------------------
    def checkpoint_specs(self) -> list[CheckpointSpec]:
        return list(self.config.checkpoints) + list(self._registered.values())

    def checkpoint_spec(self, checkpoint_id: str) -> CheckpointSpec:
        """The registered checkpoint with this id (config first, then authors' registrations)."""
        for spec in self.config.checkpoints:
            if spec.id == checkpoint_id:
                return spec
        if checkpoint_id not in self._registered and self.checkpoint_resolver is not None:
            found = self.checkpoint_resolver(checkpoint_id)
            if found is not None:
                with self._lock:
                    self._registered[found.id] = found
        try:
            return self._registered[checkpoint_id]
        except KeyError:
            raise KeyError(checkpoint_id) from None

    def forget(self, checkpoint_id: str) -> None:
        """Drop an author's checkpoint (a maintainer hid it): the next lookup asks the resolver again."""
        with self._lock:
            self._registered.pop(checkpoint_id, None)

    def availability(self) -> dict[str, Availability]:
        result = {}
        for spec in self.checkpoint_specs():
            if spec.id in self.load_errors:
                result[spec.id] = Availability(False, without_paths(self.load_errors[spec.id]))
            else:
                result[spec.id] = checkpoint_availability(spec, self.config, self.device, self._hub_available)
        return result

    def _hub_available(self, spec: CheckpointSpec) -> Availability:
        try:
            self.revision(spec)
        except RevisionError as err:
            return Availability(False, str(err))
        return Availability(True)

    def checkpoint_ids(self, available_only: bool = True, task: str | None = None) -> list[str]:
        status = self.availability()
        ids = []
        for spec in self.checkpoint_specs():
            if available_only and not status[spec.id].available:
                continue
            if task and not get_family(spec.family).supports(task):
                continue
            ids.append(spec.id)
        return ids

    def spec(self, checkpoint_id: str | None) -> CheckpointSpec:
        """The registered, loadable checkpoint for an id from a request, or HubInputError."""
        checkpoint_id = checkpoint_id or self.config.default_checkpoint
        check_id_format(checkpoint_id, "checkpoint")
        try:
            spec = self.checkpoint_spec(checkpoint_id)
        except KeyError:
            raise HubInputError(f"Unknown checkpoint {checkpoint_id!r}.") from None
        status = self.availability()[spec.id]
        if not status.available:
            raise HubInputError(f"Checkpoint {spec.id!r} is not available here: {status.reason}.")
        return spec

    # -- identity ---------------------------------------------------------------------------------
    def revision(self, spec: CheckpointSpec) -> str:
        """The commit a `hub:` checkpoint loads from: pinned once, then always the same."""
        stored = self.revision_store.get(spec.id)
        if stored:
            return stored
        commit = self.revision_resolver.resolve(spec.hub_repo, spec.pinned_revision)
        self.revision_store.set(spec.id, commit)
        return commit

    def version(self, checkpoint_id: str) -> str:
        """The checkpoint's identity: its pinned commit (hub) or the sha256 of its weights (local)."""
        spec = self.checkpoint_spec(checkpoint_id)
        if spec.source_kind == "hub":
            try:
                return self.revision(spec)
            except RevisionError as err:
                raise HubInputError(f"Checkpoint {spec.id!r}: {err}") from None
        folder = local_folder(spec, self.config)
        if folder is not None:
            return self.hashes.folder_sha256(folder)
        return self.hashes.file_sha256(resolve_path(spec.source_value))

    # -- LoRAs ------------------------------------------------------------------------------------
    @property
    def trained_lora_dir(self) -> Path:
        return self.config.data_path / "loras"

    def _load_trained_loras(self) -> None:
        for info_file in sorted(self.trained_lora_dir.glob("*/registration.json")):
            try:
                spec = LoraSpec.model_validate(json.loads(info_file.read_text(encoding="utf-8")))
            except (OSError, ValueError):
                log.warning("skipping unreadable LoRA registration %s", info_file)
                continue
            if spec.id not in {lora.id for lora in self.config.loras}:
                self._trained_loras[spec.id] = spec

    def lora_specs(self) -> list[LoraSpec]:
        return list(self.config.loras) + list(self._trained_loras.values())

    def lora_spec(self, lora_id: str) -> LoraSpec:
        for spec in self.lora_specs():
            if spec.id == lora_id:
                return spec
        raise KeyError(lora_id)

    def register_lora(self, spec: LoraSpec) -> None:
        """Register a LoRA trained here: its folder is under the data dir, its record next to it."""
        with self._lock:
            if any(lora.id == spec.id for lora in self.lora_specs()):
                raise HubInputError(f"A LoRA with id {spec.id!r} already exists.")
            folder = self.trained_lora_dir / spec.id
            folder.mkdir(parents=True, exist_ok=True)
            tmp = folder / "registration.json.tmp"
            tmp.write_text(spec.model_dump_json(indent=2), encoding="utf-8")
            tmp.replace(folder / "registration.json")
            self._trained_loras[spec.id] = spec

    def lora_hash(self, lora_id: str) -> str:
        folder, name = lora_weight_file(self.lora_spec(lora_id))
        return self.hashes.file_sha256(folder / name)
