"""What A1111-style prompt encoding costs: a long weighted prompt vs a short plain one, next to a generation.

    python benchmarks/bench_prompt_encoding.py [--repeats 20] [--generations 3] [--threads N] [--checkpoint SD_FOLDER]

CLIP families encode prompts in the hub (`hub.families.clip_text`, called by `ClipFamily.run`): the
prompt is parsed, tokenized fragment by fragment, cut into 75-token chunks and every chunk goes through
the text encoder, then the weights are applied. On the committed demo model (`models/demo-multilingual`,
or another diffusers SD 1.5 folder), in this one process:
1. the median time to encode a 225-token A1111 prompt (weights, nesting, escapes, 3 chunks);
2. the median time to encode a short plain prompt (one chunk, what diffusers would encode itself);
3. the median time of one whole demo generation through `ClipFamily.run` (64x64, 25 steps, CFG 3,
   euler_a, the short prompt).
The overhead (1 minus 2) as a fraction of one generation is the cost of long weighted prompts; goal
<= 5%. Prints the numbers and a JSON summary; exits 1 when the goal is missed. On a CPU shared with
other work, `--threads 1` keeps torch's threads from spinning against it (times then vary far less).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._hub import Goals, median_seconds  # noqa: E402

GOAL_FRACTION = 0.05
TARGET_TOKENS = 225  # three full chunks
SHORT_PROMPT = "1girl, solo, smile, short hair"
# Community-style tags: weights, nested and square brackets, an escaped Danbooru tag (no BREAK).
TAGS = [
    "(masterpiece:1.2)", "((best quality))", "1girl", "solo", "(aqua hair:1.3)", "long hair", "[blurry]",
    "ganyu \\(genshin impact\\)", "(smile:0.8)", "looking at viewer", "((red eyes:1.1))", "school uniform",
    "(cherry blossoms, petals:1.15)", "outdoors", "[[simple background]]", "(upper body)", "blue sky",
    "(detailed face:1.25)", "hair ribbon", "((sparkle))",
]


def weighted_prompt(tokenizer: Any, chunks: int = TARGET_TOKENS // 75) -> tuple[str, int, int]:
    """`TAGS` repeated into `chunks` full 75-token chunks: each chunk is filled with tags, topped up with
    one-token words and ends on a comma, so no tag straddles a boundary (no comma backtracking).
    Returns (text, tokens, chunks) as the encoder will chunk it."""
    from hub.families.clip_text import chunk_prompt, token_count

    def measure(text: str) -> tuple[int, int]:
        found = chunk_prompt(text, tokenizer)
        return token_count(found), len(found)

    words = [word for word in ("girl", "smile", "sky", "cat", "red", "hat") if len(tokenizer.tokenize(word)) == 1]
    text, index, fill = "", 0, 0
    for number in range(1, chunks + 1):
        target = 75 * number
        while measure(text + TAGS[index % len(TAGS)] + ", ")[0] <= target:
            text += TAGS[index % len(TAGS)] + ", "
            index += 1
        while measure(text)[0] < target:  # a one-token word before the chunk's last comma
            text = text[:-2] + " " + words[fill % len(words)] + ", "
            fill += 1
    text = text[:-2] + " " + words[fill % len(words)]  # the last chunk's comma becomes a word
    count, found = measure(text)
    return text, count, found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20, help="timed encodings of each prompt")
    parser.add_argument("--generations", type=int, default=3, help="timed generations")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--checkpoint", default=None, help="diffusers SD 1.5 folder (default: models/demo-multilingual)")
    args = parser.parse_args(argv)
    import torch
    from diffusers import StableDiffusionPipeline

    from hub.checkpoints import pick_device
    from hub.engine.call import call_pipeline, make_scheduler
    from hub.families import clip_text, get_family

    if args.threads:
        torch.set_num_threads(args.threads)
    device, dtype = pick_device()
    folder = Path(args.checkpoint) if args.checkpoint else ROOT / "models" / "demo-multilingual"
    pipe = StableDiffusionPipeline.from_pretrained(folder, local_files_only=True, dtype=dtype).to(device)
    pipe.set_progress_bar_config(disable=True)
    family = get_family("sd15")
    encoders = family.encoders(pipe, family.clip_skip_default)
    long_prompt, long_tokens, long_chunks = weighted_prompt(pipe.tokenizer)
    if (long_tokens, long_chunks) != (TARGET_TOKENS, 3):
        raise SystemExit(f"the weighted prompt has {long_tokens} tokens in {long_chunks} chunks, not 225 in 3: change TAGS")
    short_chunks = clip_text.encode(SHORT_PROMPT, encoders).chunks

    def encode(text: str) -> Callable[[], object]:
        def run() -> None:
            with torch.inference_mode():
                clip_text.encode(text, encoders)
            if device == "cuda":
                torch.cuda.synchronize()
        return run

    def generation() -> None:
        call = call_pipeline(pipe)  # as the engine calls it: a per-call copy with a fresh euler_a scheduler
        call.scheduler = make_scheduler("euler_a", pipe.scheduler, [0])
        kwargs = {"prompt": [SHORT_PROMPT], "negative_prompt": [""], "num_inference_steps": 25, "guidance_scale": 3.0,
                  "width": 64, "height": 64, "generator": [torch.Generator("cpu").manual_seed(0)],
                  "clip_skip": family.clip_skip_default}
        with torch.inference_mode():
            family.run(call, kwargs)
        if device == "cuda":
            torch.cuda.synchronize()

    for _ in range(3):  # warm-up: first calls allocate, pick kernels
        encode(long_prompt)()
        encode(SHORT_PROMPT)()
    generation()
    # Alternate the two encodings, so both see the same machine (other processes, clock changes).
    long_times, short_times = [], []
    for _ in range(args.repeats):
        long_times.append(median_seconds(encode(long_prompt), 1))
        short_times.append(median_seconds(encode(SHORT_PROMPT), 1))
    long_s, short_s = statistics.median(long_times), statistics.median(short_times)
    generation_s = median_seconds(generation, args.generations)
    overhead = long_s - short_s
    fraction = overhead / generation_s
    print(f"device={device} dtype={str(dtype).removeprefix('torch.')} checkpoint={folder.name} torch threads={torch.get_num_threads()}")
    print(f"long weighted prompt: {long_tokens} tokens, {long_chunks} chunks; encode median {long_s * 1000:.2f} ms "
          f"over {args.repeats}")
    print(f"short plain prompt: {short_chunks} chunk; encode median {short_s * 1000:.2f} ms over {args.repeats}")
    print(f"one generation (64x64, 25 steps, CFG 3, euler_a): median {generation_s * 1000:.0f} ms over {args.generations}")
    print(f"overhead of the long weighted prompt: {overhead * 1000:.2f} ms = {fraction * 100:.2f}% of one generation")
    goals = Goals()
    goals.check("long weighted prompt overhead / generation", fraction, GOAL_FRACTION, at_least=False)
    print(json.dumps({"device": device, "long_tokens": long_tokens, "long_chunks": long_chunks, "long_encode_s": long_s,
                      "short_encode_s": short_s, "generation_s": generation_s, "overhead_s": overhead,
                      "overhead_fraction": fraction}))
    goals.exit()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
