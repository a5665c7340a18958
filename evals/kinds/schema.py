"""Pydantic building blocks of the suite schema (see `prompts/README.md`).

Validators raise `problem(message, where=...)`; `evals.suites` turns every validation error into one
line naming the file, the item and the problem ("characters.yaml: character 'miku': names: missing
language 'ja'"). Validation context (`info.context`) carries the suite's languages, its tag vocabulary
and the suite file's folder, so items check themselves against them.
"""

from __future__ import annotations

import re
import string
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

ITEM_ID = re.compile(r"^[a-z0-9][a-z0-9_]*$")
SUITE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
LANGUAGE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$")
TAG = re.compile(r"^[^\sA-Z]+$")  # Danbooru tags: lowercase, no spaces; ( ) : ' . - ! ? / allowed
STATUSES = ("reviewed", "machine")
TIERS = ("popular", "niche", "non_anime")


def problem(message: str, where: str | None = None) -> PydanticCustomError:
    """A validation error whose message is shown as it is (with `where` naming the item if given)."""
    return PydanticCustomError("suite", "{message}", {"message": message, "where": where or ""})


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _null_is_absent(cls, value: Any) -> Any:
        """`key: null` in YAML means the key is not given (its default applies, or it is missing)."""
        if isinstance(value, dict):
            return {k: v for k, v in value.items() if v is not None}
        return value


def context(info: ValidationInfo) -> dict[str, Any]:
    return dict(info.context or {})


def languages_of(info: ValidationInfo) -> list[str]:
    return list(context(info).get("languages") or [])


def per_language(mapping: dict[str, Any], info: ValidationInfo, what: str) -> dict[str, Any]:
    """A mapping with a value for every suite language and no other."""
    languages = languages_of(info)
    for lang in languages:
        if lang not in mapping or mapping[lang] in (None, ""):
            raise problem(f"{what}: missing language '{lang}'")
    extra = [k for k in mapping if k not in languages]
    if extra:
        raise problem(f"{what}: language '{extra[0]}' is not in the suite's languages")
    return mapping


def check_tags(tags: list[str], info: ValidationInfo) -> list[str]:
    vocabulary = context(info).get("vocabulary")
    seen: set[str] = set()
    for tag in tags:
        if not isinstance(tag, str) or not TAG.match(tag):
            raise problem(f"bad tag {tag!r} (lowercase, underscores for spaces)")
        if vocabulary is not None and tag not in vocabulary:
            raise problem(f"unknown tag '{tag}' (not in {context(info).get('vocabulary_name')})")
        if tag in seen:
            raise problem(f"duplicate tag '{tag}'")
        seen.add(tag)
    return tags


def check_tier(tier: Any) -> str:
    if tier not in TIERS:
        raise problem(f"unknown tier '{tier}' (expected one of: {', '.join(TIERS)})")
    return tier


def name_candidates(names: dict[str, str], others: list[dict[str, str]], distractors: dict[str, list[str]],
                    language: str) -> dict[str, list[str]]:
    """The name judge's candidates for one prompt: the character's names, the suite's other characters'
    names and the generic distractors, each in English and in the prompt's language."""
    languages = ("en", language)
    return {
        "names": sorted({names[lang] for lang in languages if names.get(lang)}),
        "other_names": sorted({other[lang] for other in others for lang in languages if other.get(lang)}),
        "distractors": sorted({text for lang in languages for text in distractors.get(lang, [])}),
    }


def check_character_tag(tag: str | None) -> str | None:
    if tag is not None and not TAG.match(tag):
        raise problem(f"bad character tag {tag!r} (lowercase, underscores for spaces)")
    return tag


def check_template(template: Any, lang: str, where: str | None = None) -> str:
    if not isinstance(template, str) or not template.strip():
        raise problem(f"template for '{lang}' must be a non-empty string", where)
    try:
        fields = {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}
    except ValueError as exc:
        raise problem(f"template for '{lang}' is malformed ({exc})", where) from exc
    if "name" not in fields:
        raise problem(f"template for '{lang}' lacks {{name}}", where)
    other = fields - {"name"}
    if other:
        raise problem(f"template for '{lang}' has unknown placeholder {{{sorted(other)[0]}}}", where)
    return template


