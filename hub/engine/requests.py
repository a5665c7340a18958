"""Request types and their checks: what callers hand the engine and what the worker runs.

`resolve_generation` / `resolve_edit` check a request completely (prompt, sizes, steps, CFG, sampler,
seed, batch, LoRAs, images, references) and fill in the checkpoint's defaults, giving a `Job`; nothing
reaches the device before every check has passed. Jobs carry a priority: interactive requests
(the UI, the arena) go before eval work.
"""

from __future__ import annotations

import hashlib
import io
import threading
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from PIL import Image

from core.images import to_rgb
from core.keys import canonical_adapter_pairs
from hub.config import CheckpointSpec, HubConfig, Limits
from hub.errors import HubInputError
from hub.families import Family, get_family
from hub.prompt_syntax import PromptSyntaxError, check_weights, parse_attention, split_lora_tags
from hub.validation import check_float, check_id_format, check_int, check_prompt, check_sampler, check_seed, check_size

if TYPE_CHECKING:
    from hub.engine.registry import ModelRegistry
    from hub.recipe import Recipe

ProgressCallback = Callable[[int, int], None]

INTERACTIVE = 0  # a person is waiting
EVAL = 1  # eval runs and other batch work: served when no person waits


class CancelToken(threading.Event):
    """Set to stop a job: it leaves the queue, or its call stops at the next denoising step. The
    reason becomes the caller's error message."""

    reason = "Cancelled."

    def cancel(self, reason: str = "Cancelled.") -> None:
        if not self.is_set():
            self.reason = reason
        self.set()


@dataclass(frozen=True)
class GenerationRequest:
    """Text to image. `None` settings take the checkpoint's defaults. With `references`, the character of
    the reference images is drawn in the scene the prompt describes (families that take references)."""

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
    references: tuple[Image.Image, ...] = ()
    image_guidance: float = 1.5  # reference mode of InstructPix2Pix-style models
    priority: int = INTERACTIVE
    owner: str = ""  # who asked (a session): the queue serves owners in turn
    clip_skip: int | None = None  # A1111 numbering (1: the last layer); CLIP families only


@dataclass(frozen=True)
class EditRequest:
    """An edit of `image`: inpainting when a mask is given, else the family's edit task. `references`
    add images of the character to an instruction edit (families that take a list)."""

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
    references: tuple[Image.Image, ...] = ()
    priority: int = INTERACTIVE
    owner: str = ""
    clip_skip: int | None = None


@dataclass
class GeneratedImage:
    image: Image.Image
    seed: int
    recipe: Recipe
    checkpoint: str


@dataclass
class Job:
    """One checked request (or an exclusive call), waiting for the worker."""

    task: str
    spec: CheckpointSpec | None
    prompt: str = ""
    negative_prompt: str = ""
    loras: tuple[tuple[str, float], ...] = ()
    width: int = 0
    height: int = 0
    steps: int = 0
    cfg: float = 0.0
    sampler: str = ""
    seed: int = 0
    batch: int = 1
    image: Image.Image | None = None
    mask: Image.Image | None = None
    references: tuple[Image.Image, ...] = ()
    strength: float | None = None
    image_guidance: float | None = None
    priority: int = INTERACTIVE
    progress: ProgressCallback | None = None
    call: Callable[[], Any] | None = None  # exclusive work (task "exclusive"), e.g. LoRA training
    owner: str = ""
    clip_skip: int | None = None  # None: the family has no CLIP encoder
    cancel: CancelToken = field(default_factory=CancelToken)
    future: Future = field(default_factory=Future)

    @property
    def batch_key(self) -> tuple | None:
        """Jobs with equal keys run in one pipeline call; edits run alone (their inputs differ)."""
        if self.task != "text2img" or self.spec is None:
            return None
        return (self.spec.id, self.width, self.height, self.steps, self.cfg, self.sampler, self.loras, self.clip_skip)

    @property
    def family(self) -> Family:
        assert self.spec is not None
        return get_family(self.spec.family)


