"""Batched judge scoring vs one image at a time (goal: >= 3x).

Scores the same N images with the tagger judge (WD v3 format: preprocessing + timm forward + sigmoid)
and a SigLIP judge (image embeddings + paired scores), once in batches and once image by image, in this
process, and prints the ratio. Models are random (same compute as trained ones of that shape).

    python benchmarks/bench_judges.py                       # tiny models, CPU (what CI machines can run)
    python benchmarks/bench_judges.py --arch vit_base_patch16_224 --size 448 --device cuda --n 64
                                                           # WD-v3-vit-sized tagger on a GPU
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def timed(fn, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def bench_tagger(args, images) -> float:
    from evals.judges.tagger import TaggerJudge, build_random_tagger

    tags = [f"tag_{i}" for i in range(args.tags)]
    with tempfile.TemporaryDirectory() as tmp:
        model_args = None if args.arch.startswith("test_vit") else {"img_size": args.size} if "vit" in args.arch else {}
        folder = build_random_tagger(Path(tmp) / "t", tags, architecture=args.arch, input_size=args.size, model_args=model_args)
        judge = TaggerJudge.load(folder, device=args.device)
        if args.half and args.device.startswith("cuda"):
            judge.model.half()  # inputs follow the model's dtype
        judge.predict(images[:2], batch_size=2)  # warm-up
        sync(args.device)

        def batched():
            judge.predict(images, batch_size=args.batch)
            sync(args.device)

        def single():
            for im in images:
                judge.predict([im], batch_size=1)
            sync(args.device)

        t_batched, t_single = timed(batched, args.repeats), timed(single, args.repeats)
    ratio = t_single / t_batched
    print(f"tagger {args.arch}@{args.size} ({args.tags} tags, {args.device}): {len(images)} images  "
          f"one-at-a-time {t_single:.3f}s  batched(bs={args.batch}) {t_batched:.3f}s  speedup {ratio:.1f}x")
    return ratio


def bench_siglip(args, images) -> float:
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast, SiglipConfig, SiglipImageProcessor, SiglipModel, SiglipProcessor

    from evals.judges.siglip import SiglipJudge

    vocab = {"<pad>": 0, "<unk>": 1, "</s>": 2}
    for w in "a girl with an umbrella in the rain".split():
        vocab.setdefault(w, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", unk_token="<unk>", eos_token="</s>")
    torch.manual_seed(0)
    config = SiglipConfig(
        text_config=dict(vocab_size=len(vocab), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=2, max_position_embeddings=64, projection_size=64, bos_token_id=None, eos_token_id=2, pad_token_id=0),
        vision_config=dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2, image_size=64, patch_size=8),
    )
    judge = SiglipJudge(SiglipModel(config), SiglipProcessor(image_processor=SiglipImageProcessor(size={"height": 64, "width": 64}), tokenizer=tokenizer), device=args.device)
    texts = ["a girl with an umbrella in the rain"] * len(images)
    judge.batch_size = args.batch
    judge.scores(images[:2], texts[:2])
    sync(args.device)

    def batched():
        judge.batch_size = args.batch
        judge.scores(images, texts)
        sync(args.device)

    def single():
        judge.batch_size = 1
        for im, t in zip(images, texts):
            judge.scores([im], [t])
        sync(args.device)

    t_batched, t_single = timed(batched, args.repeats), timed(single, args.repeats)
    ratio = t_single / t_batched
    print(f"siglip tiny (64px, {args.device}): {len(images)} pairs  one-at-a-time {t_single:.3f}s  "
          f"batched(bs={args.batch}) {t_batched:.3f}s  speedup {ratio:.1f}x")
    return ratio


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=64, help="images to score")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--arch", default="test_vit")
    parser.add_argument("--size", type=int, default=64, help="tagger input size (WD v3: 448)")
    parser.add_argument("--tags", type=int, default=1000, help="tagger classes (WD v3: 10861)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--half", action="store_true", help="fp16 tagger on CUDA")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-siglip", action="store_true")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    # Generated images are 512-1024 px; sizes vary so the preprocessing (pad + resize) does real work.
    images = [Image.fromarray(rng.integers(0, 255, (256 + 8 * (i % 4), 256, 3), dtype=np.uint8)) for i in range(args.n)]
    ratios = [bench_tagger(args, images)]
    if not args.skip_siglip:
        ratios.append(bench_siglip(args, images))
    goal = min(ratios) >= 3.0
    print(f"goal (>= 3x batched vs one at a time): {'met' if goal else 'NOT met'} (min {min(ratios):.1f}x)")
    return 0 if goal else 1


if __name__ == "__main__":
    raise SystemExit(main())
