"""Authors' reference galleries: stored, hashed, refused when bad, picked up by the character kind at plan
time, and recorded (the gallery's hash in the judge id) on every score they decide."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from evals.galleries import MAX_IMAGES, folder_sha256, gallery_sha256, list_galleries, save_gallery
from evals.judges.reference import ReferenceJudge
from evals.judgeset import JudgeSet
from evals.kinds.character import CharacterKind, character_scores
from evals.samples import SampleView
from evals.suites import get_suite
from hub.errors import HubInputError
from tests import name_world as world


@pytest.fixture
def prompts(tmp_path) -> Path:
    return world.write_prompts(tmp_path / "prompts")


def pictures(character: str, n: int = 3, start: int = 0) -> list[Image.Image]:
    return [world.render(character, start + i) for i in range(n)]


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_save_and_list_a_gallery(tmp_path, prompts):
    data = tmp_path / "data"
    a, b, c = pictures("red_ball")
    b.save(tmp_path / "b.png")
    transparent = c.convert("RGBA")
    record = save_gallery(data, "shapes", "red_ball", [a, tmp_path / "b.png", png_bytes(transparent)], prompts_dir=prompts)
    assert record.path == data / "galleries" / "shapes" / "red_ball" and record.n_images == 3
    stored = sorted(p.name for p in record.path.iterdir())
    assert stored == ["00.png", "01.png", "02.png", "gallery.json"]
    for name in stored[:3]:
        with Image.open(record.path / name) as image:
            assert image.format == "PNG" and image.mode == "RGB"
    manifest = json.loads((record.path / "gallery.json").read_text())
    assert manifest["sha256"] == record.sha256 and manifest["character_id"] == "red_ball"
    # The hash is over the pixels: recomputed from the stored files, from the inputs in any order.
    assert folder_sha256(record.path) == record.sha256 == gallery_sha256([c, a, b])
    assert list_galleries(data) == [record]
    # One changed pixel is another gallery.
    changed = a.copy()
    changed.putpixel((0, 0), (0, 0, 0))
    assert gallery_sha256([changed, b, c]) != record.sha256


def test_saving_again_replaces_the_gallery_whole(tmp_path, prompts):
    data = tmp_path / "data"
    first = save_gallery(data, "shapes", "red_ball", pictures("red_ball"), prompts_dir=prompts)
    second = save_gallery(data, "shapes", "red_ball", pictures("red_ball", 4, start=50), prompts_dir=prompts)
    assert second.sha256 != first.sha256 and second.n_images == 4
    assert sorted(p.name for p in (data / "galleries" / "shapes").iterdir()) == ["red_ball"]  # no temporary left
    assert list_galleries(data) == [second]
    other = save_gallery(data, "shapes", "blue_box", pictures("blue_box"), prompts_dir=prompts)
    assert [r.character_id for r in list_galleries(data)] == ["blue_box", "red_ball"] and other.n_images == 3


@pytest.mark.parametrize(
    "suite, character, images, message",
    [
        ("shapes", "red_ball", "text", r"image 2 \(notes.txt\) is not an image"),
        ("shapes", "red_ball", 1, r"give 3 to 20 images of the character \(got 1\)"),
        ("shapes", "red_ball", MAX_IMAGES + 1, r"give 3 to 20 images of the character \(got 21\)"),
        ("shapes", "purple_moon", 3, r"'purple_moon' is not a character of suite 'shapes'"),
        ("nope", "red_ball", 3, r"unknown suite 'nope'"),
        ("shapes", "../red_ball", 3, r"character id '../red_ball' is not a valid name"),
        ("../shapes", "red_ball", 3, r"suite '../shapes' is not a valid name"),
        ("shapes", "red_ball", "same", r"image 3 is the same picture as image 1"),
        ("shapes", "red_ball", "tiny", r"image 1 is too small \(8x8"),
        ("shapes", "red_ball", "object", r"image 3 is a dict, not an image"),
    ],
)
def test_bad_galleries_are_refused_and_nothing_is_written(tmp_path, prompts, suite, character, images, message):
    data = tmp_path / "data"
    if images == "text":
        (tmp_path / "notes.txt").write_text("not a picture")
        images = [pictures("red_ball", 1)[0], tmp_path / "notes.txt", pictures("red_ball", 1, start=9)[0]]
    elif images == "same":
        images = pictures("red_ball", 2) + [pictures("red_ball", 1)[0]]
    elif images == "tiny":
        images = [Image.new("RGB", (8, 8))] + pictures("red_ball", 2)
    elif images == "object":
        images = pictures("red_ball", 2) + [{"path": "x.png"}]
    else:
        images = [world.render("red_ball", i, size=24) for i in range(images)]
    with pytest.raises(HubInputError, match=message):
        save_gallery(data, suite, character, images, prompts_dir=prompts)
    assert not (data / "galleries").exists() or not any((data / "galleries").rglob("*.png"))
    assert list_galleries(data) == []


def test_a_symlinked_suite_folder_cannot_carry_a_gallery_outside(tmp_path, prompts):
    data = tmp_path / "data"
    (data / "galleries").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (data / "galleries" / "shapes").symlink_to(outside, target_is_directory=True)
    with pytest.raises(HubInputError, match="is not a folder inside"):
        save_gallery(data, "shapes", "red_ball", pictures("red_ball"), prompts_dir=prompts)
    assert list(outside.iterdir()) == []


def test_gallery_command(tmp_path, prompts, monkeypatch, capsys):
    from evals.__main__ import main

    config = tmp_path / "config.yaml"
    config.write_text(f"""\
