"""SDXL-size UNet on one GPU: seconds per 1024x1024 image at 28 steps, the batch-4 gain, and the ratio of
the step time to the FLOP floor.

    python benchmarks/gpu_sdxl_unet.py [--out DIR]    # CUDA, bf16, random weights (nothing downloaded or saved)
    python benchmarks/gpu_sdxl_unet.py --tiny         # the same code on the tiny layout, 64 px, 2 steps (a CPU)

The denoising loop as serving runs it: classifier-free guidance (the UNet sees 2 latents per image),
Euler steps, diffusers' default attention processor (PyTorch SDPA). The UNet is SDXL-base's, built from
its component config (`gpu_ray_check.SDXL_UNET`) with random weights on the GPU; the text encoders and
the VAE are left out, so `s_per_image` is the UNet's share, which is most of an SDXL request.

The floor: the FLOPs of one UNet call, counted by `torch.utils.flop_counter` (convolutions, matrix
products, SDPA), divided by the GPU's dense bf16 peak from its spec sheet. `step_over_floor` = measured
time of one step (both guidance halves) / the floor of that step. The rate of a large bf16 matrix product,
measured here, is printed beside the spec peak: the share of the peak a perfect kernel reaches.

Goals (not --tiny): batch-4 throughput >= 2.5x batch 1, and step time within 1.5x of the floor. Exit 1
on a miss, 2 without CUDA. Every number lands in DIR/sdxl_unet.json as it is measured.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from benchmarks._live_report import LiveReport  # noqa: E402
from benchmarks.gpu_ray_check import SDXL_UNET, TINY_UNET  # noqa: E402

# Dense bf16 tensor-core peaks from the vendors' spec sheets (no sparsity), in FLOP/s, by name fragment.
BF16_PEAK_FLOPS = {"H200": 989.4e12, "H100": 989.4e12, "A100": 312e12, "L40S": 362.1e12, "L4": 121e12, "A10": 125e12}
BATCH_GAIN_GOAL = 2.5
FLOOR_RATIO_GOAL = 1.5


def spec_peak(name: str) -> float | None:
    for fragment, peak in BF16_PEAK_FLOPS.items():
        if fragment in name:
            return peak
    return None


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def matmul_rate(device: str, dtype: torch.dtype, n: int) -> float:
    """FLOP/s of an n x n x n product (mean of 10 after 3 warm-ups)."""
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    sync(device)
    start = time.perf_counter()
    for _ in range(10):
        a @ b
    sync(device)
    return 2 * n**3 * 10 / (time.perf_counter() - start)


class UNetLoop:
    """The UNet part of one SDXL request, for `batch` images at once."""

    def __init__(self, unet, *, size: int, steps: int, cfg: float, device: str, dtype: torch.dtype, text_dim: int):
        self.unet, self.size, self.steps, self.cfg = unet, size, steps, cfg
        self.device, self.dtype, self.text_dim = device, dtype, text_dim
        pooled = unet.config.projection_class_embeddings_input_dim - 6 * unet.config.addition_time_embed_dim
        self.pooled_dim = pooled

    def inputs(self, batch: int) -> dict:
        """The UNet's conditioning for `batch` images with guidance: 2 x batch rows."""
        rows = 2 * batch
        kwargs = {"device": self.device, "dtype": self.dtype}
        return {
            "encoder_hidden_states": torch.randn(rows, 77, self.text_dim, **kwargs),
            "added_cond_kwargs": {
                "text_embeds": torch.randn(rows, self.pooled_dim, **kwargs),
                "time_ids": torch.tensor([[self.size, self.size, 0, 0, self.size, self.size]] * rows, **kwargs),
            },
        }

    def latents(self, batch: int) -> torch.Tensor:
        side = self.size // 8
        return torch.randn(batch, 4, side, side, device=self.device, dtype=self.dtype)

    @torch.inference_mode()
    def run(self, batch: int) -> torch.Tensor:
        from diffusers import EulerDiscreteScheduler

        from benchmarks.gpu_ray_check import SDXL_SCHEDULER

        scheduler = EulerDiscreteScheduler(**SDXL_SCHEDULER)
        scheduler.set_timesteps(self.steps, device=self.device)
        cond = self.inputs(batch)
        x = self.latents(batch) * scheduler.init_noise_sigma
        for t in scheduler.timesteps:
            model_in = scheduler.scale_model_input(torch.cat([x, x]), t)
            noise = self.unet(model_in, t, **cond).sample
            uncond, text = noise.chunk(2)
            x = scheduler.step(uncond + self.cfg * (text - uncond), t, x).prev_sample
        return x

    @torch.inference_mode()
    def flops_per_step(self, batch: int) -> int:
        """FLOPs of one UNet call with guidance (2 x batch rows), counted on the real call."""
        from torch.utils.flop_counter import FlopCounterMode

        counter = FlopCounterMode(display=False)
        t = torch.tensor(500.0, device=self.device)
        with counter:
            self.unet(torch.cat([self.latents(batch)] * 2), t, **self.inputs(batch))
        return counter.get_total_flops()


