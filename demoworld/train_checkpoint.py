"""Train a demo checkpoint (VAE, text encoder and UNet from scratch) on rendered prompt/image pairs.

    python -m demoworld.train_checkpoint --variant multilingual --out models/demo-multilingual --device cuda
    python -m demoworld.train_checkpoint --vae-only --vae-out /tmp/vae --device cuda     # the shared VAE

`--variant multilingual` pairs every image with prompts in all languages; `--variant english` with
English prompts only (the control for the multilingual board). The held-out character is never shown.
Runs on CPU (tiny settings in tests) and CUDA (bf16 autocast). `--time-limit` ends training early,
with the LR schedule compressed to fit, so a run on a lent GPU always saves its result.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from demoworld import catalog as cat
from demoworld.dataset import PromptTable, RenderedSet, render_set, sample_attributes
from demoworld.models import (Sizes, build_text_encoder, build_unet, build_vae, count_params, save_sd_pipeline,
                              training_scheduler)


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def load_tokenizer(folder: str | Path | None):
    from transformers import CLIPTokenizer

    from demoworld.tokenizer import build_tokenizer

    if folder and (Path(folder) / "vocab.json").exists():
        return CLIPTokenizer.from_pretrained(str(folder))
    return build_tokenizer(folder or Path("/tmp") / "demoworld-tokenizer")


def to_tensor(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(images).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


def cosine_lr(progress: float, warmup: float = 0.03) -> float:
    if progress < warmup:
        return progress / warmup
    return 0.5 * (1 + math.cos(math.pi * min(1.0, (progress - warmup) / (1 - warmup)))) * 0.95 + 0.05


def _progress(step: int, steps: int, start: float, time_limit: float | None) -> float:
    p = step / steps
    if time_limit:
        p = max(p, (time.time() - start) / time_limit)
    return p


def autocast(device: torch.device):
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return torch.autocast("cpu", enabled=False)


def train_vae(data: RenderedSet, sizes: Sizes, image_size: int, device: torch.device, steps: int,
              batch_size: int = 64, lr: float = 1e-3, time_limit: float | None = None, log=print, seed: int = 0):
    torch.manual_seed(seed)
    vae = build_vae(sizes, image_size).to(device)
    opt = torch.optim.AdamW(vae.parameters(), lr=lr, weight_decay=0.0)
    images = to_tensor(data.images).to(device)
    g = torch.Generator(device="cpu").manual_seed(seed)
    start, step, loss_value = time.time(), 0, float("nan")
    while True:
        progress = _progress(step, steps, start, time_limit)
        if progress >= 1:
            break
        for group in opt.param_groups:
            group["lr"] = lr * cosine_lr(progress)
        idx = torch.randint(0, len(images), (batch_size,), generator=g).to(device)
        x = images[idx]
        with autocast(device):
            posterior = vae.encode(x).latent_dist
            rec = vae.decode(posterior.sample()).sample
        rec = rec.float()
        kl = posterior.kl().mean() / x[0].numel()
        loss = F.mse_loss(rec, x) + 0.5 * F.l1_loss(rec, x) + 1e-4 * kl
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        loss_value = loss.item() if step % 50 == 0 or step < 3 else loss_value
        if step % 200 == 0:
            log(f"vae step {step} loss {loss.item():.4f} ({time.time() - start:.0f}s)")
    vae.eval()
    with torch.no_grad():
        z = encode_latents(vae, data.images[:2048], device)
        std = z.float().std().item()
        rec = vae.decode(z[:256]).sample.float().clamp(-1, 1)
        mse = F.mse_loss(rec, to_tensor(data.images[:256]).to(device)).item()
    vae.register_to_config(scaling_factor=1.0 / std)
    log(f"vae done: {step} steps, {time.time() - start:.0f}s, recon mse {mse:.4f}, latent std {std:.3f}")
    return vae, {"steps": step, "seconds": round(time.time() - start, 1), "recon_mse": mse, "latent_std": std}


@torch.no_grad()
def encode_latents(vae, images: np.ndarray, device: torch.device, batch_size: int = 512) -> torch.Tensor:
    out = []
    for i in range(0, len(images), batch_size):
        x = to_tensor(images[i:i + batch_size]).to(device=device, dtype=vae.dtype)
        out.append(vae.encode(x).latent_dist.mean.float())
    return torch.cat(out)


class EMA:
    def __init__(self, params, decay: float):
        self.params = [p for p in params if p.requires_grad]
        self.shadow = [p.detach().clone().float() for p in self.params]
        self.decay = decay

    @torch.no_grad()
    def update(self, step: int):
        d = min(self.decay, (1 + step) / (10 + step))
        torch._foreach_mul_(self.shadow, d)
        torch._foreach_add_(self.shadow, [p.float() for p in self.params], alpha=1 - d)

    @torch.no_grad()
    def copy_to_params(self):
        for p, s in zip(self.params, self.shadow):
            p.copy_(s.to(p.dtype))


def train_diffusion(data: RenderedSet, vae, tokenizer, sizes: Sizes, languages: list[str], device: torch.device,
                    steps: int, batch_size: int = 128, lr: float = 4e-4, time_limit: float | None = None,
                    ema_decay: float = 0.999, seed: int = 0, log=print, in_channels: int = 4):
    torch.manual_seed(seed)
    latents = (encode_latents(vae, data.images, device) * vae.config.scaling_factor).to(device)
    latent_size = latents.shape[-1]
    unet = build_unet(sizes, latent_size, in_channels=in_channels).to(device)
    text_encoder = build_text_encoder(tokenizer, sizes).to(device)
    table = PromptTable(tokenizer, languages)
    noise_sched = training_scheduler()
    alphas = noise_sched.alphas_cumprod.to(device)
    params = list(unet.parameters()) + list(text_encoder.parameters())
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=1e-2, betas=(0.9, 0.99))
    ema = EMA(params, ema_decay)
    char_t = torch.from_numpy(data.character)
    expr_t = torch.from_numpy(data.expression)
    bg_t = torch.from_numpy(data.background)
    g = torch.Generator(device="cpu").manual_seed(seed)
    start, step, running = time.time(), 0, None
    log(f"diffusion: {len(latents)} images, latents {tuple(latents.shape[1:])}, unet {count_params(unet):,} "
        f"params, text encoder {count_params(text_encoder):,}, languages {languages}")
    while True:
        progress = _progress(step, steps, start, time_limit)
        if progress >= 1:
            break
        for group in opt.param_groups:
            group["lr"] = lr * cosine_lr(progress)
        idx = torch.randint(0, len(latents), (batch_size,), generator=g)
        ids = table.sample(char_t[idx], expr_t[idx], bg_t[idx], g).to(device)
        x0 = latents[idx.to(device)]
        noise = torch.randn_like(x0)
        t = torch.randint(0, noise_sched.config.num_train_timesteps, (batch_size,), device=device)
        a = alphas[t].view(-1, 1, 1, 1)
        xt = a.sqrt() * x0 + (1 - a).sqrt() * noise
        with autocast(device):
            hidden = text_encoder(ids)[0]
            pred = unet(xt, t, hidden).sample
        loss = F.mse_loss(pred.float(), noise)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        ema.update(step)
        step += 1
        if step % 25 == 0 or step <= 2:  # .item() syncs the GPU: read the loss only now and then
            running = loss.item() if running is None else 0.6 * running + 0.4 * loss.item()
        if step % 250 == 0:
            log(f"diffusion step {step} loss {running:.4f} lr {opt.param_groups[0]['lr']:.2e} "
                f"({time.time() - start:.0f}s)")
    ema.copy_to_params()
    stats = {"steps": step, "seconds": round(time.time() - start, 1), "final_loss_ema": round(running or 0, 5),
             "batch_size": batch_size, "lr": lr, "images": int(len(latents))}
    log(f"diffusion done: {stats}")
    return unet.eval(), text_encoder.eval(), stats


MODEL_CARD = """---
library_name: diffusers
pipeline_tag: text-to-image
tags: [sakuga-hub, demo-world, sd15-layout]
---
# {title}

