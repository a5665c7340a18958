"""Finding, checking and loading registered checkpoints and LoRAs.

Only what `spaces_config.yaml` lists can be loaded. Weights load only from safetensors, never
with remote code. Whether a checkpoint can load here (GPU present, files present) is decided
before any load is tried, so the UI can say why a model is missing. Those reasons reach the page, so
they never name a folder or file of the server (the log does, where it helps).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from core.keys import file_sha256
from core.settings import repo_path as resolve_path
from hub.builtin import BUILTIN_SEEDS, ensure_builtin_checkpoint
from hub.config import CheckpointSpec, HubConfig, LoraSpec
from hub.families import get_family
from hub.revisions import cache_dir_from_env

log = logging.getLogger(__name__)

# The file that makes a folder a diffusers pipeline: classic pipelines, then modular ones.
PIPELINE_INDEX_FILES = ("model_index.json", "modular_model_index.json")


@dataclass(frozen=True)
class Availability:
    available: bool
    reason: str = ""


def pick_device(preference: str = "auto") -> tuple[str, torch.dtype]:
    """cuda (bf16 where supported, else fp16), then mps (fp16), then cpu (fp32)."""
    if preference in ("auto", "cuda") and torch.cuda.is_available():
        return "cuda", torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if preference in ("auto", "mps") and getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps", torch.float16
    return "cpu", torch.float32


def checkpoint_availability(
    spec: CheckpointSpec, config: HubConfig, device: str, hub_available: Callable[[CheckpointSpec], Availability] | None = None
) -> Availability:
    """Whether `spec` can load here. `hub_available` decides for `hub:` sources (can its revision be
    resolved: always online, only from the local cache offline)."""
    if spec.requires_gpu and device != "cuda":
        return Availability(False, "needs a GPU; this machine has none")
    kind, value = spec.source_kind, spec.source_value
    if kind == "builtin":
        if value not in BUILTIN_SEEDS:
            return Availability(False, f"unknown builtin {value!r}")
        return Availability(True)
    if kind == "folder":
        folder = resolve_path(value)
        # Modular pipelines (Anima) save a modular_model_index.json instead.
        if not any((folder / index).is_file() for index in PIPELINE_INDEX_FILES):
            return Availability(False, "its folder has no model_index.json")
        return Availability(True)
    if kind == "file":
        if not resolve_path(value).is_file():
            return Availability(False, "its weights file is not found")
        return Availability(True)
    if hub_available is not None:
        return hub_available(spec)
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        return Availability(False, "Hub downloads are off (HF_HUB_OFFLINE=1)")
    return Availability(True)


def local_folder(spec: CheckpointSpec, config: HubConfig) -> Path | None:
    """The folder a checkpoint loads from, building builtin ones on first use."""
    kind, value = spec.source_kind, spec.source_value
    if kind == "builtin":
        return ensure_builtin_checkpoint(value, config.data_path / "builtin")
    if kind == "folder":
        return resolve_path(value)
    return None


def native_size(folder: Path) -> int | None:
    """The square size a diffusers UNet folder was trained at (sample size x VAE scale), if readable."""
    try:
        unet = json.loads((folder / "unet" / "config.json").read_text())
        vae = json.loads((folder / "vae" / "config.json").read_text())
        return int(unet["sample_size"]) * 2 ** (len(vae["block_out_channels"]) - 1)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def load_pipeline(spec: CheckpointSpec, config: HubConfig, dtype: torch.dtype, revision: str | None = None):
    """Load the family's base pipeline for `spec` (on the CPU; the engine moves it). `hub:` sources load
    the pinned `revision` (a commit); offline (HF_HUB_OFFLINE=1) only from the local cache. How a
    pipeline loads is the family's (`Family.load`): a modular pipeline loads differently."""
    family = get_family(spec.family)
    kind, value = spec.source_kind, spec.source_value
    if kind in ("builtin", "folder"):
        pipe = family.load(local_folder(spec, config), dtype=dtype, local_files_only=True)
    elif kind == "file":
        pipe = family.load(resolve_path(value), dtype=dtype, single_file=True, local_files_only=True)
    else:
        offline = os.environ.get("HF_HUB_OFFLINE") == "1"
        pipe = family.load(
            spec.hub_repo, dtype=dtype, revision=revision or spec.pinned_revision, cache_dir=str(cache_dir_from_env()),
            local_files_only=offline,
        )
    if spec.prediction_type and hasattr(pipe, "scheduler"):
        pipe.scheduler = type(pipe.scheduler).from_config(pipe.scheduler.config, prediction_type=spec.prediction_type)
    if hasattr(pipe, "set_progress_bar_config"):
        pipe.set_progress_bar_config(disable=True)
    return pipe


def lora_weight_file(spec: LoraSpec) -> tuple[Path, str]:
    """(folder, weight file name) of a registered LoRA; only .safetensors files qualify."""
    kind, _, value = spec.source.partition(":")
    path = resolve_path(value)
    if kind == "file":
        if path.suffix != ".safetensors" or not path.is_file():
            log.warning("LoRA %r: weight file %s not found (must be .safetensors)", spec.id, path)
            raise FileNotFoundError(f"LoRA {spec.id!r}: its weight file is not found (must be .safetensors)")
        return path.parent, path.name
    if kind == "folder":
        files = sorted(path.glob("*.safetensors")) if path.is_dir() else []
        if len(files) != 1:
            log.warning("LoRA %r: folder %s holds %d .safetensors files, not one", spec.id, path, len(files))
            raise FileNotFoundError(f"LoRA {spec.id!r}: its folder must hold exactly one .safetensors file")
        return path, files[0].name
    raise FileNotFoundError(f"LoRA {spec.id!r}: its source is not a local file or folder")


class HashCache:
    """sha256 of weight files, remembered by (path, size, mtime) so a restart does not rehash."""

    def __init__(self, cache_file: Path):
        self.cache_file = cache_file
        self._lock = threading.Lock()
        try:
            self._cache: dict[str, str] = json.loads(cache_file.read_text())
        except (OSError, ValueError):
            self._cache = {}

    def file_sha256(self, path: Path) -> str:
        stat = path.stat()
        key = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
        with self._lock:
            if key in self._cache:
                return self._cache[key]
        value = file_sha256(path)
        with self._lock:
            self._cache[key] = value
            try:
                self.cache_file.parent.mkdir(parents=True, exist_ok=True)
                tmp = self.cache_file.with_suffix(".tmp")
                tmp.write_text(json.dumps(self._cache))
                tmp.replace(self.cache_file)
            except OSError:
                pass  # a cache, not a record
        return value

    def folder_sha256(self, folder: Path) -> str:
        """Hash of a diffusers folder: every weight file and config, in a fixed order."""
        digest = hashlib.sha256()
        for path in sorted(folder.rglob("*")):
            if path.is_file() and path.suffix in (".safetensors", ".json", ".txt"):
                digest.update(str(path.relative_to(folder)).encode())
                digest.update(self.file_sha256(path).encode())
        return digest.hexdigest()
