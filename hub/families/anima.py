"""Anima (CircleStone Labs, Comfy Org): a 2B Cosmos-Predict2 DiT for anime and illustration, with a
Qwen3-0.6B text encoder, a T5-token text conditioner (the "LLM adapter") and the Qwen-Image VAE.

diffusers 0.42.1 serves it only as a modular pipeline (`AnimaModularPipeline`, blocks
`AnimaAutoBlocks`), which differs from a `DiffusionPipeline` in four ways this family handles:

- loading is two steps: `from_pretrained` reads the component specs, `load_components` loads the
  weights, and it only logs (does not raise) when a component fails to load: a missing component is
  an error here;
- one pipeline serves text-to-image and image-to-image (the auto blocks switch on `image`), so both
  tasks are the base itself; there is no `from_pipe`;
- classifier-free guidance is a component (`guider`), not a call argument: its scale is set per call;
- there is no `callback_on_step_end`: progress is reported from the scheduler's `step`, on a fresh
  scheduler per call (as every family gets one).

LoRAs (`AnimaLoraLoaderMixin`) go to the transformer and the text conditioner, in the diffusers
format or the ComfyUI one (`diffusion_model.*` keys); samplers other than the pipeline's own flow-match
Euler are refused (transformer families take "default" only).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from hub.errors import HubInputError
from hub.families.base import Family

if TYPE_CHECKING:
    import torch

    from hub.engine.requests import PipelineCall

# Per-component Hub arguments; `revision` goes only to components stored in the checkpoint's own repo
# (a modular index may point a tokenizer at another repo, where the pinned commit does not exist).
_SHARED_OPTIONS = ("cache_dir", "local_files_only")


def _silence_progress_bars(blocks: Any) -> None:
    """`ModularPipeline.set_progress_bar_config` reaches only the top-level blocks; the denoise loop
    sits three levels down."""
    if hasattr(blocks, "set_progress_bar_config"):
        blocks.set_progress_bar_config(disable=True)
    for child in getattr(blocks, "sub_blocks", {}).values():
        _silence_progress_bars(child)


def _reporting_scheduler(pipe: Any, on_step_end: Callable[..., Any] | None) -> Any:
    """A fresh copy of the pipeline's scheduler whose `step` reports progress after each step."""
    scheduler = type(pipe.scheduler).from_config(pipe.scheduler.config)
    if on_step_end is None:
        return scheduler
    step = scheduler.step
    counter = itertools.count()

    def step_and_report(*args: Any, **kwargs: Any) -> Any:
        output = step(*args, **kwargs)
        timestep = args[1] if len(args) > 1 else kwargs.get("timestep")
        on_step_end(pipe, next(counter), timestep, {})
        return output

    scheduler.step = step_and_report
    return scheduler


@dataclass(frozen=True)
class AnimaFamily(Family):
    # -- loading ----------------------------------------------------------------------------------
    def load(self, location: str | Path, *, dtype: torch.dtype, single_file: bool = False, **options: Any) -> Any:
        import diffusers
        import torch


        if single_file:
            raise HubInputError("Anima loads from a diffusers folder or Hub repo, not from a single file.")
        loader = getattr(diffusers, self.loader)
        hub_options = {key: options[key] for key in (*_SHARED_OPTIONS, "revision") if options.get(key) is not None}
        # trust_remote_code=False: the blocks come from diffusers itself, never from the checkpoint.
        pipe = loader.from_pretrained(str(location), trust_remote_code=False, **hub_options)
        names = pipe.pretrained_component_names
        specs = {name: pipe.get_component_spec(name) for name in names}
        if Path(location).is_dir():
            # A folder's identity is the hash of its files: no component may come from elsewhere (a
            # modular index records where each component lives, and a stale one points away).
            outside = [f"{name} ({spec.pretrained_model_name_or_path})" for name, spec in specs.items()
                       if spec.pretrained_model_name_or_path is None
                       or Path(spec.pretrained_model_name_or_path).resolve() != Path(location).resolve()]
            if outside:
                raise ValueError(f"Anima components outside {location}: {', '.join(outside)}")
        per_component: dict[str, Any] = {key: hub_options[key] for key in _SHARED_OPTIONS if key in hub_options}
        if "revision" in hub_options:
            per_component["revision"] = {
                name: hub_options["revision"] for name, spec in specs.items()
                if spec.pretrained_model_name_or_path in (str(location), location)
            }
        # Weights only from safetensors: the models get use_safetensors (tokenizers would keep it as a
        # stray init argument).
        per_component["use_safetensors"] = {
            name: True for name, spec in specs.items()
            if isinstance(spec.type_hint, type) and issubclass(spec.type_hint, torch.nn.Module)
        }
        pipe.load_components(names=names, dtype=dtype, **per_component)
        missing = [name for name in names if getattr(pipe, name, None) is None]
        if missing:
            raise ValueError(f"Anima components failed to load: {', '.join(missing)}")
        _silence_progress_bars(pipe._blocks)  # the public `blocks` is a deep copy
        return pipe

    # -- the call ---------------------------------------------------------------------------------
    def call_kwargs(self, call: PipelineCall) -> dict[str, Any]:
        """Hub-level arguments; `run` turns guidance and progress into what the modular pipeline takes."""
        kwargs: dict[str, Any] = {
            "prompt": call.prompts,
            "negative_prompt": call.negative_prompts,
            "num_inference_steps": call.steps,
            "guidance_scale": call.cfg,
            "generator": call.generators,
            "callback_on_step_end": call.on_step_end,
            "width": call.width,
            "height": call.height,
        }
        if call.task == "img2img":
            # One image for every prompt: the pipeline repeats its latents to the batch.
            kwargs.update(image=call.image, strength=call.strength)
        kwargs.update(self.extra_call_kwargs)
        return kwargs

    def run(self, pipe: Any, kwargs: dict[str, Any]) -> list[Any]:
        kwargs = dict(kwargs)
        guider = pipe.guider
        # In place (a new guider logs an "experimental" warning each time); the state reset makes the
        # call independent of the previous one.
        guider.guidance_scale = float(kwargs.pop("guidance_scale"))
        guider.set_state(step=0, num_inference_steps=None, timestep=None)
        pipe.scheduler = _reporting_scheduler(pipe, kwargs.pop("callback_on_step_end", None))
        return list(pipe(output="images", output_type="pil", **kwargs))


ANIMA = AnimaFamily(
    name="anima",
    max_prompt_tokens=512,  # the Qwen3 encoder's sequence length in the pipeline
    loader="AnimaModularPipeline",
    tasks={"text2img": "AnimaModularPipeline", "img2img": "AnimaModularPipeline"},
    description="Anima (Cosmos-Predict2 DiT, Qwen3 text encoder, Qwen-Image VAE); modular pipeline",
    denoiser="transformer",
    native_size=1024,
    size_multiple=16,  # Qwen-Image VAE (8x) and 2x2 patches
    interleaves=False,  # a modular pipeline keeps its scheduler on the shared object
)