default_checkpoint: demo-random
data_dir: {tmp_path / 'data'}
checkpoints:
  - {{id: demo-random, name: Demo, family: sd15, source: "builtin:demo-random", is_demo: true}}
""", encoding="utf-8")
    monkeypatch.setenv("HUB_PROMPTS_DIR", str(prompts))
    monkeypatch.delenv("HUB_DATA_DIR", raising=False)
    paths = []
    for i, image in enumerate(pictures("gold_star")):
        image.save(tmp_path / f"{i}.png")
        paths.append(str(tmp_path / f"{i}.png"))
    assert main(["gallery", "shapes", "gold_star", *paths, "--config", str(config)]) == 0
    (record,) = list_galleries(tmp_path / "data")
    assert f"sha256 {record.sha256}" in capsys.readouterr().out
    assert main(["gallery", "shapes", "gold_star", paths[0], "--config", str(config)]) == 2
    assert "give 3 to 20 images" in capsys.readouterr().err
    assert list_galleries(tmp_path / "data") == [record]  # the refused one changed nothing


# ------------------------------------------------------------------------- the character kind


class ShapeColour:
    """The mean colour of the non-background pixels, centred, as a unit vector: the shape world's
    characters differ by colour."""

    def image_embeddings(self, images):
        vectors = []
        for image in images:
            pixels = np.asarray(image.convert("RGB"), np.float32).reshape(-1, 3)
            shape = pixels[pixels.min(axis=1) < 200]
            vectors.append(shape.mean(0) - 128 if len(shape) else np.ones(3))
        v = np.stack(vectors)
        return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_character_kind_picks_up_an_authors_gallery_at_plan_time_and_records_its_hash(tmp_path, prompts):
    data = tmp_path / "data"
    suite = get_suite("shapes", prompts)
    reference = ReferenceJudge(ShapeColour(), threshold=0.9, data_dir=data)
    kind = CharacterKind()
    assert kind.judges(JudgeSet(reference=reference), suite).galleries == {}  # no gallery yet: nobody decides
    record = save_gallery(data, "shapes", "red_ball", pictures("red_ball"), prompts_dir=prompts)
    judges = kind.judges(JudgeSet(reference=reference), suite)  # the next plan sees it
    judge_id = f"{reference.info.id}@{record.sha256[:12]}"
    described = judges.describe()
    assert described["gallery:red_ball"]["id"] == judge_id and described["gallery:red_ball"]["sha256"] == record.sha256
    assert described["deciders"]["items"] == {"red_ball": judge_id, "blue_box": None, "green_tree": None, "gold_star": None}
    rows = [row for row in suite.rows(["en"]) if row.item_id in ("red_ball", "blue_box")]
    views = [SampleView(i, row.item_id, row.language, 0, row.text, "", row.meta) for i, row in enumerate(rows)]
    images = [world.render("red_ball", 100), world.render("blue_box", 100)]
    assert kind.expected_metrics(views[0], judges) == [(judge_id, "character_hit"), (judge_id, "character_prob")]
    assert kind.expected_metrics(views[1], judges) == [] and kind.unjudged(views, judges) == 1
    scores = {(r.sample_id, r.metric): (r.judge_id, r.value) for r in character_scores(views, judges, images)}
    assert scores[(0, "character_hit")] == (judge_id, 1.0)  # a red ball is the red ball of the gallery
    assert not any(sid == 1 for sid, _ in scores)
    # A new gallery is a new judge (so its samples are scored again), and is embedded afresh.
    before = reference.gallery(record.path)
    newer = save_gallery(data, "shapes", "red_ball", pictures("blue_box"), prompts_dir=prompts)
    rejudged = kind.judges(JudgeSet(reference=reference), suite)
    new_id = f"{reference.info.id}@{newer.sha256[:12]}"
    assert kind.expected_metrics(views[0], rejudged)[0] == (new_id, "character_hit") and new_id != judge_id
    assert not np.allclose(reference.gallery(newer.path), before)
    scores = {(r.sample_id, r.metric): (r.judge_id, r.value) for r in character_scores(views, rejudged, images)}
    assert scores[(0, "character_hit")] == (new_id, 0.0)  # a red ball is not the (blue) gallery's character
