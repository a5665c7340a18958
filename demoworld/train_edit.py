"""Train `demo-edit`, an InstructPix2Pix-style model of the demo world (stretch goal of issue 6).

    python -m demoworld.train_edit --vae VAE_FOLDER --tokenizer TOKENIZER_FOLDER --out models/demo-edit --device cuda

Pairs: a portrait, an instruction in one of the ten languages ("make the hair red", "ponle el pelo
rojo", "髪を赤にして", ...) and the exact portrait the renderer draws with that one attribute changed
(same seed, so the same pose). The UNet takes 8 input channels (noisy latents + the input image's
unscaled latent mode, as StableDiffusionInstructPix2PixPipeline feeds it); text and image conditions
are each dropped 5% of the time (and both 5%) so both guidance scales work.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from demoworld import catalog as cat
from demoworld.dataset import one_edit, sample_attributes
from demoworld.models import Sizes, build_text_encoder, build_unet, count_params, save_sd_pipeline, training_scheduler
from demoworld.renderer import render
from demoworld.train_checkpoint import EMA, _progress, autocast, cosine_lr, load_tokenizer, pick_device, to_tensor


def _render_pair(args):
    attrs, seed, size, edit_seed = args
    edited, (kind, value) = one_edit(attrs, random.Random(edit_seed))
    return (np.asarray(render(attrs, seed, size)), np.asarray(render(edited, seed, size)),
            cat.edit_kinds().index((kind, value)))


def render_pairs(n: int, seed: int, size: int, workers: int):
    attrs = sample_attributes(n, seed, cat.CHARACTERS)
    jobs = [(a, seed * 1_000_003 + i, size, seed * 7_919 + i) for i, a in enumerate(attrs)]
    if workers > 1:
        from multiprocessing import get_context

        with get_context("fork").Pool(workers) as pool:
            rows = pool.map(_render_pair, jobs, chunksize=256)
    else:
        rows = [_render_pair(j) for j in jobs]
    src = np.stack([r[0] for r in rows])
    dst = np.stack([r[1] for r in rows])
    kind = np.asarray([r[2] for r in rows], dtype=np.int64)
    return src, dst, kind


MODEL_CARD = """---
library_name: diffusers
pipeline_tag: image-to-image
tags: [sakuga-hub, demo-world, instruct-pix2pix]
---
# demo-edit

A tiny InstructPix2Pix-style edit model of Sakuga Hub's demo world (`StableDiffusionInstructPix2PixPipeline`,
8-channel UNet, fp16 safetensors), trained from scratch on {pairs} renderer pairs: an input portrait, an
instruction in one of 10 languages (en, es, fr, de, pt, it, ru, zh, ja, ko) and the exact edited portrait.
Edits: hair colour (red, blue, green, pink, white, blonde), background (8), add glasses / crown / cat ears.
Use 64x64 inputs, ~20 steps, guidance 4, image guidance 1.5.

Training: {stats}

