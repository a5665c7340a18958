"""Reading reference galleries: where they live, their hash, and the ones stored for a suite.

The character kind reads galleries while it scores; writing them (checks, staging, a maintainer's
review) is `evals.galleries`, which also knows the suites. See that module for the storage layout and
why the hash depends on the pixels only.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from core.images import to_rgb
from hub.errors import HubInputError

log = logging.getLogger(__name__)

GALLERIES_DIR = "galleries"
MIN_IMAGES = 3  # the page, the CLI and the API all check these
MAX_IMAGES = 20
MANIFEST = "gallery.json"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,127}")


@dataclass(frozen=True)
class GalleryRecord:
    suite: str
    character_id: str
    path: Path
    sha256: str
    n_images: int


# ------------------------------------------------------------------------------------------ hashing


def image_digest(image: Image.Image) -> str:
    rgb = to_rgb(image)
    return hashlib.sha256(f"{rgb.width}x{rgb.height}\n".encode() + rgb.tobytes()).hexdigest()


def gallery_sha256(images: Sequence[Image.Image]) -> str:
    """The gallery's hash: order-independent, pixels only (see the module docstring)."""
    return hashlib.sha256("\n".join(sorted(image_digest(im) for im in images)).encode()).hexdigest()


def folder_images(folder: str | Path) -> list[Path]:
    folder = Path(folder)
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES) if folder.is_dir() else []


_folder_hashes: dict[tuple, str] = {}


def folder_sha256(folder: str | Path) -> str:
    """The hash of a gallery folder's images (a suite's own `references` folder, or a stored gallery),
    remembered while its files (names, sizes, modification times) stay the same."""
    paths = folder_images(folder)
    if not paths:
        raise HubInputError(f"reference gallery {folder} has no images")
    key = (str(Path(folder).resolve()), tuple((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in paths))
    if key not in _folder_hashes:
        images = []
        for path in paths:
            with Image.open(path) as opened:
                opened.load()
                images.append(opened.copy())
        _folder_hashes[key] = gallery_sha256(images)
    return _folder_hashes[key]


# ------------------------------------------------------------------------------------------ reading


def galleries_root(data_dir: str | Path) -> Path:
    return Path(data_dir) / GALLERIES_DIR


def _read(folder: Path, suite: str) -> GalleryRecord | None:
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        files = [str(f) for f in manifest["files"]]
        if manifest["suite"] != suite or manifest["character_id"] != folder.name or not files:
            raise ValueError("manifest names another gallery")
        if any(os.sep in f or not (folder / f).is_file() for f in files):
            raise ValueError("an image listed in the manifest is missing")
        return GalleryRecord(suite, folder.name, folder, str(manifest["sha256"]), len(files))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("ignoring reference gallery %s (%s)", folder, exc)
        return None


def list_galleries(data_dir: str | Path) -> list[GalleryRecord]:
    """Every stored gallery, sorted by (suite, character); broken folders are skipped (logged)."""
    root = galleries_root(data_dir)
    records = []
    if not root.is_dir():
        return records
    for suite_dir in sorted(p for p in root.iterdir() if p.is_dir() and _NAME.fullmatch(p.name)):
        for folder in sorted(p for p in suite_dir.iterdir() if p.is_dir() and _NAME.fullmatch(p.name)):
            record = _read(folder, suite_dir.name)
            if record is not None:
                records.append(record)
    return records


def galleries_of_suite(data_dir: str | Path | None, suite_name: str) -> dict[str, GalleryRecord]:
    """character id -> its author's gallery, for one suite."""
    if data_dir is None:
        return {}
    return {r.character_id: r for r in list_galleries(data_dir) if r.suite == suite_name}
