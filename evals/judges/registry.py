"""Build a judge from a config entry `{id, kind: tagger|siglip|clip|reference, source, version, thresholds, options}`.

Sources: `hub:ORG/NAME`, `folder:PATH` (relative paths from the repository root), `builtin:demo-random-tagger`
(a tiny random WD-v3-format tagger written to `<data_dir>/judges/demo-random-tagger/` on first use,
knowing every tag the prompt suites use), and for reference judges `judge:OTHER_ID` (reuse another
judge's image embeddings).
"""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path
from typing import Any, Mapping

from evals.judges.base import JudgeInfo, JudgeLoadError

KINDS = ("tagger", "siglip", "clip", "reference")
DEMO_RANDOM_TAGGER = "demo-random-tagger"
REPO_ROOT = Path(__file__).resolve().parent.parent.parent

_cache: dict[tuple, Any] = {}
_lock = threading.Lock()


def _field(spec: Any, name: str, default: Any = None) -> Any:
    if isinstance(spec, Mapping):
        return spec.get(name, default)
    return getattr(spec, name, default)


def _local(value: str) -> str:
    path = Path(value).expanduser()
    return str(path if path.is_absolute() else REPO_ROOT / path)


def suite_tags(prompts_dir: str | Path | None = None) -> list[tuple[str, int]]:
    """Every (tag, category) the prompt suites use: general tags of the vocabularies and scenes,
    character tags of the catalogs. Sorted, so the random tagger is the same on every machine."""
    from evals.suites import list_suites, load_vocabulary

    general: set[str] = set()
    characters: set[str] = set()
    for suite in list_suites(prompts_dir):
        if suite.vocabulary_path is not None:
            general |= load_vocabulary(suite.vocabulary_path)
        for scene in suite.scenes:
            general |= set(scene.tags)
        for character in suite.characters:
            general |= set(character.tags)
            if character.tag:
                characters.add(character.tag)
        for case in suite.cases:  # edit suites: the tags expected after the edit, the character kept
            general |= set(case.expect_tags)
            if case.character:
                characters.add(case.character)
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
    kind = str(_field(spec, "kind"))
    source = str(_field(spec, "source", ""))
    version = str(_field(spec, "version", "1"))
    thresholds = dict(_field(spec, "thresholds", {}) or {})
    options = dict(_field(spec, "options", {}) or {})
    if kind not in KINDS:
        raise JudgeLoadError(f"judge '{judge_id}': unknown kind '{kind}' (expected one of: {', '.join(KINDS)})")
    info = JudgeInfo(judge_id, kind, version)
    key = (judge_id, kind, source, version, tuple(sorted(thresholds.items())), str(Path(data_dir).resolve()), str(device))
    if use_cache and key in _cache:
        return _cache[key]
    with _lock:
        if use_cache and key in _cache:
            return _cache[key]
        judge = _build(kind, source, info, thresholds, options, Path(data_dir), device, others or {}, prompts_dir)
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


def _build(kind, source, info, thresholds, options, data_dir, device, others, prompts_dir) -> Any:
    return _with_dtype(_build_fp32(kind, source, info, thresholds, options, data_dir, device, others, prompts_dir), options.get("dtype"))


def _build_fp32(kind, source, info, thresholds, options, data_dir, device, others, prompts_dir) -> Any:
    src_kind, sep, value = source.partition(":")
    if sep and src_kind == "folder":
        source = "folder:" + _local(value)
    batch_size = int(options.get("batch_size", 16))
    if kind == "tagger":
        from evals.judges.tagger import TaggerJudge

        if src_kind == "builtin":
            if value != DEMO_RANDOM_TAGGER:
                raise JudgeLoadError(f"judge '{info.id}': unknown builtin '{value}'")
            source = "folder:" + str(ensure_demo_random_tagger(data_dir, prompts_dir))
        return TaggerJudge.load(source, thresholds=thresholds, info=info, device=device, batch_size=batch_size)
    if kind == "siglip":
        from evals.judges.siglip import SiglipJudge

        return SiglipJudge.load(source, info=info, device=device, batch_size=batch_size)
    if kind == "clip":
        from evals.judges.clip import ClipJudge

        return ClipJudge.load(source, info=info, device=device, batch_size=batch_size)
    # reference
    from evals.judges.reference import DEFAULT_MIN_FRACTION, DEFAULT_THRESHOLD, ReferenceJudge

    if src_kind == "judge":
        if value not in others:
            raise JudgeLoadError(f"judge '{info.id}': embedder judge '{value}' is not loaded")
        embedder = others[value]
    else:
        from evals.judges.siglip import SiglipJudge

        embedder = SiglipJudge.load(source, info=info, device=device, batch_size=batch_size)
    return ReferenceJudge(
        embedder,
        threshold=float(thresholds.get("same", DEFAULT_THRESHOLD)),
        min_fraction=float(thresholds.get("min_fraction", DEFAULT_MIN_FRACTION)),
        info=info,
    )


def clear_cache() -> None:
    with _lock:
        _cache.clear()
