"""Recipes brought in: the settings of an image made here or by A1111, Forge, ComfyUI, InvokeAI, NovelAI
or Fooocus, mapped onto what this hub serves.

`read_image_recipe` reads the hub's own `sakuga_recipe` chunk (exact) or, failing that, whatever
`sd-parsers` recognises. `map_recipe` then matches the checkpoint and the LoRAs to registered ones, by
id, by name (a file name without its extension counts) or by hash (A1111's `Model hash`, `Lora hashes`),
and lists what it could not map, so the page can say so instead of silently dropping it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from pathlib import PurePath
from typing import TYPE_CHECKING, Any

from PIL import Image

from hub.prompt_syntax import PromptSyntaxError, split_lora_tags
from hub.recipe import JSON_KEY, Recipe, parse_a1111
from hub.samplers import sampler_from_name

if TYPE_CHECKING:
    from hub.engine.interface import EngineInterface

OURS = "Sakuga Hub"


class NoRecipe(ValueError):
    """The image carries no recipe any reader knows."""


@dataclass
class MappedRecipe:
    source: str  # the tool that wrote the recipe
    recipe: Recipe  # with the checkpoint and LoRAs mapped to this hub's ids where they matched
    checkpoint: str | None = None
    unmapped: list[str] = field(default_factory=list)  # short English phrases: what was left out

    def as_dict(self) -> dict[str, Any]:
        r = self.recipe
        return {"source": self.source, "prompt": r.prompt, "negative_prompt": r.negative_prompt, "steps": r.steps,
                "sampler": r.sampler, "cfg": r.cfg, "seed": r.seed, "width": r.width, "height": r.height,
                "checkpoint": self.checkpoint, "loras": [[name, weight] for name, weight in r.loras],
                "clip_skip": r.clip_skip, "unmapped": list(self.unmapped)}


def _number(value: Any, cast: type, default: Any = 0) -> Any:
    try:
        return cast(float(value)) if cast is int else cast(value)
    except (TypeError, ValueError):
        return default


def _stem(name: Any) -> str:
    """`models/Animagine-XL-4.0.safetensors` -> `animagine-xl-4.0`."""
    text = PurePath(str(name or "").replace("\\", "/")).name
    return re.sub(r"\.(safetensors|ckpt|pt|bin)$", "", text, flags=re.IGNORECASE).strip().lower()


def _comfy_loras(graph: Any) -> tuple[tuple[str, float], ...]:
    if isinstance(graph, str):
        try:
            graph = json.loads(graph)
        except ValueError:
            return ()
    found = []
    for node in (graph or {}).values() if isinstance(graph, dict) else ():
        inputs = node.get("inputs", {}) if isinstance(node, dict) else {}
        if "Lora" in str(node.get("class_type", "")) and inputs.get("lora_name"):
            found.append((_stem(inputs["lora_name"]), _number(inputs.get("strength_model", 1.0), float, 1.0)))
    return tuple(found)


def _from_sd_parsers(image: Image.Image) -> tuple[str, Recipe]:
    from sd_parsers import ParserManager

    info = ParserManager().parse(image)
    if info is None or not info.samplers:
        raise NoRecipe("no recipe found in this image")
    source = str(getattr(info.generator, "value", info.generator))
    raw = info.raw_parameters or {}
    if source == "AUTOMATIC1111" and isinstance(raw.get("parameters"), str):
        # The A1111 text holds more than sd-parsers keeps (LoRA weights, clip skip, schedule): ours reads it.
        return source, parse_a1111(raw["parameters"])
    sampler = info.samplers[0]
    params = {**info.metadata, **sampler.parameters}
    width = _number(params.get("width"), int)
    height = _number(params.get("height"), int)
    latent = (info.metadata.get("EmptyLatentImage") or [{}])[0] if isinstance(info.metadata.get("EmptyLatentImage"), list) else {}
    width, height = width or _number(latent.get("width"), int), height or _number(latent.get("height"), int)
    loaders = info.metadata.get("CheckpointLoaderSimple")
    model = loaders[0].get("ckpt_name") if isinstance(loaders, list) and loaders else (sampler.model.name if sampler.model else None)
    try:
        prompt, loras = split_lora_tags(info.full_prompt)
    except PromptSyntaxError:
        prompt, loras = info.full_prompt, ()
    name = sampler.name
    recipe = Recipe(
        prompt=prompt,
        negative_prompt=info.full_negative_prompt,
        steps=_number(params.get("steps"), int),
        sampler=sampler_from_name(name, str(params.get("scheduler", ""))) or f"{name} {params.get('scheduler', '')}".strip(),
        cfg=_number(params.get("cfg_scale"), float, 0.0),
        seed=_number(params.get("seed"), int),
        width=width,
        height=height,
        model=str(model) if model and not isinstance(model, list) else None,
        loras=loras + _comfy_loras(raw.get("prompt")),
    )
    return source, recipe


def read_image_recipe(image: Image.Image) -> tuple[str, Recipe]:
    """(the tool that wrote it, the recipe as written); NoRecipe when there is none."""
    chunks = {key: value for key, value in image.info.items() if isinstance(value, str)}
    if JSON_KEY in chunks:
        try:
            return OURS, Recipe.from_json(chunks[JSON_KEY])
        except (ValueError, TypeError):
            pass  # a damaged chunk of ours: the `parameters` text may still be readable
    try:
        return _from_sd_parsers(image)
    except NoRecipe:
        raise
    except Exception:  # noqa: BLE001 - a foreign format sd-parsers half-reads: treat it as none
        raise NoRecipe("no recipe found in this image") from None


def _match_checkpoint(recipe: Recipe, engine: EngineInterface) -> str | None:
    specs = engine.checkpoint_specs()
    wanted = {_stem(recipe.model)} - {""}
    for spec in specs:
        if spec.id in wanted or spec.name.lower() in wanted or _stem(spec.source_value) in wanted:
            return spec.id
    if recipe.model_hash:
        for spec in specs:
            try:
                if engine.checkpoint_version(spec.id).startswith(recipe.model_hash.lower()):
                    return spec.id
            except Exception:  # noqa: BLE001 - an unavailable checkpoint has no version here
                continue
    return None


def _match_lora(name: str, hashes: dict[str, str], engine: EngineInterface) -> str | None:
    wanted = _stem(name)
    loras = engine.lora_specs()
    for lora in loras:
        if lora.id == wanted or lora.name.lower() == wanted:
            return lora.id
    if name in hashes:
        for lora in loras:
            try:
                if engine.lora_hash(lora.id).startswith(hashes[name].lower()):
                    return lora.id
            except Exception:  # noqa: BLE001 - a LoRA whose file is missing cannot match
                continue
    return None


def map_recipe(source: str, recipe: Recipe, engine: EngineInterface) -> MappedRecipe:
    """`recipe` with its checkpoint and LoRAs as this hub's ids; what did not map is listed."""
    unmapped: list[str] = []
    checkpoint = _match_checkpoint(recipe, engine)
    if checkpoint is None and (recipe.model or recipe.model_hash):
        unmapped.append(f"checkpoint {recipe.model or recipe.model_hash!s} (not registered here)")
    hashes = dict(recipe.lora_hashes)
    loras = []
    for name, weight in recipe.loras:
        lora_id = _match_lora(name, hashes, engine)
        if lora_id is None:
            unmapped.append(f"LoRA {name} (not registered here)")
        else:
            loras.append((lora_id, weight))
    sampler = recipe.sampler
    if sampler_from_name(sampler) is None:
        unmapped.append(f"sampler {sampler} (not offered here)")
        sampler = ""
    mapped = replace(recipe, loras=tuple(loras), sampler=sampler, model=checkpoint)
    return MappedRecipe(source=source, recipe=mapped, checkpoint=checkpoint, unmapped=unmapped)
