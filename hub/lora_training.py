"""The hub's own character-LoRA trainer (SD 1.5-family checkpoints).

Given a base checkpoint folder, a handful of images of one character and a trigger word, train a
peft LoRA on the UNet's attention projections and save it in the diffusers LoRA format
(`pytorch_lora_weights.safetensors`, loadable with `pipe.load_lora_weights(folder)`).

Captions come from a tagger (any callable mapping images to tag lists, e.g. the WD v3 judge) plus
the trigger word. Tags that nearly every image shares are the character's own look; they are pruned
from the captions (`prune_core_tags`), so the trigger word has to carry that look: prompting the
trigger alone then draws the character, while what varies (expression, background) stays promptable.

No gradio here: the UI calls `train_character_lora(..., progress=callback)` from a queued job.
"""

from __future__ import annotations

import copy
import json
import math
import re
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from PIL import Image, UnidentifiedImageError

from core.images import pad_square, to_rgb
from hub.errors import HubInputError

ProgressCallback = Callable[[int, int, float], None]
Captioner = Callable[[list[Image.Image]], list[list[str]]]

WEIGHT_NAME = "pytorch_lora_weights.safetensors"
INFO_NAME = "lora_info.json"
_TRIGGER_RE = re.compile(r"^[\w\-]{2,40}$", re.UNICODE)


@dataclass
class LoraTrainingConfig:
    rank: int = 8
    alpha: float | None = None          # None: alpha = rank (scale 1, the same on every loader)
    steps: int = 300
    learning_rate: float = 2e-3
    batch_size: int = 8
    resolution: int | None = None       # None: the checkpoint's native size
    seed: int = 0
    prune_core_tags: bool = True
    core_tag_fraction: float = 0.8      # a tag on at least this fraction of images is part of the look
    max_caption_tags: int = 12
    min_images: int = 3
    max_images: int = 200
    max_image_pixels: int = 4096 * 4096
    device: str = "auto"
    time_limit_s: float | None = None   # stop early (and save) after this many seconds of training
    cpu_threads: int | None = None      # torch threads while training on CPU; 1 avoids thrashing on a busy host
    target_modules: tuple[str, ...] = ("to_k", "to_q", "to_v", "to_out.0")


@dataclass
class LoraTrainingResult:
    path: Path
    weight_file: Path
    trigger_word: str
    steps: int
    final_loss: float
    seconds: float
    captions: list[str] = field(default_factory=list)
    rank: int = 8

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["path"], d["weight_file"] = str(self.path), str(self.weight_file)
        return d


def validate_trigger_word(trigger_word: str) -> str:
    trigger = (trigger_word or "").strip()
    if not _TRIGGER_RE.match(trigger):
        raise HubInputError("Trigger word: 2-40 letters, digits, '_' or '-', no spaces or commas.")
    return trigger


def load_training_images(images: Sequence[Image.Image | str | Path], config: LoraTrainingConfig) -> list[Image.Image]:
    """Open and check the uploads: real images, enough of them, not too many, not too large."""
    if len(images) < config.min_images:
        raise HubInputError(f"Need at least {config.min_images} images of the character; got {len(images)}.")
    if len(images) > config.max_images:
        raise HubInputError(f"At most {config.max_images} images per LoRA; got {len(images)}.")
    out = []
    for item in images:
        label = Path(item).name if isinstance(item, (str, Path)) else "an image"
        try:
            image = item if isinstance(item, Image.Image) else Image.open(item)
            if image.width * image.height > config.max_image_pixels:
                raise HubInputError(f"{label} is too large ({image.width}x{image.height}); the limit is "
                                    f"{config.max_image_pixels} pixels.")
            image.load()
        except HubInputError:
            raise
        except (UnidentifiedImageError, OSError, ValueError) as exc:
            raise HubInputError(f"{label} is not an image the trainer can read.") from exc
        out.append(pad_square(to_rgb(image)))  # as taggers and this trainer expect
    return out


