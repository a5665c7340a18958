"""Same-seed comparison grid (A1111's X/Y plot), engine side: no gradio.

Axes vary one setting each: `checkpoint`, `prompt` (whole prompts), `prompt_sr` (search/replace: the
first value is found in the prompt and replaced by each value in turn), `lora_weight` (the weight of one
LoRA), `cfg` and `steps`. Every cell uses the same seed, so the only difference is the axis value.

- `parse_axis(kind, text)`: values separated by commas (prompts: by `|` or new lines); numbers also as
  ranges, `1-5` (whole numbers), `1-9 (+2)` (a step) or `2-8 [4]` (a count).
- `plan_grid(base, x, y, max_cells)`: the cell requests, rows (y) by columns (x); refused before any
  work above `max_cells` or with a bad axis.
- `run_grid(engine, ...)`: all cells submitted together (`Engine.generate_many`: every request is
  checked first, then compatible cells share pipeline calls).
- `compose_grid(images, x_labels, y_labels)`: one labelled PNG (small cells enlarged, nearest-neighbour).

Messages are English; the UI translates them (`hub/ui/locales/*.yaml`, `err.grid_*`, same text).
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from hub.engine import GeneratedImage, GenerationRequest
from hub.errors import HubInputError

AXIS_KINDS = ("checkpoint", "prompt", "prompt_sr", "lora_weight", "cfg", "steps")
AXIS_NAMES = {"checkpoint": "Checkpoint", "prompt": "Prompt", "prompt_sr": "Prompt S/R", "lora_weight": "LoRA weight",
              "cfg": "CFG", "steps": "Steps"}
MAX_VALUES_PER_AXIS = 64  # before the cell limit: a long list is refused without expanding it

# The same text as `err.grid_*` in hub/ui/locales/en.yaml (tests/test_i18n.py checks they agree).
TOO_MANY_CELLS = "The grid has {cells} cells; the limit is {limit}. Use fewer values."
UNKNOWN_AXIS = "Unknown grid axis {kind}: choose one of {known}."
EMPTY_AXIS = "The {axis} axis has no values."
SAME_AXIS = "The X and Y axes must differ (both are {axis})."
BAD_NUMBER = "{value} is not a number ({axis} axis)."
BAD_RANGE = "{value} is not a usable range ({axis} axis)."
NO_LORA = "The LoRA weight axis needs a LoRA: add one (id:weight)."
SR_NOT_FOUND = "The prompt S/R axis replaces {search}, which is not in the prompt."

_RANGE = re.compile(
    r"^\s*(?P<start>[-+]?\d+(?:\.\d+)?)\s*-\s*(?P<end>[-+]?\d+(?:\.\d+)?)\s*"
    r"(?:\(\s*(?P<step>[-+]\s*\d+(?:\.\d+)?)\s*\)|\[\s*(?P<count>\d+)\s*\])?\s*$"
)


@dataclass(frozen=True)
class Axis:
    kind: str
    values: tuple[Any, ...]

    @property
    def name(self) -> str:
        return AXIS_NAMES[self.kind]

    def label(self, index: int) -> str:
        value = self.values[index]
        if self.kind in ("cfg", "lora_weight"):
            value = f"{value:g}"
        return f"{self.name}: {value}"

    @property
    def labels(self) -> list[str]:
        return [self.label(i) for i in range(len(self.values))]

    def __len__(self) -> int:
        return len(self.values)


def _number(text: str, kind: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise HubInputError(BAD_NUMBER.format(value=repr(text[:40]), axis=kind)) from None
    if not math.isfinite(value):
        raise HubInputError(BAD_NUMBER.format(value=repr(text[:40]), axis=kind))
    return value


def _expand_range(item: str, kind: str, whole: bool) -> list[float] | None:
    found = _RANGE.match(item)
    if found is None:
        return None
    start, end = float(found["start"]), float(found["end"])
    if found["count"] is not None:
        count = int(found["count"])
        if not 1 <= count <= MAX_VALUES_PER_AXIS:
            raise HubInputError(BAD_RANGE.format(value=repr(item[:40]), axis=kind))
        values = [start + (end - start) * i / (count - 1) for i in range(count)] if count > 1 else [start]
    else:
        step = float(found["step"].replace(" ", "")) if found["step"] else (1.0 if end >= start else -1.0)
        if found["step"] is None and not whole:
            return None  # "0.5-1" for CFG is a typo more often than a range of whole numbers
        if step == 0 or (end - start) / step < 0 or abs(end - start) / abs(step) + 1 > MAX_VALUES_PER_AXIS:
            raise HubInputError(BAD_RANGE.format(value=repr(item[:40]), axis=kind))
        n = int(math.floor(abs(end - start) / abs(step) + 1e-9)) + 1
        values = [start + step * i for i in range(n)]
    return [round(v) if whole else round(v, 6) for v in values]


def parse_axis(kind: str | None, text: str | None) -> Axis | None:
    """An axis from its kind and the values as typed; None for no axis (kind empty or 'none')."""
    kind = (kind or "").strip().lower()
    if kind in ("", "none"):
        return None
    if kind not in AXIS_KINDS:
        raise HubInputError(UNKNOWN_AXIS.format(kind=repr(kind[:30]), known=", ".join(AXIS_KINDS)))
    text = text or ""
    if kind == "prompt":
        items = [part.strip() for part in re.split(r"[|\n]", text) if part.strip()]
    else:
        items = [part.strip() for part in text.replace("\n", ",").split(",") if part.strip()]
    if not items:
        raise HubInputError(EMPTY_AXIS.format(axis=AXIS_NAMES[kind]))
    if len(items) > MAX_VALUES_PER_AXIS:
        raise HubInputError(TOO_MANY_CELLS.format(cells=len(items), limit=MAX_VALUES_PER_AXIS))
    values: list[Any] = []
    if kind in ("cfg", "steps", "lora_weight"):
        whole = kind == "steps"
        for item in items:
            expanded = _expand_range(item, AXIS_NAMES[kind], whole)
            if expanded is None:
                number = _number(item, AXIS_NAMES[kind])
                expanded = [round(number) if whole else number]
            values += expanded
            if len(values) > MAX_VALUES_PER_AXIS:
                raise HubInputError(TOO_MANY_CELLS.format(cells=len(values), limit=MAX_VALUES_PER_AXIS))
    else:
        values = items
    return Axis(kind, tuple(values))


def _apply(request: GenerationRequest, axis: Axis, index: int, lora_id: str | None) -> GenerationRequest:
    value = axis.values[index]
    if axis.kind == "checkpoint":
        return dataclasses.replace(request, checkpoint=value)
    if axis.kind == "prompt":
        return dataclasses.replace(request, prompt=value)
    if axis.kind == "prompt_sr":
        return dataclasses.replace(request, prompt=request.prompt.replace(axis.values[0], value))
    if axis.kind == "cfg":
        return dataclasses.replace(request, cfg=value)
    if axis.kind == "steps":
        return dataclasses.replace(request, steps=value)
    loras = tuple((name, value if name == lora_id else weight) for name, weight in request.loras)
    return dataclasses.replace(request, loras=loras)


def plan_grid(base: GenerationRequest, x: Axis | None, y: Axis | None = None, *, max_cells: int) -> list[list[GenerationRequest]]:
    """The cells' requests, one row per Y value, one column per X value (same seed, batch 1)."""
    if x is None:
        x, y = y, None
    if x is None:
        raise HubInputError(EMPTY_AXIS.format(axis="X"))
    if y is not None and y.kind == x.kind:
        raise HubInputError(SAME_AXIS.format(axis=x.name))
    cells = len(x) * (len(y) if y is not None else 1)
    if cells > max_cells:
        raise HubInputError(TOO_MANY_CELLS.format(cells=cells, limit=max_cells))
    base = dataclasses.replace(base, batch=1)
    lora_id = base.loras[0][0] if base.loras else None
    for axis in (x, y):
        if axis is None:
            continue
        if axis.kind == "lora_weight" and lora_id is None:
            raise HubInputError(NO_LORA)
        if axis.kind == "prompt_sr" and axis.values[0] not in base.prompt:
            raise HubInputError(SR_NOT_FOUND.format(search=repr(axis.values[0][:60])))
    rows = []
    for j in range(len(y) if y is not None else 1):
        row_base = _apply(base, y, j, lora_id) if y is not None else base
        rows.append([_apply(row_base, x, i, lora_id) for i in range(len(x))])
    return rows


