"""Tiny models built in code for tests: saved to a folder, then loaded through the hub's loaders."""

from __future__ import annotations

from pathlib import Path

import torch


def save_random_lora(pipe, folder: Path, seed: int, rank: int = 4, scale: float = 0.5) -> Path:
    """Train-free character LoRA: peft adapters on the UNet attention, random non-zero weights,
    saved the way the hub's trainer saves (diffusers format, safetensors)."""
    from diffusers import StableDiffusionPipeline
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft import LoraConfig, get_peft_model_state_dict

    unet = pipe.unet
    config = LoraConfig(r=rank, lora_alpha=rank, init_lora_weights="gaussian", target_modules=["to_k", "to_q", "to_v", "to_out.0"])
    adapter = f"tmp_{seed}"
    unet.add_adapter(config, adapter_name=adapter)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in unet.named_parameters():
            if f"lora_B.{adapter}" in name or f"lora_A.{adapter}" in name:
                param.copy_(torch.randn(param.shape, generator=generator) * scale)
    state = convert_state_dict_to_diffusers(get_peft_model_state_dict(unet, adapter_name=adapter))
    unet.delete_adapters(adapter)
    folder.mkdir(parents=True, exist_ok=True)
    StableDiffusionPipeline.save_lora_weights(folder, unet_lora_layers=state, safe_serialization=True)
    return folder


def save_tiny_sdxl(folder: Path, seed: int = 0) -> Path:
    """A tiny StableDiffusionXLPipeline (two CLIP text encoders), saved with save_pretrained."""
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

    from hub.builtin import byte_level_vocab

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64),
        layers_per_block=1,
        sample_size=16,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4),
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=8,
        transformer_layers_per_block=(1, 1),
        projection_class_embeddings_input_dim=80,  # 6 * 8 + 32
        cross_attention_dim=64,
        norm_num_groups=8,
    )
    vae = AutoencoderKL(
        block_out_channels=(16, 32),
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2,
        latent_channels=4,
        norm_num_groups=8,
        sample_size=32,
    )
    vocab, merges = byte_level_vocab()
    text_config = CLIPTextConfig(
        bos_token_id=vocab["<|startoftext|>"],
        eos_token_id=vocab["<|endoftext|>"],
        pad_token_id=vocab["<|endoftext|>"],
        hidden_size=32,
        intermediate_size=37,
        num_attention_heads=4,
        num_hidden_layers=2,
        vocab_size=len(vocab),
        projection_dim=32,
        hidden_act="gelu",
    )
    tokenizer = CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=77)
    pipe = StableDiffusionXLPipeline(
        unet=unet,
        vae=vae,
        text_encoder=CLIPTextModel(text_config),
        text_encoder_2=CLIPTextModelWithProjection(text_config),
        tokenizer=tokenizer,
        tokenizer_2=tokenizer,
        scheduler=EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", steps_offset=1),
    )
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder


# --- Qwen tokenizer and the edit families (FLUX.2 klein, Qwen-Image-Edit Plus, InstructPix2Pix) ---

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


def lower_qwen_edit_image_sizes():
    """Qwen-Image-Edit Plus resizes references to ~1 MP for the VAE and 384² for the VL encoder
    (tens of seconds on CPU): lowered for tests. Returns the MonkeyPatch to undo."""
    import diffusers.pipelines.qwenimage.pipeline_qwenimage_edit_plus as qwen_module
    import pytest

    patch = pytest.MonkeyPatch()
    patch.setattr(qwen_module, "VAE_IMAGE_SIZE", 64 * 64)
    patch.setattr(qwen_module, "CONDITION_IMAGE_SIZE", 56 * 56)
    return patch


# --- Anima (modular pipeline) and Z-Image ---


def t5_tokenizer():
    """A Unigram T5 tokenizer built in code: lowercase letters, word starts, the three specials."""
    from transformers import T5Tokenizer

    letters = [chr(code) for code in range(ord("a"), ord("z") + 1)] + list("0123456789,@_")
    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -2.0)]
    vocab += [(letter, -3.0) for letter in letters] + [("▁" + letter, -2.5) for letter in letters]
    return T5Tokenizer(vocab=vocab, extra_ids=0)


def save_tiny_anima(folder: Path, seed: int = 0) -> Path:
    """A tiny AnimaModularPipeline (Cosmos transformer, Qwen3 text encoder, T5-token text conditioner,
    Qwen-Image VAE), saved the way a modular pipeline saves (`modular_model_index.json`)."""
    from diffusers import (
        AnimaModularPipeline,
        AnimaTextConditioner,
        AutoencoderKLQwenImage,
        CosmosTransformer3DModel,
        FlowMatchEulerDiscreteScheduler,
    )
    from transformers import Qwen3Config, Qwen3Model

    tokenizer, t5 = qwen_tokenizer(), t5_tokenizer()
    torch.manual_seed(seed)
    text_encoder = Qwen3Model(Qwen3Config(
        hidden_size=16, intermediate_size=16, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
        head_dim=8, vocab_size=len(tokenizer), max_position_embeddings=1024,
    ))
    conditioner = AnimaTextConditioner(source_dim=16, target_dim=16, model_dim=16, num_layers=1, num_attention_heads=2,
                                       target_vocab_size=len(t5), min_sequence_length=8)
    # Latent channels = the VAE's z_dim; the VAE downsamples 4x (two stages), patches are 2x2.
    transformer = CosmosTransformer3DModel(
        in_channels=4, out_channels=4, num_attention_heads=2, attention_head_dim=16, num_layers=2, text_embed_dim=16,
        adaln_lora_dim=4, max_size=(4, 32, 32), patch_size=(1, 2, 2), extra_pos_embed_type=None,
    )
    vae = AutoencoderKLQwenImage(base_dim=24, z_dim=4, dim_mult=[1, 2, 4], num_res_blocks=1,
                                 temperal_downsample=[False, True], latents_mean=[0.0] * 4, latents_std=[1.0] * 4)
    pipe = AnimaModularPipeline()
    pipe.update_components(text_encoder=text_encoder, tokenizer=tokenizer, t5_tokenizer=t5, text_conditioner=conditioner,
                           transformer=transformer, vae=vae, scheduler=FlowMatchEulerDiscreteScheduler())
    pipe.save_pretrained(str(folder), safe_serialization=True, overwrite_modular_index=True)
    return folder