def build_captions(images: list[Image.Image], trigger_word: str, tagger: Captioner | None,
                   config: LoraTrainingConfig) -> list[str]:
    """`trigger, tag, tag, ...` per image (tags with spaces, as prompts write them)."""
    if tagger is None:
        return [trigger_word] * len(images)
    tag_lists = [list(t) for t in tagger(images)]
    if len(tag_lists) != len(images):
        raise ValueError("the tagger returned a different number of tag lists than images")
    core: set[str] = set()
    if config.prune_core_tags and len(images) >= 2:
        counts = Counter(t for tags in tag_lists for t in set(tags))
        core = {t for t, n in counts.items() if n >= config.core_tag_fraction * len(images)}
    captions = []
    for tags in tag_lists:
        kept = [t.replace("_", " ") for t in tags if t not in core][: config.max_caption_tags]
        captions.append(", ".join([trigger_word, *kept]))
    return captions


def _pick_device(name: str):
    import torch

    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("cpu")
    return torch.device(name)


def _load_components(base: Any):
    """(unet copy, vae, text_encoder, tokenizer) from a pipeline object or a diffusers folder."""
    import torch

    if isinstance(base, (str, Path)):
        from diffusers import StableDiffusionPipeline

        folder = Path(base)
        if not (folder / "model_index.json").exists():
            raise HubInputError(f"LoRA training needs a diffusers checkpoint folder; {folder} is not one.")
        pipe = StableDiffusionPipeline.from_pretrained(str(folder), torch_dtype=torch.float32, local_files_only=True)
        return pipe.unet, pipe.vae, pipe.text_encoder, pipe.tokenizer
    for name in ("unet", "vae", "text_encoder", "tokenizer"):
        if getattr(base, name, None) is None:
            raise HubInputError("LoRA training needs an SD-family checkpoint (UNet, VAE, text encoder).")
    # The live pipeline's UNet must not grow an adapter under the engine: train on a float32 copy.
    return copy.deepcopy(base.unet).float(), base.vae, base.text_encoder, base.tokenizer


def train_character_lora(
    base: Any,
    images: Sequence[Image.Image | str | Path],
    trigger_word: str,
    output_dir: str | Path,
    *,
    config: LoraTrainingConfig | None = None,
    tagger: Captioner | None = None,
    captions: Sequence[str] | None = None,
    progress: ProgressCallback | None = None,
) -> LoraTrainingResult:
    """Train a character LoRA and save it to `output_dir`; returns where it is and how it went.

    `base`: a diffusers SD-family folder or a loaded pipeline; `captions` (one per image) override the
    tagger; `progress(step, total, loss)` is called after every step.
    """
    import torch

    config = config or LoraTrainingConfig()
    trigger = validate_trigger_word(trigger_word)
    pil_images = load_training_images(list(images), config)
    if captions is not None:
        if len(captions) != len(pil_images):
            raise HubInputError("Give one caption per image.")
        caption_list = [c if trigger in c else f"{trigger}, {c}" for c in captions]
    else:
        caption_list = build_captions(pil_images, trigger, tagger, config)

    device = _pick_device(config.device)
    previous_threads = torch.get_num_threads()
    if device.type == "cpu" and config.cpu_threads:
        torch.set_num_threads(config.cpu_threads)
    try:
        return _train(base, pil_images, caption_list, trigger, output_dir, config, device, progress)
    finally:
        torch.set_num_threads(previous_threads)


