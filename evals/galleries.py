"""Reference galleries from authors: a few images of one character of a suite, for the reference judge.

    save_gallery(data_dir, "characters", "shrek", [img1, img2, img3]) -> GalleryRecord
    list_galleries(data_dir) -> [GalleryRecord(suite, character_id, path, sha256, n_images), ...]
    python -m evals gallery SUITE CHARACTER_ID IMAGE...

Storage: `<data_dir>/galleries/<suite>/<character_id>/` holds `00.png`, `01.png`, ... (RGB, transparency
composited onto white, as the judges see them) and `gallery.json` (suite, character, sha256, files). A
gallery is written into a hidden folder next to it and renamed into place, so a reader never sees half a
gallery; saving again replaces the whole gallery.

Hash: sha256 over the sorted per-image digests, each sha256 of "WxH\\n" + the RGB pixels. It depends on
the pixels only (not on the PNG encoder or the order images were given in), so the same pictures always
give the same hash and any changed pixel gives a new one. The character kind records it on every score the
gallery decides (judge id `<reference judge>@<hash12>`): a new gallery is a new judge, and is rescored.
"""

from __future__ import annotations

import io
import json
import logging
import re
import shutil
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

from core.images import to_rgb
from evals.gallery_files import (
    _NAME,
    MANIFEST,
    MAX_IMAGES,
    MIN_IMAGES,
    GalleryRecord,
    folder_images,
    folder_sha256,
    galleries_of_suite,
    galleries_root,
    gallery_sha256,
    image_digest,
    list_galleries,
)
from evals.suites import get_suite
from hub.errors import HubInputError
from hub.images import MULTI_FRAME_MESSAGE

log = logging.getLogger(__name__)

# Reading lives in `evals.gallery_files` (the character kind needs it without the suites); these names
# stay importable from here for the callers that write and read.
__all__ = ["MAX_IMAGES", "MIN_IMAGES", "GalleryRecord", "PendingGallery", "accept_gallery", "folder_images", "folder_sha256", "gallery_sha256",
           "galleries_of_suite", "galleries_root", "image_digest", "list_galleries", "pending_galleries",
           "reject_gallery", "save_gallery", "stage_gallery"]

MIN_SIDE = 16  # smaller than any judge's input: nothing to compare
MAX_PIXELS = 4096 * 4096  # the hub's upload limit; also keeps decompression bombs out

_write_lock = threading.Lock()


# ------------------------------------------------------------------------------------------- saving


def _check_name(value: str, what: str) -> str:
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise HubInputError(f"gallery: {what} {value!r} is not a valid name (lowercase letters, digits, '_' and '-')")
    return value


def _check_character(suite_name: str, character_id: str, prompts_dir: str | Path | None) -> None:
    suite = get_suite(suite_name, prompts_dir)  # unknown suite: SuiteError (a HubInputError) naming the known ones
    if not suite.characters:
        raise HubInputError(f"gallery: suite '{suite_name}' has no characters (it is a {suite.kind} suite)")
    if character_id not in suite.item_ids:
        raise HubInputError(f"gallery: '{character_id}' is not a character of suite '{suite_name}'")


def _open_image(value: Any, index: int) -> Image.Image:
    """An image given as a PIL image, a file path, bytes or a binary file object; anything else refused.
    Animated or multi-frame images are refused from the header, before any pixel is decoded: a gallery
    image is one still picture of the character, and only the first frame would be kept."""
    label = f"image {index + 1}"
    try:
        if isinstance(value, Image.Image):
            image = value
        elif isinstance(value, (str, Path)):
            path = Path(value)
            label += f" ({path.name})"
            if not path.is_file():
                raise HubInputError(f"gallery: {label} is not a file")
            image = Image.open(path)
        elif isinstance(value, (bytes, bytearray)):
            image = Image.open(io.BytesIO(bytes(value)))
        elif hasattr(value, "read"):
            image = Image.open(value)
        else:
            raise HubInputError(f"gallery: {label} is a {type(value).__name__}, not an image")
        if getattr(image, "n_frames", 1) > 1:
            raise HubInputError(f"gallery: {label}: {MULTI_FRAME_MESSAGE}")
        width, height = image.size
        if width * height > MAX_PIXELS:
            raise HubInputError(f"gallery: {label} is too large ({width}x{height}; at most {MAX_PIXELS:,} pixels)")
        if min(width, height) < MIN_SIDE:
            raise HubInputError(f"gallery: {label} is too small ({width}x{height}; at least {MIN_SIDE} px a side)")
        image.load()
        return to_rgb(image)
    except HubInputError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise HubInputError(f"gallery: {label} is not an image ({type(exc).__name__})") from None


def _prepare(images: Any) -> list[Image.Image]:
    if isinstance(images, (str, bytes, bytearray, Path, Image.Image)):
        images = [images]  # one image where a list was expected: counted as one, so refused below
    images = list(images)
    count = len(images)
    if not MIN_IMAGES <= count <= MAX_IMAGES:
        raise HubInputError(f"gallery: give {MIN_IMAGES} to {MAX_IMAGES} images of the character (got {count})")
    opened = [_open_image(value, i) for i, value in enumerate(images)]
    seen: dict[str, int] = {}
    for i, image in enumerate(opened):
        digest = image_digest(image)
        if digest in seen:
            raise HubInputError(f"gallery: image {i + 1} is the same picture as image {seen[digest] + 1}")
        seen[digest] = i
    return opened


