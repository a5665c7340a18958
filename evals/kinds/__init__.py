"""Suite kinds, found by name. Adding one: a module in this package and its entry in `KINDS` below (or,
from elsewhere, `register_kind(MyKind())`)."""

from __future__ import annotations

from evals.kinds.base import SuiteKind
from evals.kinds.character import CharacterKind
from evals.kinds.edit import EditKind
from evals.kinds.multilingual import MultilingualKind
from evals.kinds.reference import ReferenceKind

KINDS: dict[str, SuiteKind] = {kind.name: kind for kind in (CharacterKind(), MultilingualKind(), EditKind(), ReferenceKind())}


def register_kind(kind: SuiteKind) -> SuiteKind:
    """Make a suite kind known by its name: suites with `kind: <name>` load through it from now on."""
    if kind.name in KINDS:
        raise ValueError(f"suite kind {kind.name!r} is already registered")
    KINDS[kind.name] = kind
    return kind


def kinds() -> dict[str, SuiteKind]:
    return KINDS


def get_kind(name: str) -> SuiteKind:
    try:
        return KINDS[name]
    except KeyError:
        raise KeyError(name) from None