@dataclass
class GridResult:
    cells: list[list[GeneratedImage]]  # rows (y) of columns (x)
    x: Axis
    y: Axis | None

    @property
    def flat(self) -> list[GeneratedImage]:
        return [cell for row in self.cells for cell in row]

    def cell_label(self, row: int, column: int) -> str:
        parts = [self.x.label(column)] + ([self.y.label(row)] if self.y is not None else [])
        return " · ".join(parts)


def run_grid(engine: Any, base: GenerationRequest, x: Axis | None, y: Axis | None = None, *, max_cells: int,
             cancel: Any = None) -> GridResult:
    """Every cell checked, then submitted together (compatible cells share pipeline calls); setting
    `cancel` (a `CancelToken`) stops the cells not yet drawn."""
    if x is None:
        x, y = y, None
    plan = plan_grid(base, x, y, max_cells=max_cells)
    flat = [request for row in plan for request in row]
    outputs = engine.run_many(flat, cancel=cancel)
    images = [out[0] for out in outputs]
    width = len(plan[0])
    return GridResult([images[r * width:(r + 1) * width] for r in range(len(plan))], x, y)


# -------------------------------------------------------------------------------------- the picture

FONT_CANDIDATES = (  # the first that exists; CJK-capable ones first (prompts and labels in any script)
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
)


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    for candidate in FONT_CANDIDATES:
        if Path(candidate).is_file():
            try:
                return ImageFont.truetype(candidate, size)
            except OSError:
                continue
    try:
        return ImageFont.load_default(size)
    except TypeError:  # Pillow without FreeType
        return ImageFont.load_default()