@dataclass
class PipelineCall:
    """One pipeline call as a family sees it: the jobs of a batch, flattened to per-image lists."""

    task: str
    prompts: list[str]
    negative_prompts: list[str]
    generators: list[Any]
    steps: int
    cfg: float
    width: int
    height: int
    image: Image.Image | None
    mask: Image.Image | None
    references: tuple[Image.Image, ...]
    strength: float | None
    image_guidance: float | None
    on_step_end: Callable[..., dict]
    clip_skip: int | None = None

    @property
    def n_images(self) -> int:
        return len(self.prompts)


def image_hash(image: Image.Image) -> str:
    """sha256 (12 hex) of an image's pixels as PNG: the same picture gives the same hash."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return hashlib.sha256(buffer.getvalue()).hexdigest()[:12]


# ---------------------------------------------------------------------------------------- checks


def check_loras(loras: Any, spec: CheckpointSpec, registry: ModelRegistry, config: HubConfig) -> tuple[tuple[str, float], ...]:
    """Registered LoRAs for this checkpoint's family (and base), weights in range, canonical order."""
    limits = config.limits
    loras = tuple(loras or ())
    if len(loras) > limits.max_loras:
        raise HubInputError(f"At most {limits.max_loras} LoRAs at once (got {len(loras)}).")
    checked = []
    for lora_id, weight in loras:
        check_id_format(lora_id, "LoRA")
        try:
            lora = registry.lora_spec(lora_id)
        except KeyError:
            raise HubInputError(f"Unknown LoRA {lora_id!r}.") from None
        if not get_family(spec.family).supports_lora:
            raise HubInputError(f"Checkpoint {spec.id!r} does not take LoRAs.")
        if lora.base_family != spec.family:
            raise HubInputError(f"LoRA {lora_id!r} is for {lora.base_family} models; {spec.id!r} is {spec.family}.")
        if lora.base_checkpoints and spec.id not in lora.base_checkpoints:
            raise HubInputError(f"LoRA {lora_id!r} was trained for {', '.join(lora.base_checkpoints)}, not {spec.id!r}.")
        checked.append((lora_id, check_float(weight, f"Weight of LoRA {lora_id!r}", -2.0, 2.0)))
    # The order LoRAs are listed in does not change the image: one canonical order, one cache key.
    return canonical_adapter_pairs(checked)


def check_prompt_syntax(prompt: str, negative: str) -> tuple[str, tuple[tuple[str, float], ...]]:
    """A1111 syntax in both prompts (weights in range); the prompt's `<lora:id:w>` tags taken out:
    (the prompt without them, the tags' (id, weight) pairs, checked later as any LoRA is)."""
    try:
        prompt, tags = split_lora_tags(prompt)
        if split_lora_tags(negative)[1]:
            raise PromptSyntaxError("LoRA tags go in the prompt, not in the negative prompt.")
        check_weights(parse_attention(prompt))
        check_weights(parse_attention(negative), "negative prompt")
    except PromptSyntaxError as error:
        raise HubInputError(str(error)) from None
    if tags and not prompt.strip():
        raise HubInputError("The prompt is empty (it holds only LoRA tags).")
    return prompt, tags


def _clip_skip(request: GenerationRequest | EditRequest, spec: CheckpointSpec, family: Family) -> int | None:
    if family.clip_skip_default is None:
        if request.clip_skip is not None:
            raise HubInputError(f"{spec.id!r} does not take clip skip (Stable Diffusion 1.5 and SDXL checkpoints do).")
        return None
    value = request.clip_skip if request.clip_skip is not None else spec.defaults.clip_skip
    return check_int(value, "Clip skip", 1, 12) if value is not None else family.clip_skip_default


