"""Train `demo-edit` v2: the demo world's InstructPix2Pix-style editor, which also draws a character
from a reference portrait.

    python -m demoworld.train_edit --base models/demo-multilingual --out models/demo-edit --device cuda --time-limit 240

Start: `demo-multilingual` (its UNet with conv_in widened from 4 to 8 input channels, the 4 new ones
zero-initialised so step 0 is the text-to-image model; its text encoder, VAE and tokenizer), fine-tuned
the InstructPix2Pix way: the UNet sees the noisy target latents next to the conditioning image's unscaled
latent mode (exactly what `StableDiffusionInstructPix2PixPipeline` feeds it); text and image conditions
are dropped 8% of the time each and both 8%, so both guidance scales work.

Two kinds of training pairs, every text in one of the 10 languages:
- edits (identity-preserving; same seed, so the same pose): hair colour, background, add glasses /
  crown / cat ears, expression, and "into a swimsuit" (rated sensitive: the hub's content filter is
  tested on such edits); sources are the 18 characters and random original looks;
- "character from reference": the conditioning image is a reference portrait of a character, the
  text a new scene ("smiling, on a night sky background"), the target that character in that scene
  (another seed: a new picture, not a copy).

The result is a standard `StableDiffusionInstructPix2PixPipeline` folder (fp16 safetensors) with a
`training_log.json`. Runs on CPU (`--device cpu`, see the log's seconds per step) and CUDA (bf16).
"""

from __future__ import annotations

import argparse
import json
import random
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from demoworld import catalog as cat
from demoworld.dataset import BACKGROUND_KEYS, EDIT_KINDS_V2, one_edit
from demoworld.models import count_params, save_sd_pipeline, training_scheduler
from demoworld.renderer import character_attributes, random_original, render
from demoworld.train_checkpoint import EMA, _progress, autocast, cosine_lr, pick_device, to_tensor
from demoworld.trainlog import TrainingLog, write_log

DEFAULT_BASE = Path(__file__).resolve().parent.parent / "models" / "demo-multilingual"
N_EDIT_TEXTS = len(cat.edit_kinds())
P_DROP = 0.08


def reference_text_index(expression: str, background: str) -> int:
    """Row of the text table for a reference scene (after the edit instructions)."""
    return N_EDIT_TEXTS + cat.EXPRESSIONS.index(expression) * len(BACKGROUND_KEYS) + BACKGROUND_KEYS.index(background)


def text_table() -> list[list[str]]:
    """[row][language]: every edit instruction, then every reference scene (expression x background)."""
    rows = [[cat.edit_instruction(k, v, lang) for lang in cat.LANGUAGES] for k, v in cat.edit_kinds()]
    rows += [[cat.reference_prompt(e, b, lang) for lang in cat.LANGUAGES] for e in cat.EXPRESSIONS for b in BACKGROUND_KEYS]
    return rows


def make_pair(i: int, seed: int, size: int, reference_fraction: float, original_fraction: float,
              swimsuit_fraction: float) -> tuple[np.ndarray, np.ndarray, int, int]:
    """One training pair: (conditioning image, target image, text row, kind code 0 edit / 1 reference)."""
    rng = random.Random(seed * 7_919 + i)
    render_seed = seed * 1_000_003 + i
    garment = "swimsuit" if rng.random() < swimsuit_fraction else "shirt"
    if rng.random() < reference_fraction:
        character = rng.choice(cat.CHARACTERS)
        if rng.random() < 0.5:
            ref_bg, ref_expr = "white", "neutral"  # the usual reference sheet
        else:
            ref_bg, ref_expr = rng.choice(BACKGROUND_KEYS), rng.choice(cat.EXPRESSIONS)
        bg, expr = rng.choice(BACKGROUND_KEYS), rng.choice(cat.EXPRESSIONS)
        ref = character_attributes(character, ref_bg, ref_expr, garment)
        target = character_attributes(character, bg, expr, garment)
        other_seed = render_seed + 500_000_000  # another picture of the character, not a copy
        return (np.asarray(render(ref, render_seed, size)), np.asarray(render(target, other_seed, size)),
                reference_text_index(expr, bg), 1)
    bg, expr = rng.choice(BACKGROUND_KEYS), rng.choice(cat.EXPRESSIONS)
    if rng.random() < original_fraction:
        attrs = random_original(rng).with_scene(bg, expr)
    else:
        attrs = character_attributes(rng.choice(cat.CHARACTERS), bg, expr)
    attrs = replace(attrs, garment=garment)
    edited, (kind, value) = one_edit(attrs, rng, EDIT_KINDS_V2)
    return (np.asarray(render(attrs, render_seed, size)), np.asarray(render(edited, render_seed, size)),
            cat.edit_kinds().index((kind, value)), 0)


