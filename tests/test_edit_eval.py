"""The edit eval: metric maths on hand-made cases, suite validation, scoring with stub judges, a CLI
run of `demo-edits` on the committed `demo-edit` model (rows, report keys, a rerun generates nothing),
the inpainting path (preservation outside the mask) and the Editing board."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from evals.kinds import edit as edits
from evals.kinds.edit import EditKind
from evals.judges.base import JudgeInfo
from evals.samples import SampleView
from evals.suites import SuiteError, load_suite_file
from tests.conftest import write_config

REPO = Path(__file__).resolve().parent.parent


# ------------------------------------------------------------------------------------ metric maths


def test_attribute_success_needs_every_known_tag():
    assert edits.attribute_success([0.9], [0.35]) == 1.0
    assert edits.attribute_success([0.9, 0.2], [0.35, 0.35]) == 0.0
    assert edits.attribute_success([0.35], [0.35]) == 1.0  # at the threshold counts
    assert edits.attribute_success([float("nan"), 0.5], [0.35, 0.35]) == 1.0  # unknown tags are left out
    assert math.isnan(edits.attribute_success([float("nan")], [0.35]))  # nothing to judge: not a miss


def test_identity_kept_combines_tagger_and_reference():
    assert edits.identity_kept(1.0, 1.0) == 1.0
    assert edits.identity_kept(1.0, 0.0) == 0.0  # the reference judge says another character
    assert edits.identity_kept(0.0, 1.0) == 0.0  # the tagger lost the character
    assert edits.identity_kept(None, 1.0) == 1.0  # tagger cannot tell: the reference judge alone decides
    assert math.isnan(edits.identity_kept(None, None))


def test_pixel_distance_counts_only_outside_the_mask():
    before = Image.new("RGB", (10, 10), (0, 0, 0))
    after = before.copy()
    after.paste((255, 255, 255), (0, 0, 5, 10))  # left half changed
    mask = edits.mask_image((10, 10), (0.0, 0.0, 0.5, 1.0))  # ... and masked
    assert np.asarray(mask)[:, :5].min() == 255 and np.asarray(mask)[:, 5:].max() == 0
    assert edits.pixel_l1_outside_mask(before, after, mask) == 0.0
    right = edits.mask_image((10, 10), (0.5, 0.0, 1.0, 1.0))  # the changed half is outside this mask
    assert edits.pixel_l1_outside_mask(before, after, right) == pytest.approx(1.0)
    half = before.copy()
    half.paste((51, 51, 51), (5, 0, 10, 10))
    assert edits.pixel_l1_outside_mask(before, half, mask) == pytest.approx(0.2)
    assert math.isnan(edits.pixel_l1_outside_mask(before, after, Image.new("L", (10, 10), 255)))


def test_summary_means_intervals_and_languages():
    records = []
    # 4 cases x 2 languages: en succeeds on 3 of 4 cases, ja on 1 of 4; identity always kept but one.
    for case, (en, ja) in enumerate([(1, 1), (1, 0), (1, 0), (0, 0)]):
        records.append({"item_id": f"c{case}", "language": "en", "group": "hair", "metric": edits.SUCCESS, "value": float(en)})
        records.append({"item_id": f"c{case}", "language": "ja", "group": "hair", "metric": edits.SUCCESS, "value": float(ja)})
        for lang in ("en", "ja"):
            kept = 0.0 if (case, lang) == (3, "ja") else 1.0
            records.append({"item_id": f"c{case}", "language": lang, "group": "hair", "metric": edits.IDENTITY, "value": kept})
    summary = EditKind().summarize(records, anchor="en", num_bootstrap=200)
    overall = summary["overall"]
    assert overall["success"]["mean"] == pytest.approx(0.5) and overall["success"]["n"] == 8
    assert 0.0 <= overall["success"]["lower"] <= 0.5 <= overall["success"]["upper"] <= 1.0
    assert overall["identity_kept"]["mean"] == pytest.approx(7 / 8)
    assert summary["mean_over_languages"]["success"] == pytest.approx((0.75 + 0.25) / 2)
    assert summary["by_language"]["en"]["success"]["mean"] == pytest.approx(0.75)
    assert summary["by_language"]["ja"]["success"]["gap_to_english"]["mean"] == pytest.approx(-0.5)
    assert list(summary["by_language"]) == ["en", "ja"] and summary["n_items"] == 4
    assert summary["group_field"] == "category" and summary["by_group"]["hair"]["success"]["mean"] == pytest.approx(0.5)


# ------------------------------------------------------------------------------------ scoring


def test_score_samples_with_the_demo_tagger_on_known_truth(tmp_path):
    """Known truth from the demo world, judged by the committed demo tagger: the source portrait with its
    hair made red is a success that kept the character; another character in blue is neither."""
    from dataclasses import replace

    from demoworld import catalog
    from demoworld.dataset import character_attributes
    from demoworld.renderer import render
    from evals.judges.tagger import TaggerJudge

    tagger = TaggerJudge.load(str(REPO / "models" / "demo-tagger"), device="cpu", info=JudgeInfo("demo-tagger", "tagger", "1"))
    aqua = character_attributes(catalog.CHARACTER_BY_ID["aqua_diva"], "white", "smile")
    source = render(aqua, 11, 64)
    source_path = tmp_path / "input.png"
    source.save(source_path)
    red = render(replace(aqua, hair_color="red"), 11, 64)
    other = render(character_attributes(catalog.CHARACTER_BY_ID["midnight_witch"], "white", "smile"), 11, 64)
    threshold = load_suite_file(REPO / "prompts" / "demo-edits.yaml")[0].settings["reference_threshold"]  # calibrated
    judges = edits.SameCharacterJudges(tagger, tagger, tagger.info, threshold, edits.PixelOutsideMask(), "tagger-features")
    kind = EditKind()
    meta = {"expect_tags": ["red_hair"], "character": "aqua_diva", "input_path": str(source_path)}
    kept = SampleView(1, "c", "en", 0, "make the hair red", "", meta, red)
    lost = SampleView(2, "c", "en", 1, "make the hair red", "", {**meta, "mask": [0, 0, 0.5, 1]}, other)
    rows = {(r.sample_id, r.metric): r.value for r in kind.score_samples([kept, lost], judges)}
    assert rows[(1, edits.SUCCESS)] == 1.0 and rows[(1, edits.CHARACTER_KEPT)] == 1.0 and rows[(1, edits.IDENTITY)] == 1.0
    assert rows[(2, edits.SUCCESS)] == 0.0 and rows[(2, edits.CHARACTER_KEPT)] == 0.0 and rows[(2, edits.IDENTITY)] == 0.0
    # Preservation: the mean absolute change (0-1) over the pixels outside the mask box (the right half).
    before, after = (np.asarray(im, np.float32) / 255 for im in (source, other))
    assert rows[(2, edits.PIXEL_L1)] == pytest.approx(np.abs(after - before)[:, 32:].mean(), abs=1e-3)
    assert (1, edits.PIXEL_L1) not in rows  # no mask, no preservation score
    assert kind.expected_metrics(lost, judges) == [("demo-tagger", edits.IDENTITY), ("demo-tagger", edits.SUCCESS), ("pixel-l1", edits.PIXEL_L1)]


# ------------------------------------------------------------------------------------ suites


def test_committed_demo_edit_suite_loads():
    suite = load_suite_file(REPO / "prompts" / "demo-edits.yaml")[0]
    assert suite.kind == "edit" and len(suite.cases) == 20 and len(suite.languages) == 10
    rows = suite.rows(["en", "ja"], limit=1)
    assert [r.text for r in rows] == ["make the hair red", "髪を赤にして"]
    assert rows[0].meta["expect_tags"] == ["red_hair"] and rows[0].meta["character"] == "aqua_diva"
    real = load_suite_file(REPO / "prompts" / "edits.yaml")[0]
    assert all(case.input.kind == "generate" for case in real.cases)
    assert any(case.mask for case in real.cases)


BASE_CASE = """suite: broken
kind: edit
languages: [en, ja]
cases:
  - id: one
    expect_tags: [red_hair]
    input: {render: {character: aqua_diva, seed: 1}}
    instructions:
      en: {text: make it red, status: machine}
      ja: {text: 赤くして, status: machine}
