"""Z-Image (Turbo): a 6B DiT with a Qwen3 text encoder; text-to-image and image-to-image."""

from hub.families.base import Family

Z_IMAGE = Family(
    name="z-image",
    loader="ZImagePipeline",
    tasks={"text2img": "ZImagePipeline", "img2img": "ZImageImg2ImgPipeline"},
    description="Z-Image (Qwen3 text encoder)",
    denoiser="transformer",
    native_size=1024,
)
