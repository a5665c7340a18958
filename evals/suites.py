"""Prompt suites: declared as YAML data in `prompts/`, found by name, validated, versioned by content.

See `prompts/README.md` for the schema. A suite expands into `PromptRow`s, one per (item, language),
which is all the runner needs.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import yaml

from hub.errors import HubInputError

PROMPTS_DIR = Path(__file__).resolve().parent.parent / "prompts"

KINDS = ("character_recognition", "multilingual_fidelity", "edit")
INPUT_KINDS = ("render", "generate", "image")  # how an edit case's input image is made (see prompts/README.md)
TIERS = ("popular", "niche", "non_anime")
STATUSES = ("reviewed", "machine")

_SUITE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_ITEM_ID = re.compile(r"^[a-z0-9][a-z0-9_]*$")
_LANGUAGE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$")
# Danbooru tags: lowercase, no spaces; punctuation such as ( ) : ' . - ! ? / is allowed.
_TAG = re.compile(r"^[^\sA-Z]+$")


class SuiteError(HubInputError):
    """A suite file is broken; the message names the file, the item and the problem."""


@dataclass(frozen=True)
class PromptRow:
    """One prompt to generate: a suite item in one language."""

    item_id: str
    language: str
    text: str
    meta: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)


@dataclass(frozen=True)
class Character:
    id: str
    name: str
    franchise: str
    tag: str | None
    tier: str
    names: dict[str, str]
    templates: dict[str, str]  # effective templates (suite templates with the character's overrides)
    references: Path | None = None
    tags: tuple[str, ...] = ()

    def prompt(self, language: str) -> str:
        return self.templates[language].replace("{name}", self.names[language])


@dataclass(frozen=True)
class Scene:
    id: str
    tags: tuple[str, ...]
    texts: dict[str, str]
    status: dict[str, str]


@dataclass(frozen=True)
class EditCase:
    """One edit: an input image (rendered, generated at a fixed seed, or a file), an instruction in
    every language, the tags the tagger should see afterwards, the character that must stay."""

    id: str
    input: dict[str, Any]  # exactly one of {render: {...}}, {generate: {...}}, {image: path}
    instructions: dict[str, str]
    status: dict[str, str]
    expect_tags: tuple[str, ...]
    character: str | None = None  # character tag; None when only the reference judge can tell
    category: str = "other"
    mask: tuple[float, float, float, float] | None = None  # box in fractions of the image: inpainting

    @property
    def input_kind(self) -> str:
        return next(iter(self.input))


@dataclass(frozen=True)
class Suite:
    name: str
    kind: str
    path: Path
    languages: tuple[str, ...]
    anchor_language: str
    version_hash: str
    description: str = ""
    negative_prompt: str = ""
    vocabulary_path: Path | None = None
    characters: tuple[Character, ...] = ()
    scenes: tuple[Scene, ...] = ()
    cases: tuple[EditCase, ...] = ()
    # Edit suites: pipeline settings for every case, and the "same character" cosine used when the
    # reference judge falls back to the tagger's own features (no reference judge configured/loadable).
    edit_settings: dict[str, float] = field(default_factory=dict)
    reference_threshold: float | None = None
    document: dict[str, Any] = field(default_factory=dict, repr=False, hash=False, compare=False)

    @property
    def items(self) -> tuple[Character, ...] | tuple[Scene, ...] | tuple[EditCase, ...]:
        if self.kind == "edit":
            return self.cases
        return self.characters if self.kind == "character_recognition" else self.scenes

    @property
    def item_ids(self) -> list[str]:
        return [item.id for item in self.items]

    def check_languages(self, languages: Iterable[str] | None) -> tuple[str, ...]:
        """The requested languages in suite order; an unknown one is a `SuiteError`."""
        if not languages:
            return self.languages
        wanted = list(dict.fromkeys(languages))
        missing = [lang for lang in wanted if lang not in self.languages]
        if missing:
            raise SuiteError(
                f"suite '{self.name}' has no language {', '.join(repr(m) for m in missing)} "
                f"(it has: {', '.join(self.languages)})"
            )
        return tuple(lang for lang in self.languages if lang in wanted)

    def rows(self, languages: Iterable[str] | None = None, limit: int | None = None) -> list[PromptRow]:
        """Expand into prompt rows: the first `limit` items, each in every requested language."""
        langs = self.check_languages(languages)
        if limit is not None and limit < 1:
            raise SuiteError(f"limit must be at least 1, got {limit}")
        items = self.items[:limit] if limit else self.items
        rows: list[PromptRow] = []
        for item in items:
            for lang in langs:
                if isinstance(item, Character):
                    meta = {
                        "tier": item.tier,
                        "tag": item.tag,
                        "franchise": item.franchise,
                        "name": item.name,
                        "references": str(item.references) if item.references else None,
                        "tags": list(item.tags),
                    }
                    rows.append(PromptRow(item.id, lang, item.prompt(lang), meta))
                elif isinstance(item, EditCase):
                    meta = {
                        "character": item.character,
                        "expect_tags": list(item.expect_tags),
                        "category": item.category,
                        "input": item.input,
                        "mask": list(item.mask) if item.mask else None,
                        "status": item.status[lang],
                    }
                    rows.append(PromptRow(item.id, lang, item.instructions[lang], meta))
                else:
                    meta = {"tags": list(item.tags), "status": item.status[lang]}
                    rows.append(PromptRow(item.id, lang, item.texts[lang], meta))
        return rows


# ----------------------------------------------------------------------------------------- hashing


def canonical_json(document: Any) -> str:
    return json.dumps(document, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def content_hash(document: Any) -> str:
    return hashlib.sha256(canonical_json(document).encode("utf-8")).hexdigest()


# ----------------------------------------------------------------------------------------- loading


def _display(path: Path) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)


class _Checker:
    """Collects the file name so every error names the file and the item."""

    def __init__(self, path: Path):
        self.path = path

    def fail(self, where: str, problem: str) -> SuiteError:
        prefix = f"{_display(self.path)}: " + (f"{where}: " if where else "")
        return SuiteError(prefix + problem)

    def require(self, mapping: dict, key: str, where: str, types: type | tuple[type, ...]) -> Any:
        if key not in mapping or mapping[key] is None:
            raise self.fail(where, f"missing field '{key}'")
        value = mapping[key]
        if not isinstance(value, types):
            raise self.fail(where, f"field '{key}' must be {_type_name(types)}, got {type(value).__name__}")
        return value

    def optional(self, mapping: dict, key: str, where: str, types: type | tuple[type, ...], default: Any) -> Any:
        value = mapping.get(key)
        if value is None:
            return default
        if not isinstance(value, types):
            raise self.fail(where, f"field '{key}' must be {_type_name(types)}, got {type(value).__name__}")
        return value


def _type_name(types: type | tuple[type, ...]) -> str:
    names = {str: "a string", list: "a list", dict: "a mapping", int: "an integer"}
    if isinstance(types, tuple):
        return " or ".join(names.get(t, t.__name__) for t in types)
    return names.get(types, types.__name__)


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
    check = _Checker(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise check.fail("", f"cannot read file ({exc.strerror or exc})") from exc
    try:
        documents = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise check.fail("", f"bad YAML: {problem}{where}") from exc
    if not documents:
        raise check.fail("", "no suite in file")
    return [_parse_suite(doc, path, check) for doc in documents]


def _parse_suite(doc: Any, path: Path, check: _Checker) -> Suite:
    if not isinstance(doc, dict):
        raise check.fail("", f"a suite must be a mapping, got {type(doc).__name__}")
    name = check.require(doc, "suite", "", str)
    if not _SUITE_NAME.match(name):
        raise check.fail(f"suite '{name}'", "suite name must match [a-z0-9][a-z0-9_-]*")
    where = f"suite '{name}'"
    kind = check.require(doc, "kind", where, str)
    if kind not in KINDS:
        raise check.fail(where, f"unknown kind '{kind}' (expected one of: {', '.join(KINDS)})")
    languages = check.require(doc, "languages", where, list)
    if not languages:
        raise check.fail(where, "languages is empty")
    for lang in languages:
        if not isinstance(lang, str) or not _LANGUAGE.match(lang):
            raise check.fail(where, f"bad language code {lang!r}")
    if len(set(languages)) != len(languages):
        raise check.fail(where, "duplicate language in languages")
    anchor = check.optional(doc, "anchor_language", where, str, "en" if "en" in languages else languages[0])
    if anchor not in languages:
        raise check.fail(where, f"anchor_language '{anchor}' is not in languages")

    vocabulary: frozenset[str] | None = None
    vocab_path: Path | None = None
    vocab_rel = check.optional(doc, "vocabulary", where, str, None)
    if vocab_rel is not None:
        vocab_path = (path.parent / vocab_rel).resolve()
        if not vocab_path.is_file():
            raise check.fail(where, f"vocabulary file '{vocab_rel}' not found")
        vocabulary = load_vocabulary(vocab_path)

    def check_tags(tags: Any, item_where: str) -> tuple[str, ...]:
        if not isinstance(tags, list):
            raise check.fail(item_where, "tags must be a list")
        seen = set()
        for tag in tags:
            if not isinstance(tag, str) or not _TAG.match(tag):
                raise check.fail(item_where, f"bad tag {tag!r} (lowercase, underscores for spaces)")
            if vocabulary is not None and tag not in vocabulary:
                raise check.fail(item_where, f"unknown tag '{tag}' (not in {vocab_rel})")
            if tag in seen:
                raise check.fail(item_where, f"duplicate tag '{tag}'")
            seen.add(tag)
        return tuple(tags)

    common = dict(
        name=name,
        kind=kind,
        path=path,
        languages=tuple(languages),
        anchor_language=anchor,
        version_hash=content_hash(doc),
        description=check.optional(doc, "description", where, str, ""),
        negative_prompt=check.optional(doc, "negative_prompt", where, str, ""),
        vocabulary_path=vocab_path,
        document=doc,
    )
    if kind == "character_recognition":
        characters = _parse_characters(doc, path, check, where, languages, check_tags)
        return Suite(characters=characters, **common)
    if kind == "edit":
        settings = check.optional(doc, "settings", where, dict, {})
        for key, value in settings.items():
            if key not in ("strength", "image_guidance") or isinstance(value, bool) or not isinstance(value, (int, float)):
                raise check.fail(where, f"settings: '{key}' must be strength or image_guidance with a number")
        threshold = doc.get("reference_threshold")
        if threshold is not None and (isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not -1 <= threshold <= 1):
            raise check.fail(where, "reference_threshold must be a cosine between -1 and 1")
        cases = _parse_edit_cases(doc, check, where, languages, check_tags)
        return Suite(cases=cases, edit_settings={k: float(v) for k, v in settings.items()},
                     reference_threshold=None if threshold is None else float(threshold), **common)
    scenes = _parse_scenes(doc, check, where, languages, check_tags)
    return Suite(scenes=scenes, **common)


def _check_template(template: Any, check: _Checker, where: str, lang: str) -> str:
    if not isinstance(template, str) or not template.strip():
        raise check.fail(where, f"template for '{lang}' must be a non-empty string")
    try:
        fields = {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}
    except ValueError as exc:
        raise check.fail(where, f"template for '{lang}' is malformed ({exc})") from exc
    if "name" not in fields:
        raise check.fail(where, f"template for '{lang}' lacks {{name}}")
    other = fields - {"name"}
    if other:
        raise check.fail(where, f"template for '{lang}' has unknown placeholder {{{sorted(other)[0]}}}")
    return template


def _per_language(mapping: Any, languages: list[str], check: _Checker, where: str, what: str) -> dict:
    if not isinstance(mapping, dict):
        raise check.fail(where, f"{what} must be a mapping of language to value")
    for lang in languages:
        if lang not in mapping or mapping[lang] in (None, ""):
            raise check.fail(where, f"{what}: missing language '{lang}'")
    extra = [k for k in mapping if k not in languages]
    if extra:
        raise check.fail(where, f"{what}: language '{extra[0]}' is not in the suite's languages")
    return mapping


def _check_distinct(texts: dict[str, str], check: _Checker, where: str) -> None:
    """Samples are keyed by prompt text: two languages with the same text would share one sample."""
    seen: dict[str, str] = {}
    for lang, text in texts.items():
        if text in seen:
            raise check.fail(where, f"the '{seen[text]}' and '{lang}' prompts are identical ({text!r}); make them differ")
        seen[text] = lang


def _items_with_ids(doc, check, where, key: str, noun: str):
    """Yield (entry, id, label) for the suite's `key` list: mappings with unique [a-z0-9_]+ ids."""
    entries = check.require(doc, key, where, list)
    if not entries:
        raise check.fail(where, f"{key} is empty")
    seen: set[str] = set()
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise check.fail(f"{noun} #{index + 1}", "must be a mapping")
        item_id = entry.get("id")
        if not isinstance(item_id, str) or not _ITEM_ID.match(item_id):
            raise check.fail(f"{noun} #{index + 1}", f"bad or missing id {item_id!r} (use [a-z0-9_]+)")
        label = f"{noun} '{item_id}'"
        if item_id in seen:
            raise check.fail(label, "duplicate id")
        seen.add(item_id)
        yield entry, item_id, label


