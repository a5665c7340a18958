"""FLUX.2 [klein]: text-to-image and editing in one pipeline; edits and character references take a
list of images (the image to edit first, then up to 3 more references)."""

from hub.families.base import ReferenceListFamily

FLUX2_KLEIN = ReferenceListFamily(
    name="flux2-klein",
    max_prompt_tokens=512,  # Flux2KleinPipeline's max_sequence_length
    loader="Flux2KleinPipeline",
    tasks={"text2img": "Flux2KleinPipeline", "instruct": "Flux2KleinPipeline", "reference": "Flux2KleinPipeline"},
    description="FLUX.2 [klein] (Qwen3 text encoder); reference images as a list",
    supports_negative_prompt=False,
    denoiser="transformer",
    max_references=4,
    min_image_side=64,  # the pipeline's patching needs references of at least 64 px
    native_size=1024,
)
