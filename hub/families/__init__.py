"""Model families, found by name. Adding one: a new file in this package, one line below (or, from
elsewhere, `register_family(MY_FAMILY)`)."""

from __future__ import annotations

from hub.families.anima import ANIMA
from hub.families.base import EDIT_TASKS, TASKS, Family
from hub.families.flux2_klein import FLUX2_KLEIN
from hub.families.instruct_pix2pix import INSTRUCT_PIX2PIX
from hub.families.qwen_image_edit import QWEN_IMAGE_EDIT
from hub.families.stable_diffusion import SD15, SDXL
from hub.families.z_image import Z_IMAGE, Z_IMAGE_OMNI

FAMILIES: dict[str, Family] = {
    family.name: family
    for family in (
        SD15,
        SDXL,
        INSTRUCT_PIX2PIX,
        FLUX2_KLEIN,
        Z_IMAGE,
        QWEN_IMAGE_EDIT,
        ANIMA,
        Z_IMAGE_OMNI,
    )
}


def register_family(family: Family) -> Family:
    """Make a family known by its name (the config, the Submit tab and the registry look it up here)."""
    if family.name in FAMILIES:
        raise ValueError(f"model family {family.name!r} is already registered")
    FAMILIES[family.name] = family
    return family


def get_family(name: str) -> Family:
    try:
        return FAMILIES[name]
    except KeyError:
        raise KeyError(f"unknown model family {name!r}; known: {', '.join(sorted(FAMILIES))}") from None


__all__ = ["EDIT_TASKS", "FAMILIES", "TASKS", "Family", "get_family", "register_family"]
