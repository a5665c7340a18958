"""The samplers the hub offers, as data: our id -> the diffusers scheduler and A1111's names.

Anime model cards name A1111 samplers ("DPM++ 2M SDE Karras", "Euler a"); since A1111 1.9 its recipes
write the sampler and the schedule apart (`Sampler: DPM++ 2M SDE, Schedule type: Karras`). The page
shows the combined name; recipes are written the modern way and read in either. Each scheduler is built
from the checkpoint's own scheduler config (betas, prediction type), so only the sampling rule changes.
`default` keeps the checkpoint's own scheduler (the only choice for flow-matching transformer families).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Sampler:
    label: str  # as A1111 shows it in its sampler list (combined with the schedule)
    scheduler: str  # diffusers class name
    options: dict[str, Any] = field(default_factory=dict)
    a1111_sampler: str = ""  # the `Sampler:` of a modern A1111 recipe (default: `label`)
    schedule_type: str = ""  # its `Schedule type:` ("" for the sampler's own)

    @property
    def recipe_sampler(self) -> str:
        return self.a1111_sampler or self.label


_KARRAS = {"use_karras_sigmas": True}
_EXPONENTIAL = {"use_exponential_sigmas": True}
_SDE = {"algorithm_type": "sde-dpmsolver++"}

SAMPLERS: dict[str, Sampler] = {
    "euler_a": Sampler("Euler a", "EulerAncestralDiscreteScheduler"),
    "euler": Sampler("Euler", "EulerDiscreteScheduler"),
    "euler_karras": Sampler("Euler Karras", "EulerDiscreteScheduler", _KARRAS, "Euler", "Karras"),
    "euler_exponential": Sampler("Euler Exponential", "EulerDiscreteScheduler", _EXPONENTIAL, "Euler", "Exponential"),
    "heun": Sampler("Heun", "HeunDiscreteScheduler"),
    "dpmpp_2m": Sampler("DPM++ 2M", "DPMSolverMultistepScheduler"),
    "dpmpp_2m_karras": Sampler("DPM++ 2M Karras", "DPMSolverMultistepScheduler", _KARRAS, "DPM++ 2M", "Karras"),
    "dpmpp_2m_sde": Sampler("DPM++ 2M SDE", "DPMSolverMultistepScheduler", _SDE),
    "dpmpp_2m_sde_karras": Sampler("DPM++ 2M SDE Karras", "DPMSolverMultistepScheduler", {**_SDE, **_KARRAS},
                                   "DPM++ 2M SDE", "Karras"),
    "dpmpp_sde": Sampler("DPM++ SDE", "DPMSolverSDEScheduler"),
    "dpmpp_sde_karras": Sampler("DPM++ SDE Karras", "DPMSolverSDEScheduler", _KARRAS, "DPM++ SDE", "Karras"),
    "ddim": Sampler("DDIM", "DDIMScheduler"),
    "unipc": Sampler("UniPC", "UniPCMultistepScheduler"),
    "lcm": Sampler("LCM", "LCMScheduler"),  # for LCM / turbo-distilled checkpoints
    "default": Sampler("Default", ""),
}

# Names other tools write, to our ids: A1111 (combined and modern), ComfyUI's `sampler_name` (+ scheduler).
_BY_LABEL = {sampler.label.lower(): key for key, sampler in SAMPLERS.items()}
_COMFY = {"euler_ancestral": "euler_a", "euler": "euler", "heun": "heun", "dpmpp_2m": "dpmpp_2m",
          "dpmpp_2m_sde": "dpmpp_2m_sde", "dpmpp_2m_sde_gpu": "dpmpp_2m_sde", "dpmpp_sde": "dpmpp_sde",
          "dpmpp_sde_gpu": "dpmpp_sde", "ddim": "ddim", "uni_pc": "unipc", "lcm": "lcm",
          # NovelAI's k-diffusion names
          "k_euler_ancestral": "euler_a", "k_euler": "euler", "k_dpmpp_2m": "dpmpp_2m", "k_dpmpp_sde": "dpmpp_sde",
          "k_dpmpp_2m_sde": "dpmpp_2m_sde", "k_heun": "heun", "ddim_v3": "ddim"}


def sampler_choices() -> list[tuple[str, str]]:
    """(A1111 name, id) pairs for a dropdown."""
    return [(sampler.label, key) for key, sampler in SAMPLERS.items()]


def sampler_from_name(name: str, schedule: str = "") -> str | None:
    """Our id for a sampler name another tool wrote (A1111 label, ComfyUI or NovelAI name), with the
    schedule (`Karras`, `exponential`) written apart; None when the hub has no such sampler."""
    name, schedule = (name or "").strip(), (schedule or "").strip().lower()
    if schedule in ("automatic", "normal", "simple", "native", "uniform", "default"):
        schedule = ""
    key = _BY_LABEL.get(name.lower()) or _COMFY.get(name.lower()) or (name if name in SAMPLERS else None)
    if key is None:
        return None
    if schedule:
        base = SAMPLERS[key]
        wanted = (base.a1111_sampler or base.label, schedule)
        matches = [k for k, s in SAMPLERS.items() if (s.recipe_sampler, s.schedule_type.lower()) == wanted]
        return matches[0] if matches else None
    return key
