"""Switching character LoRAs in the engine's way vs the fair baseline, in one process.

The engine keeps LoRAs loaded as named peft adapters and switches with `set_adapters` (the base is
never reloaded). The fair baseline is what a pipeline that keeps one LoRA at a time does: unload the
current LoRA and load the other one (`unload_lora_weights` + `load_lora_weights`). Both paths end
ready to generate with the other LoRA at weight 0.8. Goal: switching >= 10x faster than unload/load.

    python benchmarks/bench_lora_switch.py [--repeats 10] [--checkpoint SD_FOLDER]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from _hub import Goals

GOAL = 10.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--checkpoint", default=None, help="diffusers SD folder (default: demo-multilingual)")
    args = parser.parse_args()
    from diffusers import StableDiffusionPipeline

    from hub.checkpoints import pick_device
    from tests.tiny_models import save_random_lora

    root = Path(__file__).resolve().parent.parent
    device, dtype = pick_device()
    folder = Path(args.checkpoint) if args.checkpoint else root / "models" / "demo-multilingual"
    with tempfile.TemporaryDirectory() as tmp:
        pipe = StableDiffusionPipeline.from_pretrained(folder, local_files_only=True, dtype=dtype).to(device)
        loras = [save_random_lora(pipe, Path(tmp) / name, seed=i, rank=16) for i, name in enumerate(("a", "b"))]
        kept = StableDiffusionPipeline.from_pretrained(folder, local_files_only=True, dtype=dtype).to(device)
        for index, lora in enumerate(loras):
            kept.load_lora_weights(str(lora), adapter_name=f"char{index}")
        single = StableDiffusionPipeline.from_pretrained(folder, local_files_only=True, dtype=dtype).to(device)
        single.load_lora_weights(str(loras[0]), adapter_name="char")

        def switch(index: int) -> None:
            kept.set_adapters([f"char{index}"], adapter_weights=[0.8])

        def unload_load(index: int) -> None:
            single.unload_lora_weights()
            single.load_lora_weights(str(loras[index]), adapter_name="char")
            single.set_adapters(["char"], adapter_weights=[0.8])

        switch_times, baseline_times = [], []
        for round_ in range(args.repeats):
            start = time.perf_counter(); switch(round_ % 2); switch_times.append(time.perf_counter() - start)
            start = time.perf_counter(); unload_load(round_ % 2); baseline_times.append(time.perf_counter() - start)
        a, b = statistics.median(switch_times), statistics.median(baseline_times)
        print(f"device={device} checkpoint={folder.name} LoRA rank 16 on the UNet attention")
        print(f"switch (set_adapters): {a * 1000:.2f} ms; unload + load the other LoRA: {b * 1000:.1f} ms")
        goals = Goals()
        goals.check("switch speed-up over unload/load", b / a, GOAL, at_least=True, unit="x")
        goals.exit()


if __name__ == "__main__":
    main()
