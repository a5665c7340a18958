"""Reading user uploads safely.

Uploads are opened lazily: the header gives the size, so an image over the pixel limit (a
decompression bomb) is refused before a single pixel is decoded. Animated or multi-frame images
(GIF, WebP, APNG, multi-page TIFF) are refused too, from the header: the hub would use only the first
frame, so what the user sees is not what is judged, and the other frames are pixels decoded for nothing.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from hub.errors import HubInputError

ALLOWED_FORMATS = {"PNG", "JPEG", "WEBP", "BMP", "GIF"}
MULTI_FRAME_MESSAGE = "Animated or multi-frame images are not accepted: upload a single still image."


def check_single_frame(image: Image.Image) -> None:
    """Refuse an animated or multi-frame image (HubInputError); `n_frames` comes from the header."""
    if getattr(image, "n_frames", 1) > 1:
        raise HubInputError(MULTI_FRAME_MESSAGE)


def open_upload(
    source: str | os.PathLike[str] | bytes | Image.Image,
    *,
    max_bytes: int,
    max_pixels: int,
    what: str = "image",
) -> Image.Image:
    """Decode an uploaded image, or raise HubInputError saying what is wrong with it."""
    if isinstance(source, Image.Image):
        image = source
        check_single_frame(image)
        if image.width * image.height > max_pixels:
            raise HubInputError(f"The {what} is {image.width}x{image.height}; the limit is {max_pixels:,} pixels.")
        return image.copy()
    if isinstance(source, (bytes, bytearray)):
        size = len(source)
        stream: io.BytesIO | Path = io.BytesIO(source)
    else:
        path = Path(source)
        if not path.is_file():
            raise HubInputError(f"The {what} upload is missing.")
        size = path.stat().st_size
        stream = path
    if size > max_bytes:
        raise HubInputError(f"The {what} file is {size / 1e6:.1f} MB; the limit is {max_bytes / 1e6:.1f} MB.")
    try:
        with Image.open(stream) as probe:
            if probe.format not in ALLOWED_FORMATS:
                raise HubInputError(f"The {what} must be PNG, JPEG, WebP, BMP or GIF (got {probe.format}).")
            width, height = probe.size
            if width * height > max_pixels:
                raise HubInputError(f"The {what} is {width}x{height}; the limit is {max_pixels:,} pixels.")
            check_single_frame(probe)
            probe.load()
            image = probe.copy()
    except HubInputError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError, ValueError):
        raise HubInputError(f"The {what} is not a readable image file.") from None
    return image