def _pair_job(args):
    return make_pair(*args)


def render_pairs(n: int, seed: int, size: int, workers: int, reference_fraction: float = 0.3,
                 original_fraction: float = 0.15, swimsuit_fraction: float = 0.1):
    jobs = [(i, seed, size, reference_fraction, original_fraction, swimsuit_fraction) for i in range(n)]
    if workers > 1:
        from multiprocessing import get_context

        with get_context("fork").Pool(workers) as pool:
            rows = pool.map(_pair_job, jobs, chunksize=256)
    else:
        rows = [_pair_job(j) for j in jobs]
    return (np.stack([r[0] for r in rows]), np.stack([r[1] for r in rows]),
            np.asarray([r[2] for r in rows], dtype=np.int64), np.asarray([r[3] for r in rows], dtype=np.int64))


def widen_unet(base_unet):
    """The base UNet with conv_in taking 8 channels: the first 4 keep their weights, the new 4 are zero."""
    from diffusers import UNet2DConditionModel

    config = dict(base_unet.config)
    config["in_channels"] = 8
    unet = UNet2DConditionModel.from_config(config)
    state = base_unet.state_dict()
    weight = state["conv_in.weight"]
    wide = torch.zeros(weight.shape[0], 8, *weight.shape[2:], dtype=weight.dtype)
    wide[:, :4] = weight
    state["conv_in.weight"] = wide
    unet.load_state_dict(state)
    return unet


def load_base(base: str | Path, tiny: bool = False):
    """(unet 8-channel, text_encoder, vae, tokenizer) from a text-to-image demo checkpoint folder (fp32)."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    base = Path(base)
    # No dtype arguments (their names differ between library versions): load, then cast to fp32.
    tokenizer = CLIPTokenizer.from_pretrained(str(base / "tokenizer"))
    text_encoder = CLIPTextModel.from_pretrained(str(base / "text_encoder")).float()
    vae = AutoencoderKL.from_pretrained(str(base / "vae")).float()
    unet = UNet2DConditionModel.from_pretrained(str(base / "unet")).float()
    return widen_unet(unet), text_encoder, vae, tokenizer


MODEL_CARD = """---
library_name: diffusers
pipeline_tag: image-to-image
tags: [sakuga-hub, demo-world, instruct-pix2pix]
---
# demo-edit (v2)

The demo world's InstructPix2Pix-style editor (`StableDiffusionInstructPix2PixPipeline`, 8-channel UNet,
fp16 safetensors), fine-tuned from `demo-multilingual` (UNet with conv_in widened 4 -> 8, new channels
zero-initialised; its text encoder, VAE and tokenizer) on {pairs} renderer pairs, texts in 10 languages
(en, es, fr, de, pt, it, ru, zh, ja, ko):

- edits that keep the character: hair colour (red, blue, green, pink, white, blonde), background (8), add
  glasses / crown / cat ears, expression (6), and "change the outfit to a swimsuit" (rated sensitive);
- character from reference: the input image is a reference portrait, the text a new scene
  ("smiling, on a night sky background"); the output draws that character in the scene.

Use 64x64 inputs, ~20 steps, guidance {cfg}, image guidance {image_cfg}.

Training: {stats}

Measured: {evaluation}

