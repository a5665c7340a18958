"""Which judges an eval uses, picked from the hub config by role, loaded once.

Roles: `tagger` (WD v3 format; character tags, expected scene tags, the rating head), `image_text`
(SigLIP 2 or CLIP; anchored alignment and image embeddings), `reference` (same character as a
gallery), `name` (zero-shot character names). Which kinds can play a role comes from the judge registry.
`config.default_judges` maps roles to judge ids; without it the first judge of a fitting kind is used.
Judges marked `requires_gpu` are skipped on a machine without CUDA unless named explicitly. A judge that
is chosen and fails to load is an error: the run fails with that message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from evals.judges.base import JudgeInfo, JudgeLoadError
from evals.judges.registry import build_judge, judge_kind, kinds_for_role

ROLES = ("tagger", "image_text", "reference", "name")


@dataclass
class JudgeSet:
    tagger: Any = None
    image_text: Any = None
    reference: Any = None
    name: Any = None
    specs: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> dict[str, dict[str, str]]:
        out = {}
        for role in ROLES:
            judge = getattr(self, role)
            if judge is not None:
                info: JudgeInfo = judge.info
                out[role] = {"id": info.id, "kind": info.kind, "version": info.version}
        return out

    @property
    def alignment(self) -> Any:
        """The judge of image-text agreement: the image-text judge, else the tagger (expected tags)."""
        return self.image_text or self.tagger

    @property
    def embedder(self) -> Any:
        return self.image_text or self.tagger


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def pick_specs(config: Any, roles: Iterable[str], explicit: Iterable[str] = ()) -> dict[str, Any]:
    """Judge specs by role. `explicit` judge ids override the defaults for their kind's role."""
    judges = list(getattr(config, "judges", []) or [])
    by_id = {j.id: j for j in judges}
    roles = list(roles)
    chosen: dict[str, Any] = {}
    for judge_id in explicit:
        if judge_id not in by_id:
            known = ", ".join(sorted(by_id)) or "none"
            raise JudgeLoadError(f"unknown judge '{judge_id}' (configured: {known})")
        spec = by_id[judge_id]
        for role in judge_kind(spec.kind).roles:
            chosen[role] = spec
    defaults = dict(getattr(config, "default_judges", {}) or {})
    gpu = _cuda_available()
    for role in roles:
        if role in chosen:
            continue
        if role in defaults and defaults[role] in by_id:
            spec = by_id[defaults[role]]
            if gpu or not spec.requires_gpu:
                chosen[role] = spec
                continue
        fitting = kinds_for_role(role)
        for spec in judges:
            if spec.kind in fitting and (gpu or not spec.requires_gpu):
                chosen[role] = spec
                break
    return {role: spec for role, spec in chosen.items() if role in roles}


def load_judges(
    config: Any,
    roles: Iterable[str],
    *,
    data_dir: str | Path,
    explicit: Iterable[str] = (),
    device: Any = None,
    prompts_dir: str | Path | None = None,
) -> JudgeSet:
    specs = pick_specs(config, roles, explicit)
    judge_set = JudgeSet(specs=specs)
    loaded: dict[str, Any] = {}
    by_id = {j.id: j for j in getattr(config, "judges", []) or []}
    # Reference and name judges may reuse another judge (`judge:ID`), so build them last.
    for role in sorted(specs, key=lambda r: r in ("reference", "name")):
        spec = specs[role]
        src_kind, _, value = spec.source.partition(":")
        if src_kind == "judge" and value not in loaded and value in by_id:
            loaded[value] = build_judge(by_id[value], data_dir=data_dir, device=device, prompts_dir=prompts_dir)
        judge = loaded.get(spec.id) or build_judge(spec, data_dir=data_dir, device=device, others=loaded, prompts_dir=prompts_dir)
        loaded[spec.id] = judge
        setattr(judge_set, role, judge)
    return judge_set
