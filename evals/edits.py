"""Edit eval: does an edit do what was asked, in any language, and is the character still the same?

A suite of kind `edit` (see `prompts/README.md`) lists cases: an input image, an instruction in every
suite language, the tags the tagger should see after the edit (`expect_tags`), the character that must
survive it (`character`), and for inpainting a mask box. Per edited sample:

- `edit_success` = 1 when the tagger sees every expected tag it knows at or above its threshold
  (general 0.35 for WD v3); `edit_attribute_prob` keeps the evidence (the lowest of those probabilities).
  A case none of whose expected tags the tagger knows is not judged (no row), never counted as a miss.
- `edit_character_kept` = 1 when the tagger still gives the character tag at or above its threshold
  (0.85); absent when the case names no character or the tagger does not know it.
- `edit_reference_same` = 1 when the reference judge says "same character" for (edited, input):
  cosine of their image embeddings >= the judge's `same` threshold; `edit_reference_cosine` keeps the
  cosine. The configured reference judge (SigLIP 2 on GPU deployments) is used when it loads; otherwise
  the tagger's own pooled features stand in, with the suite's `reference_threshold` (demo-edits: 0.75,
  calibrated on the demo world: the renderer's ground-truth one-attribute edits have cosine >= 0.77 to
  their input, other characters <= 0.70). The run records which judge decided.
- `edit_identity_kept` = `edit_character_kept` AND `edit_reference_same` (only the latter when the
  tagger cannot tell the character).
- Inpainting cases: `edit_lpips_outside_mask`, torchmetrics' LPIPS (AlexNet) between input and output
  with the masked box filled with grey in both — only when the AlexNet and LPIPS weights are already on
  disk (nothing is downloaded). Otherwise `edit_pixel_l1_outside_mask`: the mean absolute pixel
  difference (0-1 scale) over the pixels outside the mask. Lower is better for both.

Summaries: means with 95% cluster-bootstrap intervals (cases resampled, so seeds and languages of one
case are not independent evidence), overall, per language (with the gap to English) and per category.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from PIL import Image

from evals.judges.base import JudgeInfo
from evals.metrics import bootstrap_gap, bootstrap_mean
from evals.samples import SampleView, ScoreRow
from hub.errors import HubInputError

SUCCESS = "edit_success"
ATTRIBUTE_PROB = "edit_attribute_prob"
CHARACTER_KEPT = "edit_character_kept"
REFERENCE_SAME = "edit_reference_same"
REFERENCE_COSINE = "edit_reference_cosine"
IDENTITY = "edit_identity_kept"
LPIPS = "edit_lpips_outside_mask"
PIXEL_L1 = "edit_pixel_l1_outside_mask"
METRICS = (SUCCESS, ATTRIBUTE_PROB, CHARACTER_KEPT, REFERENCE_SAME, REFERENCE_COSINE, IDENTITY, LPIPS, PIXEL_L1)
# Report key -> metric (the report's names are the issue's: success, identity_kept, ...).
REPORTED = {
    "success": SUCCESS,
    "identity_kept": IDENTITY,
    "character_kept": CHARACTER_KEPT,
    "reference_same": REFERENCE_SAME,
    "lpips_outside_mask": LPIPS,
    "pixel_l1_outside_mask": PIXEL_L1,
}
DEFAULT_REFERENCE_THRESHOLD = 0.75
DEFAULT_STRENGTH = 0.75
DEFAULT_IMAGE_GUIDANCE = 1.5
MASK_FILL = 127


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


def _masked_tensor(image: Image.Image, keep: np.ndarray):
    import torch

    array = np.asarray(image.convert("RGB"), np.float32).copy()
    array[~keep] = MASK_FILL
    return torch.from_numpy(array).permute(2, 0, 1)[None] / 127.5 - 1.0


class LpipsOutsideMask:
    """LPIPS of the region outside the mask (the mask filled with grey in both images)."""

    info = JudgeInfo("lpips-alex", "lpips", "torchmetrics")

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
        with torch.inference_mode():
            return float(self.metric(_masked_tensor(after, keep), _masked_tensor(before, keep)))


class PixelOutsideMask:
    info = JudgeInfo("pixel-l1", "pixel", "1")

    def __call__(self, before: Image.Image, after: Image.Image, mask: Image.Image) -> float:
        return pixel_l1_outside_mask(before, after, mask)


# ------------------------------------------------------------------------------------ judges


@dataclass
class EditJudges:
    """The judges of one edit run: the tagger, the same-character judge and the preservation metric."""

    tagger: Any
    embedder: Any  # image embeddings for the same-character test
    reference_info: JudgeInfo  # who decides "same character" (recorded with the rows)
    reference_threshold: float
    preservation: Any  # LpipsOutsideMask or PixelOutsideMask
    reference_kind: str = "reference"

    @classmethod
    def build(cls, judges: Any, suite: Any) -> "EditJudges":
        if judges.tagger is None:
            raise HubInputError("edit suites need a tagger judge (add one to `judges` in the config)")
        reference = judges.reference
        if reference is not None:
            embedder, info, threshold, kind = reference.embedder, reference.info, reference.threshold, "reference"
        else:
            # No reference judge here (e.g. SigLIP 2 needs a GPU): the tagger's pooled features decide.
            embedder, info = judges.tagger, judges.tagger.info
            threshold = suite.reference_threshold if suite.reference_threshold is not None else DEFAULT_REFERENCE_THRESHOLD
            kind = "tagger-features"
        preservation = LpipsOutsideMask.load_offline() or PixelOutsideMask()
        return cls(judges.tagger, embedder, info, float(threshold), preservation, kind)

    def describe(self) -> dict[str, dict[str, Any]]:
        tagger = self.tagger.info
        return {
            "tagger": {"id": tagger.id, "kind": tagger.kind, "version": tagger.version},
            "reference": {"id": self.reference_info.id, "kind": self.reference_kind, "version": self.reference_info.version,
                          "threshold": self.reference_threshold},
            "preservation": {"id": self.preservation.info.id, "kind": self.preservation.info.kind,
                             "version": self.preservation.info.version},
        }

    @property
    def preservation_metric(self) -> str:
        return LPIPS if isinstance(self.preservation, LpipsOutsideMask) else PIXEL_L1


def expected_metrics(sample: SampleView, judges: EditJudges) -> list[tuple[str, str]]:
    """(judge id, metric) rows a scored sample has (used to find samples that still need scoring)."""
    tagger = judges.tagger
    out = [(judges.reference_info.id, IDENTITY)]
    if any(tagger.has_tag(t) for t in sample.meta.get("expect_tags", [])):
        out.append((tagger.info.id, SUCCESS))
    if sample.meta.get("mask"):
        out.append((judges.preservation.info.id, judges.preservation_metric))
    return out


def score_samples(samples: Sequence[SampleView], judges: EditJudges) -> list[ScoreRow]:
    """Per-sample edit scores for a batch: one tagger pass, one embedding pass for outputs and inputs."""
    if not samples:
        return []
    tagger = judges.tagger
    outputs = [s.load() for s in samples]
    inputs = [load_input(s.meta["input_path"]) for s in samples]
    probs = tagger.predict(outputs)
    embeddings = np.asarray(judges.embedder.image_embeddings(outputs + inputs), dtype=np.float32)
    n = len(samples)
    rows: list[ScoreRow] = []
    tid, rid = tagger.info.id, judges.reference_info.id
    for i, sample in enumerate(samples):
        expect = list(sample.meta.get("expect_tags", []))
        known = [t for t in expect if tagger.has_tag(t)]
        if known:
            p = [float(probs[i, tagger.tags.index[t]]) for t in known]
            rows.append(ScoreRow(sample.id, tid, SUCCESS, attribute_success(p, [tagger.threshold_for(t) for t in known])))
            rows.append(ScoreRow(sample.id, tid, ATTRIBUTE_PROB, min(p)))
        character = sample.meta.get("character")
        kept = None
        if character and tagger.has_tag(character):
            kept = float(probs[i, tagger.tags.index[character]] >= tagger.threshold_for(character))
            rows.append(ScoreRow(sample.id, tid, CHARACTER_KEPT, kept))
        cos = float(np.dot(embeddings[i], embeddings[n + i]))
        same = float(cos >= judges.reference_threshold)
        rows.append(ScoreRow(sample.id, rid, REFERENCE_COSINE, cos))
        rows.append(ScoreRow(sample.id, rid, REFERENCE_SAME, same))
        rows.append(ScoreRow(sample.id, rid, IDENTITY, identity_kept(kept, same)))
        if sample.meta.get("mask"):
            mask = mask_image(inputs[i].size, sample.meta["mask"])
            value = judges.preservation(inputs[i], outputs[i], mask)
            if np.isfinite(value):
                rows.append(ScoreRow(sample.id, judges.preservation.info.id, judges.preservation_metric, value))
    return rows


# ------------------------------------------------------------------------------------ inputs


def load_input(path: str | Path) -> Image.Image:
    with Image.open(path) as opened:
        return opened.convert("RGB")


def _sha256(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, ensure_ascii=False, default=str).encode()).hexdigest()


def render_input(spec: dict[str, Any]) -> Image.Image:
    """A demo-world portrait from the renderer (deterministic on every machine)."""
    from demoworld import catalog
    from demoworld.renderer import character_attributes, render

    character = catalog.CHARACTER_BY_ID.get(spec["character"])
    if character is None:
        raise HubInputError(f"input.render: unknown demo-world character '{spec['character']}'")
    background = spec.get("background", "white")
    expression = spec.get("expression", "smile")
    if background not in catalog.BACKGROUNDS or expression not in catalog.EXPRESSIONS:
        raise HubInputError(f"input.render: unknown background '{background}' or expression '{expression}'")
    return render(character_attributes(character, background, expression), int(spec["seed"]), int(spec.get("size", 64)))


def prepare_input(case_input: dict[str, Any], *, engine: Any, data_dir: Path, prompts_dir: Path) -> tuple[Path, str]:
    """The case's input image as a PNG under `<data_dir>/edit_inputs/` and its digest (part of the cache key).

    `render` draws the demo world; `generate` makes the image with a registered checkpoint at a fixed
    seed (keyed by that checkpoint's weights hash, made once); `image` reads a file under prompts/.
    """
    kind, spec = next(iter(case_input.items()))
    if kind == "image":
        path = (prompts_dir / spec).resolve()
        if not path.is_file():
            raise HubInputError(f"input image '{spec}' not found under {prompts_dir} (edit cases with input.image need that folder)")
        return path, hashlib.sha256(path.read_bytes()).hexdigest()
    if kind == "render":
        digest = _sha256({"render": spec})
    else:
        try:
            engine.spec(spec["checkpoint"])  # unknown or not loadable here (e.g. needs a GPU): say so
        except HubInputError as exc:
            raise HubInputError(f"edit input 'generate' needs checkpoint '{spec['checkpoint']}': {exc}") from None
        digest = _sha256({"generate": spec, "weights": engine.checkpoint_hash(spec["checkpoint"])})
    path = data_dir / "edit_inputs" / f"{digest}.png"
    if not path.is_file():
        if kind == "render":
            image = render_input(spec)
        else:
            from hub.engine import GenerationRequest

            fields = {k: spec[k] for k in ("negative_prompt", "width", "height", "steps", "cfg") if k in spec}
            image = engine.generate(GenerationRequest(prompt=spec["prompt"], checkpoint=spec["checkpoint"], seed=int(spec["seed"]), **fields))[0].image
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.png")
        image.save(tmp)
        tmp.replace(path)
    return path, digest


# ------------------------------------------------------------------------------------ summaries


def summarize(records: Sequence[dict[str, Any]], anchor: str = "en", num_bootstrap: int = 1000, seed: int = 0) -> dict[str, Any]:
    """records: dicts with item_id, language, category, metric, value.

    {"overall": {key: estimate, "success_mean_over_languages": float}, "by_language": {lang: {key: estimate
    with gap_to_english}}, "by_category": {category: {key: estimate}}, "n_cases": int}; keys from REPORTED."""
    kw = {"num_bootstrap": num_bootstrap, "seed": seed}
    wanted = {metric: key for key, metric in REPORTED.items()}
    grouped: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        if r["metric"] in wanted:
            grouped[(r["language"], r["metric"])].append(r)

    def estimate(rows: list[dict[str, Any]]) -> dict[str, Any]:
        return bootstrap_mean([r["value"] for r in rows], groups=[r["item_id"] for r in rows], **kw).as_dict()

    languages = sorted({r["language"] for r in records}, key=lambda l: (l != anchor, l))
    by_language: dict[str, Any] = {}
    for lang in languages:
        entry: dict[str, Any] = {}
        for metric, key in wanted.items():
            rows = grouped.get((lang, metric), [])
            if not rows:
                continue
            est = estimate(rows)
            anchor_rows = grouped.get((anchor, metric), [])
            if anchor_rows:
                est["gap_to_english"] = bootstrap_gap(
                    [r["value"] for r in rows], [r["value"] for r in anchor_rows],
                    groups=[r["item_id"] for r in rows], anchor_groups=[r["item_id"] for r in anchor_rows], **kw,
                ).as_dict()
            entry[key] = est
        by_language[lang] = entry
    overall: dict[str, Any] = {}
    for metric, key in wanted.items():
        rows = [r for r in records if r["metric"] == metric]
        if rows:
            overall[key] = estimate(rows)
    per_language_success = [e["success"]["mean"] for e in by_language.values() if e.get("success") and e["success"]["mean"] is not None]
    overall["success_mean_over_languages"] = float(np.mean(per_language_success)) if per_language_success else None
    by_category: dict[str, Any] = {}
    for category in sorted({r.get("category", "other") for r in records}):
        entry = {}
        for metric, key in wanted.items():
            rows = [r for r in records if r["metric"] == metric and r.get("category", "other") == category]
            if rows:
                entry[key] = estimate(rows)
        by_category[category] = entry
    return {"overall": overall, "by_language": by_language, "by_category": by_category,
            "n_cases": len({r["item_id"] for r in records})}
