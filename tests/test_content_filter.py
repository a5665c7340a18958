"""The content filter of a public hub: the prompt blocklist, the tagger's rating head against
`limits.max_rating`, placeholders instead of withheld images (Generate, Edit, the grid, the arena), and
the known-truth check on the demo world (swimsuit renders withheld at `general`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hub.config import RATINGS, JudgeSpec, load_config
from hub.errors import HubInputError
from hub.ui.content_filter import ContentFilter, placeholder
from hub.ui.i18n import LocalizedError, localize_message


class FakeTagger:
    """A stand-in judge: the rating follows the image's mean red (general < 64 <= sensitive < 128 <=
    questionable < 192 <= explicit)."""

    def __init__(self):
        self.tags = type("Tags", (), {"__len__": lambda self: 5})()
        self.calls = 0

    def predict(self, images):
        self.calls += 1
        rows = []
        for image in images:
            level = min(3, int(np.asarray(image.convert("RGB"))[:, :, 0].mean() // 64))
            row = np.full(5, 0.05, np.float32)
            row[level] = 0.9
            rows.append(row)
        return np.stack(rows)

    def tag_probabilities(self, probs, tags):
        order = list(RATINGS) + ["smile"]
        return np.stack([probs[:, order.index(t)] for t in tags], axis=1).astype(np.float32)


def reds(*levels: int) -> list[Image.Image]:
    return [Image.new("RGB", (32, 32), (level, 40, 40)) for level in levels]


def make_filter(hub_config_path, **limits) -> ContentFilter:
    config = load_config(hub_config_path)
    config = config.model_copy(update={"limits": config.limits.model_copy(update=limits)})
    return ContentFilter(config, config.data_path)


def test_blocklist_only_in_public_mode_case_and_width_insensitive(hub_config_path):
    public = make_filter(hub_config_path, public_max_rating="sensitive", blocked_prompt_terms=["Forbidden Word", " "])
    public.check_prompt("1girl, smile", None, "")
    for prompt in ("a FORBIDDEN word here", "ｆｏｒｂｉｄｄｅｎ ｗｏｒｄ"):  # full-width letters fold to ASCII
        with pytest.raises(LocalizedError) as caught:
            public.check_prompt("fine", prompt)
        assert caught.value.key == "err.blocked_prompt" and isinstance(caught.value, HubInputError)
    assert "«forbidden word»" in localize_message(str(caught.value), "es", caught.value)
    words = make_filter(hub_config_path, public_max_rating="sensitive", blocked_prompt_terms=["sex", "涩图"])
    words.check_prompt("a castle in Sussex, 1girl")  # Latin terms match whole words only
    for prompt in ("1girl, sex", "SEX_scene", "可爱的涩图"):  # ...and CJK terms anywhere
        with pytest.raises(LocalizedError) as caught:
            words.check_prompt(prompt)
        assert caught.value.key == "err.blocked_prompt"
    private = make_filter(hub_config_path, public_max_rating="explicit", blocked_prompt_terms=["forbidden word"])
    private.check_prompt("forbidden word")  # the filter is off: nothing refused


@pytest.mark.parametrize("max_rating, withheld", [("general", [False, True, True, True]), ("sensitive", [False, False, True, True]),
                                                  ("questionable", [False, False, False, True])])
def test_rating_above_the_threshold_is_withheld(hub_config_path, max_rating, withheld):
    content_filter = make_filter(hub_config_path, public_max_rating=max_rating)
    content_filter.set_judge(FakeTagger())
    verdicts = content_filter.verdicts(reds(10, 70, 130, 200))
    assert [v.rating for v in verdicts] == list(RATINGS)
    assert [v.withheld for v in verdicts] == withheld
    reason = content_filter.is_withheld(reds(200)[0])
    assert reason == f"Withheld by the content filter: rated explicit (90%); this hub shows up to {max_rating}."
    assert content_filter.is_withheld(reds(10)[0]) is None


def test_filter_off_never_loads_a_tagger(hub_config_path):
    def loader(config, data_dir):
        raise AssertionError("the tagger must not load while the filter is off")

    config = load_config(hub_config_path)
    content_filter = ContentFilter(config, config.data_path, load_tagger=loader)
    assert not content_filter.enabled  # no SPACE_ID, no public_max_rating: explicit
    assert content_filter.verdicts(reds(250, 250)) == [None, None] and content_filter.is_withheld(reds(250)[0]) is None


def test_fails_closed_without_a_tagger(hub_config_path):
    config = load_config(hub_config_path)
    config = config.model_copy(update={"limits": config.limits.model_copy(update={"public_max_rating": "general"})})
    calls = []

    def broken(config, data_dir):
        calls.append(1)
        raise OSError("weights missing")

    content_filter = ContentFilter(config, config.data_path, load_tagger=broken)
    verdicts = content_filter.verdicts(reds(10, 20))
    assert all(v.withheld and v.rating == "unavailable" for v in verdicts)
    content_filter.verdicts(reds(10))
    assert calls == [1]  # tried once, not on every image


def test_space_defaults_to_sensitive(hub_config_path, monkeypatch):
    monkeypatch.setenv("SPACE_ID", "org/sakuga-hub")
    assert make_filter(hub_config_path).max_rating == "sensitive"
    monkeypatch.delenv("SPACE_ID")
    assert make_filter(hub_config_path).max_rating == "explicit"


def test_placeholder_shows_nothing_of_the_image():
    rng = np.random.default_rng(0)
    detailed = Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
    shown = placeholder(detailed)
    assert shown.size == detailed.size
    # Away from the drawn eye, only a smooth blur of a 3x3 colour average is left.
    corner = np.asarray(shown, dtype=np.float32)[:12, :12]
    assert np.abs(np.diff(corner, axis=0)).max() < 8 and np.abs(np.diff(corner, axis=1)).max() < 8
    assert np.corrcoef(np.asarray(shown).ravel(), np.asarray(detailed).ravel())[0, 1] < 0.2


def test_filter_outputs_swap_in_placeholders(hub_config_path):
    from hub.engine import GeneratedImage
    from hub.recipe import Recipe

    content_filter = make_filter(hub_config_path, public_max_rating="general")
    content_filter.set_judge(FakeTagger())
    items = [GeneratedImage(image, 1, Recipe(prompt="p"), "demo-random") for image in reds(10, 200)]
    (kept, none), (swapped, verdict) = content_filter.filter_outputs(items)
    assert kept is items[0] and none is None
    assert verdict.withheld and swapped.recipe == items[1].recipe
    assert not np.array_equal(np.asarray(swapped.image), np.asarray(items[1].image))


# ---------------------------------------------------------------------------------- a real tagger


def tiny_tagger(folder, favoured: str):
    """A WD-v3-format tagger whose rating head always favours `favoured` (head weights zero, biases set)."""
    import safetensors.torch
    import torch

    from evals.judges.tagger import build_random_tagger

    build_random_tagger(folder, ["smile"], seed=0)
    state = safetensors.torch.load_file(str(folder / "model.safetensors"))
    state["head.weight"] = torch.zeros_like(state["head.weight"])
    bias = torch.full_like(state["head.bias"], -4.0)
    bias[RATINGS.index(favoured)] = 4.0
    state["head.bias"] = bias
    safetensors.torch.save_file(state, str(folder / "model.safetensors"))
    return folder


@pytest.mark.parametrize("favoured, max_rating, withheld", [("sensitive", "general", True), ("sensitive", "sensitive", False),
                                                            ("general", "general", False)])
def test_the_configs_tagger_loads_once_through_the_judge_registry(hub_config_path, tmp_path, favoured, max_rating, withheld):
    folder = tiny_tagger(tmp_path / "tagger", favoured)
    config = load_config(hub_config_path)
    config = config.model_copy(update={
        "judges": [JudgeSpec(id="tiny-tagger", kind="tagger", source=f"folder:{folder}")],
        "default_judges": {"tagger": "tiny-tagger"},
        "limits": config.limits.model_copy(update={"public_max_rating": max_rating}),
    })
    content_filter = ContentFilter(config, config.data_path)
    (verdict,) = content_filter.verdicts(reds(30))
    assert verdict.rating == favoured and verdict.probability > 0.9 and verdict.withheld is withheld
    assert content_filter.judge is content_filter.judge  # loaded once


# -------------------------------------------------------------------------------- through the app


@pytest.fixture(scope="module")
def public_app(tmp_path_factory):
    """The public hub with the committed config's own content filter: the demo tagger rates every output."""
    from gradio_client import Client

    from tests.hub_app import running_app

    folder = tmp_path_factory.mktemp("public-app")
    with running_app(folder / "data", f"sqlite:///{folder / 'hub.sqlite3'}", public_max_rating="general",
                     blocked_prompt_terms=["forbidden"]) as (url, ctx):
        yield Client(url, verbose=False), ctx, url


