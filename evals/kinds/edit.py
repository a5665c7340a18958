"""Edit eval: does an edit do what was asked, in any language, and is the character still the same?

Schema: `settings` (strength, image_guidance), `reference_threshold` (see below), `cases`: an input image
(`render`, `generate` or `image`), an instruction in every language, the tags the tagger should see
after the edit (`expect_tags`), the character that must survive it (`character` tag), a `category`,
and for inpainting a `mask` box in fractions of the image. Per edited sample:

- `edit_success` = 1 when the tagger sees every expected tag it knows at or above its threshold;
  `edit_attribute_prob` keeps the evidence (the lowest of those probabilities). A case none of whose
  expected tags the tagger knows is not judged.
- `edit_character_kept` = 1 when the tagger still gives the character tag at or above its threshold;
  absent when the case names no character or the tagger does not know it.
- `edit_reference_same` = 1 when the edited image and the input are the same character: cosine of
  their image embeddings >= a threshold. A suite that states a `reference_threshold` has calibrated it
  on its own edits for the tagger's pooled features, which then decide (the demo suites: 0.62 for tagger
  v2); otherwise the configured reference judge decides at its `same` threshold (SigLIP 2 on GPU
  deployments), else the tagger's features at 0.75. The run records which judge decided.
- `edit_identity_kept` = character kept AND reference same (only the latter when the tagger cannot tell).
- Inpainting: `edit_lpips_outside_mask` (torchmetrics LPIPS, AlexNet, only when its weights are on disk)
  or `edit_pixel_l1_outside_mask` (mean absolute pixel change outside the mask, 0-1). Lower is better.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from pydantic import ValidationInfo, field_validator

from evals.inputs import load_input, prepare_input
from evals.judges.base import JudgeInfo
from evals.kinds.base import PlanContext, Planned, PromptRow, Suite, SuiteKind
from evals.kinds.schema import (
    InputSpec,
    Item,
    StatusText,
    Strict,
    SuiteDocument,
    check_character_tag,
    check_tags,
    check_unique_ids,
    problem,
    texts_by_language,
)
from evals.samples import SampleView, ScoreRow
from hub.engine.requests import EVAL, EditRequest
from hub.errors import HubInputError
from leaderboards.eval_boards import EDITING_BOARD

SUCCESS = "edit_success"
ATTRIBUTE_PROB = "edit_attribute_prob"
CHARACTER_KEPT = "edit_character_kept"
REFERENCE_SAME = "edit_reference_same"
REFERENCE_COSINE = "edit_reference_cosine"
IDENTITY = "edit_identity_kept"
LPIPS = "edit_lpips_outside_mask"
PIXEL_L1 = "edit_pixel_l1_outside_mask"
DEFAULT_REFERENCE_THRESHOLD = 0.75
DEFAULT_STRENGTH = 0.75
DEFAULT_IMAGE_GUIDANCE = 1.5
MASK_FILL = 127


# ------------------------------------------------------------------------------------ schema


class EditSettings(Strict):
    strength: float = DEFAULT_STRENGTH
    image_guidance: float = DEFAULT_IMAGE_GUIDANCE


class EditCase(Item):
    input: InputSpec
    instructions: dict[str, StatusText]
    expect_tags: list[str]
    character: str | None = None
    category: str = "other"
    mask: tuple[float, float, float, float] | None = None

    @field_validator("instructions")
    @classmethod
    def _instructions(cls, value: dict[str, StatusText], info: ValidationInfo) -> dict[str, StatusText]:
        return texts_by_language(value, info, "instructions")

    @field_validator("expect_tags")
    @classmethod
    def _expect(cls, value: list[str], info: ValidationInfo) -> list[str]:
        if not value:
            raise problem("expect_tags is empty")
        return check_tags(value, info)

    @field_validator("character")
    @classmethod
    def _character(cls, value: str | None) -> str | None:
        return check_character_tag(value)

    @field_validator("mask", mode="before")
    @classmethod
    def _mask(cls, value: Any) -> Any:
        if value is None:
            return None
        if (not isinstance(value, list) or len(value) != 4 or any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in value)
                or not (0 <= value[0] < value[2] <= 1 and 0 <= value[1] < value[3] <= 1)):
            raise problem("mask must be a box [left, top, right, bottom] in fractions of the image (0-1)")
        return tuple(float(v) for v in value)


class EditSuiteDocument(SuiteDocument):
    settings: EditSettings = EditSettings()
    reference_threshold: float | None = None
    cases: list[EditCase]

    @field_validator("reference_threshold")
    @classmethod
    def _threshold(cls, value: float | None) -> float | None:
        if value is not None and not -1 <= value <= 1:
            raise problem("reference_threshold must be a cosine between -1 and 1")
        return value

    @field_validator("cases")
    @classmethod
    def _cases(cls, value: list[EditCase]) -> list[EditCase]:
        if not value:
            raise problem("cases is empty")
        check_unique_ids(value, "case")
        return value


# ------------------------------------------------------------------------------------ metric maths


def attribute_success(probs: Sequence[float], thresholds: Sequence[float]) -> float:
    """1.0 when every expected tag's probability reaches its threshold; NaN when there is none to judge."""
    p = np.asarray(probs, dtype=np.float64)
    t = np.asarray(thresholds, dtype=np.float64)
    known = np.isfinite(p)
    if not known.any():
        return float("nan")
    return float(np.all(p[known] >= t[known]))


