"""Stable Diffusion 1.5 and SDXL: text-to-image, image-to-image and inpainting from one base.

The anime checkpoints most people use (Animagine XL, Illustrious XL, NoobAI-XL) are SDXL; they take
Danbooru tags in English only, which makes them the control of the multilingual board.
"""

from hub.families.base import Family

SD15 = Family(
    name="sd15",
    loader="StableDiffusionPipeline",
    tasks={
        "text2img": "StableDiffusionPipeline",
        "img2img": "StableDiffusionImg2ImgPipeline",
        "inpaint": "StableDiffusionInpaintPipeline",
    },
    description="Stable Diffusion 1.x layout (UNet, one CLIP text encoder)",
)

SDXL = Family(
    name="sdxl",
    loader="StableDiffusionXLPipeline",
    tasks={
        "text2img": "StableDiffusionXLPipeline",
        "img2img": "StableDiffusionXLImg2ImgPipeline",
        "inpaint": "StableDiffusionXLInpaintPipeline",
    },
    description="SDXL layout (UNet, CLIP-L + CLIP-G)",
    native_size=1024,
)
