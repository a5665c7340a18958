"""Inpainting keeps the rest: outside the painted mask (beyond the feather band of `engine.mask_blur`
pixels) the output is the input, pixel for pixel; inside it the image changes; the band blends.

Checked on every family that inpaints (SD 1.5, SDXL, Z-Image; tiny models built here), and measured
on the committed demo model: the mean change outside vs inside the mask without the paste-back (what
the issue reported) and with it.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from hub.config import REPO_ROOT
from hub.engine import EditRequest
from hub.engine.inpaint import feathered_alpha, paste_back
from hub.families import FAMILIES
from tests.tiny_models import checkpoint_entry, save_tiny_sdxl, save_tiny_z_image, tiny_engine

SIZE, EDGE = 64, 32  # the mask covers rows 0..EDGE-1 (the top half)
INPAINT_CHECKPOINTS = {"sd15": "demo-random", "sdxl": "tiny-sdxl", "z-image": "tiny-z-image"}


@pytest.fixture(scope="module")
def inpaint_engine(tmp_path_factory, builtin_root):
    root = tmp_path_factory.mktemp("inpaint")
    checkpoints = [
        checkpoint_entry("tiny-sdxl", "sdxl", save_tiny_sdxl(root / "sdxl"), 5.0, "euler"),
        checkpoint_entry("tiny-z-image", "z-image", save_tiny_z_image(root / "z-image"), 2.0, "default"),
        {"id": "demo-multilingual", "name": "Demo multilingual", "family": "sd15",
         "source": f"folder:{REPO_ROOT / 'models' / 'demo-multilingual'}",
         "defaults": {"width": 64, "height": 64, "steps": 25, "cfg": 3.0, "sampler": "euler_a"}},
    ]
    engine = tiny_engine(root, builtin_root, checkpoints)
    yield engine
    engine.shutdown()


def demo_image() -> Image.Image:
    """A 64x64 demo-world portrait (deterministic)."""
    from demoworld.hooks import random_portrait

    return random_portrait(seed=0)[0].convert("RGB")


def top_half_mask() -> Image.Image:
    mask = Image.new("L", (SIZE, SIZE), 0)
    mask.paste(255, (0, 0, SIZE, EDGE))
    return mask


def change(a: Image.Image, b: Image.Image) -> np.ndarray:
    """Per-pixel absolute difference, in 0..255, averaged over the colour channels."""
    return np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)).mean(axis=2)


def test_every_inpainting_family_is_checked_here():
    assert {name for name, family in FAMILIES.items() if family.supports("inpaint")} == set(INPAINT_CHECKPOINTS)


def test_the_feather_band_is_exactly_mask_blur_pixels_wide():
    black, white = Image.new("RGB", (SIZE, SIZE), "black"), Image.new("RGB", (SIZE, SIZE), "white")
    for blur in (0, 2, 4):
        out = np.asarray(paste_back(black, white, top_half_mask(), blur))[:, SIZE // 2, 0].astype(int)
        assert (out[: EDGE - blur] == 255).all() and (out[EDGE + blur:] == 0).all()
        band = out[EDGE - blur: EDGE + blur]
        assert ((band > 0) & (band < 255)).all() and (np.diff(band) < 0).all()  # a strict ramp down
    alpha = np.asarray(feathered_alpha(top_half_mask(), (SIZE, SIZE), 4))
    assert alpha[EDGE + 3].max() > 0 and alpha[EDGE + 4].max() == 0


@pytest.mark.parametrize("family", list(INPAINT_CHECKPOINTS))
def test_inpainting_keeps_everything_outside_the_mask(inpaint_engine, family):
    engine, source, blur = inpaint_engine, demo_image(), inpaint_engine.config.engine.mask_blur
    result = engine.edit(EditRequest(image=source, prompt="a red hat", mask=top_half_mask(), strength=0.9, seed=1,
                                     checkpoint=INPAINT_CHECKPOINTS[family]))[0]
    assert result.recipe.task == "inpaint" and result.recipe.extra == {"mask_blur": blur}
    diff = change(source, result.image)
    assert diff[EDGE + blur:].max() == 0  # beyond the band: the input's pixels, exactly
    assert diff[: EDGE - blur].mean() > 1.0  # inside: repainted
    band = diff[EDGE - blur: EDGE + blur]
    assert 0 < band.mean() < diff[: EDGE - blur].mean()  # the band blends the two


def test_demo_model_change_outside_the_mask_before_and_after(inpaint_engine, monkeypatch):
    """The issue's measurement on the demo model (64x64 demo image, top half masked, strength 0.9)."""
    engine, source, blur = inpaint_engine, demo_image(), inpaint_engine.config.engine.mask_blur
    # 10 steps keep the test short; the report's numbers use the checkpoint's 25.
    request = EditRequest(image=source, prompt="a red hat", mask=top_half_mask(), strength=0.9, seed=0, steps=10,
                          checkpoint="demo-multilingual")
    with monkeypatch.context() as patch:
        patch.setattr("hub.engine.call.paste_back", lambda original, generated, mask, blur: generated.convert("RGB"))
        before = change(source, engine.edit(request)[0].image)  # the pipeline's own output
    after = change(source, engine.edit(request)[0].image)
    numbers = {
        "before_outside": before[EDGE:].mean(), "before_inside": before[:EDGE].mean(),
        "after_outside": after[EDGE:].mean(), "after_beyond_band": after[EDGE + blur:].mean(),
        "after_inside": after[:EDGE].mean(),
    }
    print("inpaint change /255 on demo-multilingual:", {key: round(float(value), 2) for key, value in numbers.items()})
    assert numbers["before_outside"] > 0.5  # without the paste-back the rest of the image drifts
    assert numbers["after_beyond_band"] == 0
    assert np.array_equal(after[: EDGE - blur], before[: EDGE - blur])  # the repainted area is the pipeline's