def _wrap(draw: ImageDraw.ImageDraw, text: str, font: Any, width: int, max_lines: int = 4) -> list[str]:
    """Lines that fit `width`: broken at spaces where possible, inside a word only when it is too long
    (and for scripts written without spaces)."""
    lines: list[str] = []
    current = ""
    for word in re.split(r"(?<= )", text):
        trial = current + word
        if draw.textlength(trial.rstrip(), font=font) <= width:
            current = trial
            continue
        if current.strip():
            lines.append(current.rstrip())
            current = ""
        for char in word:
            if current and draw.textlength((current + char).rstrip(), font=font) > width:
                lines.append(current.rstrip())
                current = char.lstrip()
            else:
                current += char
    if current.strip():
        lines.append(current.rstrip())
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        lines[-1] = lines[-1][:-1] + "…"
    return lines


def compose_grid(images: Sequence[Sequence[Image.Image]], x_labels: Sequence[str], y_labels: Sequence[str] | None = None,
                 *, min_cell: int = 128, font_size: int = 14, gap: int = 4) -> Image.Image:
    """One white-backed picture: the column labels on top, row labels on the left, cells in between.
    Cells smaller than `min_cell` are enlarged by a whole factor (nearest-neighbour: pixels stay crisp);
    cells of different sizes are centred in the largest."""
    rows = [list(row) for row in images]
    if not rows or not rows[0]:
        raise ValueError("an empty grid")
    cell_w = max(image.width for row in rows for image in row)
    cell_h = max(image.height for row in rows for image in row)
    scale = max(1, math.ceil(min_cell / max(cell_w, cell_h)))
    cell_w, cell_h = cell_w * scale, cell_h * scale
    font = _font(font_size)
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    line_h = font_size + 4
    top_lines = [_wrap(probe, label, font, cell_w - 4) for label in x_labels]
    top = max(len(lines) for lines in top_lines) * line_h + 2 * gap
    left_width = min(max(cell_w, 120), 240) if y_labels else 0
    left_lines = [_wrap(probe, label, font, left_width - 2 * gap, max_lines=max(1, cell_h // line_h)) for label in (y_labels or [])]
    columns = len(rows[0])
    width = left_width + columns * (cell_w + gap) + gap
    height = top + len(rows) * (cell_h + gap) + gap
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for i, lines in enumerate(top_lines):
        x0 = left_width + gap + i * (cell_w + gap)
        for k, line in enumerate(lines):
            text_w = draw.textlength(line, font=font)
            draw.text((x0 + (cell_w - text_w) / 2, gap + k * line_h), line, fill=(0, 0, 0), font=font)
    for j, row in enumerate(rows):
        y0 = top + j * (cell_h + gap)
        if y_labels:
            lines = left_lines[j]
            start = y0 + (cell_h - len(lines) * line_h) / 2
            for k, line in enumerate(lines):
                draw.text((gap, start + k * line_h), line, fill=(0, 0, 0), font=font)
        for i, image in enumerate(row):
            shown = image.convert("RGB")
            if scale > 1:
                shown = shown.resize((image.width * scale, image.height * scale), Image.Resampling.NEAREST)
            x0 = left_width + gap + i * (cell_w + gap)
            canvas.paste(shown, (x0 + (cell_w - shown.width) // 2, y0 + (cell_h - shown.height) // 2))
    return canvas