def _train(base, pil_images, caption_list, trigger, output_dir, config, device, progress) -> LoraTrainingResult:
    import numpy as np
    import torch
    import torch.nn.functional as F
    from diffusers import DDPMScheduler, StableDiffusionPipeline
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    torch.manual_seed(config.seed)
    unet, vae, text_encoder, tokenizer = _load_components(base)
    vae_scale = 2 ** (len(vae.config.block_out_channels) - 1)
    resolution = config.resolution or int(unet.config.sample_size) * vae_scale
    unet.to(device=device, dtype=torch.float32)
    unet.requires_grad_(False)
    unet.add_adapter(LoraConfig(r=config.rank, lora_alpha=config.alpha or config.rank, init_lora_weights="gaussian",
                                target_modules=list(config.target_modules)))
    lora_params = [p for p in unet.parameters() if p.requires_grad]
    for p in lora_params:
        p.data = p.data.float()

    # Latents and text embeddings are fixed: compute them once with the frozen VAE and text encoder.
    with torch.no_grad():
        vae_dev, te_dev = vae.device, text_encoder.device
        vae_dtype = vae.dtype
        pixels = np.stack([np.asarray(im.resize((resolution, resolution), Image.Resampling.BICUBIC)) for im in pil_images])
        x = torch.from_numpy(pixels).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)
        latents = torch.cat([vae.encode(x[i:i + 16].to(vae_dev, vae_dtype)).latent_dist.mean.float()
                             for i in range(0, len(x), 16)]) * vae.config.scaling_factor
        ids = tokenizer(caption_list, padding="max_length", max_length=tokenizer.model_max_length, truncation=True,
                        return_tensors="pt").input_ids
        hidden = torch.cat([text_encoder(ids[i:i + 16].to(te_dev))[0].float() for i in range(0, len(ids), 16)])
    latents, hidden = latents.to(device), hidden.to(device)

    scheduler = DDPMScheduler.from_config({"num_train_timesteps": 1000, "beta_start": 0.00085, "beta_end": 0.012,
                                           "beta_schedule": "scaled_linear"})
    alphas = scheduler.alphas_cumprod.to(device)
    optimizer = torch.optim.AdamW(lora_params, lr=config.learning_rate, weight_decay=1e-4)
    generator = torch.Generator().manual_seed(config.seed)
    unet.train()
    start = time.time()
    loss_ema = float("nan")
    step = 0
    batch = min(config.batch_size, max(1, len(latents)))
    for step in range(1, config.steps + 1):
        lr_scale = 0.5 * (1 + math.cos(math.pi * (step - 1) / config.steps))
        for group in optimizer.param_groups:
            group["lr"] = config.learning_rate * (0.1 + 0.9 * lr_scale)
        idx = torch.randint(0, len(latents), (batch,), generator=generator).to(device)
        x0 = latents[idx]
        noise = torch.randn(x0.shape, generator=generator).to(device)
        t = torch.randint(0, 1000, (batch,), generator=generator).to(device)
        a = alphas[t].view(-1, 1, 1, 1)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            pred = unet(a.sqrt() * x0 + (1 - a).sqrt() * noise, t, hidden[idx]).sample
        loss = F.mse_loss(pred.float(), noise)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        value = float(loss.item())
        loss_ema = value if math.isnan(loss_ema) else 0.95 * loss_ema + 0.05 * value
        if progress is not None:
            progress(step, config.steps, value)
        if config.time_limit_s is not None and time.time() - start > config.time_limit_s:
            break
    seconds = time.time() - start

    unet.eval()
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    state = convert_state_dict_to_diffusers(get_peft_model_state_dict(unet))
    state = {k: v.detach().to(torch.float16).cpu().contiguous() for k, v in state.items()}
    StableDiffusionPipeline.save_lora_weights(output_dir, unet_lora_layers=state, safe_serialization=True,
                                              weight_name=WEIGHT_NAME)
    result = LoraTrainingResult(path=output_dir, weight_file=output_dir / WEIGHT_NAME, trigger_word=trigger,
                                steps=step, final_loss=round(loss_ema, 5), seconds=round(seconds, 1),
                                captions=caption_list, rank=config.rank)
    info = {**result.to_dict(), "base": str(base) if isinstance(base, (str, Path)) else None,
            "resolution": resolution, "learning_rate": config.learning_rate, "batch_size": batch,
            "target_modules": list(config.target_modules), "images": len(pil_images)}
    (output_dir / INFO_NAME).write_text(json.dumps(info, indent=2, ensure_ascii=False), encoding="utf-8")
    return result
