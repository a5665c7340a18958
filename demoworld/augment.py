"""Make renders look like what the demo checkpoints generate, so the judges trained on renders also read
generated images.

The demo checkpoints' images (see `python -m demoworld sheet` next to a `demo-multilingual` sample) are
softer than renders: the small VAE blurs edges and thin lines, colours drift a little, flat areas get
faint texture, and the portrait sits a pixel or two off. Two tools:

- `generator_look`: renders encoded and decoded by the demo VAE, with some noise added to the latents
  first (the VAE's exact blur, plus the texture a not-quite-converged sample has). Done once per
  training set; a training step picks the clean or the VAE version of each image at random.
- `degrade`: cheap per-step degradations on a normalised batch: blur, down-and-up resize, colour and
  saturation drift, noise, small shifts.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

DEFAULT_VAE = Path(__file__).resolve().parent.parent / "models" / "demo-multilingual" / "vae"


@torch.no_grad()
def generator_look(images: np.ndarray, vae_folder: str | Path | None = DEFAULT_VAE, *, seed: int = 0,
                   max_latent_noise: float = 0.2, batch_size: int = 256, device: str | torch.device = "cpu",
                   log: Callable[[str], None] = print) -> np.ndarray | None:
    """(N, S, S, 3) uint8 renders -> the same through the demo VAE (latent noise up to `max_latent_noise`
    latent standard deviations, drawn per image). None when no VAE folder is there (training still works,
    with `degrade` alone)."""
    if vae_folder is None or not (Path(vae_folder) / "config.json").is_file():
        log(f"no VAE at {vae_folder}: training without the generator look")
        return None
    from diffusers import AutoencoderKL

    t0 = time.time()
    vae = AutoencoderKL.from_pretrained(str(vae_folder), torch_dtype=torch.float32).to(device).eval()
    std = 1.0 / float(vae.config.scaling_factor)
    g = torch.Generator().manual_seed(seed)
    out = np.empty_like(images)
    for i in range(0, len(images), batch_size):
        x = torch.from_numpy(images[i:i + batch_size]).permute(0, 3, 1, 2).float().div(127.5).sub(1.0).to(device)
        z = vae.encode(x).latent_dist.mode()
        amount = torch.rand(len(x), 1, 1, 1, generator=g) * max_latent_noise * std
        z = z + (torch.randn(z.shape, generator=g) * amount).to(device)
        y = vae.decode(z).sample.clamp(-1, 1).add(1).mul(127.5).round().byte()
        out[i:i + batch_size] = y.permute(0, 2, 3, 1).cpu().numpy()
    log(f"generator look: {len(images)} images through the demo VAE in {time.time() - t0:.0f}s")
    return out


def _rand(n: int, g: torch.Generator, device: torch.device, *shape: int) -> torch.Tensor:
    return torch.rand(n, *shape, generator=g).to(device)


def degrade(x: torch.Tensor, g: torch.Generator, strength: float = 1.0) -> torch.Tensor:
    """x: (N, 3, S, S) RGB in [-1, 1]. Blur, resize, colour drift, noise and a shift, each random per image."""
    n, _, size, _ = x.shape
    dev = x.device
    # blur: mix with a 3x3 box blur
    blur = F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    w = _rand(n, g, dev, 1, 1, 1) * 0.9 * strength
    x = x * (1 - w) + blur * w
    # down-and-up resize for a third of the batch (the VAE's factor-4 softness, roughly)
    small = F.interpolate(x, scale_factor=0.5, mode="bilinear", align_corners=False, antialias=True)
    up = F.interpolate(small, size=(size, size), mode="bilinear", align_corners=False)
    pick = (_rand(n, g, dev, 1, 1, 1) < 0.33 * strength).float()
    x = x * (1 - pick) + up * pick
    # saturation, colour drift per channel, brightness
    grey = x.mean(1, keepdim=True)
    sat = 1 + (_rand(n, g, dev, 1, 1, 1) - 0.5) * 0.5 * strength
    x = grey + (x - grey) * sat
    x = x + (_rand(n, g, dev, 3, 1, 1) - 0.5) * 0.16 * strength
    x = x * (1 + (_rand(n, g, dev, 1, 1, 1) - 0.5) * 0.2 * strength)
    # noise
    x = x + torch.randn(x.shape, generator=g).to(dev) * (_rand(n, g, dev, 1, 1, 1) * 0.1 * strength)
    # shift up to 2 px (one shift per batch; cheap)
    dx, dy = [int(v) for v in torch.randint(-2, 3, (2,), generator=g)]
    x = torch.roll(x, shifts=(dy, dx), dims=(2, 3))
    return x.clamp(-1.2, 1.2)


def pick_views(clean: torch.Tensor, vae_view: torch.Tensor | None, idx: torch.Tensor, g: torch.Generator,
               p_vae: float = 0.5) -> torch.Tensor:
    """uint8 images idx from the clean set or (with probability p_vae) from the VAE view."""
    if vae_view is None:
        return clean[idx]
    use = (torch.rand(len(idx), generator=g) < p_vae).to(clean.device).view(-1, 1, 1, 1)
    return torch.where(use, vae_view[idx], clean[idx])


def to_unit(images_uint8: torch.Tensor) -> torch.Tensor:
    """(N, S, S, 3) uint8 -> (N, 3, S, S) float in [-1, 1]."""
    return images_uint8.permute(0, 3, 1, 2).float().div(127.5).sub(1.0)