def _parse_characters(doc, path, check, where, languages, check_tags) -> tuple[Character, ...]:
    suite_templates = _per_language(check.require(doc, "templates", where, dict), languages, check, where, "templates")
    for lang in languages:
        _check_template(suite_templates[lang], check, where, lang)
    characters = []
    for entry, cid, cw in _items_with_ids(doc, check, where, "characters", "character"):
        name = check.require(entry, "name", cw, str)
        franchise = check.require(entry, "franchise", cw, str)
        tier = check.require(entry, "tier", cw, str)
        if tier not in TIERS:
            raise check.fail(cw, f"unknown tier '{tier}' (expected one of: {', '.join(TIERS)})")
        tag = check.optional(entry, "tag", cw, str, None)
        if tag is not None and not _TAG.match(tag):
            raise check.fail(cw, f"bad character tag {tag!r} (lowercase, underscores for spaces)")
        names = _per_language(check.require(entry, "names", cw, dict), languages, check, cw, "names")
        for lang in languages:
            if not isinstance(names[lang], str):
                raise check.fail(cw, f"names: '{lang}' must be a string")
        overrides = check.optional(entry, "templates", cw, dict, {})
        for lang, template in overrides.items():
            if lang not in languages:
                raise check.fail(cw, f"templates: language '{lang}' is not in the suite's languages")
            _check_template(template, check, cw, lang)
        references = None
        ref_rel = check.optional(entry, "references", cw, str, None)
        if ref_rel is not None:
            references = (path.parent / ref_rel).resolve()
            if not references.is_dir():
                raise check.fail(cw, f"references folder '{ref_rel}' not found")
        tags = check_tags(entry.get("tags") or [], cw)
        templates = {lang: overrides.get(lang, suite_templates[lang]) for lang in languages}
        _check_distinct({lang: templates[lang].replace("{name}", names[lang]) for lang in languages}, check, cw)
        characters.append(
            Character(
                id=cid,
                name=name,
                franchise=franchise,
                tag=tag,
                tier=tier,
                names={lang: names[lang] for lang in languages},
                templates=templates,
                references=references,
                tags=tags,
            )
        )
    return tuple(characters)