def test_public_app_refuses_blocked_prompts_before_any_work(public_app):
    from gradio_client import Client

    client, ctx, url = public_app
    before = ctx.engine.stats["pipeline_calls"]
    with pytest.raises(Exception, match="does not accept prompts containing “forbidden”"):
        client.predict("1girl, Forbidden pose", "", "demo-random", "", 64, 64, 2, 5.0, "euler_a", 1, 1, api_name="/generate")
    korean = Client(url, verbose=False, headers={"Accept-Language": "ko"})
    with pytest.raises(Exception, match="“forbidden”이\\(가\\) 들어간 프롬프트를 받지 않습니다"):
        korean.predict("1girl", "prompt", "1girl | a forbidden scene", "none", "", "demo-random", api_name="/xy_grid")
    with pytest.raises(Exception, match="forbidden"):
        korean.predict("forbidden", api_name="/battle")
    assert ctx.engine.stats["pipeline_calls"] == before


def test_public_app_withholds_what_the_demo_tagger_rates_above_general(public_app):
    """Known truth through the served app and the committed demo tagger: the demo world's swimsuit is
    `sensitive`, its shirt `general`. demo-edit keeps the outfit of what it edits, so an uploaded
    swimsuit portrait comes back withheld and the same portrait in a shirt comes back shown."""
    from gradio_client import handle_file
    from sqlalchemy import func, select

    from hub.recipe import read_recipe
    from hub.ui.arena_tab import arena_candidates
    from leaderboards.results import get_or_create_suite
    from leaderboards.schema import Battle, Sample

    client, ctx, _ = public_app
    # A demo checkpoint's portrait (a shirt): rated general, shown as it is.
    gallery, _ = client.predict("Aqua Diva, smiling", "", "demo-multilingual", "", 64, 64, 12, 3.0, "euler_a", 3, 1,
                                api_name="/generate")
    assert gallery[0]["caption"] == "seed 3"
    (swimsuit,), (usual,) = _swimsuit_renders(1)
    folder = tmp_path_for(ctx)
    swimsuit.save(folder / "swimsuit.png")
    usual.save(folder / "usual.png")
    edited = client.predict(handle_file(str(folder / "swimsuit.png")), "make her smile", None, 0.5, "demo-edit", 1, 10,
                            api_name="/edit")
    path = edited[0]["image"] if isinstance(edited[0]["image"], str) else edited[0]["image"]["path"]
    assert edited[0]["caption"].startswith("Withheld by the content filter: rated sensitive"), edited[0]["caption"]
    assert edited[0]["caption"].endswith("this hub shows up to general.")
    assert read_recipe(path).seed == 1  # the placeholder keeps the recipe, not the picture
    kept = client.predict(handle_file(str(folder / "usual.png")), "make her smile", None, 0.5, "demo-edit", 1, 10,
                          api_name="/edit")
    assert not kept[0]["caption"].startswith("Withheld"), kept[0]["caption"]
    # The arena: a battle served from stored samples that are swimsuit portraits is never served, and
    # none is stored.
    prompt = "aqua diva, swimsuit, beach"
    swimsuits, _ = _swimsuit_renders(2)
    with ctx.db.session() as session:
        suite = get_or_create_suite(session, "characters", "public-filter",
                                    [{"item_id": "aqua_diva", "language": "en", "text": prompt, "meta": {"tier": "popular"}}])
        for index, (model, image) in enumerate(zip(arena_candidates(ctx), swimsuits)):
            image.save(folder / f"sample-{model}.png")
            session.add(Sample(cache_key=f"public-filter-{model}", checkpoint_id=model, adapters="", suite_id=suite.id,
                               item_id="aqua_diva", language="en", prompt_text=prompt, seed=index, settings_hash="x",
                               image_path=str(folder / f"sample-{model}.png")))
        before = session.scalar(select(func.count()).select_from(Battle))
    calls = ctx.engine.stats["pipeline_calls"]
    with pytest.raises(Exception, match="content filter withheld the images"):
        client.predict(prompt, api_name="/battle")
    with ctx.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Battle)) == before
    assert ctx.engine.stats["pipeline_calls"] == calls  # the stored samples were rated, nothing was generated


