"""Z-Image: a 6B single-stream DiT with a Qwen3 text encoder.

- `z-image` (Z-Image, Z-Image-Turbo): text-to-image, image-to-image and inpainting, all derived from
  one `ZImagePipeline` with `from_pipe` (the img2img and inpaint pipelines take the same components).
- `z-image-omni` (Z-Image-Omni-Base): generation and editing in one `ZImageOmniPipeline`, which takes
  a list of condition images (the image to edit first, then references). It needs a transformer
  built with SigLIP support (`siglip_feat_dim`) and a SigLIP 2 vision encoder, which Z-Image-Turbo
  does not have: it is a family of its own, not a task derived from `z-image`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hub.families.base import Family, ReferenceListFamily

if TYPE_CHECKING:
    import torch

Z_IMAGE = Family(
    name="z-image",
    max_prompt_tokens=512,  # ZImagePipeline's max_sequence_length
    loader="ZImagePipeline",
    tasks={"text2img": "ZImagePipeline", "img2img": "ZImageImg2ImgPipeline", "inpaint": "ZImageInpaintPipeline"},
    description="Z-Image (Qwen3 text encoder)",
    denoiser="transformer",
    native_size=1024,
    size_multiple=16,  # VAE 8x and 2x2 patches: the pipelines refuse other sizes
)


@dataclass(frozen=True)
class ZImageOmniFamily(ReferenceListFamily):
    def load(self, location: str | Path, *, dtype: torch.dtype, single_file: bool = False, **options: Any) -> Any:
        import torch

        pipe = super().load(location, dtype=dtype, single_file=single_file, **options)
        # diffusers 0.42.1 encodes condition images as `vae.encode(image.bfloat16())`: any other VAE
        # dtype fails every edit with a dtype mismatch. bf16 deployments need nothing; elsewhere
        # (CPU float32, float16 GPUs) the VAE alone runs in bf16.
        if pipe.vae.dtype != torch.bfloat16:
            pipe.vae.to(torch.bfloat16)
        return pipe


Z_IMAGE_OMNI = ZImageOmniFamily(
    name="z-image-omni",
    max_prompt_tokens=512,
    loader="ZImageOmniPipeline",
    tasks={"text2img": "ZImageOmniPipeline", "instruct": "ZImageOmniPipeline", "reference": "ZImageOmniPipeline"},
    description="Z-Image-Omni (Qwen3 text encoder, SigLIP 2 image features); edits and references as an image list",
    denoiser="transformer",
    max_references=4,
    min_image_side=64,  # its image processor refuses condition images under 64 px
    native_size=1024,
    size_multiple=16,
)
