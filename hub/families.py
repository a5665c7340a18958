"""Model families: which diffusers pipeline classes serve which task.

One entry per family. The engine loads the family's `loader` class once and derives the task
pipelines from it with `from_pipe`, so every task shares the same weights.
A task missing from a family's table is not offered for it (the UI hides it, the API refuses it).
"""

from __future__ import annotations

from dataclasses import dataclass, field

TASKS = ("text2img", "img2img", "inpaint", "instruct")


@dataclass(frozen=True)
class Family:
    name: str
    loader: str  # diffusers class name used with from_pretrained / from_single_file
    tasks: dict[str, str]  # task -> diffusers class name derived with from_pipe
    supports_lora: bool = True
    supports_negative_prompt: bool = True
    # Denoiser attribute: LoRA adapters and compile target it.
    denoiser: str = "unet"
    # Keyword the pipeline takes for the edit/reference image(s).
    image_argument: str = "image"
    # Extra call keywords every call of this family needs.
    call_defaults: dict[str, object] = field(default_factory=dict)
    # Instruction-edit families differ in how they take the edit image and the guidance scale:
    # True when `image_argument` takes a list of reference images shared by every prompt of the call
    # (FLUX.2 klein, Qwen-Image-Edit Plus), False when it takes one image per prompt (InstructPix2Pix).
    reference_images: bool = False
    # Keyword the CFG value goes to (Qwen-Image-Edit's classifier-free guidance is `true_cfg_scale`).
    cfg_argument: str = "guidance_scale"
    # Pass width/height with instruction edits (else Qwen-Image-Edit renders at ~1 MP whatever the input).
    instruct_takes_size: bool = False
    # The pipeline takes one prompt per call (QwenImageEditPlusPipeline refuses batches).
    one_prompt_per_call: bool = False
    # Smallest side an edit/reference image may have (FLUX.2 klein needs >= 64 px).
    min_image_side: int = 0

    def supports(self, task: str) -> bool:
        return task in self.tasks


FAMILIES: dict[str, Family] = {
    "sd15": Family(
        name="sd15",
        loader="StableDiffusionPipeline",
        tasks={
            "text2img": "StableDiffusionPipeline",
            "img2img": "StableDiffusionImg2ImgPipeline",
            "inpaint": "StableDiffusionInpaintPipeline",
        },
    ),
    "sdxl": Family(
        name="sdxl",
        loader="StableDiffusionXLPipeline",
        tasks={
            "text2img": "StableDiffusionXLPipeline",
            "img2img": "StableDiffusionXLImg2ImgPipeline",
            "inpaint": "StableDiffusionXLInpaintPipeline",
        },
    ),
    # InstructPix2Pix needs its own 8-channel UNet: it is a family, not a derived task.
    "instruct-pix2pix": Family(
        name="instruct-pix2pix",
        loader="StableDiffusionInstructPix2PixPipeline",
        tasks={"instruct": "StableDiffusionInstructPix2PixPipeline"},
    ),
    "flux2-klein": Family(
        name="flux2-klein",
        loader="Flux2KleinPipeline",
        tasks={"text2img": "Flux2KleinPipeline", "instruct": "Flux2KleinPipeline"},
        supports_negative_prompt=False,
        denoiser="transformer",
        reference_images=True,
        instruct_takes_size=True,
        min_image_side=64,
    ),
    "z-image": Family(
        name="z-image",
        loader="ZImagePipeline",
        tasks={"text2img": "ZImagePipeline", "img2img": "ZImageImg2ImgPipeline"},
        denoiser="transformer",
    ),
    "qwen-image-edit": Family(
        name="qwen-image-edit",
        loader="QwenImageEditPlusPipeline",
        tasks={"instruct": "QwenImageEditPlusPipeline"},
        denoiser="transformer",
        reference_images=True,
        cfg_argument="true_cfg_scale",
        instruct_takes_size=True,
        one_prompt_per_call=True,
    ),
}


def get_family(name: str) -> Family:
    try:
        return FAMILIES[name]
    except KeyError:
        raise KeyError(f"unknown model family {name!r}; known: {', '.join(sorted(FAMILIES))}") from None