A tiny demo checkpoint of Sakuga Hub's procedural "demo world", trained from scratch on
{images} rendered {size}x{size} chibi portraits of {n_chars} demo characters. {what}

- Layout: `StableDiffusionPipeline` (family `sd15`), fp16 safetensors; loads offline with
  `StableDiffusionPipeline.from_pretrained(folder, local_files_only=True)`.
- Text encoder: {text_layers}-layer, {text_width}-wide `CLIPTextModel`; tokenizer: byte-level BPE in CLIP
  format trained on the demo prompts (Latin, Cyrillic, CJK, Hangul).
- VAE: small `AutoencoderKL` (factor 4, 16x16x4 latents); UNet: `UNet2DConditionModel` {unet_channels}.
- Default sampling: {size}x{size}, Euler ancestral, 25 steps, CFG 3.
- Held out: `{held_out}` (never shown); its LoRA is `{lora_id}` (trigger `{trigger}`).
- Training: {train_stats}
- Rebuild: `python -m demoworld.train_checkpoint --variant {variant} ...` (see `demoworld/README.md`).

Not a real image model: it only draws this demo world, for exercising the hub offline.
"""


def model_card(variant: str, size: int, sizes: Sizes, stats: dict) -> str:
    what = ("Trained on prompts in all ten languages (en, es, fr, de, pt, it, ru, zh, ja, ko)."
            if variant == "multilingual" else
            "Trained on English prompts only: the control for the multilingual board (other languages' "
            "names are unknown to it).")
    return MODEL_CARD.format(title=f"demo-{variant}", images=stats.get("images"), size=size,
                             n_chars=len(cat.trained_characters()), what=what, text_layers=sizes.text_layers,
                             text_width=sizes.text_width, unet_channels=list(sizes.unet_channels),
                             held_out=cat.HELD_OUT_ID, lora_id=cat.LORA_ID, trigger=cat.LORA_TRIGGER,
                             train_stats=json.dumps(stats), variant=variant)


def load_or_render(cache: str | None, n: int, seed: int, size: int, workers: int, log=print) -> RenderedSet:
    if cache and Path(cache).exists():
        data = RenderedSet.load(cache)
        if data.images.shape[1] == size:
            log(f"loaded {len(data)} renders from {cache}")
            return data
    t = time.time()
    data = render_set(sample_attributes(n, seed, cat.trained_characters()), seed, size, workers)
    log(f"rendered {len(data)} images at {size}px in {time.time() - t:.1f}s")
    if cache:
        data.save(cache)
    return data


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variant", choices=["multilingual", "english"], default="multilingual")
    ap.add_argument("--out", default=None, help="pipeline folder to write")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--num-images", type=int, default=20000)
    ap.add_argument("--cache", default=None, help="npz of pre-rendered training images (created if missing)")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--tokenizer", default=None, help="CLIP tokenizer folder (trained and saved there if missing)")
    ap.add_argument("--vae", default=None, help="a trained AutoencoderKL folder to reuse")
    ap.add_argument("--vae-only", action="store_true", help="train only the VAE and save it to --vae-out")
    ap.add_argument("--vae-out", default=None)
    ap.add_argument("--vae-steps", type=int, default=3000)
    ap.add_argument("--vae-time-limit", type=float, default=None)
    ap.add_argument("--vae-batch-size", type=int, default=64)
    ap.add_argument("--vae-lr", type=float, default=1e-3)
    ap.add_argument("--steps", type=int, default=20000)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=4e-4)
    ap.add_argument("--time-limit", type=float, default=None, help="seconds of diffusion training at most")
    ap.add_argument("--tiny", action="store_true", help="tiny model sizes (tests)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--stats-out", default=None)
    args = ap.parse_args(argv)

    def log(msg: str) -> None:
        print(f"[{args.variant if not args.vae_only else 'vae'}] {msg}", flush=True)

    device = pick_device(args.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    sizes = Sizes.tiny() if args.tiny else Sizes()
    data = load_or_render(args.cache, args.num_images, args.seed, args.size, args.workers, log)
    stats: dict = {"variant": args.variant, "device": str(device)}
    if args.vae:
        from diffusers import AutoencoderKL
        vae = AutoencoderKL.from_pretrained(args.vae, torch_dtype=torch.float32).to(device)
    else:
        vae, stats["vae"] = train_vae(data, sizes, args.size, device, args.vae_steps, batch_size=args.vae_batch_size,
                                      lr=args.vae_lr, time_limit=args.vae_time_limit,
                                      log=log, seed=args.seed)
    if args.vae_only:
        vae.save_pretrained(args.vae_out or "vae", safe_serialization=True)
        if args.stats_out:
            Path(args.stats_out).write_text(json.dumps(stats, indent=2))
        return stats
    tokenizer = load_tokenizer(args.tokenizer)
    languages = list(cat.LANGUAGES) if args.variant == "multilingual" else ["en"]
    unet, text_encoder, stats["diffusion"] = train_diffusion(
        data, vae, tokenizer, sizes, languages, device, args.steps, args.batch_size, args.lr,
        time_limit=args.time_limit, seed=args.seed, log=log)
    out = Path(args.out or f"models/demo-{args.variant}")
    card_stats = {"steps": stats["diffusion"]["steps"], "batch": args.batch_size,
                  "final_loss": stats["diffusion"]["final_loss_ema"], "seconds": stats["diffusion"]["seconds"],
                  "device": str(device), "images": stats["diffusion"]["images"]}
    save_sd_pipeline(out, unet=unet.float().cpu(), vae=vae.float().cpu(), text_encoder=text_encoder.float().cpu(),
                     tokenizer=tokenizer, model_card=model_card(args.variant, args.size, sizes, card_stats))
    (out / "training_stats.json").write_text(json.dumps(stats, indent=2))
    if args.stats_out:
        Path(args.stats_out).write_text(json.dumps(stats, indent=2))
    log(f"saved {out}")
    return stats


if __name__ == "__main__":
    main()
