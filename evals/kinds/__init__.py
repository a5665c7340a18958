"""Suite kinds, found by name. Adding one: a module in this package, one line below."""

from __future__ import annotations

from evals.kinds.base import SuiteKind
from evals.kinds.character import CharacterKind
from evals.kinds.edit import EditKind
from evals.kinds.multilingual import MultilingualKind
from evals.kinds.reference import ReferenceKind


def _registry() -> dict[str, SuiteKind]:
    return {kind.name: kind for kind in (CharacterKind(), MultilingualKind(), EditKind(), ReferenceKind())}


_KINDS: dict[str, SuiteKind] | None = None


def kinds() -> dict[str, SuiteKind]:
    global _KINDS
    if _KINDS is None:
        _KINDS = _registry()
    return _KINDS


def get_kind(name: str) -> SuiteKind:
    try:
        return kinds()[name]
    except KeyError:
        raise KeyError(name) from None
