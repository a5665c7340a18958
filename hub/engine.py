"""The one engine per process that owns the accelerator.

- One checkpoint is resident on the device; others wait in CPU memory within a budget (LRU).
- Task pipelines (text-to-image, image-to-image, inpainting, instruction edits) are derived from the
  loaded base with `from_pipe`: they share its modules, no weights are copied.
- Character LoRAs are named peft adapters, loaded once and switched with `set_adapters`.
- All accelerator work runs on one worker thread fed by a queue. Compatible text-to-image requests
  (same checkpoint, size, steps, CFG, sampler, LoRAs) that wait together run as one batched call.
- Pipeline failures (out of memory included) become `EngineError` for the requests in that call;
  the engine frees memory and serves the next request.

No gradio here: the CLI, the eval runner and batch workers use the engine directly.
"""

from __future__ import annotations

import gc
import logging
import os
import re
import threading
import time
from collections import OrderedDict, deque
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from PIL import Image

from hub.checkpoints import (
    Availability,
    HashCache,
    checkpoint_availability,
    load_pipeline,
    local_folder,
    lora_weight_file,
    pick_device,
)
from hub.config import CheckpointSpec, HubConfig, LoraSpec
from hub.errors import EngineError, HubInputError
from hub.families import Family, get_family
from hub.images import to_rgb
from hub.recipe import Recipe
from hub.validation import (
    check_float,
    check_id_format,
    check_int,
    check_prompt,
    check_sampler,
    check_seed,
    check_size,
)

log = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int], None]


@dataclass(frozen=True)
class GenerationRequest:
    """A text-to-image request. `None` settings take the checkpoint's defaults."""

    prompt: str
    negative_prompt: str = ""
    checkpoint: str | None = None
    loras: tuple[tuple[str, float], ...] = ()
    width: int | None = None
    height: int | None = None
    steps: int | None = None
    cfg: float | None = None
    sampler: str | None = None
    seed: int = 0
    batch: int = 1


@dataclass(frozen=True)
class EditRequest:
    """An edit of `image`: inpainting when a mask is given, else the family's edit task."""

    image: Image.Image
    prompt: str = ""
    mask: Image.Image | None = None
    strength: float = 0.6
    checkpoint: str | None = None
    seed: int = 0
    steps: int | None = None
    cfg: float | None = None
    negative_prompt: str = ""
    sampler: str | None = None
    loras: tuple[tuple[str, float], ...] = ()
    task: str | None = None  # None: inpaint with a mask, instruct where the family edits, else img2img
    image_guidance: float = 1.5  # InstructPix2Pix's image guidance
    batch: int = 1


@dataclass
class GeneratedImage:
    image: Image.Image
    seed: int
    recipe: Recipe
    checkpoint: str


@dataclass
class _Job:
    task: str
    spec: CheckpointSpec
    prompt: str
    negative_prompt: str
    loras: tuple[tuple[str, float], ...]
    width: int
    height: int
    steps: int
    cfg: float
    sampler: str
    seed: int
    batch: int
    image: Image.Image | None = None
    mask: Image.Image | None = None
    strength: float | None = None
    image_guidance: float | None = None
    progress: ProgressCallback | None = None
    call: Callable[[], Any] | None = None  # exclusive work (task "exclusive")
    future: Future = field(default_factory=Future)

    @property
    def batch_key(self) -> tuple | None:
        """Jobs with equal keys run in one pipeline call; edits run alone (their inputs differ)."""
        if self.task != "text2img":
            return None
        return (self.spec.id, self.width, self.height, self.steps, self.cfg, self.sampler, self.loras)


@dataclass
class _Loaded:
    spec: CheckpointSpec
    family: Family
    base: Any
    model_hash: str
    bytes: int
    derived: dict[str, Any] = field(default_factory=dict)
    adapters: "OrderedDict[str, str]" = field(default_factory=OrderedDict)  # adapter name -> lora id
    lora_disabled: bool = False
    is_compiled: bool = False


def adapter_name(lora_id: str) -> str:
    """peft adapter names become module keys: no dots or dashes allowed there."""
    return "lora_" + re.sub(r"[^a-z0-9_]", "_", lora_id)


