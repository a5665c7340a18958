"""Prompt suites: the shipped data is valid and complete; broken files give errors naming file, item, problem."""

from pathlib import Path
import textwrap

import pytest
import yaml

from evals.suites import (
    PROMPTS_DIR,
    SuiteError,
    SuiteRegistry,
    get_suite,
    list_suites,
    load_suite_file,
    load_vocabulary,
)
from hub.errors import HubInputError

REQUIRED_LANGUAGES = {"en", "es", "fr", "de", "pt", "it", "ru", "zh", "ja", "ko"}


# ------------------------------------------------------------------------------ shipped suites


def test_shipped_suites_load_and_are_registered_by_name():
    names = {s.name for s in list_suites()}
    assert {"characters", "multilingual"} <= names
    for suite in list_suites():
        assert len(suite.version_hash) == 64
        assert suite.path.parent == PROMPTS_DIR


def test_characters_suite_covers_tiers_and_languages():
    suite = get_suite("characters")
    assert suite.kind == "character_recognition"
    assert REQUIRED_LANGUAGES <= set(suite.languages)
    assert len(suite.characters) >= 60
    tiers = {}
    for c in suite.characters:
        tiers.setdefault(c.tier, []).append(c)
    assert set(tiers) == {"popular", "niche", "non_anime"}
    assert all(len(group) >= 12 for group in tiers.values())
    ids = {c.id for c in suite.characters}
    # The figures DESIGN.md names are in the catalog.
    assert {"walter_white_heisenberg", "shrek", "queen_elizabeth_ii", "mr_bean"} <= ids
    for c in suite.characters:
        assert set(c.names) == set(suite.languages)
        assert c.franchise
        if c.tier != "non_anime":
            assert c.tag, f"{c.id}: anime characters have a booru tag"
    # Localised names are real localisations, not copies: Japanese names of anime characters are in Japanese script.
    assert get_suite("characters").characters[0].names["ja"] != get_suite("characters").characters[0].names["en"]


def test_multilingual_suite_covers_scenes_languages_and_statuses():
    suite = get_suite("multilingual")
    assert suite.kind == "multilingual_fidelity"
    assert REQUIRED_LANGUAGES <= set(suite.languages)
    assert suite.anchor_language == "en"
    assert len(suite.scenes) >= 40
    vocab = load_vocabulary(suite.vocabulary_path)
    statuses = set()
    for scene in suite.scenes:
        assert scene.tags and set(scene.tags) <= vocab
        assert set(scene.texts) == set(suite.languages)
        statuses |= set(scene.status.values())
    assert statuses <= {"reviewed", "machine"}


def test_rows_expand_items_times_languages():
    suite = get_suite("characters")
    rows = suite.rows()
    assert len(rows) == len(suite.characters) * len(suite.languages)
    first = suite.characters[0]
    en = next(r for r in rows if r.item_id == first.id and r.language == "en")
    assert first.names["en"] in en.text
    assert en.meta["tier"] == first.tier and en.meta["tag"] == first.tag
    limited = suite.rows(languages=["ja", "en"], limit=3)
    assert len(limited) == 6
    assert [r.language for r in limited[:2]] == ["en", "ja"]  # suite order, not request order
    ml = get_suite("multilingual").rows(languages=["ko"], limit=2)
    assert len(ml) == 2 and ml[0].meta["status"] in ("reviewed", "machine") and ml[0].meta["tags"]


def test_unknown_language_and_suite_are_clear_errors():
    suite = get_suite("characters")
    with pytest.raises(SuiteError, match=r"suite 'characters' has no language 'xx'"):
        suite.rows(languages=["en", "xx"])
    with pytest.raises(SuiteError, match=r"unknown suite 'nope' \(known: .*characters"):
        get_suite("nope")
    assert issubclass(SuiteError, HubInputError)


# ---------------------------------------------------------------------------- broken files


VOCAB = "1girl\numbrella\nrain\nsolo\n"


def write(tmp_path: Path, name: str, text: str) -> Path:
    (tmp_path / "vocab").mkdir(exist_ok=True)
    (tmp_path / "vocab" / "v.txt").write_text(VOCAB, encoding="utf-8")
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


CHARS = """\
suite: chars
kind: character_recognition
languages: [en, ja]
vocabulary: vocab/v.txt
templates: {en: "{name}, solo", ja: "{name}、ソロ"}
characters:
  - {id: miku, name: Hatsune Miku, franchise: Vocaloid, tag: hatsune_miku, tier: popular,
     names: {en: Hatsune Miku, ja: 初音ミク}, tags: [1girl]}
  - {id: shrek, name: Shrek, franchise: Shrek, tag: null, tier: non_anime, names: {en: Shrek, ja: シュレック}}
"""

SCENES = """\
suite: scenes
kind: multilingual_fidelity
languages: [en, ja]
vocabulary: vocab/v.txt
scenes:
  - id: rainy
    tags: [1girl, umbrella, rain]
    texts:
      en: {text: "a girl with an umbrella in the rain", status: reviewed}
      ja: {text: "雨の中で傘をさす女の子", status: machine}
"""


def test_valid_tmp_files_load(tmp_path):
    (chars,) = load_suite_file(write(tmp_path, "c.yaml", CHARS))
    assert [c.id for c in chars.characters] == ["miku", "shrek"]
    assert [r.text for r in chars.rows(["ja"])] == ["初音ミク、ソロ", "シュレック、ソロ"]
    (scenes,) = load_suite_file(write(tmp_path, "s.yaml", SCENES))
    assert scenes.scenes[0].status == {"en": "reviewed", "ja": "machine"}
    # Several suites in one file, found through a registry on the folder.
    write(tmp_path, "c.yaml", CHARS + "---\n" + SCENES)
    (tmp_path / "s.yaml").unlink()
    assert SuiteRegistry(tmp_path).names() == ["chars", "scenes"]


