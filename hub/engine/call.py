"""One pipeline call for a batch of compatible jobs: the family builds the arguments, the outputs get
their recipes (and inpainting its paste-back)."""

from __future__ import annotations

import copy
from typing import Any, Callable

import torch

from hub.engine.inpaint import paste_back
from hub.engine.models import LoadedModel, ModelCache
from hub.engine.requests import GeneratedImage, Job, PipelineCall, image_hash
from hub.prompt_syntax import has_attention_syntax
from hub.recipe import Recipe
from hub.samplers import SAMPLERS


def make_scheduler(sampler: str, base_scheduler: Any, seeds: list[int] | None = None) -> Any:
    """A fresh scheduler object per call (scheduler state is not shareable between calls), built from
    the checkpoint's own scheduler config. `seeds` (one per image) seed the Brownian noise of DPM++ SDE,
    which draws it outside the pipeline's generators."""
    import diffusers


    config = base_scheduler.config
    if sampler == "default":
        return type(base_scheduler).from_config(config)
    recipe = SAMPLERS[sampler]
    scheduler = getattr(diffusers, recipe.scheduler).from_config(config, **recipe.options)
    if recipe.scheduler == "DPMSolverSDEScheduler":
        scheduler.noise_sampler_seed = list(seeds) if seeds else 0
    return scheduler


StepHook = Callable[[list[Job], int, int], None]


def call_pipeline(pipe: Any) -> Any:
    """The pipeline object for one call: a shallow copy (same modules) of a `DiffusionPipeline`, so
    its per-call state (scheduler, guidance scale, step count) is its own and a call nested between
    another call's steps cannot change it. Modular pipelines keep state elsewhere: used as they are."""
    import diffusers

    return copy.copy(pipe) if isinstance(pipe, diffusers.DiffusionPipeline) else pipe


def restore_model(models: ModelCache, jobs: list[Job]) -> None:
    """Put the model back as `jobs`' call had it (resident, its LoRAs): after a call nested in it."""
    first = jobs[0]
    assert first.spec is not None
    models.prepare(models.ensure_loaded(first.spec), first.loras)


def run_jobs(models: ModelCache, jobs: list[Job], *, mask_blur: int, between_steps: StepHook | None = None) -> list[list[GeneratedImage]]:
    """Run `jobs` (same checkpoint, task and settings) as one pipeline call; one image list per job.
    `between_steps(jobs, step, total)` runs after each denoising step: it may raise to stop the call
    or run other work (then the model must be as it was when it returns: `restore_model`)."""
    first = jobs[0]
    assert first.spec is not None
    loaded = models.ensure_loaded(first.spec)
    models.prepare(loaded, first.loras)
    pipe = call_pipeline(models.task_pipeline(loaded, first.task))
    family = loaded.family
    prompts, negatives, generators, seeds = [], [], [], []
    for job in jobs:
        for index in range(job.batch):
            prompts.append(family.encoder_text(job.prompt))
            negatives.append(family.encoder_text(job.negative_prompt))
            seeds.append(job.seed + index)
            # CPU generators: the same seed gives the same noise on every device.
            generators.append(torch.Generator("cpu").manual_seed(job.seed + index))

    def on_step_end(_pipe: Any, step: int, _timestep: Any, callback_kwargs: dict) -> dict:
        for job in jobs:
            if job.progress is not None:
                try:
                    job.progress(step + 1, first.steps)
                except Exception:  # noqa: BLE001 - a broken progress bar must not kill the call
                    pass
        if between_steps is not None:
            between_steps(jobs, step + 1, first.steps)
        return callback_kwargs

    if hasattr(pipe, "scheduler"):
        pipe.scheduler = make_scheduler(first.sampler, loaded.base.scheduler, seeds)
    call = PipelineCall(
        task=first.task, prompts=prompts, negative_prompts=negatives, generators=generators, steps=first.steps,
        cfg=first.cfg, width=first.width, height=first.height, image=first.image, mask=first.mask,
        references=first.references, strength=first.strength, image_guidance=first.image_guidance, on_step_end=on_step_end,
        clip_skip=first.clip_skip,
    )
    kwargs = loaded.family.call_kwargs(call)
    with torch.inference_mode():
        if loaded.family.one_prompt_per_call and len(prompts) > 1:
            outputs = []
            for index in range(len(prompts)):
                single = {k: (v[index : index + 1] if k in ("prompt", "negative_prompt", "generator") else v) for k, v in kwargs.items()}
                outputs += loaded.family.run(pipe, single)
        else:
            outputs = loaded.family.run(pipe, kwargs)
    models.stats["pipeline_calls"] += 1
    models.stats["images"] += len(outputs)
    if first.task == "inpaint" and first.mask is not None and first.image is not None:
        outputs = [paste_back(first.image, image, first.mask, mask_blur) for image in outputs]
    return _with_recipes(models, loaded, jobs, outputs, seeds, mask_blur)


def _recipe_extra(job: Job, loaded: LoadedModel, mask_blur: int) -> dict[str, Any]:
    extra: dict[str, Any] = {"mask_blur": mask_blur} if job.task == "inpaint" else {}
    if has_attention_syntax(job.prompt) or has_attention_syntax(job.negative_prompt):
        # Whether the weights were applied or the syntax taken out (families without CLIP encoders).
        extra["prompt_syntax"] = "weighted" if loaded.family.prompt_weights else "stripped"
    return extra


def _with_recipes(models: ModelCache, loaded: LoadedModel, jobs: list[Job], outputs: list[Any], seeds: list[int],
                  mask_blur: int) -> list[list[GeneratedImage]]:
    first = jobs[0]
    lora_hashes = tuple((lora_id, models.registry.lora_hash(lora_id)[:10]) for lora_id, _ in first.loras)
    reference_hashes = tuple(image_hash(image) for image in first.references)
    results, cursor = [], 0
    for job in jobs:
        assert job.spec is not None
        images = []
        for _ in range(job.batch):
            image = outputs[cursor]
            recipe = Recipe(
                prompt=job.prompt,
                negative_prompt=job.negative_prompt,
                steps=job.steps,
                sampler=job.sampler,
                cfg=job.cfg,
                seed=seeds[cursor],
                width=image.width,
                height=image.height,
                model=job.spec.id,
                model_hash=loaded.model_hash,
                loras=job.loras,
                lora_hashes=lora_hashes,
                task=job.task,
                strength=job.strength,
                image_guidance=job.image_guidance,
                references=reference_hashes,
                clip_skip=job.clip_skip if job.clip_skip != loaded.family.clip_skip_default else None,
                extra=_recipe_extra(job, loaded, mask_blur),
            )
            images.append(GeneratedImage(image=image, seed=seeds[cursor], recipe=recipe, checkpoint=job.spec.id))
            cursor += 1
        results.append(images)
    return results
