"""What travels between the front end and the engine replicas: plain data only.

Images go as uint8 numpy arrays (Ray moves numpy buffers without copying them through pickle), never
as PIL objects; requests go as the front end's *checked* job (defaults filled in, uploads already
resized and flattened), so the replica re-checks the same values and nothing big travels twice;
results go back as arrays plus the recipe's JSON; errors go back as values
(`{"error": "input" | "engine", "message": ...}`) so the caller raises the same class with the same
short message as the local engine would.

No Ray here: both sides import this module, and it is safe to import with `engine.backend: local`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from hub.config import CheckpointSpec, HubConfig, LoraSpec
from hub.engine.requests import EditRequest, GeneratedImage, GenerationRequest, Job
from hub.errors import EngineError, HubInputError
from hub.recipe import Recipe

# Modes that survive numpy and back unchanged; anything else is converted first.
_MODES_BY_SHAPE = {2: "L", 3: {2: "LA", 3: "RGB", 4: "RGBA"}}
TEXT2IMG_TASKS = ("text2img", "reference")


# ------------------------------------------------------------------------------------------ images


def image_to_wire(image: Image.Image) -> np.ndarray:
    """An image as a uint8 array: (H, W) for L, (H, W, C) for LA, RGB, RGBA."""
    if image.mode not in ("L", "LA", "RGB", "RGBA"):
        image = image.convert("RGBA" if "A" in image.getbands() else "RGB")
    return np.asarray(image, dtype=np.uint8)


def image_from_wire(pixels: np.ndarray) -> Image.Image:
    array = np.ascontiguousarray(pixels, dtype=np.uint8)
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (2, 3, 4)):
        raise ValueError(f"not an image array: shape {array.shape}")
    return Image.fromarray(array)


def _maybe(image: Image.Image | None) -> np.ndarray | None:
    return None if image is None else image_to_wire(image)


# ---------------------------------------------------------------------------------------- requests


def job_to_wire(job: Job) -> dict[str, Any]:
    """A checked job as plain data. The replica rebuilds the request and checks it again (same values,
    same result: every check is idempotent on its own output)."""
    assert job.spec is not None, "exclusive jobs do not travel"
    return {
        "task": job.task,
        "checkpoint": job.spec.id,
        "prompt": job.prompt,
        "negative_prompt": job.negative_prompt,
        "loras": [[name, float(weight)] for name, weight in job.loras],
        "width": job.width,
        "height": job.height,
        "steps": job.steps,
        "cfg": job.cfg,
        "sampler": job.sampler,
        "seed": job.seed,
        "batch": job.batch,
        "strength": job.strength,
        "image_guidance": job.image_guidance,
        "priority": job.priority,
        "owner": job.owner,
        "clip_skip": job.clip_skip,
        "image": _maybe(job.image),
        "mask": _maybe(job.mask),
        "references": [image_to_wire(image) for image in job.references],
    }


def request_from_wire(data: dict[str, Any]) -> GenerationRequest | EditRequest:
    loras = tuple((str(name), float(weight)) for name, weight in data["loras"])
    references = tuple(image_from_wire(pixels) for pixels in data["references"])
    common = {
        "prompt": data["prompt"],
        "negative_prompt": data["negative_prompt"],
        "checkpoint": data["checkpoint"],
        "loras": loras,
        "steps": data["steps"],
        "cfg": data["cfg"],
        "sampler": data["sampler"],
        "seed": data["seed"],
        "batch": data["batch"],
        "references": references,
        "priority": data["priority"],
        "owner": str(data.get("owner") or ""),
        "clip_skip": data.get("clip_skip"),
    }
    guidance = data["image_guidance"]
    if data["task"] in TEXT2IMG_TASKS:
        return GenerationRequest(width=data["width"], height=data["height"],
                                 **({"image_guidance": guidance} if guidance is not None else {}), **common)
    mask = data["mask"]
    return EditRequest(
        image=image_from_wire(data["image"]),
        mask=image_from_wire(mask).convert("L") if mask is not None else None,
        task=data["task"],
        **({"strength": data["strength"]} if data["strength"] is not None else {}),
        **({"image_guidance": guidance} if guidance is not None else {}),
        **common,
    )


# ----------------------------------------------------------------------------------------- results


def images_to_wire(images: list[GeneratedImage]) -> list[dict[str, Any]]:
    return [{"pixels": image_to_wire(item.image), "seed": item.seed, "recipe": item.recipe.to_json(),
             "checkpoint": item.checkpoint} for item in images]


def images_from_wire(items: list[dict[str, Any]]) -> list[GeneratedImage]:
    return [GeneratedImage(image=image_from_wire(item["pixels"]), seed=int(item["seed"]),
                           recipe=Recipe.from_json(item["recipe"]), checkpoint=item["checkpoint"]) for item in items]


# ------------------------------------------------------------------------------------------ errors


class ReplicaLostError(EngineError):
    """The replica serving a call died or became unreachable (callers may retry elsewhere)."""


def error_to_wire(err: BaseException) -> dict[str, Any]:
    kind = "input" if isinstance(err, HubInputError) else "engine"
    return {"error": kind, "message": str(err)}


def raise_if_error(reply: dict[str, Any]) -> dict[str, Any]:
    """The reply itself, or the error it carries raised as the local engine raises it."""
    kind = reply.get("error")
    if kind == "input":
        raise HubInputError(reply["message"])
    if kind is not None:
        raise EngineError(reply["message"])
    return reply


# ---------------------------------------------------------------------------------------- registry


def registry_to_wire(config: HubConfig, registry: Any, spec: CheckpointSpec, lora_ids: list[str]) -> dict[str, Any]:
    """What a replica needs to know beyond the shared config: a checkpoint a model author registered
    (the front end reads it from the database; replicas have no database), the commit a `hub:`
    checkpoint is pinned to, and LoRAs trained on this hub (their files sit in the shared data folder)."""
    out: dict[str, Any] = {"checkpoint_id": spec.id, "checkpoint": None, "revision": None, "loras": []}
    if spec.id not in {c.id for c in config.checkpoints}:
        out["checkpoint"] = spec.model_dump(mode="json")
    if spec.source_kind == "hub":
        out["revision"] = registry.revision(spec)
    configured = {lora.id for lora in config.loras}
    out["loras"] = [registry.lora_spec(lora_id).model_dump(mode="json") for lora_id in lora_ids if lora_id not in configured]
    return out


def apply_registry(registry: Any, data: dict[str, Any] | None) -> None:
    """Teach a replica's registry what `registry_to_wire` sent (idempotent)."""
    if not data:
        return
    if data.get("checkpoint"):
        spec = CheckpointSpec.model_validate(data["checkpoint"])
        known = registry._registered  # the registry's own table of authors' checkpoints
        if known.get(spec.id) != spec:
            known[spec.id] = spec
            registry.load_errors.pop(spec.id, None)
    if data.get("revision") and registry.revision_store.get(data["checkpoint_id"]) != data["revision"]:
        registry.revision_store.set(data["checkpoint_id"], data["revision"])
    for item in data.get("loras") or ():
        lora = LoraSpec.model_validate(item)
        if lora.id not in {known.id for known in registry.lora_specs()}:
            registry._trained_loras[lora.id] = lora  # trained on this hub: its files are in the shared data folder
