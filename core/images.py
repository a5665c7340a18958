"""Pictures as every layer reads them: RGB, transparency on white, squares padded with white.

Anime taggers, the reference and name judges, the LoRA trainer and the engine's inputs all flatten
transparency the same way, so one upload gives the same pixels wherever it goes (and a gallery's
pixel hash, which depends on exactly these pixels, does not change with the caller).
"""

from __future__ import annotations

from PIL import Image

WHITE = (255, 255, 255)


def to_rgb(image: Image.Image, background: tuple[int, int, int] = WHITE) -> Image.Image:
    """A new RGB image, any transparency (RGBA, LA, PA, palette with transparency) composited onto
    `background`."""
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (*background, 255))
        canvas.alpha_composite(rgba)
        return canvas.convert("RGB")
    return image.convert("RGB")


def pad_square(image: Image.Image, background: tuple[int, int, int] = WHITE) -> Image.Image:
    """An RGB image padded on its shorter side so it is square, content centred."""
    width, height = image.size
    if width == height:
        return image
    side = max(width, height)
    canvas = Image.new("RGB", (side, side), background)
    canvas.paste(image, ((side - width) // 2, (side - height) // 2))
    return canvas