def _parse_scenes(doc, check, where, languages, check_tags) -> tuple[Scene, ...]:
    scenes = []
    for entry, sid, sw in _items_with_ids(doc, check, where, "scenes", "scene"):
        tags = check_tags(check.require(entry, "tags", sw, list), sw)
        if not tags:
            raise check.fail(sw, "tags is empty")
        texts = _per_language(check.require(entry, "texts", sw, dict), languages, check, sw, "texts")
        text_by_lang, status_by_lang = {}, {}
        for lang in languages:
            value = texts[lang]
            if not isinstance(value, dict):
                raise check.fail(sw, f"texts: '{lang}' must be a mapping {{text, status}}")
            text = value.get("text")
            if not isinstance(text, str) or not text.strip():
                raise check.fail(sw, f"texts: '{lang}' has no text")
            status = value.get("status")
            if status not in STATUSES:
                raise check.fail(sw, f"texts: '{lang}' status must be one of {', '.join(STATUSES)}, got {status!r}")
            text_by_lang[lang], status_by_lang[lang] = text, status
        _check_distinct(text_by_lang, check, sw)
        scenes.append(Scene(id=sid, tags=tags, texts=text_by_lang, status=status_by_lang))
    return tuple(scenes)


_INPUT_FIELDS = {
    "render": {"character": str, "seed": int, "background": str, "expression": str, "size": int},
    "generate": {"checkpoint": str, "prompt": str, "seed": int, "negative_prompt": str, "width": int, "height": int,
                 "steps": int, "cfg": (int, float)},
}
_INPUT_REQUIRED = {"render": ("character", "seed"), "generate": ("checkpoint", "prompt", "seed")}