def tmp_path_for(ctx) -> Path:
    folder = ctx.data_dir / "test-inputs"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


# ------------------------------------------------------------------------------ the demo world's truth


def _swimsuit_renders(n: int) -> tuple[list[Image.Image], list[Image.Image]]:
    """(swimsuit renders, the same portraits in their usual outfit), through the demo renderer's hook."""
    from demoworld import catalog, hooks

    characters = [c.id for c in catalog.trained_characters()][:n]
    swimsuits, usual = [], []
    for index, character in enumerate(characters):
        spec = {"character": character, "seed": 100 + index, "size": 64}
        swimsuit, plain = hooks.render_input({**spec, "outfit": "swimsuit"}), hooks.render_input(spec)
        assert not np.array_equal(np.asarray(swimsuit), np.asarray(plain)), f"{character}: the outfit was not drawn"
        swimsuits.append(swimsuit)
        usual.append(plain)
    return swimsuits, usual


def test_demo_world_swimsuits_are_withheld_at_general(tmp_path, monkeypatch):
    """Known truth: the demo world's swimsuit outfit is `sensitive`, everything else `general`."""
    monkeypatch.delenv("SPACE_ID", raising=False)
    swimsuits, usual = _swimsuit_renders(8)
    config = load_config()  # the committed config: its default tagger is the demo tagger
    config = config.model_copy(update={"data_dir": str(tmp_path),
                                       "limits": config.limits.model_copy(update={"public_max_rating": "general"})})
    content_filter = ContentFilter(config, config.data_path)
    scores = [v.scores for v in content_filter.rate(swimsuits + usual)]
    gap = np.mean([s["sensitive"] for s in scores[:len(swimsuits)]]) - np.mean([s["sensitive"] for s in scores[len(swimsuits):]])
    assert gap >= 0.3, f"the demo tagger's rating head barely separates swimsuits (P(sensitive) gap {gap:.2f})"
    assert all(content_filter.is_withheld(image) for image in swimsuits)
    assert not any(content_filter.is_withheld(image) for image in usual)