"""


@pytest.mark.parametrize(
    "old, new, message",
    [
        ("      ja: {text: 赤くして, status: machine}\n", "", "instructions: missing language 'ja'"),
        ("{render: {character: aqua_diva, seed: 1}}", "{paint: {}}", "input must be one of"),
        ("{render: {character: aqua_diva, seed: 1}}", "{render: {character: aqua_diva}}", "missing field 'input.render.seed'"),
        ("    expect_tags: [red_hair]\n", "    expect_tags: [red_hair]\n    mask: [0.5, 0, 0.2, 1]\n", "mask must be a box"),
        ("赤くして", "make it red", "prompts are identical"),
    ],
)
def test_broken_edit_suites_name_the_problem(tmp_path, old, new, message):
    path = tmp_path / "broken.yaml"
    path.write_text(BASE_CASE.replace(old, new), encoding="utf-8")
    with pytest.raises(SuiteError, match=message):
        load_suite_file(path)


# ------------------------------------------------------------------------------------ CLI runs


def demo_config(tmp_path: Path, builtin_root: Path) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    (data / "builtin").symlink_to(builtin_root, target_is_directory=True)
    extra = [{"id": "demo-edit", "name": "Demo edit", "family": "instruct-pix2pix", "source": f"folder:{REPO / 'models' / 'demo-edit'}",
              "is_demo": True, "defaults": {"width": 64, "height": 64, "steps": 20, "cfg": 4.0, "sampler": "euler_a"}}]
    judges = [{"id": "demo-tagger", "kind": "tagger", "source": f"folder:{REPO / 'models' / 'demo-tagger'}", "version": "1",
               "thresholds": {"general": 0.35, "character": 0.85}}]
    return write_config(tmp_path, checkpoints_extra=extra, judges=judges, default_judges={"tagger": "demo-tagger"})


def run_cli(capsys, *args) -> tuple[int, str, str]:
    from evals.__main__ import main

    capsys.readouterr()
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def clean_env(monkeypatch):
    for key in ("HUB_DATA_DIR", "HUB_DATABASE_URL", "HUB_PROMPTS_DIR"):
        monkeypatch.delenv(key, raising=False)


def test_cli_run_of_demo_edits_writes_rows_reports_and_reruns_nothing(tmp_path, builtin_root, capsys, clean_env):
    config = demo_config(tmp_path, builtin_root)
    db = f"sqlite:///{tmp_path / 'edits.sqlite3'}"
    common = ("--checkpoint", "demo-edit", "--suite", "demo-edits", "--db", db, "--config", str(config))
    run = ("run", *common, "--limit", "2", "--seeds", "1", "--languages", "en", "ja", "--steps", "4", "--no-progress")
    code, out, err = run_cli(capsys, *run)
    assert code == 0, err
    assert out.strip().splitlines()[-1].startswith("generated=4 reused=0")

    from sqlalchemy import create_engine, text

    with create_engine(db).connect() as conn:
        assert conn.execute(text("select count(*) from samples")).scalar() == 4
        metrics = {m for (m,) in conn.execute(text("select distinct metric from scores"))}
        assert {edits.SUCCESS, edits.IDENTITY, edits.CHARACTER_KEPT, edits.REFERENCE_SAME} <= metrics
        assert conn.execute(text("select status from eval_runs")).scalar() == "complete"

    code, out, err = run_cli(capsys, "report", *common, "--format", "json", "--bootstrap", "100")
    assert code == 0, err
    report = json.loads(out)["suites"]["demo-edits"]
    assert report["kind"] == "edit" and report["n_samples"] == 4
    assert report["judges"]["reference"]["kind"] == "tagger-features"  # no reference judge configured here
    # Each cell is the mean of the stored per-sample scores of its language (2 cases, 1 seed each).
    with create_engine(db).connect() as conn:
        stored = conn.execute(text("select s.language, c.metric, c.value from scores c join samples s on s.id = c.sample_id")).all()
    for key, metric in (("success", edits.SUCCESS), ("identity_kept", edits.IDENTITY)):
        for language in ("en", "ja"):
            values = [v for lang, m, v in stored if lang == language and m == metric]
            block = report["by_language"][language][key]
            assert block["n"] == len(values) == 2 and block["mean"] == pytest.approx(np.mean(values))
            assert block["lower"] <= block["mean"] <= block["upper"]
        values = [v for _, m, v in stored if m == metric]
        assert report["overall"][key]["mean"] == pytest.approx(np.mean(values))

    code, out, err = run_cli(capsys, *run)
    assert code == 0, err
    assert out.strip().splitlines()[-1].startswith("generated=0 reused=4")

    from leaderboards.db import init_db
    from leaderboards.eval_boards import EDITING_BOARD, build_eval_board

    board = build_eval_board(init_db(db), EDITING_BOARD, num_bootstrap=1000)
    assert set(board["language"]) == {"all", "en", "ja"}
    assert {"success", "identity_kept"} <= set(board["metric"])
    overall = board[(board["language"] == "all") & (board["metric"] == "success") & (board["group"] == "all")].iloc[0]
    assert overall["value"] == pytest.approx(report["overall"]["success"]["mean"]) and overall["n"] == 4


INPAINT_SUITE = """suite: tiny-inpaint
kind: edit
languages: [en, es]
vocabulary: vocab/tags.txt
cases:
  - id: diva_crown
    character: aqua_diva
    category: inpaint
    expect_tags: [crown]
    mask: [0.2, 0.0, 0.8, 0.3]
    input: {render: {character: aqua_diva, seed: 3, size: 64}}
    instructions:
      en: {text: a golden crown, status: machine}
      es: {text: una corona dorada, status: machine}
  - id: diva_red
    character: aqua_diva
    category: hair
    expect_tags: [red_hair]
    input: {render: {character: aqua_diva, seed: 3, size: 64}}
    instructions:
      en: {text: red hair, status: machine}
      es: {text: pelo rojo, status: machine}