@pytest.mark.parametrize(
    "text, pattern",
    [
        (CHARS.replace("ja: 初音ミク", "jp: 初音ミク"), r"c\.yaml: character 'miku': names: missing language 'ja'"),
        (CHARS.replace("id: shrek", "id: miku"), r"c\.yaml: character 'miku': duplicate id"),
        (CHARS.replace("tags: [1girl]", "tags: [1girl, umbrela]"), r"c\.yaml: character 'miku': tags: unknown tag 'umbrela' \(not in vocab/v\.txt\)"),
        (CHARS.replace("tier: popular", "tier: famous"), r"character 'miku': tier: unknown tier 'famous'"),
        (CHARS.replace('ja: "{name}、ソロ"', 'ja: "ソロ"'), r"c\.yaml: suite 'chars': templates: template for 'ja' lacks \{name\}"),
        (CHARS.replace('en: "{name}, solo"', 'en: "{name}, {series}"'), r"template for 'en' has unknown placeholder \{series\}"),
        (CHARS.replace("kind: character_recognition", "kind: quiz"), r"suite 'chars': unknown kind 'quiz'"),
        (CHARS.replace("vocab/v.txt", "vocab/missing.txt"), r"vocabulary file 'vocab/missing.txt' not found"),
        (CHARS.replace("name: Shrek, ", ""), r"character 'shrek': missing field 'name'"),
        (CHARS.replace("names: {en: Shrek, ja: シュレック}", "names: {en: Shrek, ja: シュレック}, references: refs/shrek"), r"character 'shrek': references folder 'refs/shrek' not found"),
        (CHARS + "  - {id: Bad Id}\n", r"character #3: bad or missing id 'Bad Id'"),
        ("suite: chars\nkind: [unclosed\n", r"c\.yaml: bad YAML: .*line \d+"),
        ("- just a list\n", r"c\.yaml: a suite must be a mapping"),
    ],
)
def test_character_file_errors_name_file_item_problem(tmp_path, text, pattern):
    path = write(tmp_path, "c.yaml", text)
    with pytest.raises(SuiteError, match=pattern):
        load_suite_file(path)


@pytest.mark.parametrize(
    "text, pattern",
    [
        (SCENES.replace("ja: {text", "ko: {text"), r"s\.yaml: scene 'rainy': texts: missing language 'ja'"),
        (SCENES.replace("status: machine", "status: maybe"), r"scene 'rainy': texts\.ja: status must be one of reviewed, machine"),
        (SCENES.replace("[1girl, umbrella, rain]", "[1girl, umbrella, snow]"), r"s\.yaml: scene 'rainy': tags: unknown tag 'snow'"),
        (SCENES.replace("[1girl, umbrella, rain]", "[1girl, Umbrella]"), r"scene 'rainy': tags: bad tag 'Umbrella'"),
        (SCENES.replace("tags: [1girl, umbrella, rain]", "tags: [1girl, umbrella, rain]\n    scene_tags: [rain, 1boy]"),
         r"scene 'rainy': scene_tags: '1boy' is not one of the scene's tags"),
        (SCENES.replace("雨の中で傘をさす女の子", "a girl with an umbrella in the rain"), r"scene 'rainy': texts: the 'en' and 'ja' prompts are identical"),
        (SCENES.replace("languages: [en, ja]", "languages: [en, ja]\nanchor_language: fr"), r"anchor_language 'fr' is not in languages"),
        (SCENES.replace("languages: [en, ja]", "languages: [en, en]"), r"duplicate language"),
    ],
)
def test_scene_file_errors_name_file_item_problem(tmp_path, text, pattern):
    path = write(tmp_path, "s.yaml", text)
    with pytest.raises(SuiteError, match=pattern):
        load_suite_file(path)


def test_duplicate_suite_name_across_files(tmp_path):
    write(tmp_path, "a.yaml", CHARS)
    write(tmp_path, "b.yaml", CHARS)
    with pytest.raises(SuiteError, match=r"b\.yaml: suite 'chars': name already used in .*a\.yaml"):
        SuiteRegistry(tmp_path).names()


def test_version_hash_ignores_formatting_and_tracks_content(tmp_path):
    (original,) = load_suite_file(write(tmp_path, "c.yaml", CHARS))
    # Same content, different layout and key order, plus a comment: same hash.
    doc = yaml.safe_load(CHARS)
    reordered = {k: doc[k] for k in reversed(list(doc))}
    (same,) = load_suite_file(write(tmp_path, "c.yaml", "# a comment\n" + yaml.safe_dump(reordered, allow_unicode=True, sort_keys=False)))
    assert same.version_hash == original.version_hash
    (changed,) = load_suite_file(write(tmp_path, "c.yaml", CHARS.replace("Hatsune Miku, ja", "Miku Hatsune, ja")))
    assert changed.version_hash != original.version_hash


def test_registry_picks_up_edited_files(tmp_path):
    from evals.suites import get_registry

    write(tmp_path, "c.yaml", CHARS)
    first = get_suite("chars", tmp_path).version_hash
    import os, time

    write(tmp_path, "c.yaml", CHARS.replace("solo\"", "solo, smile\""))
    os.utime(tmp_path / "c.yaml", ns=(time.time_ns() + 10**9, time.time_ns() + 10**9))
    assert get_suite("chars", tmp_path).version_hash != first
    assert get_registry(tmp_path) is get_registry(tmp_path)
