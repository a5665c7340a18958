"""The tiny prompt suites the runner, Ray and replica tests (and bench_ray_eval) write into a temporary
prompts folder: three characters over the three tiers (one the tagger cannot know) and two scenes,
in three languages, with a two-tag vocabulary at `vocab/v.txt`."""

from __future__ import annotations

from pathlib import Path

VOCABULARY = "1girl\nsolo\numbrella\nrain\ncat\nwindow\n"


def character_suite(name: str = "tiny-chars") -> str:
    return f"""\
suite: {name}
kind: character_recognition
languages: [en, ja, es]
vocabulary: vocab/v.txt
templates: {{en: "{{name}}, solo", ja: "{{name}}、ソロ", es: "{{name}}, en solitario"}}
characters:
  - {{id: miku, name: Hatsune Miku, franchise: Vocaloid, tag: hatsune_miku, tier: popular,
     names: {{en: Hatsune Miku, ja: 初音ミク, es: Hatsune Miku}}}}
  - {{id: kino, name: Kino, franchise: Kino no Tabi, tag: kino_(kino_no_tabi), tier: niche,
     names: {{en: Kino, ja: キノ, es: Kino}}}}
  - {{id: shrek, name: Shrek, franchise: Shrek, tag: null, tier: non_anime, names: {{en: Shrek, ja: シュレック, es: Shrek}}}}
"""


MULTILINGUAL_SUITE = """\
suite: tiny-ml
kind: multilingual_fidelity
languages: [en, ja, es]
vocabulary: vocab/v.txt
scenes:
  - id: rainy
    tags: [1girl, umbrella, rain]
    scene_tags: [umbrella, rain]
    texts:
      en: {text: "a girl with an umbrella in the rain", status: reviewed}
      ja: {text: "雨の中で傘をさす女の子", status: machine}
      es: {text: "una chica con un paraguas bajo la lluvia", status: machine}
  - id: cat
    tags: [cat, window]
    texts:
      en: {text: "a cat by the window", status: reviewed}
      ja: {text: "窓辺の猫", status: machine}
      es: {text: "un gato junto a la ventana", status: machine}
"""


def write_prompts(folder: Path, *documents: str, filename: str = "tiny.yaml", vocabulary: str = VOCABULARY) -> Path:
    """A prompts folder holding the given suite documents (one file, `---` between them) and the vocabulary."""
    (folder / "vocab").mkdir(parents=True, exist_ok=True)
    (folder / "vocab" / "v.txt").write_text(vocabulary, encoding="utf-8")
    (folder / filename).write_text("---\n".join(documents), encoding="utf-8")
    return folder
