"""Character references, engine side: a character drawn from reference images (`GenerationRequest(
references=...)`, the `reference` task) and instruction edits with extra references (`EditRequest(...,
references=...)`), on tiny FLUX.2 klein, Qwen-Image-Edit Plus and Z-Image-Omni models built here, and
the demo editor's reference mode (InstructPix2Pix with one reference, on a tiny InstructPix2Pix of
the same layout as the committed `demo-edit`).

Every refusal is a short `HubInputError` raised before anything runs; the engine serves the next request.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from hub.engine import EditRequest, GenerationRequest
from hub.engine.requests import image_hash
from hub.errors import HubInputError
from tests.tiny_models import (
    checkpoint_entry,
    lower_qwen_edit_image_sizes,
    save_tiny_flux2_klein,
    save_tiny_instruct_pix2pix,
    save_tiny_qwen_image_edit_plus,
    save_tiny_z_image_omni,
)

LIST_FAMILIES = ["tiny-klein", "tiny-qwen-edit", "tiny-z-omni"]  # take the image to edit plus references


@pytest.fixture(scope="module")
def reference_engine(tmp_path_factory, builtin_root):
    from tests.tiny_models import tiny_engine

    patch = lower_qwen_edit_image_sizes()
    root = tmp_path_factory.mktemp("references")
    checkpoints = [
        checkpoint_entry("tiny-klein", "flux2-klein", save_tiny_flux2_klein(root / "klein"), 1.0, "default"),
        checkpoint_entry("tiny-qwen-edit", "qwen-image-edit", save_tiny_qwen_image_edit_plus(root / "qwen"), 1.0, "default"),
        checkpoint_entry("tiny-z-omni", "z-image-omni", save_tiny_z_image_omni(root / "z-omni"), 2.0, "default"),
        checkpoint_entry("tiny-ip2p", "instruct-pix2pix", save_tiny_instruct_pix2pix(root / "ip2p"), 4.0, "euler_a"),
    ]
    engine = tiny_engine(root, builtin_root, checkpoints, limits={"max_upload_pixels": 512 * 512})
    yield engine
    engine.shutdown()
    patch.undo()


def portrait(colour: tuple[int, int, int], size: int = 64) -> Image.Image:
    """A flat 'character': a coloured square on white."""
    image = Image.new("RGB", (size, size), "white")
    image.paste(colour, (size // 4, size // 4, 3 * size // 4, 3 * size // 4))
    return image


RED, BLUE, GREEN = portrait((220, 40, 40)), portrait((40, 40, 220)), portrait((40, 200, 60))


def pixels(item) -> np.ndarray:
    return np.asarray(item.image, dtype=np.int16)


def draw(checkpoint: str, *references, prompt: str = "the character in a park", seed: int = 2) -> GenerationRequest:
    return GenerationRequest(prompt, checkpoint=checkpoint, seed=seed, references=tuple(references))


def edit(checkpoint: str, *references, image: Image.Image | None = None, **settings) -> EditRequest:
    image = portrait((200, 200, 40)) if image is None else image
    return EditRequest(image=image, prompt="dress her like the reference", checkpoint=checkpoint, seed=4,
                       references=tuple(references), **settings)


@pytest.mark.parametrize("checkpoint", LIST_FAMILIES)
def test_character_from_references(reference_engine, checkpoint):
    engine = reference_engine
    first = engine.generate(draw(checkpoint, RED, BLUE))
    again = engine.generate(draw(checkpoint, RED, BLUE))
    other = engine.generate(draw(checkpoint, RED, GREEN))
    recipe = first[0].recipe
    assert recipe.task == "reference" and first[0].image.size == (64, 64)
    assert recipe.references == (image_hash(RED), image_hash(BLUE))  # each reference, in order
    assert f"Reference hashes: \"{image_hash(RED)}, {image_hash(BLUE)}\"" in recipe.to_a1111()  # in the PNG too
    assert other[0].recipe.references[1] == image_hash(GREEN) != image_hash(BLUE)
    assert np.array_equal(pixels(first[0]), pixels(again[0]))  # same seed, same pixels
    assert not np.array_equal(pixels(first[0]), pixels(other[0]))  # the references condition the image


@pytest.mark.parametrize("checkpoint", LIST_FAMILIES)
def test_instruction_edit_with_references(reference_engine, checkpoint):
    engine = reference_engine
    first, again = engine.edit(edit(checkpoint, RED)), engine.edit(edit(checkpoint, RED))
    other = engine.edit(edit(checkpoint, GREEN))
    assert first[0].recipe.task == "instruct" and first[0].recipe.references == (image_hash(RED),)
    assert np.array_equal(pixels(first[0]), pixels(again[0]))
    assert not np.array_equal(pixels(first[0]), pixels(other[0]))


def test_instruct_pix2pix_reference_mode_takes_one_reference(reference_engine):
    engine = reference_engine
    calls = engine.stats["pipeline_calls"]
    first = engine.generate(draw("tiny-ip2p", RED, prompt="crown"))
    again = engine.generate(draw("tiny-ip2p", RED, prompt="crown"))
    other = engine.generate(draw("tiny-ip2p", BLUE, prompt="crown"))
    assert engine.stats["pipeline_calls"] - calls == 3
    recipe = first[0].recipe
    assert recipe.task == "reference" and recipe.references == (image_hash(RED),) and recipe.image_guidance == 1.5
    assert first[0].image.size == RED.size  # it draws from the reference itself, at its size
    assert np.array_equal(pixels(first[0]), pixels(again[0]))
    assert not np.array_equal(pixels(first[0]), pixels(other[0]))


BAD = {
    "references for a family that takes none": (draw("demo-random", RED), "'demo-random' does not take reference images"),
    "references for an instruct edit of a one-image family": (edit("tiny-ip2p", RED), "edits one image at a time"),
    "two references for the demo editor": (draw("tiny-ip2p", RED, BLUE), "takes at most 1 reference image here (got 2)"),
    "a fifth reference": (draw("tiny-klein", RED, BLUE, GREEN, RED, BLUE), "at most 4 reference images here (got 5)"),
    "a fourth reference besides the image to edit": (edit("tiny-klein", RED, BLUE, GREEN, RED), "at most 3 reference images"),
    "a fourth reference for Qwen-Image-Edit": (draw("tiny-qwen-edit", RED, BLUE, GREEN, RED), "at most 3 reference images"),
    "a reference that is not an image": (draw("tiny-klein", RED, "portrait.png"), "Reference 2 is not an image"),
    "a reference too small for the family": (draw("tiny-klein", portrait((1, 2, 3), 32)), "32x32; 'tiny-klein' needs at least 64 px"),
    "a reference too small for any family": (draw("tiny-qwen-edit", portrait((1, 2, 3), 8)), "needs at least 16 px"),
    "a reference too large": (draw("tiny-klein", Image.new("RGB", (1024, 1024))), "the limit is 262,144 pixels"),
    "references with a mask": (edit("demo-random", RED, image=BLUE, mask=Image.new("L", (64, 64), 255)),
                               "Reference images go with instruction edits"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_references_are_refused_before_any_call(reference_engine, case):
    engine = reference_engine
    request, message = BAD[case]
    calls = engine.stats["pipeline_calls"]
    with pytest.raises(HubInputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        engine.edit(request) if isinstance(request, EditRequest) else engine.generate(request)
    assert engine.stats["pipeline_calls"] == calls  # nothing ran
    assert len(engine.generate(draw("tiny-klein", RED))) == 1
