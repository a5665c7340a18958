"""The page in several languages: translation data, the language menu, translated messages and errors.

Data: one YAML file per language in `hub/ui/locales/` (`en.yaml` is the source). Each has `_meta`
(native name, whether the text is a machine translation, who reviewed it) and two sections:

- `ui`: the page's static text (labels, buttons, help, empty states). Components get `t("ui.x.y")`, a
  `gr.I18n` marker the browser translates; `{placeholders}` in these are filled once per app from the
  config (`ui_params`), e.g. `{max_grid_cells}`.
- `msg` and `err`: text the server writes at request time (results, errors), formatted with
  `tr(lang, key, **values)`.

Which language: the page starts in the browser's language (Gradio's own choice from
`navigator.language`, refined by `PICK_LANGUAGE_JS`: a `?lang=` parameter, then the `hub_lang` cookie,
then the browser's list); the language menu switches it in place (Gradio's `changeLocale`) and stores
the choice in the `hub_lang` cookie. The server reads the same cookie, else `Accept-Language`
(`page_language`), so messages and errors come back in the page's language. API callers without
either get English.

Errors: `LocalizedError(key, **values)` is a `HubInputError` with an English message and a key;
`localize_message` turns it, or an English engine/arena message that matches an `err` template, into
the page language; any other message keeps its English text behind a translated lead-in.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from evals.gallery_files import MAX_IMAGES as GALLERY_MAX_IMAGES
from evals.gallery_files import MIN_IMAGES as GALLERY_MIN_IMAGES
from hub.errors import HubInputError

LOCALES_DIR = Path(__file__).resolve().parent / "locales"
# Order of the language menu. Codes are the ones Gradio's front end uses for these locales.
LANGUAGE_CODES = ("en", "es", "ja", "zh-CN", "ko", "pt")
DEFAULT_LANGUAGE = "en"
COOKIE = "hub_lang"
# Browser tags that do not reduce to one of ours by dropping the region.
ALIASES = {"zh": "zh-CN", "zh-hans": "zh-CN", "zh-sg": "zh-CN", "pt-br": "pt", "pt-pt": "pt"}


@dataclass(frozen=True)
class Language:
    code: str
    name: str  # the language's own name
    machine_translated: bool
    machine_note: str  # "machine translation", in the language itself
    reviewed_by: tuple[str, ...] = ()

    @property
    def menu_label(self) -> str:
        return f"{self.name} ({self.machine_note})" if self.machine_translated else self.name


def _flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    flat: dict[str, str] = {}
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flatten(value, path + "."))
        else:
            flat[path] = str(value)
    return flat


UNTRANSLATED_MARK = "(en)"


class Catalog:
    """Every language's messages, flat (`ui.generate.prompt`), English as the fallback."""

    def __init__(self, folder: Path = LOCALES_DIR) -> None:
        self.languages: dict[str, Language] = {}
        self.messages: dict[str, dict[str, str]] = {}
        for code in LANGUAGE_CODES:
            data = yaml.safe_load((folder / f"{code}.yaml").read_text(encoding="utf-8")) or {}
            meta = data.pop("_meta", {}) or {}
            self.languages[code] = Language(
                code=code,
                name=str(meta.get("name", code)),
                machine_translated=bool(meta.get("machine_translated", code != DEFAULT_LANGUAGE)),
                machine_note=str(meta.get("machine_note", "machine translation")),
                reviewed_by=tuple(meta.get("reviewed_by") or ()),
            )
            self.messages[code] = _flatten(data)
        self.english = self.messages[DEFAULT_LANGUAGE]
        self._patterns = [(key, _template_regex(text)) for key, text in self.english.items() if key.startswith("err.")]

    def has(self, key: str) -> bool:
        return key in self.english

    def raw(self, lang: str, key: str) -> str:
        """The text of `key` in `lang`; English, marked "(en)", until that language has it."""
        if key not in self.english:
            raise KeyError(f"no English text for {key!r} in {LOCALES_DIR / 'en.yaml'}")
        translated = self.messages.get(lang, {}).get(key)
        if translated:
            return translated
        return self.english[key] if lang == DEFAULT_LANGUAGE else self.untranslated(key)

    def untranslated(self, key: str) -> str:
        # Visible, so a reader knows the English is a stand-in and a translator sees what is missing.
        return f"{self.english[key]} {UNTRANSLATED_MARK}"

    def text(self, lang: str, key: str, **values: Any) -> str:
        template = self.raw(lang if lang in self.messages else DEFAULT_LANGUAGE, key)
        if not values:
            return template
        try:
            return template.format(**values)
        except (KeyError, IndexError, ValueError):  # a translation that lost a placeholder: English
            return self.english[key].format(**values)

    def ui_translations(self, params: Mapping[str, Any], extra: Mapping[str, Mapping[str, str]] | None = None) -> dict[str, dict[str, str]]:
        """`gr.I18n` data: the `ui` keys of every language with the config's values filled in, plus
        `extra` (key -> language -> text) made per app (e.g. the table of checkpoints)."""
        out: dict[str, dict[str, str]] = {}
        for code in LANGUAGE_CODES:
            merged = {key: self.raw(code, key) for key in self.english}
            table = {key: _fill(text, params) for key, text in merged.items() if key.startswith("ui.")}
            for key, by_language in (extra or {}).items():
                table[key] = by_language.get(code) or by_language.get(DEFAULT_LANGUAGE, "")
            out[code] = table
        return out

    def match_error(self, message: str) -> tuple[str, dict[str, str]] | None:
        """The `err` key whose English template produced `message`, and the values it holds."""
        for key, pattern in self._patterns:
            found = pattern.fullmatch(message.strip())
            if found:
                return key, found.groupdict()
        return None


