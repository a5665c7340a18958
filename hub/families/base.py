"""What a model family is: which diffusers classes serve which task, and how a call is made.

A family owns how its pipelines are made and called, through four hooks the engine uses for every
family alike: `load` (the base pipeline from a folder, a Hub repo or one file), `derive` (the
pipeline of a task, sharing the base's weights), `call_kwargs` (one engine call, a batch of jobs that
share settings, as the pipeline's keyword arguments) and `run` (the call itself, returning images).
The defaults fit `DiffusionPipeline` classes; a modular pipeline (Anima) overrides `load` and `run`.
The engine and the eval runner know no family by name; a new family is one file in this package plus
one line in `hub/families/__init__.py`.

Tasks:
- `text2img`: prompt -> image;
- `img2img`, `inpaint`: an input image (and a mask) re-drawn at a strength;
- `instruct`: an instruction edit of an input image (optionally with extra reference images);
- `reference`: a character drawn from reference images in a new scene (no input image to edit).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hub.prompt_syntax import plain_text

if TYPE_CHECKING:
    import torch

    from hub.engine.requests import PipelineCall

TASKS = ("text2img", "img2img", "inpaint", "instruct", "reference")
EDIT_TASKS = ("img2img", "inpaint", "instruct")


@dataclass(frozen=True)
class Family:
    name: str
    loader: str  # diffusers class that loads the base pipeline (see `load`)
    tasks: dict[str, str]  # task -> diffusers class serving it, derived from the base (see `derive`)
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
    # Width and height must be multiples of this (VAE downsampling x patch size); the pipeline
    # refuses other sizes.
    size_multiple: int = 8
    # Other calls may run between this family's denoising steps (its pipelines keep their per-call
    # state on a per-call copy; see `hub.engine.call.call_pipeline`).
    interleaves: bool = True
    # Prompts: whether the family applies A1111 weights and BREAK (`hub.families.clip_text`; the others
    # get the prompt with the syntax taken out), how many tokens its text encoder reads (None: no limit
    # the hub knows; past it the user is told how much was used), and clip skip (None: no CLIP encoder).
    prompt_weights: bool = False
    max_prompt_tokens: int | None = None
    clip_skip_default: int | None = None
    extra_call_kwargs: dict[str, Any] = field(default_factory=dict)

    def supports(self, task: str) -> bool:
        return task in self.tasks

    @property
    def tokenizers(self) -> tuple[str, ...]:
        """The pipeline components that tokenize the prompt (token counts under the prompt box)."""
        return ("tokenizer",)

    def encoder_text(self, prompt: str) -> str:
        """What the pipeline gets as its prompt: as written where the family applies the syntax, else
        the plain text (A1111 brackets and weights would reach an LLM encoder as literal characters)."""
        return prompt if self.prompt_weights else plain_text(prompt)

    @property
    def edit_tasks(self) -> list[str]:
        return [task for task in EDIT_TASKS if task in self.tasks]

    # -- loading ----------------------------------------------------------------------------------
    def load(self, location: str | Path, *, dtype: torch.dtype, single_file: bool = False, **options: Any) -> Any:
        """The base pipeline (on the CPU) from a diffusers folder or Hub repo id, or from one
        `.safetensors` file with `single_file`. `options` are the Hub arguments (`revision`,
        `cache_dir`, `local_files_only`). Weights load only from safetensors, never with remote code."""
        import diffusers

        loader = getattr(diffusers, self.loader)
        if single_file:
            return loader.from_single_file(str(location), dtype=dtype, **options)
        return loader.from_pretrained(location, use_safetensors=True, dtype=dtype, **options)

    def derive(self, base: Any, task: str) -> Any:
        """The pipeline serving `task`, sharing the base's modules (`from_pipe`, no weights copied);
        the base itself where its own class serves the task."""
        import diffusers
        import torch

        class_name = self.tasks[task]
        if class_name == type(base).__name__:
            return base
        # Passing the dtype keeps shared modules as they are (without it from_pipe casts them to fp32,
        # changing the base too); fp32 bases need no cast at all.
        extra = {} if base.dtype == torch.float32 else {"dtype": base.dtype}
        derived = getattr(diffusers, class_name).from_pipe(base, **extra)
        derived.set_progress_bar_config(disable=True)
        return derived

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

    def run(self, pipe: Any, kwargs: dict[str, Any]) -> list[Any]:
        """One pipeline call with `call_kwargs`' arguments: the output images, in prompt order."""
        return list(pipe(**kwargs).images)


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