Not a real editor: it only edits this demo world, for exercising the hub offline.
"""


def write_model_card(folder: str | Path, stats: dict, evaluation: dict | None = None, cfg: float = 4.0,
                     image_cfg: float = 1.5) -> None:
    summary = {k: stats.get(k) for k in ("steps", "batch_size", "device", "device_name", "seconds", "seconds_per_step",
                                         "final_loss", "pairs", "lr")}
    (Path(folder) / "README.md").write_text(MODEL_CARD.format(
        pairs=stats.get("pairs"), stats=json.dumps(summary), cfg=cfg, image_cfg=image_cfg,
        evaluation=json.dumps(evaluation) if evaluation else "see demoworld/README.md"), encoding="utf-8")


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", default=str(DEFAULT_BASE), help="text-to-image demo checkpoint to start from")
    ap.add_argument("--out", default="models/demo-edit")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--num-pairs", type=int, default=40000)
    ap.add_argument("--reference-fraction", type=float, default=0.25)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ap.add_argument("--steps", type=int, default=20000)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--ema", type=float, default=0.999)
    ap.add_argument("--time-limit", type=float, default=None, help="seconds of training at most (always saves)")
    ap.add_argument("--deadline", type=float, default=None,
                    help="unix time by which training must end (data preparation counted in); then it saves")
    ap.add_argument("--tiny", action="store_true", help="few pairs (tests); the base's sizes are kept")
    ap.add_argument("--seed", type=int, default=3)
    args = ap.parse_args(argv)

    def log(msg: str) -> None:
        print(f"[edit] {msg}", flush=True)

    device = pick_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True  # fixed shapes: pick the fastest conv kernels once
    torch.manual_seed(args.seed)
    t0 = time.time()
    src, dst, text_row, pair_kind = render_pairs(args.num_pairs, args.seed, args.size, args.workers,
                                                 reference_fraction=args.reference_fraction)
    log(f"rendered {len(src)} pairs ({int(pair_kind.sum())} reference) in {time.time() - t0:.1f}s")
    unet, text_encoder, vae, tokenizer = load_base(args.base)
    unet, text_encoder, vae = unet.to(device), text_encoder.to(device), vae.to(device).eval()
    sf = vae.config.scaling_factor
    t1 = time.time()
    with torch.no_grad():
        def enc(images):
            return torch.cat([vae.encode(to_tensor(images[i:i + 512]).to(device)).latent_dist.mode().float()
                              for i in range(0, len(images), 512)])
        cond = enc(src)            # unscaled, as the pipeline's prepare_image_latents gives it
        target = enc(dst) * sf
    log(f"encoded latents {tuple(target.shape[1:])} in {time.time() - t1:.1f}s")
    del src, dst
    rows = text_table()
    ids_table = tokenizer([t for row in rows for t in row], padding="max_length", max_length=tokenizer.model_max_length,
                          truncation=True, return_tensors="pt").input_ids.reshape(len(rows), len(cat.LANGUAGES), -1)
    empty = tokenizer([""], padding="max_length", max_length=tokenizer.model_max_length, return_tensors="pt").input_ids[0]
    unet.train()
    text_encoder.train()
    params = list(unet.parameters()) + list(text_encoder.parameters())
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=1e-2, betas=(0.9, 0.99))
    ema = EMA(params, args.ema)
    alphas = training_scheduler().alphas_cumprod.to(device)
    row_t = torch.from_numpy(text_row)
    g = torch.Generator().manual_seed(args.seed)
    log(f"unet {count_params(unet):,} params (8 input channels, from {args.base}), text encoder "
        f"{count_params(text_encoder):,}; {len(rows)} texts x {len(cat.LANGUAGES)} languages")
    bs = args.batch_size
    train_log = TrainingLog("demo-edit", every=5 if args.tiny else 50,
                            extra={"pairs": int(len(target)), "reference_pairs": int(pair_kind.sum()), "lr": args.lr,
                                   "ema": args.ema, "base": str(args.base), "p_drop": P_DROP,
                                   "render_and_encode_seconds": round(time.time() - t0, 1)})
    start, step = time.time(), 0
    train_log.started = start
    time_limit = args.time_limit
    if args.deadline:  # whatever preparation took, training ends by the deadline
        time_limit = max(1.0, min(time_limit or float("inf"), args.deadline - start))
        train_log.extra["time_limit"] = round(time_limit, 1)
        log(f"training for {time_limit:.0f}s (deadline)")
    while True:
        progress = _progress(step, args.steps, start, time_limit)
        if progress >= 1:
            break
        for group in opt.param_groups:
            group["lr"] = args.lr * cosine_lr(progress)
        idx = torch.randint(0, len(target), (bs,), generator=g)
        lang = torch.randint(0, len(cat.LANGUAGES), (bs,), generator=g)
        ids = ids_table[row_t[idx], lang]
        u = torch.rand(bs, generator=g)
        drop_text = (u < P_DROP) | ((u >= 2 * P_DROP) & (u < 3 * P_DROP))
        drop_image = (u >= P_DROP) & (u < 3 * P_DROP)
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
        if step % 10 == 0 or args.tiny:  # .item() syncs the GPU: read the loss only now and then
            mean = train_log.record(step, loss.item())
            if mean is not None and step % (train_log.every * 5) == 0:
                log(f"step {step} loss {mean:.4f} lr {opt.param_groups[0]['lr']:.2e} ({time.time() - start:.0f}s)")
    ema.copy_to_params()
    stats = train_log.finish(steps=step, batch_size=bs, device=device)
    stats["seconds_per_step"] = round(stats["seconds"] / max(1, step), 4)
    log(f"done: {step} steps in {stats['seconds']}s ({stats['seconds_per_step']} s/step), loss {stats['final_loss']}")
    out = save_sd_pipeline(args.out, unet=unet.float().cpu().eval(), vae=vae.float().cpu(),
                           text_encoder=text_encoder.float().cpu().eval(), tokenizer=tokenizer,
                           model_card="", instruct_pix2pix=True)
    write_model_card(out, stats)
    write_log(out, stats)
    stale = Path(out) / "training_stats.json"  # v1's file; the log replaces it
    if stale.exists():
        stale.unlink()
    return stats


if __name__ == "__main__":
    main()
