"""Rebuild the demo world.

    python -m demoworld suites                 # prompts/demo-*.yaml and prompts/vocab/demo_tags.txt
    python -m demoworld sheet OUT.png          # a contact sheet of every character
    python -m demoworld tagger [args]          # = python -m demoworld.train_tagger
    python -m demoworld name-judge [args]      # = python -m demoworld.train_name_judge
    python -m demoworld checkpoint [args]      # = python -m demoworld.train_checkpoint
    python -m demoworld edit [args]            # = python -m demoworld.train_edit
    python -m demoworld lora [args]            # = python -m demoworld.train_lora
    python -m demoworld eval [args]            # = python -m demoworld.quick_eval
    python -m demoworld edit-eval [args]       # = python -m demoworld.edit_eval
    python -m demoworld all [--device cpu]     # everything, in order, into models/ (hours on a CPU)
    bash demoworld/train_all_gpu.sh OUTDIR     # v1: everything on one GPU in ~7 minutes
    bash demoworld/train_v2_gpu.sh OUTDIR 330  # v2: demo-edit v2 on one GPU
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
    from demoworld import suites, train_checkpoint, train_edit, train_lora, train_name_judge, train_tagger

    device = argv[argv.index("--device") + 1] if "--device" in argv else "auto"
    suites.write_all()
    work = Path("/tmp/demoworld_all")
    work.mkdir(exist_ok=True)
    train_checkpoint.main(["--vae-only", "--vae-out", str(work / "vae"), "--cache", str(work / "train64.npz"),
                           "--device", device])
    for variant in ("multilingual", "english"):
        train_checkpoint.main(["--variant", variant, "--vae", str(work / "vae"), "--cache", str(work / "train64.npz"),
                               "--tokenizer", str(work / "tokenizer"), "--out", f"models/demo-{variant}",
                               "--device", device])
    # v2: tagger and name judge read generated images through the demo VAE; the editor starts from
    # demo-multilingual.
    train_tagger.main(["--out", "models/demo-tagger", "--device", device, "--vae", "models/demo-multilingual/vae",
                       "--evaluate"])
    train_name_judge.main(["--out", "models/demo-name-judge", "--device", device, "--vae",
                           "models/demo-multilingual/vae", "--evaluate"])
    train_edit.main(["--base", "models/demo-multilingual", "--out", "models/demo-edit", "--device", device])
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
    elif command == "name-judge":
        from demoworld.train_name_judge import main as run

        run(rest)
    elif command == "edit":
        from demoworld.train_edit import main as run

        run(rest)
    elif command == "edit-eval":
        from demoworld.edit_eval import main as run

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