def make_scheduler(sampler: str, base_scheduler: Any) -> Any:
    """A fresh scheduler object per call: scheduler state is not shareable between calls."""
    import diffusers

    config = base_scheduler.config
    if sampler == "default":
        return type(base_scheduler).from_config(config)
    table = {
        "euler_a": (diffusers.EulerAncestralDiscreteScheduler, {}),
        "euler": (diffusers.EulerDiscreteScheduler, {}),
        "dpmpp_2m": (diffusers.DPMSolverMultistepScheduler, {}),
        "dpmpp_2m_karras": (diffusers.DPMSolverMultistepScheduler, {"use_karras_sigmas": True}),
        "ddim": (diffusers.DDIMScheduler, {}),
        "unipc": (diffusers.UniPCMultistepScheduler, {}),
    }
    cls, extra = table[sampler]
    return cls.from_config(config, **extra)


def _module_bytes(pipe: Any) -> int:
    total = 0
    for component in pipe.components.values():
        if isinstance(component, torch.nn.Module):
            total += sum(p.numel() * p.element_size() for p in component.parameters())
    return total


def _is_oom(err: BaseException) -> bool:
    text = str(err).lower()
    return isinstance(err, torch.OutOfMemoryError) or "out of memory" in text or "can't allocate memory" in text