def identity_kept(character_kept: float | None, reference_same: float | None) -> float:
    """Both signals must agree; a missing one (None/NaN) is left out; NaN when neither exists."""
    values = [v for v in (character_kept, reference_same) if v is not None and np.isfinite(v)]
    if not values:
        return float("nan")
    return float(all(v >= 1.0 for v in values))


def mask_image(size: tuple[int, int], box: Sequence[float]) -> Image.Image:
    """An 'L' mask (255 = edit here) for a box given in fractions of the image."""
    width, height = size
    left, top, right, bottom = box
    mask = Image.new("L", size, 0)
    mask.paste(255, (round(left * width), round(top * height), round(right * width), round(bottom * height)))
    return mask


def _outside(mask: Image.Image | np.ndarray, size: tuple[int, int]) -> np.ndarray:
    array = np.asarray(mask.resize(size, Image.Resampling.NEAREST) if isinstance(mask, Image.Image) else mask)
    return array < 128


def pixel_l1_outside_mask(before: Image.Image, after: Image.Image, mask: Image.Image | np.ndarray) -> float:
    """Mean |after - before| over the pixels outside the mask, on a 0-1 scale (NaN if none is outside)."""
    after = after.convert("RGB")
    before = before.convert("RGB").resize(after.size, Image.Resampling.BICUBIC)
    keep = _outside(mask, after.size)
    if not keep.any():
        return float("nan")
    diff = np.abs(np.asarray(after, np.float64) - np.asarray(before, np.float64)) / 255.0
    return float(diff[keep].mean())


class LpipsOutsideMask:
    """LPIPS of the region outside the mask (the mask filled with grey in both images)."""

    info = JudgeInfo("lpips-alex", "lpips", "torchmetrics")
    metric_name = LPIPS

    def __init__(self, metric: Any):
        self.metric = metric

    @classmethod
    def load_offline(cls) -> "LpipsOutsideMask | None":
        """torchmetrics' LPIPS when its AlexNet backbone is already on disk, else None (no download)."""
        try:
            import torch
            from torchmetrics.image.lpip import LearnedPerceptualImagePatchSimilarity

            cached = Path(torch.hub.get_dir()) / "checkpoints" / "alexnet-owt-7be5be79.pth"
            if not cached.is_file():
                return None
            return cls(LearnedPerceptualImagePatchSimilarity(net_type="alex", normalize=False).eval())
        except Exception:  # noqa: BLE001 - any failure means the documented pixel fallback
            return None

    def __call__(self, before: Image.Image, after: Image.Image, mask: Image.Image) -> float:
        import torch

        after = after.convert("RGB")
        before = before.convert("RGB").resize(after.size, Image.Resampling.BICUBIC)
        keep = _outside(mask, after.size)

        def masked(image: Image.Image) -> Any:
            array = np.asarray(image, np.float32).copy()
            array[~keep] = MASK_FILL
            return torch.from_numpy(array).permute(2, 0, 1)[None] / 127.5 - 1.0

        with torch.inference_mode():
            return float(self.metric(masked(after), masked(before)))


class PixelOutsideMask:
    info = JudgeInfo("pixel-l1", "pixel", "1")
    metric_name = PIXEL_L1

    def __call__(self, before: Image.Image, after: Image.Image, mask: Image.Image) -> float:
        return pixel_l1_outside_mask(before, after, mask)


