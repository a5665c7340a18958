"""Configs of the demo world's small diffusers components, and saving them as an SD 1.5-style folder.

Sizes are chosen for the 40 MB weight budget (fp16): a 64 px image becomes 16x16x4 latents through a
small AutoencoderKL (factor 4); the UNet2DConditionModel has three levels (16, 8, 4) with cross
attention on the first two; the text encoder is a 3-layer, 128-wide CLIPTextModel.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

SCHEDULER_KW = dict(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                    prediction_type="epsilon", steps_offset=1, timestep_spacing="leading")


@dataclass
class Sizes:
    """Scale knobs: `tiny()` for tests, the defaults for the committed checkpoints."""
    text_width: int = 128
    text_layers: int = 3
    unet_channels: tuple[int, int, int] = (64, 128, 128)
    vae_channels: tuple[int, ...] = (32, 64, 64)
    cross_attention_dim: int = 128

    @classmethod
    def tiny(cls) -> "Sizes":
        return cls(text_width=32, text_layers=1, unet_channels=(32, 32, 64), vae_channels=(16, 32, 32),
                   cross_attention_dim=32)


def build_text_encoder(tokenizer, sizes: Sizes):
    from transformers import CLIPTextConfig, CLIPTextModel

    config = CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=sizes.text_width, intermediate_size=sizes.text_width * 4,
        num_hidden_layers=sizes.text_layers, num_attention_heads=max(1, sizes.text_width // 32),
        max_position_embeddings=77, projection_dim=sizes.text_width, hidden_act="quick_gelu",
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return CLIPTextModel(config)


def build_vae(sizes: Sizes, image_size: int):
    from diffusers import AutoencoderKL

    n = len(sizes.vae_channels)
    return AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, block_out_channels=tuple(sizes.vae_channels),
        down_block_types=("DownEncoderBlock2D",) * n, up_block_types=("UpDecoderBlock2D",) * n,
        layers_per_block=1, norm_num_groups=min(16, sizes.vae_channels[0]), sample_size=image_size,
        scaling_factor=1.0,
    )


def build_unet(sizes: Sizes, latent_size: int, in_channels: int = 4):
    from diffusers import UNet2DConditionModel

    c = sizes.unet_channels
    return UNet2DConditionModel(
        sample_size=latent_size, in_channels=in_channels, out_channels=4,
        block_out_channels=tuple(c), layers_per_block=1,
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=sizes.cross_attention_dim, attention_head_dim=tuple(max(1, ch // 32) for ch in c),  # diffusers' legacy name: heads per block
        norm_num_groups=min(32, c[0]),
    )


def training_scheduler():
    from diffusers import DDPMScheduler

    return DDPMScheduler(**SCHEDULER_KW)


def sampling_scheduler():
    # The engine samples with Euler ancestral by default; same betas as training.
    from diffusers import EulerAncestralDiscreteScheduler

    return EulerAncestralDiscreteScheduler(**SCHEDULER_KW)


def save_sd_pipeline(folder: str | Path, *, unet, vae, text_encoder, tokenizer, model_card: str,
                     instruct_pix2pix: bool = False) -> Path:
    """Save an SD 1.5-layout folder in fp16 safetensors; loads with `from_pretrained(folder, local_files_only=True)`."""
    from diffusers import StableDiffusionInstructPix2PixPipeline, StableDiffusionPipeline

    cls = StableDiffusionInstructPix2PixPipeline if instruct_pix2pix else StableDiffusionPipeline
    pipe = cls(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
               scheduler=sampling_scheduler(), safety_checker=None, feature_extractor=None,
               requires_safety_checker=False)
    pipe.to(torch.float16)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    pipe.save_pretrained(folder, safe_serialization=True)
    write_clip_vocab_files(folder / "tokenizer")
    (folder / "README.md").write_text(model_card, encoding="utf-8")
    return folder


def write_clip_vocab_files(tokenizer_folder: str | Path) -> None:
    """Also write CLIP's own vocab.json + merges.txt beside tokenizer.json (loaders that want them)."""
    folder = Path(tokenizer_folder)
    spec = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))
    vocab = dict(spec["model"]["vocab"])
    for token in spec.get("added_tokens", []):
        vocab.setdefault(token["content"], token["id"])
    merges = [tuple(m.split(" ", 1)) if isinstance(m, str) else tuple(m) for m in spec["model"]["merges"]]
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(f"{a} {b}" for a, b in merges) + "\n",
                                       encoding="utf-8")


def count_params(module) -> int:
    return sum(p.numel() for p in module.parameters())


def folder_megabytes(folder: str | Path) -> float:
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file()) / 1e6
