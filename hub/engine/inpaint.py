"""Inpainting that keeps the rest: outside the painted mask the output is the input.

The whole image goes through the VAE during inpainting, so without this the unmasked area comes back
softer (measured: 7/255 mean change on a 64 px demo image). As A1111 does, the original is pasted
back through the mask feathered by a box blur of `mask_blur` pixels: pixels farther than `mask_blur`
from the mask are the input's pixels exactly; the band in between blends the two.
"""

from __future__ import annotations

from PIL import Image, ImageFilter


def feathered_alpha(mask: Image.Image, size: tuple[int, int], blur: int) -> Image.Image:
    """The mask ('L', 255 = repainted) at `size`, spread by a box blur of radius `blur` (exact support)."""
    alpha = mask.convert("L")
    if alpha.size != size:
        alpha = alpha.resize(size, Image.Resampling.NEAREST)
    if blur > 0:
        alpha = alpha.filter(ImageFilter.BoxBlur(blur))
    return alpha


def paste_back(original: Image.Image, generated: Image.Image, mask: Image.Image, blur: int) -> Image.Image:
    """`generated` inside the (feathered) mask, `original` everywhere else."""
    generated = generated.convert("RGB")
    original = original.convert("RGB")
    if original.size != generated.size:
        original = original.resize(generated.size, Image.Resampling.LANCZOS)
    return Image.composite(generated, original, feathered_alpha(mask, generated.size, blur))