class Engine:
    def __init__(self, config: HubConfig, device: str | None = None):
        self.config = config
        self.device, self.dtype = pick_device(device or config.engine.device)
        self.hashes = HashCache(config.data_path / "hash_cache.json")
        self.stats = {"pipeline_calls": 0, "images": 0, "checkpoint_loads": 0, "lora_loads": 0}
        self._loaded: OrderedDict[str, _Loaded] = OrderedDict()  # least recently used first
        self._resident: str | None = None
        self._load_errors: dict[str, str] = {}
        self._pending: deque[_Job] = deque()
        self._cond = threading.Condition()
        self._closed = False
        # Held by the worker for each pipeline call and by direct pipeline access (tests, tools).
        self._gpu_lock = threading.RLock()
        self._trained_loras: dict[str, LoraSpec] = {}
        self._load_trained_loras()
        self._registered: dict[str, CheckpointSpec] = {}
        # Looks up checkpoints registered after start (e.g. in the database); None: config only.
        self.checkpoint_resolver: Callable[[str], CheckpointSpec | None] | None = None
        # On ZeroGPU the GPU exists only inside the request's `spaces.GPU` call: run work inline
        # there. Everywhere else one worker thread owns the device and batches the queue.
        self.inline = bool(os.environ.get("SPACES_ZERO_GPU"))
        self._worker = threading.Thread(target=self._work, name="hub-engine", daemon=True)
        if not self.inline:
            self._worker.start()

    # -- LoRA registry: the config's LoRAs plus those trained on this hub -------------------------
    @property
    def trained_lora_dir(self):
        return self.config.data_path / "loras"

    def _load_trained_loras(self) -> None:
        import json

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
        if any(lora.id == spec.id for lora in self.lora_specs()):
            raise HubInputError(f"A LoRA with id {spec.id!r} already exists.")
        folder = self.trained_lora_dir / spec.id
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / "registration.json.tmp"
        tmp.write_text(spec.model_dump_json(indent=2), encoding="utf-8")
        tmp.replace(folder / "registration.json")
        self._trained_loras[spec.id] = spec

    def run_exclusive(self, fn: Callable[[], Any]) -> Any:
        """Run `fn` on the engine's worker, between pipeline calls (e.g. LoRA training)."""
        job = _Job(task="exclusive", spec=None, prompt="", negative_prompt="", loras=(), width=0, height=0,  # type: ignore[arg-type]
                   steps=0, cfg=0.0, sampler="", seed=0, batch=0, call=fn)
        return self.submit(job).result()

    # -- checkpoint registry: the config's checkpoints plus those authors registered (Submit tab) --
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
                self._registered[found.id] = found
        try:
            return self._registered[checkpoint_id]
        except KeyError:
            raise KeyError(checkpoint_id) from None

    def register_checkpoint(self, spec: CheckpointSpec) -> None:
        if any(existing.id == spec.id for existing in self.checkpoint_specs()):
            raise HubInputError(f"Checkpoint id {spec.id!r} is already registered.")
        self._registered[spec.id] = spec

    def availability(self) -> dict[str, Availability]:
        result = {}
        for spec in self.checkpoint_specs():
            if spec.id in self._load_errors:
                result[spec.id] = Availability(False, self._load_errors[spec.id])
            else:
                result[spec.id] = checkpoint_availability(spec, self.config, self.device)
        return result

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

    def checkpoint_hash(self, checkpoint_id: str) -> str:
        """sha256 of the checkpoint's weights and configs (hex)."""
        spec = self.checkpoint_spec(checkpoint_id)
        folder = local_folder(spec, self.config)
        if folder is not None:
            return self.hashes.folder_sha256(folder)
        if spec.source_kind == "file":
            from hub.config import resolve_path

            return self.hashes.file_sha256(resolve_path(spec.source_value))
        import hashlib

        return hashlib.sha256(spec.source.encode()).hexdigest()

    def lora_hash(self, lora_id: str) -> str:
        folder, name = lora_weight_file(self.lora_spec(lora_id))
        return self.hashes.file_sha256(folder / name)

    # -- request checks ---------------------------------------------------------------------------
    def _check_loras(self, loras: tuple[tuple[str, float], ...], spec: CheckpointSpec) -> tuple[tuple[str, float], ...]:
        limits = self.config.limits
        if len(loras) > limits.max_loras:
            raise HubInputError(f"At most {limits.max_loras} LoRAs at once (got {len(loras)}).")
        checked = []
        for lora_id, weight in loras:
            check_id_format(lora_id, "LoRA")
            try:
                lora = self.lora_spec(lora_id)
            except KeyError:
                raise HubInputError(f"Unknown LoRA {lora_id!r}.") from None
            if lora.base_family != spec.family:
                raise HubInputError(
                    f"LoRA {lora_id!r} is for {lora.base_family} models; {spec.id!r} is {spec.family}."
                )
            if lora.base_checkpoints and spec.id not in lora.base_checkpoints:
                raise HubInputError(f"LoRA {lora_id!r} was trained for {', '.join(lora.base_checkpoints)}, not {spec.id!r}.")
            if not get_family(spec.family).supports_lora:
                raise HubInputError(f"Checkpoint {spec.id!r} does not take LoRAs.")
            checked.append((lora_id, check_float(weight, f"Weight of LoRA {lora_id!r}", -2.0, 2.0)))
        return tuple(checked)

    def _common(self, spec: CheckpointSpec, steps, cfg, sampler, seed, batch) -> dict[str, Any]:
        limits, defaults = self.config.limits, spec.defaults
        sampler = check_sampler(sampler or defaults.sampler)
        family = get_family(spec.family)
        if family.denoiser == "transformer" and sampler != "default" and sampler != defaults.sampler:
            raise HubInputError(f"{spec.id!r} supports only its own sampler ('default').")
        return {
            "steps": check_int(defaults.steps if steps is None else steps, "Steps", 1, limits.max_steps),
            "cfg": check_float(defaults.cfg if cfg is None else cfg, "CFG", 0.0, limits.max_cfg),
            "sampler": sampler,
            "seed": check_seed(seed),
            "batch": check_int(batch, "Batch count", 1, limits.max_batch),
        }

    def resolve_generation(self, request: GenerationRequest) -> _Job:
        limits = self.config.limits
        prompt = check_prompt(request.prompt, limits)
        negative = check_prompt(request.negative_prompt, limits, required=False, what="negative prompt")
        spec = self.spec(request.checkpoint)
        family = get_family(spec.family)
        if not family.supports("text2img"):
            raise HubInputError(f"Checkpoint {spec.id!r} only edits images; use the Edit tab.")
        width, height = check_size(
            spec.defaults.width if request.width is None else request.width,
            spec.defaults.height if request.height is None else request.height,
            limits,
        )
        common = self._common(spec, request.steps, request.cfg, request.sampler, request.seed, request.batch)
        return _Job(
            task="text2img",
            spec=spec,
            prompt=prompt,
            negative_prompt=negative or spec.defaults.negative_prompt,
            loras=self._check_loras(tuple(request.loras), spec),
            width=width,
            height=height,
            **common,
        )

    def resolve_edit(self, request: EditRequest) -> _Job:
        limits = self.config.limits
        if not isinstance(request.image, Image.Image):
            raise HubInputError("An image to edit is required.")
        spec = self.spec(request.checkpoint)
        family = get_family(spec.family)
        task = request.task
        if task is None:
            if request.mask is not None:
                task = "inpaint"
            elif family.supports("instruct"):
                task = "instruct"
            else:
                task = "img2img"
        if not family.supports(task):
            offered = ", ".join(t for t in family.tasks if t != "text2img") or "nothing"
            raise HubInputError(f"Checkpoint {spec.id!r} cannot do {task}; it offers: {offered}.")
        prompt = check_prompt(request.prompt, limits, required=(task == "instruct"), what="instruction" if task == "instruct" else "prompt")
        negative = check_prompt(request.negative_prompt, limits, required=False, what="negative prompt")
        image = to_rgb(request.image)
        if image.width * image.height > limits.max_upload_pixels:
            raise HubInputError(f"The image is {image.width}x{image.height}; the limit is {limits.max_upload_pixels:,} pixels.")
        mask = None
        if task == "inpaint":
            if request.mask is None:
                raise HubInputError("Inpainting needs a mask: paint the area to change.")
            if request.mask.size != request.image.size:
                raise HubInputError(
                    f"The mask is {request.mask.width}x{request.mask.height} but the image is {image.width}x{image.height}."
                )
            mask = request.mask.convert("L")
            if mask.getextrema()[1] == 0:
                raise HubInputError("The mask is empty: paint the area to change.")
        width, height = self._edit_size(image.width, image.height)
        if family.min_image_side and task == "instruct" and min(width, height) < family.min_image_side:
            raise HubInputError(
                f"Checkpoint {spec.id!r} needs an image of at least {family.min_image_side} px on each side "
                f"(got {image.width}x{image.height})."
            )
        if (width, height) != image.size:
            image = image.resize((width, height), Image.Resampling.LANCZOS)
            mask = mask.resize((width, height), Image.Resampling.NEAREST) if mask is not None else None
        common = self._common(spec, request.steps, request.cfg, request.sampler, request.seed, request.batch)
        return _Job(
            task=task,
            spec=spec,
            prompt=prompt,
            negative_prompt=negative or spec.defaults.negative_prompt,
            loras=self._check_loras(tuple(request.loras), spec),
            width=width,
            height=height,
            image=image,
            mask=mask,
            strength=check_float(request.strength, "Strength", 0.01, 1.0) if task != "instruct" else None,
            image_guidance=check_float(request.image_guidance, "Image guidance", 0.0, 10.0) if task == "instruct" else None,
            **common,
        )

    def _edit_size(self, width: int, height: int) -> tuple[int, int]:
        """Scale down to the size limits if needed, then snap to multiples of 8."""
        limits = self.config.limits
        scale = min(1.0, limits.max_size / max(width, height), (limits.max_pixels / (width * height)) ** 0.5)
        w = max(limits.min_size, int(width * scale) // 8 * 8)
        h = max(limits.min_size, int(height * scale) // 8 * 8)
        return w, h

    # -- public calls -----------------------------------------------------------------------------
    def submit(self, job: _Job) -> Future:
        if self.inline:
            self._execute([job])
            return job.future
        with self._cond:
            if self._closed:
                raise EngineError("The engine is shut down.")
            self._pending.append(job)
            self._cond.notify()
        return job.future

    def generate(self, request: GenerationRequest, progress: ProgressCallback | None = None) -> list[GeneratedImage]:
        job = self.resolve_generation(request)
        job.progress = progress
        return self.submit(job).result()

    def generate_many(self, requests: list[GenerationRequest]) -> list[list[GeneratedImage]]:
        """Submit all at once so compatible requests share pipeline calls."""
        jobs = [self.resolve_generation(request) for request in requests]
        futures = [self.submit(job) for job in jobs]
        return [future.result() for future in futures]

    def edit(self, request: EditRequest, progress: ProgressCallback | None = None) -> list[GeneratedImage]:
        job = self.resolve_edit(request)
        job.progress = progress
        return self.submit(job).result()

    def pipeline(self, checkpoint_id: str, task: str = "text2img") -> Any:
        """The task pipeline for a checkpoint (loading it if needed). For tools and tests."""
        with self._gpu_lock:
            loaded = self._ensure_loaded(self.spec(checkpoint_id))
            return self._task_pipeline(loaded, task)

    def shutdown(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._worker.is_alive():
            self._worker.join(timeout=30)

    # -- the worker -------------------------------------------------------------------------------
    def _take_batch(self) -> list[_Job] | None:
        settings = self.config.engine
        with self._cond:
            while not self._pending and not self._closed:
                self._cond.wait()
            if self._closed and not self._pending:
                return None
            first = self._pending.popleft()
            key = first.batch_key
            if key is None:
                return [first]
            batch, images = [first], first.batch
            deadline = time.monotonic() + settings.batch_window_ms / 1000
            while True:
                for job in list(self._pending):
                    if job.batch_key == key and images + job.batch <= settings.max_batch_images:
                        self._pending.remove(job)
                        batch.append(job)
                        images += job.batch
                remaining = deadline - time.monotonic()
                if images >= settings.max_batch_images or remaining <= 0 or self._closed:
                    return batch
                self._cond.wait(timeout=remaining)

    def _work(self) -> None:
        while True:
            batch = self._take_batch()
            if batch is None:
                return
            self._execute(batch)

    def _execute(self, batch: list[_Job]) -> None:
        live = [job for job in batch if job.future.set_running_or_notify_cancel()]
        if not live:
            return
        try:
            with self._gpu_lock:
                if live[0].task == "exclusive":
                    live[0].future.set_result(live[0].call())
                    return
                results = self._run(live)
            for job, images in zip(live, results):
                job.future.set_result(images)
        except BaseException as err:  # every waiting caller must hear back
            error = err if isinstance(err, (HubInputError, EngineError)) else self._engine_error(err, live[0])
            for job in live:
                if not job.future.done():
                    job.future.set_exception(error)

    def _engine_error(self, err: BaseException, job: _Job) -> EngineError:
        if _is_oom(err):
            self._free_memory()
            if job.task == "exclusive":
                return EngineError("Out of memory; try again with less work.")
            return EngineError(
                f"Out of memory generating {job.batch} image(s) at {job.width}x{job.height} with {job.spec.id!r}; "
                "try a smaller size or batch."
            )
        log.exception("pipeline call failed")
        self._free_memory()
        message = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
        return EngineError(f"The {job.task} pipeline failed: {message}")

    def _free_memory(self) -> None:
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    # -- loading ----------------------------------------------------------------------------------
    def _ensure_loaded(self, spec: CheckpointSpec) -> _Loaded:
        loaded = self._loaded.get(spec.id)
        if loaded is None:
            try:
                base = load_pipeline(spec, self.config, self.dtype)
            except Exception as err:  # noqa: BLE001 - any load failure makes it unavailable, with the reason
                reason = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
                self._load_errors[spec.id] = f"failed to load: {reason}"
                raise EngineError(f"Checkpoint {spec.id!r} failed to load: {reason}") from err
            self.stats["checkpoint_loads"] += 1
            loaded = _Loaded(
                spec=spec,
                family=get_family(spec.family),
                base=base,
                model_hash=self.checkpoint_hash(spec.id)[:10],
                bytes=_module_bytes(base),
            )
            if self.compiled and loaded.family.supports_lora and hasattr(base, "enable_lora_hotswap"):
                # Must precede the first LoRA load: adapters then swap in place without recompiling.
                base.enable_lora_hotswap(target_rank=self.config.engine.lora_hotswap_rank)
            self._loaded[spec.id] = loaded
        self._loaded.move_to_end(spec.id)
        if self._resident != spec.id:
            if self._resident in self._loaded and self.device != "cpu":
                self._loaded[self._resident].base.to("cpu")
            if self.device != "cpu":
                if self.device == "cuda" and self._wants_offload():
                    loaded.base.enable_model_cpu_offload()
                else:
                    loaded.base.to(self.device)
            self._resident = spec.id
        self._evict_over_budget()
        return loaded

    def _wants_offload(self) -> bool:
        """Model CPU offload when asked, or automatically on small GPUs (under 12 GB)."""
        if self.config.engine.cpu_offload:
            return True
        return torch.cuda.get_device_properties(0).total_memory < 12e9

    def _evict_over_budget(self) -> None:
        budget = self.config.engine.cpu_cache_gb * 1e9
        while sum(item.bytes for key, item in self._loaded.items() if key != self._resident) > budget:
            oldest = next(key for key in self._loaded if key != self._resident)
            del self._loaded[oldest]
            self._free_memory()

    def _task_pipeline(self, loaded: _Loaded, task: str) -> Any:
        import diffusers

        if task not in loaded.derived:
            cls_name = loaded.family.tasks[task]
            if cls_name == type(loaded.base).__name__:
                loaded.derived[task] = loaded.base
            else:
                cls = getattr(diffusers, cls_name)
                # Passing the dtype keeps shared modules as they are (without it from_pipe casts them
                # to fp32, changing the base too); fp32 bases need no cast at all.
                extra = {} if loaded.base.dtype == torch.float32 else {"dtype": loaded.base.dtype}
                derived = cls.from_pipe(loaded.base, **extra)
                derived.set_progress_bar_config(disable=True)
                loaded.derived[task] = derived
        return loaded.derived[task]

    @property
    def compiled(self) -> bool:
        """torch.compile the denoiser: CUDA only (first compile on CPU takes minutes)."""
        return self.config.engine.compile and self.device == "cuda"

    def _compile(self, loaded: _Loaded) -> None:
        base = loaded.base
        if loaded.is_compiled:
            return
        # Compile in place (assigning a compiled wrapper breaks set_adapters).
        getattr(base, loaded.family.denoiser).compile()
        loaded.is_compiled = True

    def _ready_to_compile(self, loaded: _Loaded) -> bool:
        """peft must see the LoRA slot before compiling (its hot-swap preparation refuses a compiled
        model), so a model that can take LoRAs compiles after its first LoRA request; until then it
        runs eagerly. A model no registered LoRA fits compiles at once."""
        if not loaded.family.supports_lora or "hub_slot" in loaded.adapters:
            return True
        return not any(lora.base_family == loaded.spec.family for lora in self.lora_specs())

    def _apply_loras_hotswap(self, loaded: _Loaded, loras: tuple[tuple[str, float], ...]) -> None:
        """Compiled engines keep one adapter slot and hot-swap LoRA weights into it."""
        if len(loras) > 1:
            raise HubInputError("This deployment is compiled for speed and takes one LoRA at a time.")
        base, slot = loaded.base, "hub_slot"
        if loras:
            lora_id, weight = loras[0]
            current = loaded.adapters.get(slot)
            if current != lora_id:
                folder, weight_name = lora_weight_file(self.lora_spec(lora_id))
                base.load_lora_weights(str(folder), weight_name=weight_name, adapter_name=slot, hotswap=current is not None)
                self.stats["lora_loads"] += 1
                loaded.adapters[slot] = lora_id
            base.set_adapters([slot], adapter_weights=[weight])
        elif slot in loaded.adapters:
            base.set_adapters([slot], adapter_weights=[0.0])  # "no LoRA" without unloading (no recompile)

    def _apply_loras(self, loaded: _Loaded, loras: tuple[tuple[str, float], ...]) -> None:
        if self.compiled:
            self._apply_loras_hotswap(loaded, loras)
            return
        base = loaded.base
        names, weights = [], []
        for lora_id, weight in loras:
            name = adapter_name(lora_id)
            if name not in loaded.adapters:
                folder, weight_name = lora_weight_file(self.lora_spec(lora_id))
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

    # -- one pipeline call ------------------------------------------------------------------------
    def _run(self, jobs: list[_Job]) -> list[list[GeneratedImage]]:
        first = jobs[0]
        loaded = self._ensure_loaded(first.spec)
        self._apply_loras(loaded, first.loras)
        if self.compiled and self._ready_to_compile(loaded):
            self._compile(loaded)
        pipe = self._task_pipeline(loaded, first.task)
        pipe.scheduler = make_scheduler(first.sampler, loaded.base.scheduler)
        prompts, negatives, generators, seeds = [], [], [], []
        for job in jobs:
            for index in range(job.batch):
                prompts.append(job.prompt)
                negatives.append(job.negative_prompt)
                seeds.append(job.seed + index)
                # CPU generators: the same seed gives the same noise on every device.
                generators.append(torch.Generator("cpu").manual_seed(job.seed + index))

        def on_step_end(_pipe: Any, step: int, _timestep: Any, callback_kwargs: dict) -> dict:
            for job in jobs:
                if job.progress is not None:
                    try:
                        job.progress(step + 1, first.steps)
                    except Exception:  # noqa: BLE001 - a broken progress bar must not kill the call
                        pass
            return callback_kwargs

        family = loaded.family
        kwargs: dict[str, Any] = {
            "prompt": prompts,
            "num_inference_steps": first.steps,
            family.cfg_argument: first.cfg,
            "generator": generators,
            "callback_on_step_end": on_step_end,
        }
        if family.supports_negative_prompt:
            kwargs["negative_prompt"] = negatives
        if first.task in ("text2img", "inpaint") or (first.task == "instruct" and family.instruct_takes_size):
            kwargs.update(width=first.width, height=first.height)
        if first.task != "text2img":
            # Reference-image families take one list of references for the whole call.
            kwargs[family.image_argument] = [first.image] if family.reference_images else [first.image] * len(prompts)
        if first.task in ("img2img", "inpaint"):
            kwargs["strength"] = first.strength
        if first.task == "inpaint":
            kwargs["mask_image"] = [first.mask] * len(prompts)
        if first.task == "instruct" and loaded.spec.family == "instruct-pix2pix":
            kwargs["image_guidance_scale"] = first.image_guidance
        kwargs.update(loaded.family.call_defaults)

        with torch.inference_mode():
            if family.one_prompt_per_call and len(prompts) > 1:
                output_images = []
                for index in range(len(prompts)):
                    single = {**kwargs, "prompt": prompts[index : index + 1], "generator": generators[index : index + 1]}
                    if "negative_prompt" in kwargs:
                        single["negative_prompt"] = negatives[index : index + 1]
                    output_images += list(pipe(**single).images)
            else:
                output_images = list(pipe(**kwargs).images)
        self.stats["pipeline_calls"] += 1
        self.stats["images"] += len(output_images)

        lora_hashes = tuple((lora_id, self.lora_hash(lora_id)[:10]) for lora_id, _ in first.loras)
        results, cursor = [], 0
        for job in jobs:
            images = []
            for index in range(job.batch):
                image = output_images[cursor]
                recipe = Recipe(
                    prompt=job.prompt,
                    negative_prompt=job.negative_prompt,
                    steps=job.steps,
                    sampler=job.sampler,
                    cfg=job.cfg,
                    seed=seeds[cursor],
                    width=image.width,
                    height=image.height,
                    model=job.spec.id,
                    model_hash=loaded.model_hash,
                    loras=job.loras,
                    lora_hashes=lora_hashes,
                    task=job.task,
                    strength=job.strength,
                )
                images.append(GeneratedImage(image=image, seed=seeds[cursor], recipe=recipe, checkpoint=job.spec.id))
                cursor += 1
            results.append(images)
        return results

    def resolve_settings(self, request: GenerationRequest) -> dict[str, Any]:
        """The effective settings of a request (defaults filled in), e.g. for cache keys."""
        job = self.resolve_generation(request)
        return {
            "checkpoint": job.spec.id,
            "width": job.width,
            "height": job.height,
            "steps": job.steps,
            "cfg": job.cfg,
            "sampler": job.sampler,
            "negative_prompt": job.negative_prompt,
            "loras": [list(item) for item in job.loras],
        }



_ENGINES: dict[int, Engine] = {}
_ENGINES_LOCK = threading.Lock()


def get_engine(config: HubConfig) -> Engine:
    """The process's engine for this config (one per process owns the accelerator)."""
    with _ENGINES_LOCK:
        engine = _ENGINES.get(id(config))
        if engine is None:
            engine = Engine(config)
            _ENGINES[id(config)] = engine
        return engine