def _parse_input(value: Any, check: _Checker, where: str) -> dict[str, Any]:
    if not isinstance(value, dict) or len(value) != 1 or next(iter(value)) not in INPUT_KINDS:
        raise check.fail(where, f"input must be one of {{{'}, {'.join(k + ': ...' for k in INPUT_KINDS)}}}")
    kind, spec = next(iter(value.items()))
    if kind == "image":
        if not isinstance(spec, str) or not spec.strip():
            raise check.fail(where, "input.image must be a path relative to prompts/")
        return {"image": spec}
    if not isinstance(spec, dict):
        raise check.fail(where, f"input.{kind} must be a mapping")
    fields = _INPUT_FIELDS[kind]
    for key, item in spec.items():
        if key not in fields:
            raise check.fail(where, f"input.{kind}: unknown field '{key}' (allowed: {', '.join(fields)})")
        if isinstance(item, bool) or not isinstance(item, fields[key]):
            raise check.fail(where, f"input.{kind}.{key} must be {_type_name(fields[key])}")
    for key in _INPUT_REQUIRED[kind]:
        if key not in spec:
            raise check.fail(where, f"input.{kind}: missing field '{key}'")
    return {kind: dict(spec)}


def _parse_edit_cases(doc, check, where, languages, check_tags) -> tuple[EditCase, ...]:
    cases = []
    for entry, cid, cw in _items_with_ids(doc, check, where, "cases", "case"):
        expect = check_tags(check.require(entry, "expect_tags", cw, list), cw)
        if not expect:
            raise check.fail(cw, "expect_tags is empty")
        character = check.optional(entry, "character", cw, str, None)
        if character is not None and not _TAG.match(character):
            raise check.fail(cw, f"bad character tag {character!r} (lowercase, underscores for spaces)")
        mask = entry.get("mask")
        if mask is not None:
            if (not isinstance(mask, list) or len(mask) != 4 or any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in mask)
                    or not (0 <= mask[0] < mask[2] <= 1 and 0 <= mask[1] < mask[3] <= 1)):
                raise check.fail(cw, "mask must be a box [left, top, right, bottom] in fractions of the image (0-1)")
            mask = tuple(float(v) for v in mask)
        texts = _per_language(check.require(entry, "instructions", cw, dict), languages, check, cw, "instructions")
        text_by_lang, status_by_lang = {}, {}
        for lang in languages:
            value = texts[lang]
            if not isinstance(value, dict) or not isinstance(value.get("text"), str) or not value["text"].strip():
                raise check.fail(cw, f"instructions: '{lang}' must be a mapping {{text, status}} with a text")
            if value.get("status") not in STATUSES:
                raise check.fail(cw, f"instructions: '{lang}' status must be one of {', '.join(STATUSES)}, got {value.get('status')!r}")
            text_by_lang[lang], status_by_lang[lang] = value["text"], value["status"]
        _check_distinct(text_by_lang, check, cw)
        cases.append(EditCase(
            id=cid,
            input=_parse_input(check.require(entry, "input", cw, dict), check, cw),
            instructions=text_by_lang,
            status=status_by_lang,
            expect_tags=expect,
            character=character,
            category=check.optional(entry, "category", cw, str, "other"),
            mask=mask,
        ))
    return tuple(cases)


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
                        raise SuiteError(
                            f"{_display(path)}: suite '{suite.name}': name already used in {_display(other)}"
                        )
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


_default_registries: dict[Path, SuiteRegistry] = {}


def get_registry(prompts_dir: str | Path | None = None) -> SuiteRegistry:
    registry = SuiteRegistry(prompts_dir)
    key = registry.prompts_dir.resolve()
    # Reload when files change (mtimes), so an edited suite is picked up without a restart.
    stamp = tuple((p.name, p.stat().st_mtime_ns) for p in sorted(key.glob("*.y*ml"))) if key.is_dir() else ()
    cached = _default_registries.get(key)
    if cached is not None and getattr(cached, "_stamp", None) == stamp:
        return cached
    registry._stamp = stamp  # type: ignore[attr-defined]
    _default_registries[key] = registry
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