def check_distinct(texts: dict[str, str], where: str | None = None) -> None:
    """Samples are keyed by prompt text: two languages with the same text would share one sample."""
    seen: dict[str, str] = {}
    for lang, text in texts.items():
        if text in seen:
            raise problem(f"the '{seen[text]}' and '{lang}' prompts are identical ({text!r}); make them differ", where)
        seen[text] = lang


def check_unique_ids(items: list[Any], noun: str) -> None:
    seen: set[str] = set()
    for item in items:
        if item.id in seen:
            raise problem("duplicate id", f"{noun} '{item.id}'")
        seen.add(item.id)


class Item(Strict):
    """Every suite item has an id: [a-z0-9_]+, unique in its suite."""

    id: str

    @field_validator("id", mode="before")
    @classmethod
    def _id(cls, value: Any) -> str:
        if not isinstance(value, str) or not ITEM_ID.match(value):
            raise problem(f"bad or missing id {value!r} (use [a-z0-9_]+)")
        return value


class StatusText(Strict):
    """A prompt in one language and whether a native reader checked it."""

    text: str
    status: str

    @field_validator("text")
    @classmethod
    def _text(cls, value: str) -> str:
        if not value.strip():
            raise problem("has no text")
        return value

    @field_validator("status", mode="before")
    @classmethod
    def _status(cls, value: Any) -> str:
        if value not in STATUSES:
            raise problem(f"status must be one of {', '.join(STATUSES)}, got {value!r}")
        return value


def texts_by_language(texts: dict[str, StatusText], info: ValidationInfo, what: str) -> dict[str, StatusText]:
    per_language(texts, info, what)
    check_distinct({lang: value.text for lang, value in texts.items()})
    return texts


# ------------------------------------------------------------------------------------- inputs

INPUT_KINDS = ("render", "generate", "image")  # how an edit case's input image is made


class RenderInput(Strict):
    """A demo-world portrait from the renderer (the app passes the renderer in)."""

    character: str
    seed: int
    background: str = "white"
    expression: str = "smile"
    size: int = 64
    outfit: str | None = None


class GenerateInput(Strict):
    """An image generated once with a registered checkpoint at a fixed seed."""

    checkpoint: str
    prompt: str
    seed: int
    negative_prompt: str | None = None
    width: int | None = None
    height: int | None = None
    steps: int | None = None
    cfg: float | None = None


class InputSpec(Strict):
    """Exactly one of `render`, `generate`, `image` (a path under the prompts folder)."""

    render: RenderInput | None = None
    generate: GenerateInput | None = None
    image: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _one(cls, value: Any) -> Any:
        if not isinstance(value, dict) or len(value) != 1 or next(iter(value)) not in INPUT_KINDS:
            raise problem(f"input must be one of {{{'}, {'.join(k + ': ...' for k in INPUT_KINDS)}}}")
        if "image" in value and (not isinstance(value["image"], str) or not value["image"].strip()):
            raise problem("input.image must be a path relative to prompts/")
        return value

    @property
    def kind(self) -> str:
        return next(k for k in INPUT_KINDS if getattr(self, k) is not None)

    def as_dict(self) -> dict[str, Any]:
        value = getattr(self, self.kind)
        return {self.kind: value if isinstance(value, str) else value.model_dump(exclude_none=True)}


class SuiteDocument(Strict):
    """The fields every suite has; each kind's document adds its own."""

    suite: str
    kind: str
    languages: list[str]
    anchor_language: str | None = None
    description: str = ""
    negative_prompt: str = ""
    vocabulary: str | None = None

    @field_validator("languages")
    @classmethod
    def _languages(cls, value: list[str]) -> list[str]:
        if not value:
            raise problem("languages is empty")
        for lang in value:
            if not isinstance(lang, str) or not LANGUAGE.match(lang):
                raise problem(f"bad language code {lang!r}")
        if len(set(value)) != len(value):
            raise problem("duplicate language in languages")
        return value

    @model_validator(mode="after")
    def _anchor(self) -> "SuiteDocument":
        if self.anchor_language is not None and self.anchor_language not in self.languages:
            raise problem(f"anchor_language '{self.anchor_language}' is not in languages")
        return self

    @property
    def anchor(self) -> str:
        return self.anchor_language or ("en" if "en" in self.languages else self.languages[0])


def resolve_relative(info: ValidationInfo, relative: str) -> Path:
    folder = Path(context(info).get("folder") or ".")
    return (folder / relative).resolve()
