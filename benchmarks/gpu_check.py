"""One short check of the engine on a CUDA machine, printing timings and ratios.

Run where a GPU is lent (never in CI): `python benchmarks/gpu_check.py --out DIR`.
Checks: device/dtype choice, determinism, batching throughput, LoRA switch vs reload, a real
out-of-memory error and recovery, and compiled LoRA hot-swap without recompiling across 3 switches.
Exit 1 on a missed expectation, 2 without CUDA (`--allow-cpu` rehearses it on a CPU, where the compiled
hot-swap is recorded as skipped). Every number lands in DIR/gpu_check.json as it is measured.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402

from benchmarks._live_report import LiveReport  # noqa: E402

LORA_SWITCH_GOAL = 20  # the switch is at least this many times faster than unloading one LoRA and loading the other


def make_config(folder: Path, lora_folders: list[Path], compile_: bool, size: int) -> Path:
    config = {
        "default_checkpoint": "demo-random",
        "data_dir": str(folder / "data"),
        "engine": {"compile": compile_, "lora_hotswap_rank": 8, "batch_window_ms": 0, "max_batch_images": 8},
        "checkpoints": [
            {
                "id": "demo-random",
                "name": "demo",
                "family": "sd15",
                "source": "builtin:demo-random",
                "defaults": {"width": size, "height": size, "steps": 20, "cfg": 5.0, "sampler": "euler_a"},
            }
        ],
        "loras": [
            {"id": f"char-{i}", "name": f"char {i}", "source": f"folder:{path}", "base_family": "sd15"}
            for i, path in enumerate(lora_folders)
        ],
    }
    path = folder / f"config-{int(compile_)}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def timed(fn, repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default=None)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--allow-cpu", action="store_true", help="rehearse on a CPU (the compiled hot-swap is skipped)")
    args = parser.parse_args()
    if not torch.cuda.is_available() and not args.allow_cpu:
        print("no CUDA device: this check needs one (--allow-cpu rehearses it on a CPU)", file=sys.stderr)
        return 2
    from diffusers import StableDiffusionPipeline

    from hub.builtin import ensure_builtin_checkpoint
    from hub.config import load_config
    from hub.engine import Engine, GenerationRequest
    from hub.errors import EngineError
    from tests.tiny_models import save_random_lora

    report = LiveReport(Path(args.out) / "gpu_check.json" if args.out else None, torch=torch.__version__)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        base_folder = ensure_builtin_checkpoint("demo-random", folder / "data" / "builtin")
        cpu_pipe = StableDiffusionPipeline.from_pretrained(base_folder, local_files_only=True)
        loras = [save_random_lora(cpu_pipe, folder / f"lora{i}", seed=i) for i in range(2)]
        engine = Engine(load_config(make_config(folder, loras, False, args.size)))
        report["device"], report["dtype"] = engine.device, str(engine.dtype)
        report["gpu"] = torch.cuda.get_device_name() if torch.cuda.is_available() else None

        request = GenerationRequest("1girl, aqua hair", seed=3)
        first = engine.generate(request)[0]
        again = engine.generate(request)[0]
        diff = np.abs(np.asarray(first.image, np.int16) - np.asarray(again.image, np.int16)).max()
        report["same_seed_max_pixel_diff"] = int(diff)
        report["generate_s"] = timed(lambda: engine.generate(request))

        # Direct pipeline call with the same settings (the engine's own overhead).
        pipe = engine.pipeline("demo-random")

        def direct():
            with torch.inference_mode():
                pipe(prompt=["1girl, aqua hair"], width=args.size, height=args.size, num_inference_steps=20, guidance_scale=5.0,
                     generator=[torch.Generator("cpu").manual_seed(3)])

        report["direct_s"] = timed(direct)
        report["engine_over_direct"] = report["generate_s"] / report["direct_s"]

        # 8 concurrent requests (batched by the engine) vs 8 in a row.
        requests = [GenerationRequest(f"scene {i}", seed=i) for i in range(8)]
        sequential = timed(lambda: [engine.generate(r) for r in requests], repeats=2)

        def concurrent():
            threads = [threading.Thread(target=engine.generate, args=(r,)) for r in requests]
            for t in threads:
                t.start()
            for t in threads:
                t.join()

        parallel = timed(concurrent, repeats=2)
        report["batch8_sequential_s"], report["batch8_concurrent_s"] = sequential, parallel
        report["batch8_throughput_ratio"] = sequential / parallel

        # LoRA switching (both adapters loaded, alternate with set_adapters) vs the fair baseline: one
        # adapter at a time, unloading it and loading the other.
        engine.generate(GenerationRequest("x", loras=(("char-0", 0.8),)))
        engine.generate(GenerationRequest("x", loras=(("char-1", 0.8),)))
        base = engine.pipeline("demo-random")
        turn = [0]

        def switch() -> None:
            turn[0] ^= 1
            base.set_adapters([f"lora_char_{turn[0]}"], adapter_weights=[0.8])

        switch_s = timed(switch, repeats=10)
        single = StableDiffusionPipeline.from_pretrained(base_folder, local_files_only=True, dtype=engine.dtype).to(engine.device)
        single.load_lora_weights(str(loras[0]), adapter_name="char")

        def unload_load() -> None:
            turn[0] ^= 1
            single.unload_lora_weights()
            single.load_lora_weights(str(loras[turn[0]]), adapter_name="char")
            single.set_adapters(["char"], adapter_weights=[0.8])

        baseline_s = timed(unload_load, repeats=5)
        report["lora_switch_ms"], report["lora_unload_load_ms"] = switch_s * 1000, baseline_s * 1000
        report["lora_unload_load_over_switch"] = baseline_s / switch_s

        # A real out-of-memory error inside a pipeline call, then the next request.
        original = base.unet.forward

        def greedy(*a, **k):
            torch.empty(1 << 42, dtype=torch.uint8, device=engine.device)  # 4 TiB
            return original(*a, **k)

        base.unet.forward = greedy
        try:
            engine.generate(GenerationRequest("oom"))
            report.expect(False, "an out-of-memory error inside the pipeline was not raised as EngineError")
        except EngineError as err:
            report["oom"] = str(err)
        finally:
            base.unet.forward = original
        report["after_oom_ok"] = len(engine.generate(GenerationRequest("after"))) == 1
        report.expect(report["after_oom_ok"], "the engine did not serve the request after the out-of-memory error")
        report.expect(report["same_seed_max_pixel_diff"] == 0,
                      f"the same seed drew different pixels (max diff {report['same_seed_max_pixel_diff']})")
        report.expect(report["lora_unload_load_over_switch"] >= LORA_SWITCH_GOAL,
                      f"LoRA switch only {report['lora_unload_load_over_switch']:.1f}x faster than unload and load "
                      f"(goal {LORA_SWITCH_GOAL}x)")
        engine.shutdown()

        # Compiled denoiser with LoRA hot-swap: 3 switches after the first compiled call, 0 recompiles.
        if torch.cuda.is_available():
            import torch._dynamo.utils as dynamo_utils

            compiled = Engine(load_config(make_config(folder, loras, True, args.size)))
            start = time.perf_counter()
            compiled.generate(GenerationRequest("x", loras=(("char-0", 0.8),)))
            report["compile_first_call_s"] = time.perf_counter() - start
            graphs_before = dict(dynamo_utils.counters["stats"])
            switch_calls = []
            for lora in ("char-1", "char-0", "char-1"):
                start = time.perf_counter()
                compiled.generate(GenerationRequest("x", loras=((lora, 0.8),)))
                switch_calls.append(round(time.perf_counter() - start, 3))
            report["hotswap_calls_s"] = switch_calls
            report["compiled_generate_s"] = timed(lambda: compiled.generate(GenerationRequest("x", loras=(("char-1", 0.8),))), repeats=3)
            report["dynamo_stats_before_swaps"] = graphs_before
            report["dynamo_stats_after_swaps"] = dict(dynamo_utils.counters["stats"])
            recompiles = report["dynamo_stats_after_swaps"].get("unique_graphs", 0) - graphs_before.get("unique_graphs", 0)
            report["recompiles_across_3_switches"] = recompiles
            report.expect(recompiles == 0, f"{recompiles} recompiles across 3 LoRA switches (goal 0)")
            compiled.shutdown()
        else:
            report["compiled_hotswap"] = "skipped: no CUDA (--allow-cpu rehearsal)"
    return report.exit_code()


if __name__ == "__main__":
    raise SystemExit(main())
