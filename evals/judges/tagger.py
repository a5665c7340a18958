"""Tagger judge in the WD v3 format: a timm image model plus `selected_tags.csv`.

A tagger folder holds `config.json` (timm's: `architecture`, `num_classes`, `model_args`,
`pretrained_cfg`), `model.safetensors` and `selected_tags.csv` (`tag_id,name,category,count`;
category 9 = rating, 0 = general, 4 = character). The same loader reads a Hub id (downloaded with only
those files) or a local folder; weights load only from safetensors.

Preprocessing follows the WD v3 reference: RGBA onto white, pad to square with white, resize to the
model's input size (read from its config: 448 for WD v3), scale to [0, 1], normalise with the config's
mean/std, RGB -> BGR. Outputs are sigmoid probabilities.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
from PIL import Image

from core.images import pad_square, to_rgb
from evals.judges.base import (
    BuildContext,
    JudgeInfo,
    JudgeKind,
    JudgeLoadError,
    Tagger,
    batched,
    l2_normalize,
    load_image,
    pick_device,
    resolve_source,
)

_POOLS: dict[bool, Any] = {}


def _pool(prefetch: bool = False) -> Any:
    """Process-wide thread pools: one for per-image work, one (single thread) to prefetch the next chunk."""
    from concurrent.futures import ThreadPoolExecutor

    if prefetch not in _POOLS:
        workers = 1 if prefetch else max(1, min(8, os.cpu_count() or 1))
        _POOLS[prefetch] = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="tagger-prep")
    return _POOLS[prefetch]


CATEGORY_NAMES = {9: "rating", 0: "general", 1: "artist", 3: "copyright", 4: "character", 5: "meta"}
# WD v3's reference script (neggles/wdv3-timm, wdv3_timm.py) defaults to general 0.35, character 0.75.
# The hub is stricter on characters (0.85, as DESIGN.md states): a board's "hit" claims the character
# was recognised, and a false hit misleads more than a miss. Per judge in the config's `thresholds`.
DEFAULT_THRESHOLDS = {"general": 0.35, "character": 0.85}
TAGGER_FILES = ("config.json", "model.safetensors", "selected_tags.csv")


@dataclass(frozen=True)
class TagTable:
    names: tuple[str, ...]
    categories: np.ndarray  # int per tag
    index: dict[str, int] = field(repr=False)
    # Other names of a tag (Danbooru aliases), from an optional `aliases` column (space-separated tags)
    # where a tagger ships one; WD v3's own CSV has none.
    aliases: dict[str, int] = field(default_factory=dict, repr=False)

    @classmethod
    def read(cls, path: Path) -> "TagTable":
        names: list[str] = []
        categories: list[int] = []
        aliases: dict[str, int] = {}
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            missing = {"name", "category"} - set(reader.fieldnames or [])
            if missing:
                raise JudgeLoadError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
            for row in reader:
                for alias in (row.get("aliases") or "").split():
                    aliases.setdefault(alias, len(names))
                names.append(row["name"])
                categories.append(int(row["category"]))
        return cls(tuple(names), np.asarray(categories, dtype=np.int64), {n: i for i, n in enumerate(names)}, aliases)

    def character_tag(self, name: str) -> str | None:
        """The character tag a typed name spells ("Hatsune Miku" -> `hatsune_miku`), through the tag
        itself or one of its aliases; None when no character row matches."""
        spelled = "_".join(name.casefold().split())
        index = self.index.get(spelled, self.aliases.get(spelled))
        if index is None or int(self.categories[index]) != 4:
            return None
        return self.names[index]

    def __len__(self) -> int:
        return len(self.names)


def write_selected_tags(path: Path, tags: Sequence[tuple[str, int]]) -> None:
    """Write a `selected_tags.csv` (tag_id,name,category,count) for (name, category) pairs."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["tag_id", "name", "category", "count"])
        for i, (name, category) in enumerate(tags):
            writer.writerow([i, name, category, 1000])


