"""What every judge shares: the protocols it satisfies, where its weights come from, which device it
runs on, image helpers.

A judge is any object with an `info: JudgeInfo`; what it can do is said by the capability protocols
below, which `evals.judges.registry.build_judge` checks when it builds one for an eval role:
- `Tagger` (role `tagger`): Danbooru tag probabilities (WD v3 format);
- `ImageTextJudge` (role `image_text`): image-text scores and image embeddings (SigLIP 2, CLIP);
- `ImageEmbedder`: image embeddings only (what the reference judge compares);
- `GalleryJudge` (role `reference`): "same character as this gallery?";
- `NameJudge` (role `name`): zero-shot "which of these names is this character?".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, Sequence, runtime_checkable

import numpy as np
from PIL import Image

from hub.errors import HubInputError


class JudgeLoadError(HubInputError):
    """A judge's weights or files could not be loaded; the message names the judge and the file."""


@dataclass(frozen=True)
class JudgeInfo:
    """Identity recorded next to every score: which judge, which version."""

    id: str
    kind: str
    version: str


@runtime_checkable
class ImageEmbedder(Protocol):
    info: JudgeInfo

    def image_embeddings(self, images: Sequence[Any]) -> np.ndarray: ...


@runtime_checkable
class Tagger(Protocol):
    info: JudgeInfo
    tags: Any

    def predict(self, images: Sequence[Any]) -> np.ndarray: ...

    def has_tag(self, tag: str) -> bool: ...

    def threshold_for(self, tag: str) -> float: ...

    def decide(self, probs: np.ndarray) -> list[dict[str, float]]: ...

    def image_embeddings(self, images: Sequence[Any]) -> np.ndarray: ...


@runtime_checkable
class ImageTextJudge(Protocol):
    info: JudgeInfo

    def scores(self, images: Sequence[Any], texts: Sequence[str]) -> np.ndarray: ...

    def image_embeddings(self, images: Sequence[Any]) -> np.ndarray: ...


@runtime_checkable
class GalleryJudge(Protocol):
    info: JudgeInfo

    def judge(self, images: Sequence[Any], gallery: Any) -> list[Any]: ...


@runtime_checkable
class NameJudge(Protocol):
    info: JudgeInfo

    def recognise(self, images: Sequence[Any], candidate_sets: Sequence[Any]) -> list[Any]: ...


@dataclass(frozen=True)
class BuildContext:
    """What a judge kind's builder gets: the config entry's parts and where things are."""

    info: JudgeInfo
    source: str  # folder sources already made absolute
    thresholds: dict[str, float]
    options: dict[str, Any]
    data_dir: Path
    device: Any
    others: dict[str, Any]  # judges already built in this set, by id (`judge:ID` sources)
    prompts_dir: Path | None

    @property
    def batch_size(self) -> int:
        return int(self.options.get("batch_size", 16))


@dataclass(frozen=True)
class JudgeKind:
    """A kind of judge, as the registry knows it: the eval roles it can play, the protocol every built
    judge must satisfy, and its builder."""

    name: str
    roles: tuple[str, ...]
    protocol: type
    build: Callable[[BuildContext], Any]


def resolve_source(source: str | Path, required: Sequence[str], judge_id: str = "judge") -> Path:
    """A local folder holding `required` files, from `folder:PATH`, `hub:ORG/NAME` or a bare path.

    Hub ids are downloaded with only the listed files (safetensors weights, never pickles); a bare
    string that is not an existing folder is taken as a Hub id.
    """
    text = str(source)
    kind, sep, value = text.partition(":")
    if sep and kind == "folder":
        folder = Path(value).expanduser()
    elif sep and kind == "hub":
        folder = _download(value, required, judge_id)
    elif Path(text).expanduser().is_dir():
        folder = Path(text).expanduser()
    elif sep and kind in ("file", "builtin"):
        raise JudgeLoadError(f"judge '{judge_id}': source {text!r} must be a folder or a Hub id")
    else:
        folder = _download(text, required, judge_id)
    if not folder.is_dir():
        raise JudgeLoadError(f"judge '{judge_id}': folder {folder} not found")
    for name in required:
        if not (folder / name).is_file():
            raise JudgeLoadError(f"judge '{judge_id}': {folder / name} is missing")
    return folder


def _download(repo_id: str, required: Sequence[str], judge_id: str) -> Path:
    try:
        from huggingface_hub import snapshot_download

        patterns = list(required) + ["*.json", "*.txt", "*.model", "*.safetensors", "*.csv"]
        return Path(snapshot_download(repo_id, allow_patterns=patterns))
    except Exception as exc:  # offline, gated, missing repo: all the same to the user
        raise JudgeLoadError(f"judge '{judge_id}': cannot fetch '{repo_id}' from the Hub ({type(exc).__name__})") from exc


def pick_device(device: str | None = None) -> Any:
    import torch

    if device and device != "auto":
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    return torch.device("cpu")


def load_image(image: Image.Image | str | Path) -> Image.Image:
    if isinstance(image, Image.Image):
        return image
    with Image.open(image) as opened:
        opened.load()
        return opened.copy()


def l2_normalize(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


def batched(items: Sequence[Any], size: int):
    for start in range(0, len(items), max(1, size)):
        yield items[start : start + size]


def pooled(output: Any) -> Any:
    """Transformers 5 returns model outputs from get_*_features; older versions return tensors."""
    if hasattr(output, "pooler_output"):
        return output.pooler_output
    return output
