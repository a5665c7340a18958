"""Prompt suites: declared as YAML data in `prompts/`, found by name, validated, versioned by content.

The schema is pydantic (`evals/kinds/schema.py` for what every suite shares, each kind's module for
its items; `prompts/README.md` documents it). Any problem is one `SuiteError` line naming the file, the
item and the problem. A suite expands into `PromptRow`s, one per (item, language), through its kind.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from core.keys import sha256_hex
from evals.kinds import kinds
from evals.kinds.base import PromptRow, Suite, SuiteError, SuiteKind
from evals.kinds.schema import ITEM_ID, SUITE_NAME

__all__ = ["PROMPTS_DIR", "PromptRow", "Suite", "SuiteError", "get_registry", "get_suite", "list_suites", "load_suite_file",
           "load_vocabulary"]

PROMPTS_DIR = Path(__file__).resolve().parent.parent / "prompts"


# ----------------------------------------------------------------------------------------- loading


def _display(path: Path) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)


def load_vocabulary(path: Path) -> frozenset[str]:
    """One tag per line; blank lines and `#` comments ignored."""
    tags = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            tags.add(line)
    return frozenset(tags)


def load_suite_file(path: str | Path) -> list[Suite]:
    """Parse and validate every suite document in one YAML file."""
    path = Path(path)
    prefix = f"{_display(path)}: "
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SuiteError(prefix + f"cannot read file ({exc.strerror or exc})") from exc
    try:
        documents = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem_text = getattr(exc, "problem", None) or str(exc)
        raise SuiteError(prefix + f"bad YAML: {problem_text}{where}") from exc
    if not documents:
        raise SuiteError(prefix + "no suite in file")
    return [_parse_suite(doc, path) for doc in documents]


def _parse_suite(doc: Any, path: Path) -> Suite:
    prefix = f"{_display(path)}: "
    if not isinstance(doc, dict):
        raise SuiteError(prefix + f"a suite must be a mapping, got {type(doc).__name__}")
    name = doc.get("suite")
    if not isinstance(name, str):
        raise SuiteError(prefix + "missing field 'suite'")
    if not SUITE_NAME.match(name):
        raise SuiteError(prefix + f"suite '{name}': suite name must match [a-z0-9][a-z0-9_-]*")
    where = f"suite '{name}'"
    kind_name = doc.get("kind")
    registry = kinds()
    if kind_name not in registry:
        raise SuiteError(prefix + f"{where}: unknown kind '{kind_name}' (expected one of: {', '.join(registry)})")
    kind = registry[kind_name]
    languages = doc.get("languages") if isinstance(doc.get("languages"), list) else []
    vocabulary, vocab_path = None, None
    vocab_rel = doc.get("vocabulary")
    if isinstance(vocab_rel, str):
        vocab_path = (path.parent / vocab_rel).resolve()
        if not vocab_path.is_file():
            raise SuiteError(prefix + f"{where}: vocabulary file '{vocab_rel}' not found")
        vocabulary = load_vocabulary(vocab_path)
    context = {"languages": languages, "vocabulary": vocabulary, "vocabulary_name": vocab_rel, "folder": str(path.parent)}
    try:
        parsed = kind.document.model_validate(doc, context=context)
    except ValidationError as err:
        raise SuiteError(prefix + _describe(err, doc, kind, where)) from None
    return Suite(
        name=name,
        kind=kind_name,
        path=path,
        languages=tuple(parsed.languages),
        anchor_language=parsed.anchor,
        version_hash=sha256_hex(doc),
        items=kind.items(parsed),
        description=parsed.description,
        negative_prompt=parsed.negative_prompt,
        vocabulary_path=vocab_path,
        settings=kind.suite_settings(parsed),
        document=doc,
        spec=kind,
    )


def _describe(err: ValidationError, doc: dict[str, Any], kind: SuiteKind, suite_where: str) -> str:
    """The first validation error as 'item: problem' ('character 'miku': names: missing language 'ja'')."""
    error = err.errors()[0]
    loc = tuple(error["loc"])
    ctx = error.get("ctx") or {}
    where = suite_where
    field_path = loc
    if len(loc) >= 2 and loc[0] == kind.item_key and isinstance(loc[1], int):
        entries = doc.get(kind.item_key) or []
        raw = entries[loc[1]] if loc[1] < len(entries) else {}
        item_id = raw.get("id") if isinstance(raw, dict) else None
        valid = isinstance(item_id, str) and ITEM_ID.match(item_id) is not None
        where = f"{kind.noun} '{item_id}'" if valid and loc[2:3] != ("id",) else f"{kind.noun} #{loc[1] + 1}"
        field_path = loc[2:]
    if error["type"] == "suite":
        message = ctx.get("message", error["msg"])
        if ctx.get("where"):
            return f"{ctx['where']}: {message}"
        named = [str(p) for p in field_path if not isinstance(p, int)]
        if named and named[-1] != "id":
            # "texts.ja: status must be ...": the path down to the field, which the message may name itself.
            path = named[:-1] if message.startswith(named[-1]) else named
            message = f"{'.'.join(path)}: {message}" if path else message
        return f"{where}: {message}"
    field_name = ".".join(str(p) for p in field_path) or "(suite)"
    if error["type"] == "missing":
        return f"{where}: missing field '{field_name}'"
    if error["type"] == "extra_forbidden":
        return f"{where}: unknown field '{field_name}'"
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{where}: field '{field_name}': {message}"


# ---------------------------------------------------------------------------------------- registry


class SuiteRegistry:
    """All suites in a prompts folder, by name. Files are parsed lazily, once."""

    def __init__(self, prompts_dir: str | Path | None = None):
        self.prompts_dir = Path(prompts_dir or os.environ.get("HUB_PROMPTS_DIR") or PROMPTS_DIR)
        self._suites: dict[str, Suite] | None = None

    def _load(self) -> dict[str, Suite]:
        if self._suites is None:
            suites: dict[str, Suite] = {}
            for path in sorted(self.prompts_dir.glob("*.yaml")) + sorted(self.prompts_dir.glob("*.yml")):
                for suite in load_suite_file(path):
                    if suite.name in suites:
                        other = suites[suite.name].path
                        raise SuiteError(f"{_display(path)}: suite '{suite.name}': name already used in {_display(other)}")
                    suites[suite.name] = suite
            self._suites = suites
        return self._suites

    def names(self) -> list[str]:
        return sorted(self._load())

    def all(self) -> list[Suite]:
        return [self._load()[n] for n in self.names()]

    def get(self, name: str) -> Suite:
        suites = self._load()
        if name not in suites:
            known = ", ".join(sorted(suites)) or "none"
            raise SuiteError(f"unknown suite '{name}' (known: {known})")
        return suites[name]


_default_registries: dict[Path, tuple[tuple, SuiteRegistry]] = {}


def get_registry(prompts_dir: str | Path | None = None) -> SuiteRegistry:
    registry = SuiteRegistry(prompts_dir)
    key = registry.prompts_dir.resolve()
    # Reload when files change (mtimes), so an edited suite is picked up without a restart.
    stamp = tuple((p.name, p.stat().st_mtime_ns) for p in sorted(key.glob("*.y*ml"))) if key.is_dir() else ()
    cached = _default_registries.get(key)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    _default_registries[key] = (stamp, registry)
    return registry


def get_suite(name: str, prompts_dir: str | Path | None = None) -> Suite:
    return get_registry(prompts_dir).get(name)


def list_suites(prompts_dir: str | Path | None = None) -> list[Suite]:
    return get_registry(prompts_dir).all()


def main(prompts_dir: str | Path | None = None) -> int:
    import sys

    try:
        for suite in list_suites(prompts_dir):
            print(
                f"{suite.name}\t{suite.kind}\titems={len(suite.items)}\t"
                f"languages={','.join(suite.languages)}\t{suite.version_hash[:12]}\t{_display(suite.path)}"
            )
    except SuiteError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1] if len(sys.argv) > 1 else None))