@dataclass
class SameCharacterJudges:
    """The judges of an edit or reference run: the tagger, the same-character test, the preservation metric."""

    tagger: Any
    embedder: Any  # image embeddings for the same-character test
    reference_info: JudgeInfo  # who decides "same character" (recorded with the rows)
    reference_threshold: float
    preservation: Any  # LpipsOutsideMask or PixelOutsideMask
    reference_kind: str = "reference"
    name: Any = None  # name judge, for characters the tagger does not know (reference suites)
    judge_set: Any = None

    @classmethod
    def build(cls, judges: Any, suite: Suite) -> "SameCharacterJudges":
        """Who decides "same character" for edits: a suite that states its own `reference_threshold` has it
        calibrated on its edits for the tagger's features, so those decide; otherwise the configured
        reference judge (SigLIP 2 on GPU deployments), else the tagger's features at the default."""
        if judges.tagger is None:
            raise HubInputError(f"{suite.kind} suites need a tagger judge (add one to `judges` in the config)")
        reference = judges.reference
        suite_threshold = suite.settings.get("reference_threshold")
        if reference is not None and suite_threshold is None:
            embedder, info, threshold, kind = reference.embedder, reference.info, reference.threshold, "reference"
        else:
            # An identity judge calibrated on characters is not calibrated on edits (a hair colour edit moves
            # a name judge's embedding far more than the tagger's look features): the suite's own calibration wins.
            embedder, info = judges.tagger, judges.tagger.info
            threshold = DEFAULT_REFERENCE_THRESHOLD if suite_threshold is None else suite_threshold
            kind = "tagger-features"
        preservation = LpipsOutsideMask.load_offline() or PixelOutsideMask()
        return cls(judges.tagger, embedder, info, float(threshold), preservation, kind, judges.name, judges)

    def describe(self) -> dict[str, dict[str, Any]]:
        tagger = self.tagger.info
        out = {
            "tagger": {"id": tagger.id, "kind": tagger.kind, "version": tagger.version},
            "reference": {"id": self.reference_info.id, "kind": self.reference_kind, "version": self.reference_info.version,
                          "threshold": self.reference_threshold},
            "preservation": {"id": self.preservation.info.id, "kind": self.preservation.info.kind,
                             "version": self.preservation.info.version},
        }
        if self.name is not None:
            out["name"] = {"id": self.name.info.id, "kind": self.name.info.kind, "version": self.name.info.version}
        return out


def same_character_rows(sample_ids: Sequence[int], outputs: Sequence[Image.Image], inputs: Sequence[Sequence[Image.Image]],
                        judges: SameCharacterJudges) -> tuple[list[ScoreRow], list[float]]:
    """Reference cosine and verdict per sample: the output against each of its inputs (the best one)."""
    flat = [image for group in inputs for image in group]
    embeddings = np.asarray(judges.embedder.image_embeddings(list(outputs) + flat), dtype=np.float32)
    n, cursor = len(outputs), len(outputs)
    rows, verdicts = [], []
    for i, sid in enumerate(sample_ids):
        count = len(inputs[i])
        cos = float(np.max(embeddings[cursor : cursor + count] @ embeddings[i]))
        cursor += count
        same = float(cos >= judges.reference_threshold)
        rows.append(ScoreRow(sid, judges.reference_info.id, REFERENCE_COSINE, cos))
        rows.append(ScoreRow(sid, judges.reference_info.id, REFERENCE_SAME, same))
        verdicts.append(same)
    assert cursor == n + len(flat)
    return rows, verdicts


def attribute_rows(view: SampleView, probs: np.ndarray, tagger: Any) -> list[ScoreRow]:
    known = [t for t in view.meta.get("expect_tags", []) if tagger.has_tag(t)]
    if not known:
        return []
    p = [float(probs[tagger.tags.index[t]]) for t in known]
    return [ScoreRow(view.id, tagger.info.id, SUCCESS, attribute_success(p, [tagger.threshold_for(t) for t in known])),
            ScoreRow(view.id, tagger.info.id, ATTRIBUTE_PROB, min(p))]


# ------------------------------------------------------------------------------------ the kind


def prepare_inputs(ctx: PlanContext, specs: Sequence[dict[str, Any]]) -> list[tuple[Image.Image, str, str]]:
    """(image, path, digest) of each input spec, made once and cached."""
    out = []
    for spec in specs:
        path, digest = prepare_input(spec, engine=ctx.engine, data_dir=ctx.data_dir, prompts_dir=ctx.prompts_dir,
                                     render_input=ctx.render_input)
        out.append((load_input(path), str(path.resolve()), digest))
    return out