def timed(fn, device: str) -> float:
    sync(device)
    start = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None, help="folder for sdxl_unet.json")
    parser.add_argument("--tiny", action="store_true", help="the tiny layout at 64 px, 2 steps, on any device")
    parser.add_argument("--steps", type=int, default=None, help="denoising steps (default 28; --tiny: 2)")
    parser.add_argument("--size", type=int, default=None, help="image side in pixels (default 1024; --tiny: 64)")
    args = parser.parse_args(argv)
    from diffusers import UNet2DConditionModel

    cuda = torch.cuda.is_available()
    if not cuda and not args.tiny:
        print("no CUDA device: this check needs one (--tiny tests the script on a CPU)", file=sys.stderr)
        return 2
    device, dtype = ("cuda", torch.bfloat16) if cuda else ("cpu", torch.float32)
    size, steps = args.size or (64 if args.tiny else 1024), args.steps or (2 if args.tiny else 28)
    report = LiveReport(Path(args.out) / "sdxl_unet.json" if args.out else None, device=device, dtype=str(dtype),
                        size=size, steps=steps, layout="tiny" if args.tiny else "sdxl-base")
    if cuda:
        report["gpu"] = torch.cuda.get_device_name(0)
    config = TINY_UNET if args.tiny else SDXL_UNET
    torch.manual_seed(0)
    start = time.perf_counter()
    with torch.device(device):  # random init on the GPU: seconds, not minutes, for 2.6 B parameters
        unet = UNet2DConditionModel(**config).to(dtype).eval()
    report["build_s"] = round(time.perf_counter() - start, 2)
    report["unet_parameters_b"] = round(sum(p.numel() for p in unet.parameters()) / 1e9, 3)
    report["attention_processor"] = sorted({type(p).__name__ for p in unet.attn_processors.values()})
    loop = UNetLoop(unet, size=size, steps=steps, cfg=5.0, device=device, dtype=dtype, text_dim=config["cross_attention_dim"])

    flops = loop.flops_per_step(1)
    report["unet_gflop_per_step"] = round(flops / 1e9, 1)  # both guidance halves of one image
    peak = spec_peak(report.get("gpu") or "")
    measured_peak = matmul_rate(device, dtype, 8192 if cuda else 1024)
    report["matmul_tflops_measured"] = round(measured_peak / 1e12, 1)
    report["peak_tflops"] = round((peak or measured_peak) / 1e12, 1)
    report["peak_source"] = "spec sheet, dense bf16" if peak else "measured matrix product (no spec peak for this device)"
    floor_s = flops / (peak or measured_peak)
    report["floor_ms_per_step"] = round(floor_s * 1000, 3)

    loop.run(1)  # warm-up: kernels, the allocator
    per_image = [timed(lambda: loop.run(1), device) for _ in range(3)]
    report["s_per_image"] = round(statistics.median(per_image), 3)
    step_s = statistics.median(per_image) / steps
    report["ms_per_step"] = round(step_s * 1000, 3)
    report["step_over_floor"] = round(step_s / floor_s, 3)
    report["step_over_matmul_floor"] = round(step_s / (flops / measured_peak), 3)

    loop.run(4)
    batch4 = [timed(lambda: loop.run(4), device) for _ in range(2)]
    report["s_per_batch4"] = round(statistics.median(batch4), 3)
    report["batch4_gain"] = round(4 * report["s_per_image"] / report["s_per_batch4"], 3)
    if cuda:
        report["max_gpu_memory_gb"] = round(torch.cuda.max_memory_allocated() / 1e9, 2)

    if not args.tiny:
        report.expect(report["batch4_gain"] >= BATCH_GAIN_GOAL,
                      f"batch-4 throughput is {report['batch4_gain']}x batch 1 (goal {BATCH_GAIN_GOAL}x)")
        report.expect(report["step_over_floor"] <= FLOOR_RATIO_GOAL,
                      f"a step takes {report['step_over_floor']}x the FLOP floor (goal {FLOOR_RATIO_GOAL}x)")
    return report.exit_code()


if __name__ == "__main__":
    raise SystemExit(main())
