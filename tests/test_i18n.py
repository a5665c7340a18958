"""The page's languages: complete translation data, marked machine translations, the language chosen
from the browser, errors turned into the page's language (by key and by the English templates of
messages that come from the engine and the arena)."""

from __future__ import annotations

import string

import pytest

from hub.ui.i18n import (
    ALIASES,
    COOKIE,
    LANGUAGE_CODES,
    Catalog,
    LocalizedError,
    catalog,
    check_language,
    language_menu_choices,
    localize_message,
    match_language,
    page_language,
    parse_accept_language,
    tr,
)

REQUIRED = ("en", "es", "ja", "zh-CN", "ko", "pt")
# Fields that only carry an English word (a plural, a unit), which other languages may leave out.
ENGLISH_ONLY_FIELDS = {"err.personal_too_few": {"battles"}, "err.references_too_many": {"images"}}


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_six_languages_every_key_and_placeholder():
    """Every language knows only keys English has, keeps their placeholders, and translates at least
    90% of them (a new key may wait for its translation: it shows in English, marked)."""
    data = catalog()
    assert set(REQUIRED) <= set(LANGUAGE_CODES)
    english = data.english
    assert len(english) > 250
    for code in LANGUAGE_CODES:
        messages = data.messages[code]
        assert set(messages) <= set(english), (code, sorted(set(messages) - set(english))[:5])
        assert len(messages) >= 0.9 * len(english), (code, len(messages), len(english))
        for key, text in messages.items():
            assert text.strip(), (code, key)
            # A translation may not invent a placeholder, nor drop one the reader needs.
            allowed = _fields(english[key])
            assert _fields(text) <= allowed, (code, key)
            assert allowed - _fields(text) <= ENGLISH_ONLY_FIELDS.get(key, set()), (code, key)
        if code != "en":
            # Not a copy of English: most page text differs (names such as "CFG" may not).
            ui = [k for k in english if k.startswith("ui.")]
            same = sum(messages[k] == english[k] for k in ui)
            assert same < len(ui) * 0.15, (code, same)


def test_machine_translations_are_marked_in_the_data_and_the_menu():
    data = catalog()
    assert data.languages["en"].machine_translated is False
    labels = dict((code, label) for label, code in language_menu_choices())
    assert labels["en"] == "English"
    for code in LANGUAGE_CODES[1:]:
        language = data.languages[code]
        assert language.machine_translated and language.machine_note and language.reviewed_by == ()
        assert language.machine_note in labels[code] and language.name in labels[code]
    assert labels["ja"] == "日本語 (機械翻訳)" and labels["es"] == "Español (traducción automática)"
    # The note is written in each data file too, for whoever reviews it.
    for code in LANGUAGE_CODES[1:]:
        text = (catalog_dir() / f"{code}.yaml").read_text(encoding="utf-8")
        assert "MACHINE TRANSLATION" in text and "machine_translated: true" in text


def catalog_dir():
    from hub.ui.i18n import LOCALES_DIR

    return LOCALES_DIR


@pytest.mark.parametrize(
    "tag, expected",
    [("ja-JP", "ja"), ("ja", "ja"), ("es-MX", "es"), ("zh-CN", "zh-CN"), ("zh", "zh-CN"), ("zh-Hans", "zh-CN"),
     ("ko-KR", "ko"), ("pt-BR", "pt"), ("pt-PT", "pt"), ("en-US", "en"), ("fr-FR", None), ("", None), (None, None)],
)
def test_browser_tags_map_to_our_languages(tag, expected):
    assert match_language(tag) == expected


def test_accept_language_and_cookie_choose_the_page_language():
    class Request:
        def __init__(self, headers=None, cookies=None):
            self.headers = headers or {}
            self.cookies = cookies or {}

    assert parse_accept_language("fr-FR,fr;q=0.9,ja;q=0.8,en;q=0.5") == "ja"
    assert parse_accept_language("en;q=0.2, ko;q=0.9") == "ko"
    assert parse_accept_language("de") is None
    assert page_language(None) == "en"
    assert page_language(Request({"accept-language": "es-ES,es;q=0.9"})) == "es"
    # The language menu's choice (the cookie) wins over the browser's header.
    assert page_language(Request({"accept-language": "es-ES"}, {COOKIE: "ko"})) == "ko"
    assert page_language(Request({"accept-language": "es-ES"}, {COOKIE: "xx"})) == "es"  # a forged cookie is ignored
    assert page_language(Request()) == "en"
    assert set(ALIASES.values()) <= set(LANGUAGE_CODES)


def test_unknown_language_code_is_refused_in_the_page_language():
    assert check_language("zh-CN") == "zh-CN"
    for bad in ("xx", "", None, "JA", "en-US", "a" * 300):
        with pytest.raises(LocalizedError) as caught:
            check_language(bad)
        assert caught.value.key == "err.unknown_language"
    err = caught.value
    assert str(err).startswith("Unknown language code 'aaaa") and len(str(err)) < 200  # shown short
    assert localize_message(str(err), "ja", err).startswith("不明な言語コード")
    assert localize_message(str(err), "ko", err).startswith("알 수 없는 언어 코드")


def test_server_text_is_formatted_and_falls_back_to_english():
    assert tr("es", "msg.board.runs_done", done=3, total=6) == "**3 de 6 evaluaciones terminadas**"
    assert tr("en", "msg.board.runs_done", done=3, total=6) == "**3 of 6 eval runs done**"
    assert tr("xx", "msg.board.runs_done", done=1, total=2) == "**1 of 2 eval runs done**"  # unknown language: English
    with pytest.raises(KeyError, match="msg.no.such.key"):
        tr("en", "msg.no.such.key")