class EditKind(SuiteKind):
    name = "edit"
    item_key = "cases"
    noun = "case"
    document = EditSuiteDocument
    roles = ("tagger", "reference")
    group_field = "category"
    metrics = EDITING_BOARD.metrics
    percent_keys = ("success", "identity_kept", "character_kept", "reference_same")

    def suite_settings(self, doc: EditSuiteDocument) -> dict[str, Any]:
        return {"strength": doc.settings.strength, "image_guidance": doc.settings.image_guidance,
                "reference_threshold": doc.reference_threshold}

    def rows(self, suite: Suite, item: EditCase, language: str) -> PromptRow:
        meta = {"character": item.character, "expect_tags": list(item.expect_tags), "category": item.category,
                "input": item.input.as_dict(), "mask": list(item.mask) if item.mask else None,
                "status": item.instructions[language].status}
        return PromptRow(item.id, language, item.instructions[language].text, meta)

    def tags(self, suite: Suite) -> tuple[set[str], set[str]]:
        return {t for item in suite.items for t in item.expect_tags}, {item.character for item in suite.items if item.character}

    def prepare(self, ctx: PlanContext, rows: Sequence[PromptRow]) -> tuple[Any, list[str]]:
        """Inputs made once per case; cases the checkpoint's family cannot run (a mask for an
        instruct-only model) are skipped and listed."""
        inputs: dict[str, tuple[Image.Image, Image.Image | None, str, str]] = {}
        skipped: list[str] = []
        for row in rows:
            if row.item_id in inputs or row.item_id in skipped:
                continue
            needs = ("inpaint",) if row.meta.get("mask") else ("instruct", "img2img")
            if not any(ctx.family.supports(task) for task in needs):
                skipped.append(row.item_id)
                continue
            ((image, path, digest),) = prepare_inputs(ctx, [row.meta["input"]])
            mask = mask_image(image.size, row.meta["mask"]) if row.meta.get("mask") else None
            inputs[row.item_id] = (image, mask, path, digest)
        return inputs, skipped

    def plan(self, ctx: PlanContext, state: Any, row: PromptRow, seed: int) -> Planned | None:
        if row.item_id not in state:
            return None
        image, mask, path, digest = state[row.item_id]
        settings = ctx.suite.settings
        overrides = {k: v for k, v in ctx.overrides.items() if k in ("steps", "cfg", "sampler")}
        request = EditRequest(image=image, prompt=row.text, mask=mask, strength=settings["strength"],
                              image_guidance=settings["image_guidance"], negative_prompt=ctx.suite.negative_prompt,
                              checkpoint=ctx.checkpoint.id, loras=ctx.adapters, seed=seed, priority=EVAL, **overrides)
        # The same instruction on another input is another sample: the input's digest is in the key.
        text = f"{row.text}\n[input {digest}]" + (f"[mask {row.meta['mask']}]" if mask is not None else "")
        return Planned(request, text, {"input_path": path})

    def judges(self, judge_set: Any, suite: Suite) -> SameCharacterJudges:
        return SameCharacterJudges.build(judge_set, suite)

    def expected_metrics(self, view: SampleView, judges: SameCharacterJudges) -> list[tuple[str, str]]:
        out = [(judges.reference_info.id, IDENTITY)]
        if any(judges.tagger.has_tag(t) for t in view.meta.get("expect_tags", [])):
            out.append((judges.tagger.info.id, SUCCESS))
        if view.meta.get("mask"):
            out.append((judges.preservation.info.id, judges.preservation.metric_name))
        return out

    def score_samples(self, views: Sequence[SampleView], judges: SameCharacterJudges) -> list[ScoreRow]:
        """One tagger pass; one embedding pass for outputs and inputs."""
        if not views:
            return []
        tagger = judges.tagger
        outputs = [v.load() for v in views]
        inputs = [load_input(v.meta["input_path"]) for v in views]
        probs = tagger.predict(outputs)
        rows, same = same_character_rows([v.id for v in views], outputs, [[image] for image in inputs], judges)
        for i, view in enumerate(views):
            rows += attribute_rows(view, probs[i], tagger)
            character = view.meta.get("character")
            kept = None
            if character and tagger.has_tag(character):
                kept = float(probs[i, tagger.tags.index[character]] >= tagger.threshold_for(character))
                rows.append(ScoreRow(view.id, tagger.info.id, CHARACTER_KEPT, kept))
            rows.append(ScoreRow(view.id, judges.reference_info.id, IDENTITY, identity_kept(kept, same[i])))
            if view.meta.get("mask"):
                value = judges.preservation(inputs[i], outputs[i], mask_image(inputs[i].size, view.meta["mask"]))
                if np.isfinite(value):
                    rows.append(ScoreRow(view.id, judges.preservation.info.id, judges.preservation.metric_name, value))
        return rows

    def unjudged(self, views: Sequence[SampleView], judges: SameCharacterJudges) -> int:
        return len({v.id for v in views if not any(judges.tagger.has_tag(t) for t in v.meta.get("expect_tags", []))})
