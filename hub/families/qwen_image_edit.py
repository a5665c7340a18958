"""Qwen-Image-Edit Plus: instruction edits with 1-3 input images, strong character consistency.

Its classifier-free guidance is `true_cfg_scale`; it refuses batched prompts (one prompt per call);
it renders at about 1 MP whatever the input unless width and height are passed."""

from hub.families.base import ReferenceListFamily

QWEN_IMAGE_EDIT = ReferenceListFamily(
    name="qwen-image-edit",
    max_prompt_tokens=512,  # the pipeline's max_sequence_length
    loader="QwenImageEditPlusPipeline",
    tasks={"instruct": "QwenImageEditPlusPipeline", "reference": "QwenImageEditPlusPipeline"},
    description="Qwen-Image-Edit Plus (Qwen2.5-VL); up to 3 images per call",
    denoiser="transformer",
    cfg_argument="true_cfg_scale",
    max_references=3,
    one_prompt_per_call=True,
    native_size=1024,
)