class _KeepMissing(dict):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def _fill(text: str, params: Mapping[str, Any]) -> str:
    if "{" not in text:
        return text
    try:
        return string.Formatter().vformat(text, (), _KeepMissing(params))
    except (ValueError, IndexError):
        return text


def _template_regex(template: str) -> re.Pattern[str]:
    """'Too late: within {seconds} seconds.' -> a regex capturing `seconds`."""
    parts = []
    names: set[str] = set()
    for literal, field, _spec, _conv in string.Formatter().parse(template):
        parts.append(re.escape(literal))
        if field is not None:
            if field in names:
                parts.append(f"(?P={field})")
            else:
                names.add(field)
                parts.append(f"(?P<{field}>.+?)")
    return re.compile("".join(parts), re.DOTALL)


@lru_cache(maxsize=1)
def catalog() -> Catalog:
    return Catalog()


def languages() -> list[Language]:
    return [catalog().languages[code] for code in LANGUAGE_CODES]


def t(key: str) -> Any:
    """A marker the browser translates (for labels, buttons, Markdown). Unknown keys fail at build."""
    import gradio as gr

    if not catalog().has(key):
        raise KeyError(f"no English text for {key!r} in {LOCALES_DIR / 'en.yaml'}")
    return gr.I18n()(key)


def tr(lang: str | None, key: str, **values: Any) -> str:
    """Server-side text in `lang` (English when unknown)."""
    return catalog().text(lang or DEFAULT_LANGUAGE, key, **values)


# ---------------------------------------------------------------------------------------- language


def match_language(tag: str | None) -> str | None:
    """A browser language tag ('ja-JP', 'zh', 'pt-BR', 'es') -> one of ours, or None."""
    if not tag or not isinstance(tag, str):
        return None
    tag = tag.strip().replace("_", "-")
    lowered = tag.lower()
    for code in LANGUAGE_CODES:
        if code.lower() == lowered:
            return code
    if lowered in ALIASES:
        return ALIASES[lowered]
    base = lowered.split("-")[0]
    if base in ALIASES:
        return ALIASES[base]
    return base if base in LANGUAGE_CODES else None


def parse_accept_language(header: str | None) -> str | None:
    """The best of our languages in an Accept-Language header ('ja-JP,ja;q=0.9,en;q=0.8')."""
    if not header:
        return None
    weighted = []
    for position, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        weighted.append((-quality, position, tag))
    for _, _, tag in sorted(weighted):
        code = match_language(tag)
        if code:
            return code
    return None


def check_language(code: Any) -> str:
    """A language code we serve, or LocalizedError('err.unknown_language')."""
    if isinstance(code, str) and code in LANGUAGE_CODES:
        return code
    shown = str(code)[:20] if code is not None else ""
    raise LocalizedError("err.unknown_language", code=shown, known=", ".join(LANGUAGE_CODES))


def page_language(request: Any) -> str:
    """The page's language for a request: the `hub_lang` cookie the menu sets, else Accept-Language,
    else English. Works with `gr.Request`, a Starlette request or None."""
    if request is None:
        return DEFAULT_LANGUAGE
    cookies = getattr(request, "cookies", None) or {}
    try:
        chosen = cookies.get(COOKIE)
    except AttributeError:
        chosen = None
    if chosen in LANGUAGE_CODES:
        return chosen
    headers = getattr(request, "headers", None) or {}
    try:
        header = headers.get("accept-language")
    except AttributeError:
        header = None
    return parse_accept_language(header) or DEFAULT_LANGUAGE


# ------------------------------------------------------------------------------------------ errors


class LocalizedError(HubInputError):
    """Bad input with a translatable message: `str()` is the English text."""

    def __init__(self, key: str, **values: Any) -> None:
        super().__init__(tr(DEFAULT_LANGUAGE, key, **values))
        self.key = key
        self.values = values