class TaggerJudge:
    kind = "tagger"

    def __init__(
        self,
        model: Any,
        tags: TagTable,
        *,
        input_size: int,
        mean: Sequence[float] = (0.5, 0.5, 0.5),
        std: Sequence[float] = (0.5, 0.5, 0.5),
        thresholds: dict[str, float] | None = None,
        info: JudgeInfo | None = None,
        device: Any = None,
        batch_size: int = 16,
    ):
        import torch

        self.device = pick_device(device) if not isinstance(device, torch.device) else device
        self.model = model.eval().to(self.device)
        self.tags = tags
        self.input_size = int(input_size)
        self.mean = np.asarray(mean, dtype=np.float32).reshape(3, 1, 1)
        self.std = np.asarray(std, dtype=np.float32).reshape(3, 1, 1)
        self.thresholds = {**DEFAULT_THRESHOLDS, **(thresholds or {})}
        self.info = info or JudgeInfo("tagger", "tagger", "1")
        self.batch_size = batch_size
        # Per-tag threshold vector: character tags use 'character', ratings 'rating', the rest 'general'.
        general = self.thresholds["general"]
        by_category = {4: self.thresholds["character"], 9: self.thresholds.get("rating", general)}
        self.tag_thresholds = np.asarray([by_category.get(int(c), general) for c in tags.categories], np.float64)

    # ------------------------------------------------------------------------------------ loading
    @classmethod
    def load(
        cls,
        source: str | Path,
        *,
        thresholds: dict[str, float] | None = None,
        info: JudgeInfo | None = None,
        device: Any = None,
        batch_size: int = 16,
    ) -> "TaggerJudge":
        import safetensors.torch
        import timm

        judge_id = info.id if info else "tagger"
        folder = resolve_source(source, TAGGER_FILES, judge_id)
        try:
            config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
            architecture = config["architecture"]
            num_classes = int(config["num_classes"])
        except (OSError, ValueError, KeyError) as exc:
            raise JudgeLoadError(f"judge '{judge_id}': {folder / 'config.json'} is not a timm config ({exc})") from exc
        pretrained_cfg = config.get("pretrained_cfg") or {}
        tags = TagTable.read(folder / "selected_tags.csv")
        if len(tags) != num_classes:
            raise JudgeLoadError(
                f"judge '{judge_id}': selected_tags.csv has {len(tags)} tags but the model has {num_classes} classes"
            )
        try:
            model_args = {**(config.get("model_args") or {}), "num_classes": num_classes}  # timm may list it twice
            model = timm.create_model(architecture, pretrained=False, **model_args)
            state = safetensors.torch.load_file(str(folder / "model.safetensors"), device="cpu")
            model.load_state_dict(state)
        except Exception as exc:
            raise JudgeLoadError(f"judge '{judge_id}': cannot load {folder / 'model.safetensors'} ({exc})") from exc
        input_size = pretrained_cfg.get("input_size") or getattr(model, "pretrained_cfg", {}).get("input_size")
        if not input_size:
            raise JudgeLoadError(f"judge '{judge_id}': config.json has no pretrained_cfg.input_size")
        return cls(
            model,
            tags,
            input_size=int(input_size[-1]),
            mean=pretrained_cfg.get("mean", (0.5, 0.5, 0.5)),
            std=pretrained_cfg.get("std", (0.5, 0.5, 0.5)),
            thresholds=thresholds,
            info=info,
            device=device,
            batch_size=batch_size,
        )

    # ------------------------------------------------------------------------------ preprocessing
    def resized_pixels(self, image: Image.Image | str | Path) -> np.ndarray:
        """One image -> (S, S, 3) uint8 RGB: onto white, padded square with white, resized (bicubic)."""
        image = pad_square(to_rgb(load_image(image)))
        if image.size != (self.input_size, self.input_size):
            image = image.resize((self.input_size, self.input_size), Image.Resampling.BICUBIC)
        return np.asarray(image, dtype=np.uint8)

    def _normalise(self, pixels: Any) -> Any:
        """(N, S, S, 3) uint8 tensor -> (N, 3, S, S) float, scaled to [0, 1], mean/std-normalised, BGR."""
        import torch

        x = pixels.permute(0, 3, 1, 2).float().div_(255.0)
        mean = torch.as_tensor(self.mean.reshape(1, 3, 1, 1), device=x.device)
        std = torch.as_tensor(self.std.reshape(1, 3, 1, 1), device=x.device)
        return ((x - mean) / std).flip(1)  # RGB -> BGR

    def preprocess_array(self, image: Image.Image | str | Path) -> np.ndarray:
        """One image -> (3, S, S) float32, normalised, channels in BGR order (the model's input)."""
        import torch

        return self._normalise(torch.from_numpy(self.resized_pixels(image)[None].copy()))[0].numpy()

    def _pixels(self, images: Sequence[Any]) -> np.ndarray:
        # PIL's resize releases the GIL: a batch's images are prepared in parallel threads.
        if len(images) == 1:
            return self.resized_pixels(images[0])[None].copy()  # writable, for torch.from_numpy
        return np.stack(list(_pool().map(self.resized_pixels, images)))

    def preprocess(self, images: Sequence[Image.Image | str | Path]) -> Any:
        """Model input for a batch on the judge's device. Only uint8 pixels cross to the device;
        scaling, normalisation and the channel flip run there."""
        import torch

        pixels = torch.from_numpy(self._pixels(images)).to(self.device, non_blocking=True)
        return self._normalise(pixels).to(self._dtype)

    @property
    def _dtype(self) -> Any:
        return next(self.model.parameters()).dtype

    def _chunks(self, images: list[Any], batch_size: int):
        """Model inputs chunk by chunk; the next chunk is prepared on the CPU while the model runs."""
        chunks = list(batched(images, batch_size))
        if len(chunks) == 1:
            yield chunks[0], self.preprocess(chunks[0])
            return
        pending = _pool(prefetch=True).submit(self._pixels, chunks[0])
        for i, chunk in enumerate(chunks):
            pixels = pending.result()
            if i + 1 < len(chunks):
                pending = _pool(prefetch=True).submit(self._pixels, chunks[i + 1])
            import torch

            yield chunk, self._normalise(torch.from_numpy(pixels).to(self.device, non_blocking=True)).to(self._dtype)

    # ---------------------------------------------------------------------------------- inference
    def predict(self, images: Sequence[Image.Image | str | Path], batch_size: int | None = None) -> np.ndarray:
        """Sigmoid probabilities, shape (N, n_tags)."""
        import torch

        images = list(images)
        if not images:
            return np.zeros((0, len(self.tags)), dtype=np.float32)
        out = []
        with torch.inference_mode():
            for _, x in self._chunks(images, batch_size or self.batch_size):
                logits = self.model(x)
                out.append(torch.sigmoid(logits.float()).cpu().numpy())
        return np.concatenate(out)

    def embed(self, images: Sequence[Image.Image | str | Path], batch_size: int | None = None) -> np.ndarray:
        """Pooled features before the classifier, L2-normalised (for image-image similarity)."""
        import torch

        images = list(images)
        out = []
        with torch.inference_mode():
            for chunk, x in self._chunks(images, batch_size or self.batch_size):
                features = self.model.forward_head(self.model.forward_features(x), pre_logits=True)
                out.append(features.float().reshape(len(chunk), -1).cpu().numpy())
        return l2_normalize(np.concatenate(out)) if out else np.zeros((0, 0), np.float32)

    image_embeddings = embed

    def has_tag(self, tag: str) -> bool:
        return tag in self.tags.index

    def threshold_for(self, tag: str) -> float:
        return float(self.tag_thresholds[self.tags.index[tag]])

    def tag_probabilities(self, probs: np.ndarray, tags: Iterable[str]) -> np.ndarray:
        """Columns of `probs` for `tags`; tags the model does not know get NaN."""
        tags = list(tags)
        out = np.full((probs.shape[0], len(tags)), np.nan, dtype=np.float32)
        for j, tag in enumerate(tags):
            i = self.tags.index.get(tag)
            if i is not None:
                out[:, j] = probs[:, i]
        return out

    def decide(self, probs: np.ndarray) -> list[dict[str, float]]:
        """Tags at or above their category threshold, per image, highest first."""
        result = []
        for row in probs:
            hits = np.nonzero(row >= self.tag_thresholds)[0]
            ordered = sorted(hits, key=lambda i: -row[i])
            result.append({self.tags.names[i]: float(row[i]) for i in ordered})
        return result

    def tag_images(self, images: Sequence[Image.Image | str | Path]) -> list[dict[str, float]]:
        return self.decide(self.predict(images))

    def text_scores(self, images: Sequence[Image.Image], tag_lists: Sequence[Sequence[str]]) -> np.ndarray:
        """A tagger's image-text score: mean probability of the known tags of each text (NaN if none known)."""
        probs = self.predict(images)
        scores = np.full(len(images), np.nan, dtype=np.float32)
        for n, tags in enumerate(tag_lists):
            values = self.tag_probabilities(probs[n : n + 1], tags)[0]
            values = values[~np.isnan(values)]
            if values.size:
                scores[n] = float(values.mean())
        return scores


