"""Rebuild the demo world.

    python -m demoworld suites                 # prompts/demo-*.yaml and prompts/vocab/demo_tags.txt
    python -m demoworld sheet OUT.png          # a contact sheet of every character
    python -m demoworld tagger [args]          # = python -m demoworld.train_tagger
    python -m demoworld checkpoint [args]      # = python -m demoworld.train_checkpoint
    python -m demoworld lora [args]            # = python -m demoworld.train_lora
    python -m demoworld eval [args]            # = python -m demoworld.quick_eval
    python -m demoworld all [--device cpu]     # everything, in order, into models/ (hours on a CPU)
    bash demoworld/train_all_gpu.sh OUTDIR     # everything on one GPU in ~7 minutes (what built models/)
"""

from __future__ import annotations

import sys


def _sheet(path: str) -> None:
    from PIL import Image

    from demoworld import catalog as cat
    from demoworld.renderer import character_attributes, render

    tiles = [render(character_attributes(c, list(cat.BACKGROUNDS)[i % 8], cat.EXPRESSIONS[i % 6]), seed=i, size=64)
             for i, c in enumerate(cat.CHARACTERS)]
    cols = 6
    sheet = Image.new("RGB", (64 * cols, 64 * ((len(tiles) + cols - 1) // cols)), "white")
    for i, tile in enumerate(tiles):
        sheet.paste(tile, ((i % cols) * 64, (i // cols) * 64))
    sheet.save(path)


def _all(argv: list[str]) -> None:
    import shutil
    from pathlib import Path

    from demoworld import catalog as cat
    from demoworld import suites, train_checkpoint, train_lora, train_tagger

    device = argv[argv.index("--device") + 1] if "--device" in argv else "auto"
    suites.write_all()
    train_tagger.main(["--out", "models/demo-tagger", "--device", device, "--evaluate"])
    work = Path("/tmp/demoworld_all")
    work.mkdir(exist_ok=True)
    train_checkpoint.main(["--vae-only", "--vae-out", str(work / "vae"), "--cache", str(work / "train64.npz"),
                           "--device", device])
    for variant in ("multilingual", "english"):
        train_checkpoint.main(["--variant", variant, "--vae", str(work / "vae"), "--cache", str(work / "train64.npz"),
                               "--tokenizer", str(work / "tokenizer"), "--out", f"models/demo-{variant}",
                               "--device", device])
    lora_dir = Path("models/loras") / cat.LORA_ID
    shutil.rmtree(lora_dir, ignore_errors=True)
    train_lora.main(["--base", "models/demo-multilingual", "--tagger", "models/demo-tagger", "--out", str(lora_dir),
                     "--device", device])


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return
    command, rest = argv[0], argv[1:]
    if command == "suites":
        from demoworld.suites import write_all

        for path in write_all():
            print(path)
    elif command == "sheet":
        _sheet(rest[0] if rest else "demo_sheet.png")
    elif command == "tagger":
        from demoworld.train_tagger import main as run

        run(rest)
    elif command == "checkpoint":
        from demoworld.train_checkpoint import main as run

        run(rest)
    elif command == "lora":
        from demoworld.train_lora import main as run

        run(rest)
    elif command == "eval":
        from demoworld.quick_eval import main as run

        run(rest)
    elif command == "all":
        _all(rest)
    else:
        print(f"unknown command {command!r}\n{__doc__}")
        raise SystemExit(2)


if __name__ == "__main__":
    main()
