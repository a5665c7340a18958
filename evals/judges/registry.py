"""Judge kinds, found by name, and building a judge from a config entry.

A config entry is `{id, kind, source, version, thresholds, options}`. `JUDGE_KINDS` lists the kinds:
each judge module declares its `KIND` (roles it can play, the protocol it satisfies, its builder), and
`build_judge` checks that what the builder returns satisfies that protocol. Adding a judge: one new
module with its `KIND`, one line in `_KIND_MODULES`.

Sources: `hub:ORG/NAME`, `folder:PATH` (relative paths from the repository root),
`builtin:demo-random-tagger` (a tiny random WD-v3-format tagger written to
`<data_dir>/judges/demo-random-tagger/` on first use, knowing every tag the prompt suites use), and for
reference judges `judge:OTHER_ID` (reuse another judge's image embeddings).
"""

from __future__ import annotations

import importlib
import os
import shutil
import threading
from pathlib import Path
from typing import Any, Mapping

from core.settings import repo_path
from evals.judges.base import BuildContext, JudgeInfo, JudgeKind, JudgeLoadError
from evals.suites import list_suites

# kind name -> module declaring its KIND (imported when the kind is first used: torch stays unloaded
# until a judge is really built).
_KIND_MODULES = {
    "tagger": "evals.judges.tagger",
    "siglip": "evals.judges.siglip",
    "clip": "evals.judges.clip",
    "reference": "evals.judges.reference",
    "name": "evals.judges.name",
}
DEMO_RANDOM_TAGGER = "demo-random-tagger"


_cache: dict[tuple, Any] = {}
_lock = threading.Lock()


def kind_names() -> list[str]:
    return sorted(_KIND_MODULES)


def register_judge_kind(name: str, module: str) -> None:
    """Make a judge kind known: `module` (imported when a judge of the kind is first built) has `KIND`."""
    if name in _KIND_MODULES:
        raise ValueError(f"judge kind {name!r} is already registered")
    _KIND_MODULES[name] = module


def judge_kind(name: str) -> JudgeKind:
    if name not in _KIND_MODULES:
        raise JudgeLoadError(f"unknown judge kind '{name}' (expected one of: {', '.join(kind_names())})")
    return importlib.import_module(_KIND_MODULES[name]).KIND


def kinds_for_role(role: str) -> tuple[str, ...]:
    return tuple(name for name in kind_names() if role in judge_kind(name).roles)


def _field(spec: Any, name: str, default: Any = None) -> Any:
    if isinstance(spec, Mapping):
        return spec.get(name, default)
    return getattr(spec, name, default)


def _local(value: str) -> str:
    return str(repo_path(value))


def suite_tags(prompts_dir: str | Path | None = None) -> list[tuple[str, int]]:
    """Every (tag, category) the prompt suites use (general and character tags), sorted, so the
    random tagger is the same on every machine."""
    general: set[str] = set()
    characters: set[str] = set()
    for suite in list_suites(prompts_dir):
        suite_general, suite_characters = suite.tags()
        general |= suite_general
        characters |= suite_characters
    return [(t, 0) for t in sorted(general - characters)] + [(t, 4) for t in sorted(characters)]


def ensure_demo_random_tagger(data_dir: str | Path, prompts_dir: str | Path | None = None) -> Path:
    """The random demo tagger's folder, built on first use and rebuilt when the suites gain tags."""
    from evals.judges.tagger import TagTable, build_random_tagger

    folder = Path(data_dir) / "judges" / DEMO_RANDOM_TAGGER
    wanted = suite_tags(prompts_dir)
    if (folder / "model.safetensors").is_file() and (folder / "selected_tags.csv").is_file():
        known = set(TagTable.read(folder / "selected_tags.csv").names)
        if {t for t, _ in wanted} <= known:
            return folder  # built before and still knows every suite tag
    tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    build_random_tagger(tmp, wanted, seed=0)
    if folder.exists():
        shutil.rmtree(folder)
    tmp.rename(folder)  # a half-written tagger is never picked up
    return folder


def _resolve_source(source: str, info: JudgeInfo, data_dir: Path, prompts_dir: Any) -> str:
    kind, sep, value = source.partition(":")
    if sep and kind == "folder":
        return "folder:" + _local(value)
    if sep and kind == "builtin":
        if value != DEMO_RANDOM_TAGGER:
            raise JudgeLoadError(f"judge '{info.id}': unknown builtin '{value}'")
        return "folder:" + str(ensure_demo_random_tagger(data_dir, prompts_dir))
    return source


def build_judge(
    spec: Any,
    *,
    data_dir: str | Path = "hub_data",
    device: Any = None,
    others: Mapping[str, Any] | None = None,
    prompts_dir: str | Path | None = None,
    use_cache: bool = True,
) -> Any:
    """A loaded judge for one config entry; `JudgeLoadError` (a HubInputError) when it cannot load."""
    judge_id = str(_field(spec, "id"))
    kind_name = str(_field(spec, "kind"))
    source = str(_field(spec, "source", ""))
    version = str(_field(spec, "version", "1"))
    thresholds = {k: float(v) for k, v in dict(_field(spec, "thresholds", {}) or {}).items()}
    options = dict(_field(spec, "options", {}) or {})
    if kind_name not in _KIND_MODULES:
        raise JudgeLoadError(f"judge '{judge_id}': unknown kind '{kind_name}' (expected one of: {', '.join(kind_names())})")
    kind = judge_kind(kind_name)
    info = JudgeInfo(judge_id, kind_name, version)
    key = (judge_id, kind_name, source, version, tuple(sorted(thresholds.items())), str(Path(data_dir).resolve()), str(device))
    if use_cache and key in _cache:
        return _cache[key]
    with _lock:
        if use_cache and key in _cache:
            return _cache[key]
        context = BuildContext(
            info=info,
            source=_resolve_source(source, info, Path(data_dir), prompts_dir),
            thresholds=thresholds,
            options=options,
            data_dir=Path(data_dir),
            device=device,
            others=dict(others or {}),
            prompts_dir=Path(prompts_dir) if prompts_dir else None,
        )
        judge = _with_dtype(kind.build(context), options.get("dtype"))
        if not isinstance(judge, kind.protocol):
            raise JudgeLoadError(f"judge '{judge_id}': a '{kind_name}' judge must satisfy {kind.protocol.__name__}")
        if use_cache:
            _cache[key] = judge
        return judge


def _with_dtype(judge: Any, dtype: str | None) -> Any:
    """`options.dtype: float16|bfloat16` runs a judge's model in half precision on CUDA (about 2x faster
    for a WD v3 ViT at 448 px on an H100); on a CPU judges always stay in float32."""
    if not dtype or dtype == "float32":
        return judge
    import torch

    if dtype not in ("float16", "bfloat16"):
        raise JudgeLoadError(f"judge '{judge.info.id}': options.dtype must be float32, float16 or bfloat16, got {dtype!r}")
    model = getattr(judge, "model", None)
    if model is not None and getattr(judge, "device", None) is not None and judge.device.type == "cuda":
        model.to(getattr(torch, dtype))
    return judge


def clear_cache() -> None:
    with _lock:
        _cache.clear()