def save_gallery(data_dir: str | Path, suite_name: str, character_id: str, images: Sequence[Any], *,
                 prompts_dir: str | Path | None = None) -> GalleryRecord:
    """Store an author's reference gallery for one character of a suite (3-20 images), replacing any
    earlier one. Everything is checked before anything is written; bad input is a `HubInputError`."""
    _check_name(suite_name, "suite")
    _check_name(character_id, "character id")
    _check_character(suite_name, character_id, prompts_dir)
    opened = _prepare(images)
    root = galleries_root(data_dir)
    suite_dir = root / suite_name
    target = suite_dir / character_id
    suite_dir.mkdir(parents=True, exist_ok=True)
    # A symlinked folder must not carry the gallery outside the data folder.
    if root.resolve() not in suite_dir.resolve().parents or (target.is_symlink() or (target.exists() and not target.is_dir())):
        # The message names the gallery, not the server's folders (it reaches the page); the log has them.
        log.warning("gallery target %s is not a folder inside %s", target, root)
        raise HubInputError(f"gallery: {suite_name}/{character_id} is not a folder inside the galleries folder")
    sha256 = gallery_sha256(opened)
    files = [f"{i:02d}.png" for i in range(len(opened))]
    tmp = suite_dir / f".tmp-{character_id}-{uuid.uuid4().hex[:8]}"
    try:
        tmp.mkdir()
        for name, image in zip(files, opened):
            image.save(tmp / name, format="PNG")
        manifest = {"suite": suite_name, "character_id": character_id, "sha256": sha256, "n_images": len(files), "files": files}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1), encoding="utf-8")
        old = suite_dir / f".old-{character_id}-{uuid.uuid4().hex[:8]}"
        with _write_lock:
            had_old = target.exists()
            if had_old:
                target.rename(old)
            try:
                tmp.rename(target)
            except OSError:
                if had_old:
                    old.rename(target)  # put the previous gallery back
                raise
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # only left when something failed before the rename
    return GalleryRecord(suite_name, character_id, target, sha256, len(files))


# ------------------------------------------------------------------------------------------ reading


# ------------------------------------------------------------------------------------- pending uploads
# On a public hub an upload does not replace the gallery in use: it waits under
# `<data_dir>/galleries_pending/<id>/` (laid out like a data folder of its own, plus `stage.json`
# naming the owner) until a maintainer accepts it (then it is saved as above) or rejects it.

PENDING_DIR = "galleries_pending"
STAGE_FILE = "stage.json"
_STAGE_ID = re.compile(r"[0-9a-f]{16}")


@dataclass(frozen=True)
class PendingGallery:
    stage_id: str
    suite: str
    character_id: str
    owner: str
    sha256: str
    n_images: int


def stage_gallery(data_dir: str | Path, suite_name: str, character_id: str, images: Sequence[Any], *, owner: str,
                  prompts_dir: str | Path | None = None) -> PendingGallery:
    """Check and store an upload for a maintainer's review (the same checks as `save_gallery`)."""
    stage_id = uuid.uuid4().hex[:16]
    stage = Path(data_dir) / PENDING_DIR / stage_id
    stage.mkdir(parents=True)
    try:
        record = save_gallery(stage, suite_name, character_id, images, prompts_dir=prompts_dir)
        (stage / STAGE_FILE).write_text(json.dumps({"owner": owner}), encoding="utf-8")
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    return PendingGallery(stage_id, suite_name, character_id, owner, record.sha256, record.n_images)


def _stage(data_dir: str | Path, stage_id: str) -> Path:
    stage_id = (stage_id or "").strip()
    if not _STAGE_ID.fullmatch(stage_id):
        raise HubInputError("Unknown pending gallery.")
    stage = Path(data_dir) / PENDING_DIR / stage_id
    if not (stage / STAGE_FILE).is_file():
        raise HubInputError("Unknown pending gallery.")
    return stage


def pending_galleries(data_dir: str | Path) -> list[PendingGallery]:
    root = Path(data_dir) / PENDING_DIR
    found = []
    for stage in sorted(root.iterdir()) if root.is_dir() else []:
        if not (_STAGE_ID.fullmatch(stage.name) and (stage / STAGE_FILE).is_file()):
            continue
        owner = str(json.loads((stage / STAGE_FILE).read_text(encoding="utf-8")).get("owner", ""))
        for record in list_galleries(stage):
            found.append(PendingGallery(stage.name, record.suite, record.character_id, owner, record.sha256, record.n_images))
    return found


def accept_gallery(data_dir: str | Path, stage_id: str, prompts_dir: str | Path | None = None) -> GalleryRecord:
    """A maintainer accepts a pending upload: it replaces the character's gallery (atomically)."""
    stage = _stage(data_dir, stage_id)
    records = list_galleries(stage)
    if len(records) != 1:
        raise HubInputError("That pending gallery is damaged: reject it.")
    staged = records[0]
    images = [Image.open(path) for path in folder_images(staged.path)]
    record = save_gallery(data_dir, staged.suite, staged.character_id, images, prompts_dir=prompts_dir)
    shutil.rmtree(stage, ignore_errors=True)
    return record


def reject_gallery(data_dir: str | Path, stage_id: str) -> None:
    shutil.rmtree(_stage(data_dir, stage_id))