def save_random_transformer_lora(transformer, folder: Path, seed: int, rank: int = 4, scale: float = 0.3) -> Path:
    """A character LoRA with random non-zero weights on a DiT's attention projections, in the diffusers
    format (`transformer.*` keys) as one safetensors file."""
    from peft import LoraConfig, get_peft_model_state_dict
    from safetensors.torch import save_file

    adapter = f"tmp_{seed}"
    transformer.add_adapter(LoraConfig(r=rank, lora_alpha=rank, init_lora_weights="gaussian",
                                       target_modules=["to_k", "to_q", "to_v", "to_out.0"]), adapter_name=adapter)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in transformer.named_parameters():
            if f".{adapter}." in name:
                param.copy_(torch.randn(param.shape, generator=generator) * scale)
    state = get_peft_model_state_dict(transformer, adapter_name=adapter)
    transformer.delete_adapters(adapter)
    folder.mkdir(parents=True, exist_ok=True)
    save_file({f"transformer.{key}": value.contiguous() for key, value in state.items()},
              str(folder / "pytorch_lora_weights.safetensors"))
    return folder


def _tiny_z_image_parts(siglip_dim: int | None) -> dict:
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, ZImageTransformer2DModel
    from transformers import Qwen3Config, Qwen3Model

    tokenizer = qwen_tokenizer()
    torch.manual_seed(0)
    transformer = ZImageTransformer2DModel(
        all_patch_size=(2,), all_f_patch_size=(1,), in_channels=4, dim=32, n_layers=2, n_refiner_layers=1, n_heads=2,
        n_kv_heads=2, cap_feat_dim=16, siglip_feat_dim=siglip_dim, axes_dims=[8, 4, 4], axes_lens=[256, 32, 32],
    )
    with torch.no_grad():  # the pad tokens start as torch.empty: uninitialised memory, maybe NaN
        for name, param in transformer.named_parameters():
            if "pad_token" in name:
                param.fill_(1.0)
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, down_block_types=["DownEncoderBlock2D"] * 2, up_block_types=["UpDecoderBlock2D"] * 2,
        block_out_channels=[16, 32], layers_per_block=1, latent_channels=4, norm_num_groups=8, sample_size=32,
        scaling_factor=0.3611, shift_factor=0.1159,
    )
    text_encoder = Qwen3Model(Qwen3Config(
        hidden_size=16, intermediate_size=16, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
        head_dim=8, vocab_size=len(tokenizer), max_position_embeddings=1024,
    ))
    return {"scheduler": FlowMatchEulerDiscreteScheduler(), "vae": vae, "text_encoder": text_encoder,
            "tokenizer": tokenizer, "transformer": transformer}


def save_tiny_z_image(folder: Path) -> Path:
    from diffusers import ZImagePipeline

    ZImagePipeline(**_tiny_z_image_parts(None)).save_pretrained(folder, safe_serialization=True)
    return folder


def save_tiny_z_image_omni(folder: Path) -> Path:
    """Z-Image-Omni: the transformer takes SigLIP features of the condition images (SigLIP 2, 16 wide)."""
    from diffusers import ZImageOmniPipeline
    from transformers import Siglip2ImageProcessor, Siglip2VisionConfig, Siglip2VisionModel

    torch.manual_seed(0)
    siglip = Siglip2VisionModel(Siglip2VisionConfig(hidden_size=16, intermediate_size=16, num_hidden_layers=1,
                                                    num_attention_heads=2, patch_size=16, num_patches=16))
    pipe = ZImageOmniPipeline(**_tiny_z_image_parts(16), siglip=siglip,
                              siglip_processor=Siglip2ImageProcessor(patch_size=16, max_num_patches=16))
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder


# --- configs for tiny checkpoints ---


def checkpoint_entry(id_: str, family: str, folder: Path, cfg: float, sampler: str, size: int = 64, steps: int = 2) -> dict:
    """A `checkpoints:` entry of the hub config for a tiny model saved in `folder`."""
    return {"id": id_, "name": id_, "family": family, "source": f"folder:{folder}",
            "defaults": {"width": size, "height": size, "steps": steps, "cfg": cfg, "sampler": sampler}}


def tiny_engine(root: Path, builtin_root: Path, checkpoints: list[dict], **overrides):
    """An engine on CPU whose config adds `checkpoints` to the two builtin random ones (data in root)."""
    from hub.config import load_config
    from hub.engine import Engine
    from tests.conftest import write_config

    data = root / "data"
    data.mkdir(exist_ok=True)
    if not (data / "builtin").exists():
        (data / "builtin").symlink_to(builtin_root, target_is_directory=True)
    return Engine(load_config(write_config(root, checkpoints_extra=checkpoints, **overrides)), device="cpu")
