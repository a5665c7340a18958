"""Instruction-edit families in the engine, each on a tiny model built here.

InstructPix2Pix, FLUX.2 klein (text-to-image and reference editing in one model) and Qwen-Image-Edit
Plus are built from tiny configs, saved with `save_pretrained` and loaded back through the hub's own
loader (`from_pretrained(local_files_only=True, use_safetensors=True)`), then driven through
`engine.edit(...)` / `engine.generate(...)` exactly as the Edit tab does. Plus the bad inputs of
issue 6: each is a `HubInputError` with a clear message, and the engine serves the next request.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from hub.config import load_config
from hub.engine import EditRequest, Engine, GenerationRequest
from hub.errors import HubInputError
from tests.conftest import write_config
from tests.tiny_models import (
    checkpoint_entry as checkpoint,
    lower_qwen_edit_image_sizes,
    save_tiny_flux2_klein,
    save_tiny_instruct_pix2pix,
    save_tiny_qwen_image_edit_plus,
)


@pytest.fixture(scope="module")
def edit_engine(tmp_path_factory, builtin_root):
    patch = lower_qwen_edit_image_sizes()
    root = tmp_path_factory.mktemp("edit-families")
    extra = [
        checkpoint("tiny-ip2p", "instruct-pix2pix", save_tiny_instruct_pix2pix(root / "ip2p"), 4.0, "euler_a"),
        checkpoint("tiny-klein", "flux2-klein", save_tiny_flux2_klein(root / "klein"), 1.0, "default"),
        checkpoint("tiny-qwen-edit", "qwen-image-edit", save_tiny_qwen_image_edit_plus(root / "qwen"), 1.0, "default"),
    ]
    data = root / "data"
    data.mkdir()
    (data / "builtin").symlink_to(builtin_root, target_is_directory=True)
    limits = {"max_upload_pixels": 512 * 512}
    engine = Engine(load_config(write_config(root, checkpoints_extra=extra, limits=limits)), device="cpu")
    yield engine
    engine.shutdown()
    patch.undo()


def portrait(size: int = 64, colour=(40, 200, 200)) -> Image.Image:
    image = Image.new("RGB", (size, size), "white")
    image.paste(colour, (size // 4, size // 4, 3 * size // 4, 3 * size // 4))
    return image


def pixels(item) -> np.ndarray:
    return np.asarray(item.image, dtype=np.int16)


def test_instruct_pix2pix_edits_through_the_engine(edit_engine):
    engine, source = edit_engine, portrait()
    request = EditRequest(image=source, prompt="make the hair red", checkpoint="tiny-ip2p", seed=3)
    first = engine.edit(request)
    again = engine.edit(request)
    assert first[0].recipe.task == "instruct" and first[0].image.size == (64, 64)
    assert np.array_equal(pixels(first[0]), pixels(again[0]))  # same seed, same pixels
    weaker = engine.edit(EditRequest(image=source, prompt="make the hair red", checkpoint="tiny-ip2p", seed=3, image_guidance=1.0))
    assert not np.array_equal(pixels(first[0]), pixels(weaker[0]))  # image guidance reaches the pipeline
    pipe = engine.pipeline("tiny-ip2p", "instruct")
    assert type(pipe).__name__ == "StableDiffusionInstructPix2PixPipeline" and pipe.unet.config.in_channels == 8


def test_flux2_klein_generates_and_edits_with_a_reference(edit_engine):
    engine = edit_engine
    generated = engine.generate(GenerationRequest("1girl, aqua hair", checkpoint="tiny-klein", seed=1))
    assert generated[0].image.size == (64, 64) and generated[0].recipe.task == "text2img"
    source = portrait()
    edited = engine.edit(EditRequest(image=source, prompt="make the hair red", checkpoint="tiny-klein", seed=2, batch=2))
    assert [item.seed for item in edited] == [2, 3]
    assert all(item.recipe.task == "instruct" and item.image.size == (64, 64) for item in edited)
    other_reference = engine.edit(EditRequest(image=portrait(colour=(220, 40, 40)), prompt="make the hair red", checkpoint="tiny-klein", seed=2))
    assert not np.array_equal(pixels(edited[0]), pixels(other_reference[0]))  # the reference image conditions the result
    # Both tasks come from the one loaded pipeline.
    assert engine.pipeline("tiny-klein", "instruct") is engine.pipeline("tiny-klein", "text2img")


def test_qwen_image_edit_plus_edits_one_prompt_per_call(edit_engine):
    engine, source = edit_engine, portrait()
    edited = engine.edit(EditRequest(image=source, prompt="add glasses", checkpoint="tiny-qwen-edit", seed=5, batch=2))
    assert [item.seed for item in edited] == [5, 6]  # the batch runs one prompt per pipeline call
    assert all(item.image.size == (64, 64) and item.recipe.task == "instruct" for item in edited)
    single = engine.edit(EditRequest(image=source, prompt="add glasses", checkpoint="tiny-qwen-edit", seed=6))
    assert np.array_equal(pixels(edited[1]), pixels(single[0]))
    guided = engine.edit(EditRequest(image=source, prompt="add glasses", checkpoint="tiny-qwen-edit", seed=5, cfg=4.0))
    assert not np.array_equal(pixels(edited[0]), pixels(guided[0]))  # CFG goes to true_cfg_scale


def _wrong_size_mask() -> EditRequest:
    return EditRequest(image=portrait(), prompt="a hat", mask=Image.new("L", (32, 32), 255), checkpoint="demo-random")


BAD_EDITS = {
    "instruction without an image": (EditRequest(image=None, prompt="make the hair red", checkpoint="tiny-ip2p"), "image to edit is required"),  # type: ignore[arg-type]
    "empty instruction": (EditRequest(image=portrait(), prompt="  ", checkpoint="tiny-ip2p"), "instruction is empty"),
    "mask of the wrong size": (_wrong_size_mask(), "mask is 32x32 but the image is 64x64"),
    "image too large": (EditRequest(image=Image.new("RGB", (1024, 1024)), prompt="x", checkpoint="tiny-ip2p"), "the limit is 262,144 pixels"),
    "mask for an instruct-only family": (
        EditRequest(image=portrait(), prompt="x", mask=Image.new("L", (64, 64), 255), checkpoint="tiny-ip2p"),
        "'tiny-ip2p' cannot do inpaint; it offers: instruct",
    ),
    "img2img for klein": (EditRequest(image=portrait(), prompt="x", checkpoint="tiny-klein", task="img2img"), "cannot do img2img"),
    "klein reference under 64 px": (EditRequest(image=portrait(32), prompt="x", checkpoint="tiny-klein"), "at least 64 px"),
    "instruct on an sd15 checkpoint": (EditRequest(image=portrait(), prompt="x", checkpoint="demo-random", task="instruct"), "cannot do instruct"),
}


@pytest.mark.parametrize("case", list(BAD_EDITS))
def test_bad_edit_inputs_are_refused_and_engine_stays_usable(edit_engine, case):
    request, message = BAD_EDITS[case]
    with pytest.raises(HubInputError, match=message.replace("(", r"\(")):
        edit_engine.edit(request)
    assert len(edit_engine.edit(EditRequest(image=portrait(), prompt="add glasses", checkpoint="tiny-ip2p"))) == 1


def test_text_to_image_on_an_edit_only_family_is_refused(edit_engine):
    with pytest.raises(HubInputError, match="only edits images"):
        edit_engine.generate(GenerationRequest("1girl", checkpoint="tiny-qwen-edit"))
    assert "tiny-ip2p" in edit_engine.checkpoint_ids(task="instruct")
    assert "tiny-ip2p" not in edit_engine.checkpoint_ids(task="text2img")
