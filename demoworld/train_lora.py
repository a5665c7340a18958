"""Train the held-out character's LoRA through the hub's own trainer (hub.lora_training).

    python -m demoworld.train_lora --base models/demo-multilingual --tagger models/demo-tagger \
        --out models/loras/demo-lora-star-knight

The training images are renders of the held-out character (varied expression and background);
captions come from the demo tagger plus the trigger word, exactly as the Character LoRA tab does it.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

from demoworld import catalog as cat
from demoworld.renderer import character_attributes, render


def held_out_images(n: int = 12, seed: int = 2024, size: int = 64):
    rng = random.Random(seed)
    c = cat.CHARACTER_BY_ID[cat.HELD_OUT_ID]
    return [render(character_attributes(c, rng.choice(list(cat.BACKGROUNDS)), rng.choice(cat.EXPRESSIONS)),
                   seed=seed + i, size=size) for i in range(n)]


def tagger_captioner(tagger_folder: str | Path, device: str = "cpu"):
    """A captioner for hub.lora_training: the WD-format judge's general tags above threshold."""
    from evals.judges.tagger import TaggerJudge

    judge = TaggerJudge.load(str(tagger_folder), device=device)
    names = judge.tags.names
    general = [i for i, c in enumerate(judge.tags.categories) if c == 0]

    def caption(images):
        probs = judge.predict(images)
        return [[names[j] for j in sorted(general, key=lambda j: -p[j]) if p[j] >= judge.thresholds["general"]]
                for p in probs]

    return caption


def main(argv: list[str] | None = None) -> dict:
    from hub.lora_training import LoraTrainingConfig, train_character_lora

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", default="models/demo-multilingual")
    ap.add_argument("--tagger", default="models/demo-tagger")
    ap.add_argument("--out", default=f"models/loras/{cat.LORA_ID}")
    ap.add_argument("--images", type=int, default=12)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--rank", type=int, default=8)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--device", default="auto")
    args = ap.parse_args(argv)
    images = held_out_images(args.images, size=args.size)
    captioner = tagger_captioner(args.tagger) if args.tagger and Path(args.tagger).exists() else None
    config = LoraTrainingConfig(rank=args.rank, steps=args.steps, learning_rate=args.lr, batch_size=args.batch_size,
                                device=args.device)

    started = time.time()

    def progress(step: int, total: int, loss: float) -> None:
        if step % 50 == 0 or step == total:
            print(f"[lora] step {step}/{total} loss {loss:.4f} ({time.time() - started:.0f}s)", flush=True)

    result = train_character_lora(args.base, images, cat.LORA_TRIGGER, args.out, config=config, tagger=captioner,
                                  progress=progress)
    readme = (f"# {cat.LORA_ID}\n\nCharacter LoRA for the demo world's held-out character `{cat.HELD_OUT_ID}` "
              f"(\"{cat.CHARACTER_BY_ID[cat.HELD_OUT_ID].name}\"), which neither demo checkpoint was shown. "
              f"Trained by the hub's own trainer (`hub/lora_training.py`, peft rank {args.rank}) on "
              f"{args.images} renders with tagger captions. Base: `demo-multilingual` (family sd15). "
              f"Trigger word: `{cat.LORA_TRIGGER}`.\n\nSteps {result.steps}, final loss {result.final_loss}, "
              f"{result.seconds}s.\n")
    Path(args.out, "README.md").write_text(readme, encoding="utf-8")
    print(f"[lora] done: {json.dumps({k: v for k, v in result.to_dict().items() if k != 'captions'})}", flush=True)
    print(f"[lora] captions: {result.captions[:3]}", flush=True)
    return result.to_dict()


if __name__ == "__main__":
    main()
