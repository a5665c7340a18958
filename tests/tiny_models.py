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