def _shared_fields(request: GenerationRequest | EditRequest, spec: CheckpointSpec, registry: ModelRegistry,
                   config: HubConfig, negative: str, limits: Limits,
                   lora_tags: tuple[tuple[str, float], ...] = ()) -> dict[str, Any]:
    """The Job fields a generation and an edit check alike: sampling settings, negative prompt, LoRAs
    (the list and the prompt's tags), clip skip, priority; `limits` are the checkpoint's own
    (`CheckpointSpec.limits_within`)."""
    defaults = spec.defaults
    sampler = check_sampler(request.sampler or defaults.sampler)
    family = get_family(spec.family)
    if family.denoiser == "transformer" and sampler not in ("default", defaults.sampler):
        raise HubInputError(f"{spec.id!r} supports only its own sampler ('default').")
    return {
        "steps": check_int(defaults.steps if request.steps is None else request.steps, "Steps", 1, limits.max_steps),
        "cfg": check_float(defaults.cfg if request.cfg is None else request.cfg, "CFG", 0.0, limits.max_cfg),
        "sampler": sampler,
        "seed": check_seed(request.seed),
        "batch": check_int(request.batch, "Batch count", 1, limits.max_batch),
        "negative_prompt": negative or defaults.negative_prompt,
        "loras": check_loras(tuple(request.loras or ()) + lora_tags, spec, registry, config),
        "clip_skip": _clip_skip(request, spec, family),
        "priority": request.priority,
        "owner": request.owner,
    }


def _image_guidance(request: GenerationRequest | EditRequest, applies: bool) -> float | None:
    return check_float(request.image_guidance, "Image guidance", 0.0, 10.0) if applies else None