def test_a_key_not_yet_translated_shows_in_english_marked_en(tmp_path):
    """A contributor adds English text only: the other languages show it, marked "(en)", on the page
    and in server messages, until a translator adds theirs."""
    import shutil

    import yaml

    from hub.ui.i18n import LOCALES_DIR, UNTRANSLATED_MARK

    for path in LOCALES_DIR.glob("*.yaml"):
        shutil.copy(path, tmp_path / path.name)
    english = yaml.safe_load((tmp_path / "en.yaml").read_text(encoding="utf-8"))
    english["ui"]["board"]["new_metric_note"] = "Share of {n} scenes drawn"
    english["msg"]["new_kind_done"] = "Scored {count} samples"
    (tmp_path / "en.yaml").write_text(yaml.safe_dump(english, allow_unicode=True), encoding="utf-8")

    fresh = Catalog(tmp_path)
    assert fresh.text("es", "msg.new_kind_done", count=4) == f"Scored 4 samples {UNTRANSLATED_MARK}"
    assert fresh.text("en", "msg.new_kind_done", count=4) == "Scored 4 samples"
    page = fresh.ui_translations({"n": 7})
    assert page["ja"]["ui.board.new_metric_note"] == f"Share of 7 scenes drawn {UNTRANSLATED_MARK}"
    assert page["en"]["ui.board.new_metric_note"] == "Share of 7 scenes drawn"
    assert page["es"]["ui.board.download"] == catalog().messages["es"]["ui.board.download"]  # translated keys unchanged


def test_english_messages_from_the_engine_and_the_arena_are_recognised():
    """The required errors, as the code writes them in English, come back translated with their values."""
    from hub import grid
    from leaderboards.arena import WITHHELD_MESSAGE

    cases = {
        "Too late: a vote can be undone within 30 seconds.": ("ja", "時間切れです。投票を取り消せるのは30秒以内です。"),
        "You can only undo your own vote.": ("es", "Solo puedes deshacer tu propio voto."),
        "Your personal leaderboard opens after 20 votes: vote on 1 more battle.": ("zh-CN", "个人排行榜在投满 20 票后开放：还需要再投 1 场对战。"),
        grid.TOO_MANY_CELLS.format(cells=20, limit=16): ("ko", "그리드의 셀이 20개인데 한도는 16개입니다. 값을 줄이세요."),
        WITHHELD_MESSAGE: ("pt", "O filtro de conteúdo reteve as imagens deste prompt: tente outro prompt."),
        "Checkpoint 'demo-random' does not take reference images.": ("ja", "チェックポイント 'demo-random' は参照画像を受け付けません。"),
    }
    for english, (lang, expected) in cases.items():
        assert localize_message(english, lang) == expected, english
        assert localize_message(english, "en") == english
    # No template: the English text is kept behind a lead-in in the page's language.
    assert localize_message("Something new broke.", "es") == "Solicitud rechazada (mensaje original en inglés): Something new broke."


def test_personal_board_message_comes_from_the_arena_as_the_template_expects(tmp_path):
    from leaderboards.arena_boards import personal_board
    from leaderboards.db import init_db

    db = init_db(f"sqlite:///{tmp_path / 'x.sqlite3'}")
    try:
        with pytest.raises(Exception) as caught:
            personal_board(db, "nobody")
    finally:
        db.dispose()
    assert catalog().match_error(str(caught.value))[0] == "err.personal_too_few"
    assert "あと20回" in localize_message(str(caught.value), "ja")


def test_grid_messages_match_their_templates():
    from hub import grid

    english = catalog().english
    pairs = {"TOO_MANY_CELLS": "err.grid_too_many_cells", "UNKNOWN_AXIS": "err.grid_unknown_axis", "EMPTY_AXIS": "err.grid_empty_axis",
             "SAME_AXIS": "err.grid_same_axis", "BAD_NUMBER": "err.grid_bad_number", "BAD_RANGE": "err.grid_bad_range",
             "NO_LORA": "err.grid_no_lora", "SR_NOT_FOUND": "err.grid_sr_not_found"}
    for constant, key in pairs.items():
        assert getattr(grid, constant) == english[key], constant


def test_board_texts_are_the_boards_own_english():
    from leaderboards.boards import BOARDS

    english = catalog().english
    for spec in BOARDS:
        for field in ("title", "description", "empty"):
            assert english[f"ui.board.{spec.id}.{field}"] == getattr(spec, field), (spec.id, field)


def test_ui_text_gets_the_configs_values_and_keeps_other_braces():
    translations = Catalog().ui_translations({"max_grid_cells": 9, "undo_seconds": 30}, extra={"ui.extra": {"en": "x", "ja": "y"}})
    assert set(translations) == set(LANGUAGE_CODES)
    assert "9" in translations["ja"]["ui.grid.intro"] and "{max_grid_cells}" not in translations["es"]["ui.grid.intro"]
    assert "30" in translations["ko"]["ui.arena.undo"]
    assert translations["ja"]["ui.extra"] == "y" and translations["pt"]["ui.extra"] == "x"
    assert not any(key.startswith(("msg.", "err.")) for key in translations["en"])  # server text stays on the server

