"""Instruction-edit families in the engine, each on a tiny model built here.

InstructPix2Pix, FLUX.2 klein (text-to-image and reference editing in one model) and Qwen-Image-Edit
Plus are built from tiny configs, saved with `save_pretrained` and loaded back through the hub's own
loader (`from_pretrained(local_files_only=True, use_safetensors=True)`), then driven through
`engine.edit(...)` / `engine.generate(...)` exactly as the Edit tab does. Plus the bad inputs of
issue 6: each is a `HubInputError` with a clear message, and the engine serves the next request.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from hub.config import load_config
from hub.engine import EditRequest, Engine, GenerationRequest
from hub.errors import HubInputError
from tests.conftest import write_config

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
                  "<|image_pad|>", "<|video_pad|>", "<think>", "</think>"]
# Enough of the Qwen chat template for `apply_chat_template(messages, add_generation_prompt=True)`.
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def byte_vocab() -> dict[str, int]:
    """GPT-2 byte-level symbols (every string in every script tokenizes), then the Qwen special tokens."""
    from hub.builtin import byte_level_vocab

    vocab, _ = byte_level_vocab()
    symbols = [token for token in vocab if not token.endswith("</w>") and not token.startswith("<|")]
    table = {symbol: index for index, symbol in enumerate(symbols)}
    for token in SPECIAL_TOKENS:
        table[token] = len(table)
    return table


def qwen_tokenizer():
    from transformers import Qwen2Tokenizer

    tokenizer = Qwen2Tokenizer(vocab=byte_vocab(), merges=[], unk_token="<|endoftext|>", model_max_length=4096)
    tokenizer.add_special_tokens({"additional_special_tokens": SPECIAL_TOKENS[1:]})
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def save_tiny_instruct_pix2pix(folder: Path) -> Path:
    from diffusers import AutoencoderKL, EulerAncestralDiscreteScheduler, StableDiffusionInstructPix2PixPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    from hub.builtin import byte_level_vocab

    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        sample_size=16, in_channels=8, out_channels=4,  # noisy latents + the image's latents
        block_out_channels=(32, 64), layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32, attention_head_dim=4, norm_num_groups=8,
    )
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, block_out_channels=(16, 32), latent_channels=4, norm_num_groups=8,
        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
    )
    vocab, merges = byte_level_vocab()
    text_encoder = CLIPTextModel(CLIPTextConfig(
        bos_token_id=vocab["<|startoftext|>"], eos_token_id=vocab["<|endoftext|>"], pad_token_id=vocab["<|endoftext|>"],
        hidden_size=32, intermediate_size=37, num_attention_heads=4, num_hidden_layers=2, vocab_size=len(vocab),
    ))
    pipe = StableDiffusionInstructPix2PixPipeline(
        unet=unet, vae=vae, text_encoder=text_encoder,
        tokenizer=CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=77),
        scheduler=EulerAncestralDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear"),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder


def save_tiny_flux2_klein(folder: Path) -> Path:
    from diffusers import AutoencoderKLFlux2, FlowMatchEulerDiscreteScheduler, Flux2KleinPipeline, Flux2Transformer2DModel
    from transformers import Qwen3Config, Qwen3ForCausalLM

    tokenizer = qwen_tokenizer()
    torch.manual_seed(0)
    # The pipeline stacks text-encoder hidden states 9, 18 and 27: 28 layers, 16 wide (still tiny).
    text_encoder = Qwen3ForCausalLM(Qwen3Config(
        hidden_size=16, intermediate_size=16, num_hidden_layers=28, num_attention_heads=2, num_key_value_heads=2,
        head_dim=8, vocab_size=len(tokenizer), max_position_embeddings=1024,
    ))
    transformer = Flux2Transformer2DModel(
        patch_size=1, in_channels=16, num_layers=1, num_single_layers=1, attention_head_dim=16,
        num_attention_heads=2, joint_attention_dim=48, timestep_guidance_channels=256,
        axes_dims_rope=[4, 4, 4, 4], guidance_embeds=False,
    )
    vae = AutoencoderKLFlux2(
        sample_size=32, in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2, block_out_channels=(8, 16), layers_per_block=1,
        latent_channels=4, norm_num_groups=4, use_quant_conv=False, use_post_quant_conv=False,
    )
    pipe = Flux2KleinPipeline(scheduler=FlowMatchEulerDiscreteScheduler(), vae=vae, text_encoder=text_encoder,
                              tokenizer=tokenizer, transformer=transformer)
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder


def save_tiny_qwen_image_edit_plus(folder: Path) -> Path:
    from diffusers import AutoencoderKLQwenImage, FlowMatchEulerDiscreteScheduler, QwenImageEditPlusPipeline, QwenImageTransformer2DModel
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, Qwen2VLImageProcessor, Qwen2VLProcessor
    from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor

    tokenizer = qwen_tokenizer()
    ids = {token: tokenizer.convert_tokens_to_ids(token) for token in SPECIAL_TOKENS}
    torch.manual_seed(0)
    config = Qwen2_5_VLConfig(
        text_config={
            "hidden_size": 16, "intermediate_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2,
            "num_key_value_heads": 2, "vocab_size": len(tokenizer), "rope_theta": 1000000.0,
            "bos_token_id": ids["<|endoftext|>"], "eos_token_id": ids["<|im_end|>"],
            "rope_scaling": {"mrope_section": [1, 1, 2], "rope_type": "default", "type": "default"},
        },
        vision_config={"depth": 2, "hidden_size": 16, "intermediate_size": 16, "num_heads": 2, "out_hidden_size": 16},
        vocab_size=len(tokenizer), hidden_size=16,
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
    )
    text_encoder = Qwen2_5_VLForConditionalGeneration(config)
    torch.manual_seed(0)
    transformer = QwenImageTransformer2DModel(
        patch_size=2, in_channels=16, out_channels=4, num_layers=2, attention_head_dim=16, num_attention_heads=3,
        joint_attention_dim=16, guidance_embeds=False, axes_dims_rope=(8, 4, 4),
    )
    vae = AutoencoderKLQwenImage(base_dim=24, z_dim=4, dim_mult=[1, 2, 4], num_res_blocks=1,
                                 temperal_downsample=[False, True], latents_mean=[0.0] * 4, latents_std=[1.0] * 4)
    processor = Qwen2VLProcessor(image_processor=Qwen2VLImageProcessor(min_pixels=28 * 28, max_pixels=56 * 56),
                                 tokenizer=tokenizer, video_processor=Qwen2VLVideoProcessor())
    pipe = QwenImageEditPlusPipeline(scheduler=FlowMatchEulerDiscreteScheduler(), vae=vae, text_encoder=text_encoder,
                                     tokenizer=tokenizer, processor=processor, transformer=transformer)
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder


def checkpoint(id_: str, family: str, folder: Path, cfg: float, sampler: str) -> dict:
    return {"id": id_, "name": id_, "family": family, "source": f"folder:{folder}",
            "defaults": {"width": 64, "height": 64, "steps": 2, "cfg": cfg, "sampler": sampler}}


@pytest.fixture(scope="module")
def edit_engine(tmp_path_factory, builtin_root):
    # Qwen-Image-Edit resizes references to ~1 MP for the VAE and 384² for the VL encoder: lowered for CPU.
    import diffusers.pipelines.qwenimage.pipeline_qwenimage_edit_plus as qwen_module

    patch = pytest.MonkeyPatch()
    patch.setattr(qwen_module, "VAE_IMAGE_SIZE", 64 * 64)
    patch.setattr(qwen_module, "CONDITION_IMAGE_SIZE", 56 * 56)
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