def build_random_tagger(
    folder: str | Path,
    tags: Sequence[tuple[str, int]] | Sequence[str],
    *,
    architecture: str = "test_vit",
    input_size: int = 64,
    seed: int = 0,
    model_args: dict[str, Any] | None = None,
) -> Path:
    """Write a tiny random timm tagger in the WD v3 folder format; returns the folder.

    `tags` are names (category 0) or (name, category) pairs. The first 4 rows are the WD v3 ratings
    (category 9) unless `tags` already has them. This is what `demo-random-tagger` is until the trained
    demo tagger replaces it: its scores are noise, and it says so in `config.json`.
    """
    import safetensors.torch
    import timm
    import torch

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    pairs = [(t, 0) if isinstance(t, str) else (str(t[0]), int(t[1])) for t in tags]
    if not any(c == 9 for _, c in pairs):
        pairs = [(r, 9) for r in ("general", "sensitive", "questionable", "explicit")] + pairs
    seen: set[str] = set()
    pairs = [p for p in pairs if not (p[0] in seen or seen.add(p[0]))]
    args = {"img_size": input_size} if model_args is None and architecture.startswith("test_vit") else dict(model_args or {})
    torch.manual_seed(seed)
    model = timm.create_model(architecture, pretrained=False, num_classes=len(pairs), **args)
    base_cfg = dict(getattr(model, "pretrained_cfg", {}) or {})
    pretrained_cfg = {
        "input_size": [3, input_size, input_size],
        "fixed_input_size": True,
        "interpolation": "bicubic",
        "crop_pct": 1.0,
        "crop_mode": "center",
        "mean": list(base_cfg.get("mean", (0.5, 0.5, 0.5))),
        "std": list(base_cfg.get("std", (0.5, 0.5, 0.5))),
        "num_classes": len(pairs),
    }
    config = {
        "architecture": architecture,
        "num_classes": len(pairs),
        "model_args": args,
        "pretrained_cfg": pretrained_cfg,
        "note": f"random weights (seed {seed}); scores are noise, for offline plumbing only",
    }
    (folder / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    safetensors.torch.save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "model.safetensors"))
    write_selected_tags(folder / "selected_tags.csv", pairs)
    return folder


def _build(ctx: BuildContext) -> TaggerJudge:
    return TaggerJudge.load(ctx.source, thresholds=ctx.thresholds, info=ctx.info, device=ctx.device, batch_size=ctx.batch_size)


KIND = JudgeKind("tagger", roles=("tagger",), protocol=Tagger, build=_build)
