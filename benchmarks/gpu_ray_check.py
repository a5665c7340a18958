"""SDXL-size numbers for the Ray capacity model (docs/SCALING.md), measured on one GPU without Ray.

    python benchmarks/gpu_ray_check.py [--out DIR] [--steps 28] [--size 1024]
    python benchmarks/gpu_ray_check.py --tiny          # small configs, 64 px, 2 steps: runs on a CPU

What one engine replica does, through the hub's own `Engine` (what each Ray Serve replica runs):
builds two SDXL-base-size checkpoints from the SDXL-base component configs written below (random
weights, nothing downloaded), saves them with `save_pretrained` (the second as hard links to the
first: same bytes, its own folder) and registers them as `folder:` checkpoints. Then:

- `s_per_image`: one request at 1024x1024, 28 steps (median of 3, after a warm-up);
- batching: 4 requests sent at once (the engine merges them into one pipeline call) vs the same 4
  sent one after another: `batching_gain` = sequential time / concurrent time;
- multiplexing: the first load of a checkpoint from disk (`load_cold_s`), the move of a
  non-resident checkpoint from CPU memory to the GPU (`move_to_gpu_s`, the other one going back), and
  requests alternating between the two checkpoints vs requests to the resident one
  (`switch_cost_s` = alternating - resident, per request).
Prints each number as it lands (and rewrites DIR/gpu_ray_check.json each time); exit 1 when the
batching gain misses its goal (not --tiny), 2 without CUDA.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
import yaml  # noqa: E402

from benchmarks._live_report import LiveReport  # noqa: E402

BATCHING_GAIN_GOAL = 2.5  # 4 requests merged into one call vs one after another (not --tiny)

# stabilityai/stable-diffusion-xl-base-1.0, component configs (unet, vae, text_encoder, text_encoder_2, scheduler).
SDXL_UNET = {
    "act_fn": "silu", "addition_embed_type": "text_time", "addition_embed_type_num_heads": 64, "addition_time_embed_dim": 256,
    "attention_head_dim": [5, 10, 20], "block_out_channels": [320, 640, 1280], "center_input_sample": False,
    "class_embed_type": None, "class_embeddings_concat": False, "conv_in_kernel": 3, "conv_out_kernel": 3,
    "cross_attention_dim": 2048, "cross_attention_norm": None,
    "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"], "downsample_padding": 1,
    "dual_cross_attention": False, "encoder_hid_dim": None, "encoder_hid_dim_type": None, "flip_sin_to_cos": True,
    "freq_shift": 0, "in_channels": 4, "layers_per_block": 2, "mid_block_only_cross_attention": None,
    "mid_block_scale_factor": 1, "mid_block_type": "UNetMidBlock2DCrossAttn", "norm_eps": 1e-05, "norm_num_groups": 32,
    "num_attention_heads": None, "num_class_embeds": None, "only_cross_attention": False, "out_channels": 4,
    "projection_class_embeddings_input_dim": 2816, "resnet_out_scale_factor": 1.0, "resnet_skip_time_act": False,
    "resnet_time_scale_shift": "default", "sample_size": 128, "time_cond_proj_dim": None, "time_embedding_act_fn": None,
    "time_embedding_dim": None, "time_embedding_type": "positional", "timestep_post_act": None,
    "transformer_layers_per_block": [1, 2, 10], "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
    "upcast_attention": None, "use_linear_projection": True,
}
SDXL_VAE = {
    "act_fn": "silu", "block_out_channels": [128, 256, 512, 512], "down_block_types": ["DownEncoderBlock2D"] * 4,
    "force_upcast": True, "in_channels": 3, "latent_channels": 4, "layers_per_block": 2, "norm_num_groups": 32,
    "out_channels": 3, "sample_size": 1024, "scaling_factor": 0.13025, "up_block_types": ["UpDecoderBlock2D"] * 4,
}
SDXL_TEXT_ENCODER = {  # CLIP ViT-L/14 text tower
    "hidden_act": "quick_gelu", "hidden_size": 768, "intermediate_size": 3072, "max_position_embeddings": 77,
    "num_attention_heads": 12, "num_hidden_layers": 12, "projection_dim": 768, "vocab_size": 49408, "layer_norm_eps": 1e-05,
}
SDXL_TEXT_ENCODER_2 = {  # OpenCLIP ViT-bigG/14 text tower, with projection
    "hidden_act": "gelu", "hidden_size": 1280, "intermediate_size": 5120, "max_position_embeddings": 77,
    "num_attention_heads": 20, "num_hidden_layers": 32, "projection_dim": 1280, "vocab_size": 49408, "layer_norm_eps": 1e-05,
}
SDXL_SCHEDULER = {
    "beta_end": 0.012, "beta_schedule": "scaled_linear", "beta_start": 0.00085, "interpolation_type": "linear",
    "num_train_timesteps": 1000, "prediction_type": "epsilon", "steps_offset": 1, "timestep_spacing": "leading",
    "use_karras_sigmas": False,
}

# --tiny: the same layout, scaled down (the shapes of tests/tiny_models.save_tiny_sdxl).
TINY_UNET = {
    "block_out_channels": [32, 64], "layers_per_block": 1, "sample_size": 16, "in_channels": 4, "out_channels": 4,
    "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D"], "up_block_types": ["CrossAttnUpBlock2D", "UpBlock2D"],
    "attention_head_dim": [2, 4], "use_linear_projection": True, "addition_embed_type": "text_time",
    "addition_time_embed_dim": 8, "transformer_layers_per_block": [1, 1], "projection_class_embeddings_input_dim": 80,
    "cross_attention_dim": 64, "norm_num_groups": 8,
}
TINY_VAE = {
    "block_out_channels": [16, 32], "in_channels": 3, "out_channels": 3, "down_block_types": ["DownEncoderBlock2D"] * 2,
    "up_block_types": ["UpDecoderBlock2D"] * 2, "latent_channels": 4, "norm_num_groups": 8, "sample_size": 32,
}
TINY_TEXT = {"hidden_size": 32, "intermediate_size": 37, "num_attention_heads": 4, "num_hidden_layers": 2, "projection_dim": 32,
             "hidden_act": "gelu", "max_position_embeddings": 77}


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def build_checkpoint(folder: Path, *, tiny: bool, device: str, dtype: torch.dtype, seed: int = 0) -> Path:
    """An SDXL pipeline with random weights from the configs above, saved with save_pretrained."""
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

    from hub.builtin import byte_level_vocab

    vocab, merges = byte_level_vocab()  # the real CLIP vocabulary is a download; any tokenizer times the same
    ids = {"bos_token_id": vocab["<|startoftext|>"], "eos_token_id": vocab["<|endoftext|>"], "pad_token_id": vocab["<|endoftext|>"]}
    text_1 = {**(TINY_TEXT if tiny else SDXL_TEXT_ENCODER), "vocab_size": 49408 if not tiny else len(vocab), **ids}
    text_2 = {**(TINY_TEXT if tiny else SDXL_TEXT_ENCODER_2), "vocab_size": 49408 if not tiny else len(vocab), **ids}
    torch.manual_seed(seed)
    with torch.device(device):  # random init on the GPU: seconds instead of minutes for 3.5 B parameters
        unet = UNet2DConditionModel(**(TINY_UNET if tiny else SDXL_UNET))
        vae = AutoencoderKL(**(TINY_VAE if tiny else SDXL_VAE))
        encoder_1 = CLIPTextModel(CLIPTextConfig(**text_1))
        encoder_2 = CLIPTextModelWithProjection(CLIPTextConfig(**text_2))
    tokenizer = CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=77)
    pipe = StableDiffusionXLPipeline(
        vae=vae.to(dtype), text_encoder=encoder_1.to(dtype), text_encoder_2=encoder_2.to(dtype), tokenizer=tokenizer,
        tokenizer_2=tokenizer, unet=unet.to(dtype), scheduler=EulerDiscreteScheduler(**SDXL_SCHEDULER),
    )
    pipe.save_pretrained(folder, safe_serialization=True)
    del pipe, unet, vae, encoder_1, encoder_2
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return folder


def write_config(root: Path, folders: dict[str, Path], size: int, steps: int) -> Path:
    defaults = {"width": size, "height": size, "steps": steps, "cfg": 5.0, "sampler": "euler_a"}
    config = {
        "default_checkpoint": "sdxl-a",
        "data_dir": str(root / "data"),
        "demo_world": None,
        # Both checkpoints stay in CPU memory; one at a time on the GPU (the engine's rule).
        "engine": {"batch_window_ms": 50, "max_batch_images": 4, "cpu_cache_gb": 64, "compile": False},
        "limits": {"max_size": max(1536, size), "max_steps": max(100, steps)},
        "checkpoints": [{"id": cid, "name": cid, "family": "sdxl", "source": f"folder:{folder}", "defaults": defaults}
                        for cid, folder in folders.items()],
    }
    path = root / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def timed(fn: Any) -> float:
    sync()
    start = time.perf_counter()
    fn()
    sync()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None, help="folder for gpu_ray_check.json")
    parser.add_argument("--tiny", action="store_true", help="small configs, 64 px, 2 steps (CPU test of this script)")
    parser.add_argument("--size", type=int, default=None, help="image size (default 1024; --tiny: 64)")
    parser.add_argument("--steps", type=int, default=None, help="denoising steps (default 28; --tiny: 2)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary checkpoints")
    args = parser.parse_args(argv)
    size = args.size or (64 if args.tiny else 1024)
    steps = args.steps or (2 if args.tiny else 28)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from hub.checkpoints import pick_device
    from hub.config import load_config
    from hub.engine import Engine, GenerationRequest

    device, dtype = pick_device("auto")
    if device != "cuda" and not args.tiny:
        print("no CUDA device: run with --tiny to test this script on a CPU", file=sys.stderr)
        return 2
    report = LiveReport(Path(args.out) / "gpu_ray_check.json" if args.out else None)
    report["device"], report["dtype"], report["size"], report["steps"] = device, str(dtype), size, steps
    if device == "cuda":
        report["gpu"] = torch.cuda.get_device_name(0)
    root = Path(tempfile.mkdtemp(prefix="gpu-ray-check-"))
    try:
        start = time.perf_counter()
        first = build_checkpoint(root / "sdxl-a", tiny=args.tiny, device=device, dtype=dtype)
        report["build_and_save_s"] = round(time.perf_counter() - start, 2)
        # The second checkpoint: the same files as hard links (no second 7 GB write), its own folder.
        shutil.copytree(first, root / "sdxl-b", copy_function=os.link)
        report["checkpoint_gb"] = round(sum(p.stat().st_size for p in first.rglob("*.safetensors")) / 1e9, 2)
        config = load_config(write_config(root, {"sdxl-a": first, "sdxl-b": root / "sdxl-b"}, size, steps))
        engine = Engine(config)
        try:
            for cid in ("sdxl-a", "sdxl-b"):
                engine.checkpoint_version(cid)  # hash the weights once, outside the timings
            report["load_cold_s"] = round(timed(lambda: engine.pipeline("sdxl-a")), 3)

            def request(seed: int, checkpoint: str = "sdxl-a") -> None:
                engine.generate(GenerationRequest("1girl, solo, masterpiece", checkpoint=checkpoint, seed=seed))

            request(0)  # warm-up (kernels, allocator)
            per_image = [timed(lambda s=s: request(s)) for s in range(1, 4)]
            report["s_per_image"] = round(statistics.median(per_image), 3)

            sequential = timed(lambda: [request(10 + i) for i in range(4)])
            calls_before = engine.stats["pipeline_calls"]
            threads = [threading.Thread(target=request, args=(20 + i,)) for i in range(4)]

            def concurrent() -> None:
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join()

            together = timed(concurrent)
            report["batch4_sequential_s"] = round(sequential, 3)
            report["batch4_concurrent_s"] = round(together, 3)
            report["batch4_pipeline_calls"] = engine.stats["pipeline_calls"] - calls_before
            report["batching_gain"] = round(sequential / together, 3)
            report["images_per_s_batched"] = round(4 / together, 3)

            # Multiplexing: one checkpoint resident on the GPU, the other waiting in CPU memory.
            report["load_cold_b_s"] = round(timed(lambda: engine.pipeline("sdxl-b")), 3)  # from disk, then to the GPU
            moves = [timed(lambda cid=cid: engine.pipeline(cid)) for cid in ("sdxl-a", "sdxl-b", "sdxl-a", "sdxl-b")]
            report["move_to_gpu_s"] = round(statistics.median(moves), 3)  # one in, the other out
            resident = [timed(lambda s=s: request(30 + s, "sdxl-b")) for s in range(2)]
            alternating = [timed(lambda s=s: request(40 + s, ("sdxl-a", "sdxl-b")[s % 2])) for s in range(4)]
            report["resident_s_per_request"] = round(statistics.median(resident), 3)
            report["alternating_s_per_request"] = round(statistics.median(alternating), 3)
            report["switch_cost_s"] = round(statistics.median(alternating) - statistics.median(resident), 3)
            if device == "cuda":
                report["max_gpu_memory_gb"] = round(torch.cuda.max_memory_allocated() / 1e9, 2)
        finally:
            engine.shutdown()
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    if not args.tiny:
        report.expect(report["batching_gain"] >= BATCHING_GAIN_GOAL,
                      f"4 requests at once are {report['batching_gain']}x faster than one after another (goal {BATCHING_GAIN_GOAL}x)")
    return report.exit_code()


if __name__ == "__main__":
    raise SystemExit(main())
