"""InstructPix2Pix: instruction edits with an 8-channel UNet (the input image's latents are the extra
channels), so it is a family of its own rather than a task derived from a text-to-image base.

The conditioning image doubles as the reference channel: in the `reference` task the one reference
portrait is the conditioning image and the text describes the new scene (the demo editor is trained
for both). The output keeps the conditioning image's size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hub.families.base import Family


@dataclass(frozen=True)
class InstructPix2PixFamily(Family):
    def call_kwargs(self, call: Any) -> dict[str, Any]:
        conditioning = call.image if call.task == "instruct" else call.references[0]
        kwargs: dict[str, Any] = {
            "prompt": call.prompts,
            "negative_prompt": call.negative_prompts,
            "num_inference_steps": call.steps,
            "guidance_scale": call.cfg,
            "image_guidance_scale": call.image_guidance,
            "generator": call.generators,
            "callback_on_step_end": call.on_step_end,
            "image": [conditioning] * call.n_images,
        }
        return kwargs


INSTRUCT_PIX2PIX = InstructPix2PixFamily(
    name="instruct-pix2pix",
    max_prompt_tokens=75,  # one CLIP window (77 with BOS/EOS); the pipeline cuts the rest
    loader="StableDiffusionInstructPix2PixPipeline",
    tasks={"instruct": "StableDiffusionInstructPix2PixPipeline", "reference": "StableDiffusionInstructPix2PixPipeline"},
    description="InstructPix2Pix (8-channel UNet); one reference image in reference mode",
    max_references=1,
)
