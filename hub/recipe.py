"""Image recipes: every PNG the hub writes carries how it was made.

Two text chunks:
- `parameters`: the A1111 / Forge text format that other tools read and reproduce
  (prompt, `Negative prompt:` line, then `Key: value` pairs);
- `sakuga_recipe`: the whole recipe as JSON, exact and lossless.

Arena images are written with `anonymous=True`: no model name, hash or LoRA, so voters stay blind.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from PIL import Image, PngImagePlugin

from hub.prompt_syntax import PromptSyntaxError, lora_tags, split_lora_tags
from hub.samplers import SAMPLERS, sampler_from_name

JSON_KEY = "sakuga_recipe"
A1111_KEY = "parameters"



@dataclass(frozen=True)
class Recipe:
    prompt: str
    negative_prompt: str = ""
    steps: int = 0
    sampler: str = "euler_a"
    cfg: float = 0.0
    seed: int = 0
    width: int = 0
    height: int = 0
    model: str | None = None  # checkpoint id
    model_hash: str | None = None
    loras: tuple[tuple[str, float], ...] = ()
    lora_hashes: tuple[tuple[str, str], ...] = ()
    task: str = "text2img"  # text2img | img2img | inpaint | instruct | reference
    strength: float | None = None
    image_guidance: float | None = None
    references: tuple[str, ...] = ()  # sha256 (12 hex) of each reference image, in the order given
    clip_skip: int | None = None  # A1111 numbering; None: the family's default
    extra: dict[str, Any] = field(default_factory=dict)

    def anonymous(self) -> "Recipe":
        """The same recipe without anything that names the model (for blind battles)."""
        return replace(self, model=None, model_hash=None, loras=(), lora_hashes=())

    def to_json(self) -> str:
        data = asdict(self)
        data["loras"] = [list(item) for item in self.loras]
        data["lora_hashes"] = [list(item) for item in self.lora_hashes]
        data["references"] = list(self.references)
        return json.dumps(data, ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "Recipe":
        data = json.loads(text)
        data["loras"] = tuple((str(name), float(weight)) for name, weight in data.get("loras", []))
        data["lora_hashes"] = tuple((str(name), str(h)) for name, h in data.get("lora_hashes", []))
        data["references"] = tuple(str(h) for h in data.get("references", []))
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})

    def to_a1111(self) -> str:
        # LoRAs go in the prompt as `<lora:id:w>` too: A1111's "send to txt2img" and civitai read them there.
        lines = [" ".join(part for part in (self.prompt, lora_tags(self.loras)) if part)]
        if self.negative_prompt:
            lines.append(f"Negative prompt: {self.negative_prompt}")
        sampler = SAMPLERS.get(self.sampler)
        pairs: list[tuple[str, str]] = [
            ("Steps", str(self.steps)),
            ("Sampler", sampler.recipe_sampler if sampler else self.sampler),
        ]
        if sampler and sampler.schedule_type:
            pairs.append(("Schedule type", sampler.schedule_type))
        pairs += [
            ("CFG scale", _fmt_number(self.cfg)),
            ("Seed", str(self.seed)),
            ("Size", f"{self.width}x{self.height}"),
        ]
        if self.model_hash:
            pairs.append(("Model hash", self.model_hash))
        if self.model:
            pairs.append(("Model", self.model))
        if self.clip_skip is not None:
            pairs.append(("Clip skip", str(self.clip_skip)))
        if self.strength is not None:
            pairs.append(("Denoising strength", _fmt_number(self.strength)))
        if self.loras:
            pairs.append(("Lora weights", _quote(", ".join(f"{n}: {_fmt_number(w)}" for n, w in self.loras))))
        if self.lora_hashes:
            pairs.append(("Lora hashes", _quote(", ".join(f"{n}: {h}" for n, h in self.lora_hashes))))
        if self.image_guidance is not None:
            pairs.append(("Image CFG scale", _fmt_number(self.image_guidance)))
        if self.references:
            pairs.append(("Reference hashes", _quote(", ".join(self.references))))
        if self.task != "text2img":
            pairs.append(("Task", self.task))
        lines.append(", ".join(f"{key}: {value}" for key, value in pairs))
        return "\n".join(lines)


def _fmt_number(value: float) -> str:
    return f"{value:g}"


def _quote(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _split_pairs(line: str) -> dict[str, str]:
    """Split `Key: value, Key: "quoted, value"` respecting quotes, as A1111 writes them."""
    pairs: dict[str, str] = {}
    i, n = 0, len(line)
    while i < n:
        colon = line.find(":", i)
        if colon < 0:
            break
        key = line[i:colon].strip().lstrip(",").strip()
        j = colon + 1
        while j < n and line[j] == " ":
            j += 1
        if j < n and line[j] == '"':
            decoder = json.JSONDecoder()
            value, end = decoder.raw_decode(line, j)
            i = end
        else:
            end = line.find(",", j)
            end = n if end < 0 else end
            value = line[j:end].strip()
            i = end
        pairs[key] = value
        i = line.find(",", i)
        if i < 0:
            break
        i += 1
    return pairs


def parse_a1111(text: str) -> Recipe:
    """Parse an A1111 `parameters` text (ours or another tool's) into a Recipe."""
    lines = text.strip("\n").split("\n")
    settings_line = lines[-1] if len(lines) > 1 and "Steps:" in lines[-1] else ""
    body = lines[:-1] if settings_line else lines
    prompt_lines, negative_lines, in_negative = [], [], False
    for line in body:
        if line.startswith("Negative prompt:"):
            in_negative = True
            negative_lines.append(line[len("Negative prompt:"):].strip())
        elif in_negative:
            negative_lines.append(line)
        else:
            prompt_lines.append(line)
    pairs = _split_pairs(settings_line) if settings_line else {}
    try:
        prompt, prompt_loras = split_lora_tags("\n".join(prompt_lines))
    except PromptSyntaxError:  # another tool's extra networks (hypernetworks, ...): kept as written
        prompt, prompt_loras = "\n".join(prompt_lines), ()
    width, height = 0, 0
    if "Size" in pairs and "x" in pairs["Size"]:
        w, h = pairs["Size"].split("x", 1)
        width, height = int(w), int(h)

    def _named(key: str, cast: Any) -> tuple[tuple[str, Any], ...]:
        if key not in pairs or not pairs[key]:
            return ()
        out = []
        for item in pairs[key].split(", "):
            name, _, value = item.rpartition(": ")
            out.append((name, cast(value)))
        return tuple(out)

    loras = dict(prompt_loras)
    loras.update(_named("Lora weights", float))  # ours: the exact weights, also written as tags
    sampler_name = pairs.get("Sampler", "")
    return Recipe(
        prompt=prompt,
        negative_prompt="\n".join(negative_lines),
        steps=int(pairs.get("Steps", 0)),
        sampler=sampler_from_name(sampler_name, pairs.get("Schedule type", "")) or sampler_name,
        cfg=float(pairs.get("CFG scale", 0)),
        seed=int(pairs.get("Seed", 0)),
        width=width,
        height=height,
        model=pairs.get("Model"),
        model_hash=pairs.get("Model hash"),
        loras=tuple(sorted(loras.items())),
        lora_hashes=_named("Lora hashes", str),
        task=pairs.get("Task", "text2img"),
        strength=float(pairs["Denoising strength"]) if "Denoising strength" in pairs else None,
        image_guidance=float(pairs["Image CFG scale"]) if "Image CFG scale" in pairs else None,
        references=tuple(h for h in pairs.get("Reference hashes", "").split(", ") if h),
        clip_skip=int(pairs["Clip skip"]) if pairs.get("Clip skip", "").isdigit() else None,
    )


def png_info(recipe: Recipe, anonymous: bool = False) -> PngImagePlugin.PngInfo:
    if anonymous:
        recipe = recipe.anonymous()
    info = PngImagePlugin.PngInfo()
    # iTXt keeps non-Latin prompts intact (tEXt is Latin-1 only).
    info.add_itxt(A1111_KEY, recipe.to_a1111())
    info.add_itxt(JSON_KEY, recipe.to_json())
    return info


def save_png(image: Image.Image, recipe: Recipe, path: str | Path, anonymous: bool = False) -> Path:
    """Write `image` as PNG with its recipe. Returns the path written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    image.save(tmp, format="PNG", pnginfo=png_info(recipe, anonymous=anonymous))
    tmp.replace(path)  # atomic: a reader never sees half a file
    return path


def read_recipe(source: str | Path | Image.Image) -> Recipe | None:
    """Read the recipe back: the JSON chunk when present, else the A1111 text; None if neither."""
    image = source if isinstance(source, Image.Image) else Image.open(source)
    text_chunks = dict(getattr(image, "text", {}) or {})
    text_chunks.update({k: v for k, v in image.info.items() if isinstance(v, str)})
    if JSON_KEY in text_chunks:
        return Recipe.from_json(text_chunks[JSON_KEY])
    if A1111_KEY in text_chunks:
        return parse_a1111(text_chunks[A1111_KEY])
    return None