def localize_message(message: str, lang: str | None, error: BaseException | None = None) -> str:
    """An English user message in `lang`: by key, by matching an `err` template, else behind a
    translated lead-in (the English text kept, so nothing is lost)."""
    lang = lang or DEFAULT_LANGUAGE
    if isinstance(error, LocalizedError):
        return tr(lang, error.key, **error.values)
    if lang == DEFAULT_LANGUAGE:
        return message
    matched = catalog().match_error(message)
    if matched is not None:
        key, values = matched
        return tr(lang, key, **values)
    return tr(lang, "msg.lead_in", message=message)


def localize_error(error: BaseException, lang: str | None) -> str:
    return localize_message(str(error), lang, error)


# ------------------------------------------------------------------------------------ page scripts

# Which language the page should show: ?lang=, then the cookie, then the browser's languages. Returns
# the raw ?lang= value when it names no language of ours, so the server can say so.
_PICK = """
() => {
  const ours = %(codes)s;
  const aliases = %(aliases)s;
  const match = (tag) => {
    if (!tag) return null;
    const lower = String(tag).replace('_', '-').toLowerCase();
    for (const code of ours) if (code.toLowerCase() === lower) return code;
    if (aliases[lower]) return aliases[lower];
    const base = lower.split('-')[0];
    if (aliases[base]) return aliases[base];
    return ours.includes(base) ? base : null;
  };
  const asked = new URLSearchParams(window.location.search).get('lang');
  if (asked) return match(asked) || asked;
  const cookie = document.cookie.split('; ').find((c) => c.startsWith('%(cookie)s='));
  if (cookie && match(decodeURIComponent(cookie.split('=')[1]))) return match(decodeURIComponent(cookie.split('=')[1]));
  for (const tag of (navigator.languages || [navigator.language])) {
    const code = match(tag);
    if (code) return code;
  }
  return 'en';
}
""" % {"codes": list(LANGUAGE_CODES), "aliases": ALIASES, "cookie": COOKIE}

# On load: the page's language.
PICK_LANGUAGE_JS = _PICK.strip()

# Inputs of the event that writes the server's text: the page's values, plus whether the tab labels
# must be sent again (they show another language than the page's now).
TABS_STALE_JS = """
(...values) => {
  const stale = window.__sakugaTabsShow !== undefined && window.__sakugaTabsShow !== window.__sakugaLanguage;
  window.__sakugaTabsShow = window.__sakugaLanguage;
  return [...values.slice(0, -1), stale];
}
"""

# Once the server has checked a language (on load, or chosen in the menu): remember it (cookie) and show
# it in place (Gradio's own locale switch, found through its loaded core module). Gradio redraws most
# text at once; tab labels keep the language they were drawn in until the server sends them again
# (`build_app`), which is only done when they show another language (`TABS_STALE_JS`): sending them
# redraws the tabs' contents, which would drop an upload in progress.
APPLY_LANGUAGE_JS = """
async (code) => {
  if (!code) return code;
  document.cookie = '%(cookie)s=' + encodeURIComponent(code) + '; path=/; max-age=31536000; samesite=lax';
  document.documentElement.setAttribute('lang', code);
  const url = performance.getEntriesByType('resource').map((e) => e.name).find((n) => /\\/core-[^/]*\\.js$/.test(n));
  if (url) {
    try {
      const core = await import(url);
      if (window.__sakugaTabsShow === undefined) {
        // The language Gradio drew the tabs in: its own pick from the browser's language.
        const known = (core.language_choices || []).map((choice) => choice[1]);
        const tag = navigator.language || 'en';
        window.__sakugaTabsShow = known.includes(tag) ? tag : (known.includes(tag.split('-')[0]) ? tag.split('-')[0] : 'en');
      }
      core.changeLocale(code);
    } catch (err) { console.error('language switch', err); }
  }
  window.__sakugaLanguage = code;
  return code;
}
""" % {"cookie": COOKIE}


def language_menu_choices() -> list[tuple[str, str]]:
    return [(language.menu_label, language.code) for language in languages()]


def ui_params(config: Any) -> dict[str, Any]:
    """Values the static page text may name ({max_grid_cells}, ...): the config's limits."""
    limits = config.limits
    params = {name: getattr(limits, name) for name in type(limits).model_fields}
    params.update(max_rating=limits.max_rating, gallery_min=GALLERY_MIN_IMAGES, gallery_max=GALLERY_MAX_IMAGES)
    return params


def i18n_for(config: Any, params: Mapping[str, Any] | None = None, extra: Mapping[str, Mapping[str, str]] | None = None) -> Any:
    """The app's `gr.I18n` (passed to `launch`): the `ui` text with the config's values filled in."""
    import gradio as gr

    return gr.I18n(**catalog().ui_translations({**ui_params(config), **(params or {})}, extra))
