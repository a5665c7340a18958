"""Stable Diffusion 1.5 and SDXL: text-to-image, image-to-image and inpainting from one base.

The anime checkpoints most people use (Animagine XL, Illustrious XL, NoobAI-XL) are SDXL; they take
Danbooru tags in English only, which makes them the control of the multilingual board.

Prompts are encoded here, not by the pipeline: long prompts in 75-token chunks, A1111 weights and
`BREAK`, clip skip (`hub.families.clip_text`); the pipeline gets the embeddings.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hub.families.base import Family

if TYPE_CHECKING:
    from hub.families import clip_text

# Call arguments that hold one value per image (sliced when a call is split by prompt length).
_PER_IMAGE = ("generator", "image", "mask_image")


@dataclass(frozen=True)
class ClipFamily(Family):
    # (tokenizer, text encoder) component names, in the order their states are concatenated.
    text_encoders: tuple[tuple[str, str], ...] = (("tokenizer", "text_encoder"),)
    pooled_embeddings: bool = False  # SDXL's added conditioning
    clip_skip_default: int | None = 1
    prompt_weights: bool = True

    @property
    def tokenizers(self) -> tuple[str, ...]:
        return tuple(tokenizer for tokenizer, _ in self.text_encoders)

    def call_kwargs(self, call: Any) -> dict[str, Any]:
        kwargs = super().call_kwargs(call)
        kwargs["clip_skip"] = call.clip_skip or self.clip_skip_default
        return kwargs

    def encoders(self, pipe: Any, clip_skip: int) -> clip_text.ClipEncoders:
        from hub.families import clip_text  # torch: not at import time (the config imports the families)

        encoders = clip_text.ClipEncoders(
            pairs=tuple((getattr(pipe, tokenizer), getattr(pipe, encoder)) for tokenizer, encoder in self.text_encoders),
            layer=clip_skip,
            final_norm=not self.pooled_embeddings,  # SD 1.5 normalises a skipped layer; SDXL reads it raw
            pooled=self.pooled_embeddings,
        )
        if not 1 <= clip_skip <= encoders.layers:
            raise ValueError(f"clip skip {clip_skip} is past this model's {encoders.layers} text encoder layers")
        return encoders

    def run(self, pipe: Any, kwargs: dict[str, Any]) -> list[Any]:
        """Encode every prompt (A1111 chunks and weights), then call the pipeline with embeddings: one
        call per chunk count, so a long prompt never pads a short one (its image stays what it is alone)."""
        import torch

        from hub.families import clip_text

        kwargs = dict(kwargs)
        prompts = kwargs.pop("prompt")
        negatives = kwargs.pop("negative_prompt", None) or [""] * len(prompts)
        encoders = self.encoders(pipe, kwargs.pop("clip_skip", self.clip_skip_default))
        cache: dict[str, clip_text.Encoded] = {}

        def encoded(text: str) -> clip_text.Encoded:
            if text not in cache:
                cache[text] = clip_text.encode(text, encoders)
            return cache[text]

        empty = encoded("")
        groups: dict[int, list[int]] = defaultdict(list)
        for index, (prompt, negative) in enumerate(zip(prompts, negatives, strict=True)):
            groups[max(encoded(prompt).chunks, encoded(negative).chunks)].append(index)
        outputs: list[Any] = [None] * len(prompts)
        # DPM++ SDE seeds its Brownian noise per image (`make_scheduler`): each part gets its images' seeds.
        noise_seeds = getattr(pipe.scheduler, "noise_sampler_seed", None)
        for chunks, indices in groups.items():
            if isinstance(noise_seeds, list) and len(groups) > 1:
                pipe.scheduler.noise_sampler_seed = [noise_seeds[i] for i in indices]
            call = {key: ([value[i] for i in indices] if key in _PER_IMAGE and isinstance(value, list) else value)
                    for key, value in kwargs.items()}
            call["prompt_embeds"] = torch.cat([clip_text.pad_to(encoded(prompts[i]), chunks, empty) for i in indices])
            call["negative_prompt_embeds"] = torch.cat([clip_text.pad_to(encoded(negatives[i]), chunks, empty) for i in indices])
            if self.pooled_embeddings:
                call["pooled_prompt_embeds"] = torch.cat([encoded(prompts[i]).pooled for i in indices])
                call["negative_pooled_prompt_embeds"] = torch.cat([encoded(negatives[i]).pooled for i in indices])
            for index, image in zip(indices, pipe(**call).images, strict=True):
                outputs[index] = image
        return outputs


SD15 = ClipFamily(
    name="sd15",
    loader="StableDiffusionPipeline",
    tasks={
        "text2img": "StableDiffusionPipeline",
        "img2img": "StableDiffusionImg2ImgPipeline",
        "inpaint": "StableDiffusionInpaintPipeline",
    },
    description="Stable Diffusion 1.x layout (UNet, one CLIP text encoder)",
)

SDXL = ClipFamily(
    name="sdxl",
    loader="StableDiffusionXLPipeline",
    tasks={
        "text2img": "StableDiffusionXLPipeline",
        "img2img": "StableDiffusionXLImg2ImgPipeline",
        "inpaint": "StableDiffusionXLInpaintPipeline",
    },
    description="SDXL layout (UNet, CLIP-L + CLIP-G)",
    native_size=1024,
    text_encoders=(("tokenizer", "text_encoder"), ("tokenizer_2", "text_encoder_2")),
    pooled_embeddings=True,
    clip_skip_default=2,
)