Not a real editor: it only edits this demo world, for exercising the hub offline.
"""


def main(argv: list[str] | None = None) -> dict:
    from diffusers import AutoencoderKL

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vae", required=True)
    ap.add_argument("--tokenizer", default=None)
    ap.add_argument("--out", default="models/demo-edit")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--num-pairs", type=int, default=30000)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--steps", type=int, default=20000)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--time-limit", type=float, default=None)
    ap.add_argument("--tiny", action="store_true")
    ap.add_argument("--seed", type=int, default=3)
    args = ap.parse_args(argv)

    def log(msg: str) -> None:
        print(f"[edit] {msg}", flush=True)

    device = pick_device(args.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
    sizes = Sizes.tiny() if args.tiny else Sizes()
    torch.manual_seed(args.seed)
    t0 = time.time()
    src, dst, kind = render_pairs(args.num_pairs, args.seed, args.size, args.workers)
    log(f"rendered {len(src)} pairs in {time.time() - t0:.1f}s")
    vae = AutoencoderKL.from_pretrained(args.vae, torch_dtype=torch.float32).to(device).eval()
    sf = vae.config.scaling_factor
    with torch.no_grad():
        def enc(images):
            return torch.cat([vae.encode(to_tensor(images[i:i + 512]).to(device)).latent_dist.mode().float()
                              for i in range(0, len(images), 512)])
        cond = enc(src)            # unscaled, as the pipeline's prepare_image_latents gives it
        target = enc(dst) * sf
    tokenizer = load_tokenizer(args.tokenizer)
    texts = [cat.edit_instruction(k, v, lang) for (k, v) in cat.edit_kinds() for lang in cat.LANGUAGES]
    ids_table = tokenizer(texts, padding="max_length", max_length=tokenizer.model_max_length, truncation=True,
                          return_tensors="pt").input_ids.reshape(len(cat.edit_kinds()), len(cat.LANGUAGES), -1)
    empty = tokenizer([""], padding="max_length", max_length=tokenizer.model_max_length, return_tensors="pt").input_ids[0]
    unet = build_unet(sizes, target.shape[-1], in_channels=8).to(device)
    text_encoder = build_text_encoder(tokenizer, sizes).to(device)
    params = list(unet.parameters()) + list(text_encoder.parameters())
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=1e-2, betas=(0.9, 0.99))
    ema = EMA(params, 0.999)
    alphas = training_scheduler().alphas_cumprod.to(device)
    kind_t = torch.from_numpy(kind)
    g = torch.Generator().manual_seed(args.seed)
    log(f"unet {count_params(unet):,} params (8 input channels), text encoder {count_params(text_encoder):,}")
    start, step, running = time.time(), 0, None
    bs = args.batch_size
    while True:
        progress = _progress(step, args.steps, start, args.time_limit)
        if progress >= 1:
            break
        for group in opt.param_groups:
            group["lr"] = args.lr * cosine_lr(progress)
        idx = torch.randint(0, len(target), (bs,), generator=g)
        lang = torch.randint(0, len(cat.LANGUAGES), (bs,), generator=g)
        ids = ids_table[kind_t[idx], lang]
        u = torch.rand(bs, generator=g)
        drop_text = (u < 0.05) | (u >= 0.10) & (u < 0.15)
        drop_image = (u >= 0.05) & (u < 0.15)
        ids[drop_text] = empty
        ids = ids.to(device)
        dev_idx = idx.to(device)
        x0, c = target[dev_idx], cond[dev_idx] * (~drop_image).to(device).float().view(-1, 1, 1, 1)
        noise = torch.randn_like(x0)
        t = torch.randint(0, 1000, (bs,), device=device)
        a = alphas[t].view(-1, 1, 1, 1)
        xt = a.sqrt() * x0 + (1 - a).sqrt() * noise
        with autocast(device):
            pred = unet(torch.cat([xt, c], dim=1), t, text_encoder(ids)[0]).sample
        loss = F.mse_loss(pred.float(), noise)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        ema.update(step)
        step += 1
        if step % 25 == 0 or step <= 2:
            running = loss.item() if running is None else 0.6 * running + 0.4 * loss.item()
        if step % 250 == 0:
            log(f"step {step} loss {running:.4f} ({time.time() - start:.0f}s)")
    ema.copy_to_params()
    stats = {"steps": step, "seconds": round(time.time() - start, 1), "final_loss_ema": round(running or 0, 5),
             "batch_size": bs, "pairs": int(len(target)), "device": str(device)}
    log(f"done: {stats}")
    out = save_sd_pipeline(args.out, unet=unet.float().cpu().eval(), vae=vae.float().cpu(),
                           text_encoder=text_encoder.float().cpu().eval(), tokenizer=tokenizer,
                           model_card=MODEL_CARD.format(pairs=len(target), stats=json.dumps(stats)),
                           instruct_pix2pix=True)
    (Path(out) / "training_stats.json").write_text(json.dumps(stats, indent=2))
    return stats


if __name__ == "__main__":
    main()
