"""Switching between two loaded character LoRAs vs reloading the pipeline with the other LoRA.

Goal: switching >= 20x faster. Both paths end ready to generate with the other LoRA.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--checkpoint", default=None, help="diffusers SD folder (default: demo-random, built here)")
    args = parser.parse_args()
    from diffusers import StableDiffusionPipeline

    from hub.builtin import ensure_builtin_checkpoint
    from hub.checkpoints import pick_device
    from tests.tiny_models import save_random_lora

    device, dtype = pick_device()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.checkpoint) if args.checkpoint else ensure_builtin_checkpoint("demo-random", Path(tmp))
        pipe = StableDiffusionPipeline.from_pretrained(folder, local_files_only=True, dtype=dtype).to(device)
        loras = [save_random_lora(pipe, Path(tmp) / name, seed=i) for i, name in enumerate(("a", "b"))]
        for index, lora in enumerate(loras):
            pipe.load_lora_weights(str(lora), adapter_name=f"char{index}")

        def switch(index: int) -> None:
            pipe.set_adapters([f"char{index}"], adapter_weights=[0.8])

        def reload(index: int) -> None:
            fresh = StableDiffusionPipeline.from_pretrained(folder, local_files_only=True, dtype=dtype).to(device)
            fresh.load_lora_weights(str(loras[index]), adapter_name=f"char{index}")
            fresh.set_adapters([f"char{index}"], adapter_weights=[0.8])

        switch_times, reload_times = [], []
        for round_ in range(args.repeats):
            start = time.perf_counter(); switch(round_ % 2); switch_times.append(time.perf_counter() - start)
            start = time.perf_counter(); reload(round_ % 2); reload_times.append(time.perf_counter() - start)
        a, b = statistics.median(switch_times), statistics.median(reload_times)
        print(f"device={device} checkpoint={folder.name}")
        print(f"switch (set_adapters): {a * 1000:.2f} ms; reload pipeline + LoRA: {b * 1000:.1f} ms")
        print(f"ratio reload/switch = {b / a:.0f}x  (goal >= 20x)")


if __name__ == "__main__":
    main()
