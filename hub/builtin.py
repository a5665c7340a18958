"""Builtin checkpoints: tiny random-weight pipelines built locally, so the hub runs offline.

`demo-random` and `demo-random-b` are Stable Diffusion-shaped (UNet, VAE, CLIP text encoder,
byte-level CLIP tokenizer) with random weights from two seeds. They are saved once with
`save_pretrained` (safetensors) and then loaded through the same code path as a real checkpoint.
Their images are noise; the page says so.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import torch

BUILTIN_SEEDS = {"demo-random": 0, "demo-random-b": 1}


def byte_level_vocab() -> tuple[dict[str, int], list[tuple[str, str]]]:
    """A CLIP-format vocabulary with one token per byte (and per word-final byte), no merges.

    Every string in every script tokenizes (a byte at a time), which is all a random model needs.
    """
    # The printable stand-ins CLIP and GPT-2 use for raw bytes.
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    chars, extra = printable[:], 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            chars.append(256 + extra)
            extra += 1
    symbols = [chr(c) for c in chars]
    tokens = symbols + [s + "</w>" for s in symbols] + ["<|startoftext|>", "<|endoftext|>"]
    return {token: index for index, token in enumerate(tokens)}, []


def build_random_sd_pipeline(seed: int, hidden: int = 32):
    """A tiny StableDiffusionPipeline with random weights (not saved)."""
    from diffusers import AutoencoderKL, EulerAncestralDiscreteScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        sample_size=32,
        in_channels=4,
        out_channels=4,
        block_out_channels=(32, 64),
        layers_per_block=1,
        # Attention only at the lower resolution keeps CPU generation well under a second.
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=hidden,
        attention_head_dim=4,
        norm_num_groups=8,
    )
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 3,  # 4x downsampling, like a small SD VAE
        up_block_types=("UpDecoderBlock2D",) * 3,
        block_out_channels=(16, 32, 32),
        latent_channels=4,
        norm_num_groups=8,
        sample_size=64,
    )
    vocab, merges = byte_level_vocab()
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(vocab),
            hidden_size=hidden,
            intermediate_size=hidden * 2,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=77,
            bos_token_id=vocab["<|startoftext|>"],
            eos_token_id=vocab["<|endoftext|>"],
            pad_token_id=vocab["<|endoftext|>"],
        )
    )
    tokenizer = CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=77)
    scheduler = EulerAncestralDiscreteScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000, steps_offset=1
    )
    return StableDiffusionPipeline(
        unet=unet,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def ensure_builtin_checkpoint(name: str, root: Path) -> Path:
    """Build `name` under `root` once (atomically); return its diffusers folder."""
    if name not in BUILTIN_SEEDS:
        raise KeyError(f"unknown builtin checkpoint {name!r}")
    folder = root / name
    if (folder / "model_index.json").exists():
        return folder
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=root))
    try:
        build_random_sd_pipeline(BUILTIN_SEEDS[name]).save_pretrained(staging, safe_serialization=True)
        (staging / "README.md").write_text(
            f"# {name}\n\nRandom weights (seed {BUILTIN_SEEDS[name]}), built locally by Sakuga Hub "
            "so the hub runs offline. Its images are noise.\n",
            encoding="utf-8",
        )
        try:
            staging.rename(folder)
        except OSError:  # another process built it first
            shutil.rmtree(staging, ignore_errors=True)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return folder
