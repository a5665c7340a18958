"""What a model family is: which diffusers classes serve which task, and how a call is made.

A family owns its call arguments: `call_kwargs(call)` turns one engine call (a batch of jobs that
share settings) into the keyword arguments of its pipeline. The engine and the eval runner know no
family by name; a new family is one file in this package plus one line in `hub/families/__init__.py`.

Tasks:
- `text2img`: prompt -> image;
- `img2img`, `inpaint`: an input image (and a mask) re-drawn at a strength;
- `instruct`: an instruction edit of an input image (optionally with extra reference images);
- `reference`: a character drawn from reference images in a new scene (no input image to edit).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hub.engine.requests import PipelineCall

TASKS = ("text2img", "img2img", "inpaint", "instruct", "reference")
EDIT_TASKS = ("img2img", "inpaint", "instruct")


@dataclass(frozen=True)
class Family:
    name: str
    loader: str  # diffusers class loaded with from_pretrained / from_single_file
    tasks: dict[str, str]  # task -> diffusers class derived from the loaded base with from_pipe
    description: str = ""
    supports_lora: bool = True
    supports_negative_prompt: bool = True
    denoiser: str = "unet"  # where LoRA adapters go and what torch.compile compiles
    # How many reference images one call takes (instruct and reference tasks); 0: none.
    max_references: int = 0
    # Smallest side an input/reference image may have.
    min_image_side: int = 0
    # The pipeline takes one prompt per call (no batching inside a call).
    one_prompt_per_call: bool = False
    # Families whose default size differs when a registered checkpoint gives none.
    native_size: int = 512
    extra_call_kwargs: dict[str, Any] = field(default_factory=dict)

    def supports(self, task: str) -> bool:
        return task in self.tasks

    @property
    def edit_tasks(self) -> list[str]:
        return [task for task in EDIT_TASKS if task in self.tasks]

    # -- the call ---------------------------------------------------------------------------------
    def call_kwargs(self, call: PipelineCall) -> dict[str, Any]:
        """Keyword arguments for one pipeline call (Stable Diffusion conventions by default)."""
        kwargs: dict[str, Any] = {
            "prompt": call.prompts,
            "num_inference_steps": call.steps,
            "guidance_scale": call.cfg,
            "generator": call.generators,
            "callback_on_step_end": call.on_step_end,
        }
        if self.supports_negative_prompt:
            kwargs["negative_prompt"] = call.negative_prompts
        if call.task in ("text2img", "inpaint"):
            kwargs.update(width=call.width, height=call.height)
        if call.task in ("img2img", "inpaint", "instruct"):
            kwargs["image"] = [call.image] * call.n_images
        if call.task in ("img2img", "inpaint"):
            kwargs["strength"] = call.strength
        if call.task == "inpaint":
            kwargs["mask_image"] = [call.mask] * call.n_images
        kwargs.update(self.extra_call_kwargs)
        return kwargs


@dataclass(frozen=True)
class ReferenceListFamily(Family):
    """Families whose pipeline takes a list of images shared by every prompt of the call: the image to
    edit first, then the references (FLUX.2 klein, Qwen-Image-Edit Plus). They render at the size asked."""

    cfg_argument: str = "guidance_scale"

    def call_kwargs(self, call: PipelineCall) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "prompt": call.prompts,
            "num_inference_steps": call.steps,
            self.cfg_argument: call.cfg,
            "generator": call.generators,
            "callback_on_step_end": call.on_step_end,
            "width": call.width,
            "height": call.height,
        }
        if self.supports_negative_prompt:
            kwargs["negative_prompt"] = call.negative_prompts
        images = ([call.image] if call.image is not None else []) + list(call.references)
        if call.task in ("instruct", "reference"):
            kwargs["image"] = images
        kwargs.update(self.extra_call_kwargs)
        return kwargs