"""


def test_inpainting_cases_score_preservation_and_instruct_models_skip_them(tmp_path, builtin_root, capsys, clean_env, monkeypatch):
    prompts = tmp_path / "prompts"
    (prompts / "vocab").mkdir(parents=True)
    (prompts / "vocab" / "tags.txt").write_text("crown\nred_hair\n", encoding="utf-8")
    (prompts / "tiny.yaml").write_text(INPAINT_SUITE, encoding="utf-8")
    monkeypatch.setenv("HUB_PROMPTS_DIR", str(prompts))
    config = demo_config(tmp_path, builtin_root)
    db = f"sqlite:///{tmp_path / 'inpaint.sqlite3'}"
    base = ("--suite", "tiny-inpaint", "--db", db, "--config", str(config))
    code, out, err = run_cli(capsys, "run", "--checkpoint", "demo-random", *base, "--seeds", "1", "--steps", "2", "--no-progress")
    assert code == 0, err
    assert "generated=4" in out  # 2 cases x 2 languages on an sd15 model: inpaint and img2img
    code, out, err = run_cli(capsys, "report", "--checkpoint", "demo-random", *base, "--format", "json", "--bootstrap", "50")
    report = json.loads(out)["suites"]["tiny-inpaint"]
    preservation = report["overall"].get("lpips_outside_mask") or report["overall"]["pixel_l1_outside_mask"]
    from sqlalchemy import create_engine, text

    with create_engine(db).connect() as conn:  # the report's mean is the stored scores' (the mask case's 2 samples)
        stored = [v for (v,) in conn.execute(text("select value from scores where metric in (:a, :b)"),
                                             {"a": edits.LPIPS, "b": edits.PIXEL_L1})]
    assert preservation["n"] == len(stored) == 2 and preservation["mean"] == pytest.approx(np.mean(stored))
    assert set(report["by_group"]) == {"inpaint", "hair"}

    code, out, err = run_cli(capsys, "run", "--checkpoint", "demo-edit", *base, "--seeds", "1", "--steps", "2", "--no-progress")
    assert code == 0, err
    assert "generated=2" in out  # the mask case is skipped: instruct-pix2pix does not inpaint
    code, out, err = run_cli(capsys, "report", "--checkpoint", "demo-edit", *base, "--format", "json", "--bootstrap", "50")
    assert json.loads(out)["suites"]["tiny-inpaint"]["skipped_cases"] == ["diva_crown"]


def test_edit_suite_with_an_unavailable_generator_fails_clearly(tmp_path, builtin_root, capsys, clean_env):
    config = demo_config(tmp_path, builtin_root)
    code, out, err = run_cli(capsys, "run", "--checkpoint", "demo-edit", "--suite", "edits", "--limit", "1", "--seeds", "1",
                             "--languages", "en", "--db", f"sqlite:///{tmp_path / 'x.sqlite3'}", "--config", str(config), "--no-progress")
    assert code == 2
    assert "animagine-xl-4" in err