def snap_size(width: int, height: int, limits: Limits, multiple: int = 8) -> tuple[int, int]:
    """Scale down to the size limits if needed, then snap to the family's size multiple."""
    scale = min(1.0, limits.max_size / max(width, height), (limits.max_pixels / (width * height)) ** 0.5)
    w = max(limits.min_size, int(width * scale) // multiple * multiple)
    h = max(limits.min_size, int(height * scale) // multiple * multiple)
    return w, h


def check_references(references: Any, spec: CheckpointSpec, config: HubConfig, *, task: str, input_images: int) -> tuple[Image.Image, ...]:
    """Reference images: only for families that take them, at most as many as the family and the
    limits allow (counting the image to edit), each big enough for the family and not too large."""
    references = tuple(references or ())
    family = get_family(spec.family)
    if not references:
        if task == "reference":
            raise HubInputError("Add at least one reference image of the character.")
        return ()
    if family.max_references == 0 or not family.supports("reference"):
        raise HubInputError(f"Checkpoint {spec.id!r} does not take reference images.")
    if task == "instruct" and family.max_references <= 1:
        raise HubInputError(f"Checkpoint {spec.id!r} edits one image at a time; it takes no extra references.")
    allowed = min(family.max_references, config.limits.max_references) - input_images
    if len(references) > allowed:
        raise HubInputError(
            f"Checkpoint {spec.id!r} takes at most {allowed} reference image{'s' if allowed != 1 else ''} here "
            f"(got {len(references)})."
        )
    checked = []
    for number, reference in enumerate(references, start=1):
        if not isinstance(reference, Image.Image):
            raise HubInputError(f"Reference {number} is not an image.")
        width, height = reference.size
        smallest = max(family.min_image_side, 16)
        if min(width, height) < smallest:
            raise HubInputError(f"Reference {number} is {width}x{height}; {spec.id!r} needs at least {smallest} px on each side.")
        if width * height > config.limits.max_upload_pixels:
            raise HubInputError(f"Reference {number} is {width}x{height}; the limit is {config.limits.max_upload_pixels:,} pixels.")
        checked.append(to_rgb(reference))
    return tuple(checked)


def resolve_generation(request: GenerationRequest, registry: ModelRegistry, config: HubConfig) -> Job:
    limits = config.limits
    prompt = check_prompt(request.prompt, limits)
    negative = check_prompt(request.negative_prompt, limits, required=False, what="negative prompt")
    prompt, lora_tags = check_prompt_syntax(prompt, negative)
    spec = registry.spec(request.checkpoint)
    own = spec.limits_within(limits)  # this checkpoint's share of the hub's limits
    family = get_family(spec.family)
    task = "reference" if request.references else "text2img"
    if not family.supports(task):
        if task == "reference":
            raise HubInputError(f"Checkpoint {spec.id!r} does not take reference images.")
        raise HubInputError(f"Checkpoint {spec.id!r} only edits images; use the Edit tab.")
    references = check_references(request.references, spec, config, task=task, input_images=0)
    if task == "reference" and not family.supports("text2img"):
        # Models that draw from the reference image itself (InstructPix2Pix-style) keep its size.
        width, height = snap_size(*references[0].size, own, family.size_multiple)
        references = tuple(r.resize((width, height), Image.Resampling.LANCZOS) if r.size != (width, height) else r
                           for r in references)
    else:
        width, height = check_size(
            spec.defaults.width if request.width is None else request.width,
            spec.defaults.height if request.height is None else request.height,
            own,
            spec.id,
        )
        if width % family.size_multiple or height % family.size_multiple:
            raise HubInputError(f"{spec.id!r} needs width and height in multiples of {family.size_multiple} (got {width}x{height}).")
    return Job(task=task, spec=spec, prompt=prompt, width=width, height=height, references=references,
               image_guidance=_image_guidance(request, task == "reference"),
               **_shared_fields(request, spec, registry, config, negative, own, lora_tags))


def resolve_edit(request: EditRequest, registry: ModelRegistry, config: HubConfig) -> Job:
    limits = config.limits
    if not isinstance(request.image, Image.Image):
        raise HubInputError("An image to edit is required.")
    spec = registry.spec(request.checkpoint)
    own = spec.limits_within(limits)  # this checkpoint's share of the hub's limits
    family = get_family(spec.family)
    task = request.task
    if task is None:
        if request.mask is not None:
            task = "inpaint"
        elif family.supports("instruct"):
            task = "instruct"
        else:
            task = "img2img"
    if task not in ("img2img", "inpaint", "instruct") or not family.supports(task):
        offered = ", ".join(family.edit_tasks) or "nothing"
        raise HubInputError(f"Checkpoint {spec.id!r} cannot do {task}; it offers: {offered}.")
    prompt = check_prompt(request.prompt, limits, required=(task == "instruct"), what="instruction" if task == "instruct" else "prompt")
    negative = check_prompt(request.negative_prompt, limits, required=False, what="negative prompt")
    prompt, lora_tags = check_prompt_syntax(prompt, negative) if prompt.strip() else (prompt, ())
    image = to_rgb(request.image)
    if image.width * image.height > limits.max_upload_pixels:
        raise HubInputError(f"The image is {image.width}x{image.height}; the limit is {limits.max_upload_pixels:,} pixels.")
    if request.references and task != "instruct":
        raise HubInputError("Reference images go with instruction edits (no mask).")
    references = check_references(request.references, spec, config, task=task, input_images=1)
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
    width, height = snap_size(image.width, image.height, own, family.size_multiple)
    if family.min_image_side and task == "instruct" and min(width, height) < family.min_image_side:
        raise HubInputError(
            f"Checkpoint {spec.id!r} needs an image of at least {family.min_image_side} px on each side "
            f"(got {image.width}x{image.height})."
        )
    if (width, height) != image.size:
        image = image.resize((width, height), Image.Resampling.LANCZOS)
        mask = mask.resize((width, height), Image.Resampling.NEAREST) if mask is not None else None
    return Job(task=task, spec=spec, prompt=prompt, width=width, height=height, image=image, mask=mask,
               references=references,
               strength=check_float(request.strength, "Strength", 0.01, 1.0) if task != "instruct" else None,
               image_guidance=_image_guidance(request, task == "instruct"),
               **_shared_fields(request, spec, registry, config, negative, own, lora_tags))


def job_settings(job: Job) -> dict[str, Any]:
    """The effective settings of a checked request (defaults filled in), e.g. for eval cache keys.
    Per-sample parts (prompt, seed, the images themselves) are not included."""
    settings: dict[str, Any] = {
        "task": job.task,
        "checkpoint": job.spec.id if job.spec else None,
        "steps": job.steps,
        "cfg": job.cfg,
        "sampler": job.sampler,
        "negative_prompt": job.negative_prompt,
        "loras": [list(item) for item in job.loras],
    }
    if job.task in ("text2img",) or (job.task == "reference" and job.family.supports("text2img")):
        settings.update(width=job.width, height=job.height)
    if job.clip_skip is not None and job.clip_skip != job.family.clip_skip_default:
        settings["clip_skip"] = job.clip_skip  # only when set: the family's default keeps older cache keys
    if job.strength is not None:
        settings["strength"] = job.strength
    if job.image_guidance is not None:
        settings["image_guidance"] = job.image_guidance
    return settings
