"""Input images of edit and reference cases, made once per machine and cached under the data folder.

`render` draws the demo world (through the renderer the app passes in; evals never import the demo
world); `generate` makes the image with a registered checkpoint at a fixed seed (keyed by that
checkpoint's version, made once); `image` reads a file under the prompts folder. The digest of what
made an input is part of every sample's cache key.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image

from core.keys import file_sha256, sha256_hex
from hub.engine import GenerationRequest
from hub.errors import HubInputError


def load_input(path: str | Path) -> Image.Image:
    with Image.open(path) as opened:
        return opened.convert("RGB")


def prepare_input(
    case_input: dict[str, Any],
    *,
    engine: Any,
    data_dir: Path,
    prompts_dir: Path,
    render_input: Callable[[dict[str, Any]], Image.Image] | None,
) -> tuple[Path, str]:
    """The input image as a PNG under `<data_dir>/edit_inputs/` and its digest."""
    kind, spec = next(iter(case_input.items()))
    if kind == "image":
        path = (prompts_dir / spec).resolve()
        if not path.is_file():
            raise HubInputError(f"input image '{spec}' not found under {prompts_dir} (cases with input.image need that folder)")
        return path, file_sha256(path)
    if kind == "render":
        if render_input is None:
            raise HubInputError("this suite's inputs are demo-world renders, but no demo world is configured (config: demo_world)")
        digest = sha256_hex({"render": spec})
    else:
        try:
            engine.spec(spec["checkpoint"])  # unknown or not loadable here (e.g. needs a GPU): say so
        except HubInputError as exc:
            raise HubInputError(f"input 'generate' needs checkpoint '{spec['checkpoint']}': {exc}") from None
        digest = sha256_hex({"generate": spec, "weights": engine.checkpoint_version(spec["checkpoint"])})
    path = data_dir / "edit_inputs" / f"{digest}.png"
    if not path.is_file():
        if kind == "render":
            assert render_input is not None
            image = render_input(spec)
        else:
            fields = {k: spec[k] for k in ("negative_prompt", "width", "height", "steps", "cfg") if spec.get(k) is not None}
            request = GenerationRequest(prompt=spec["prompt"], checkpoint=spec["checkpoint"], seed=int(spec["seed"]), **fields)
            image = engine.generate(request)[0].image
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.png")
        image.save(tmp)
        tmp.replace(path)  # never a half-written input under the final name
    return path, digest
