"""The name judge and its calibration, on a tiny SiglipModel trained here for a few seconds on the shape
world (tests/name_world.py): four characters named in English and Spanish, two distractor looks. The
judge is built through the registry from a saved folder, so loading, scoring and the decision rule are
the hub's own code; the truth of every image is known because we drew it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from evals.calibrate import (
    NameTrials,
    calibrate_name_judge,
    calibrate_reference_judge,
    pick_name_thresholds,
    pick_threshold,
    render_known_truth,
)
from evals.judges.base import JudgeLoadError
from evals.judges.name import CandidateSet, NameThresholds, SiglipNameJudge
from evals.judges.registry import build_judge
from evals.suites import get_suite
from hub.errors import HubInputError
from tests import name_world as world

TRAIN_STEPS = 100  # 80 already separates the shapes perfectly for every seed tried (0-4)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return world.save_tiny_siglip(tmp_path_factory.mktemp("shape-siglip"), train_steps=TRAIN_STEPS)


@pytest.fixture(scope="module")
def judge(model_dir) -> SiglipNameJudge:
    return build_judge({"id": "shape-names", "kind": "name", "source": f"folder:{model_dir}", "version": "t",
                        "thresholds": {"probability": 0.5, "margin": 0.0}}, use_cache=False)


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    return get_suite("shapes", world.write_prompts(tmp_path_factory.mktemp("prompts")))


def rows_of(suite, character: str) -> list:
    return [row for row in suite.rows() if row.item_id == character]


def fresh(character: str, n: int = 3, start: int = 900) -> list:
    return [world.render(character, start + i) for i in range(n)]  # seeds never seen in training


# ----------------------------------------------------------------------------------- verdicts


def test_recognises_each_character_in_each_language_and_rejects_the_others(judge, suite):
    for character in world.CHARACTERS:
        images = fresh(character)
        for row in suite.rows():
            verdicts = judge.recognise(images, [row.meta] * len(images))
            own = row.item_id == character
            assert [v.hit for v in verdicts] == [own] * len(images), (character, row.item_id, row.language)
            if own:
                assert all(v.rank == 1 and v.margin > 0 and v.probability >= 0.5 for v in verdicts)
                assert {v.best_text for v in verdicts} <= set(row.meta["names"])
            else:  # the true character is among the rivals and wins
                assert all(v.rank > 1 and v.best_text not in row.meta["names"] for v in verdicts)


def test_probability_and_margin_come_from_the_models_own_logits(judge, suite):
    row = rows_of(suite, "blue_box")[1]  # Spanish prompt: names "Blue Box" and "Caja Azul"
    image = world.render("blue_box", 777)
    (verdict,) = judge.recognise([image], [row.meta])
    candidate = CandidateSet.from_meta(row.meta)
    processor, model = judge.scorer.processor, judge.scorer.model
    inputs = processor(text=list(candidate.texts), images=[image], padding="max_length", max_length=64, return_tensors="pt")
    with torch.no_grad():
        logits = model(**inputs).logits_per_image[0].numpy()  # scale * cos + bias, SigLIP's own forward
    target, rivals = logits[: len(candidate.names)], logits[len(candidate.names):]
    assert verdict.probability == pytest.approx(1 / (1 + np.exp(-target.max())), abs=1e-5)
    assert verdict.margin == pytest.approx(target.max() - rivals.max(), abs=1e-4)
    assert verdict.target_text == candidate.names[int(target.argmax())]


def test_decision_rule_needs_rank_margin_and_probability(judge, suite):
    row = rows_of(suite, "red_ball")[0]
    image = world.render("red_ball", 801)
    (base,) = judge.recognise([image], [row.meta])
    assert base.hit

    def verdict(probability: float, margin: float, meta=row.meta):
        strict = SiglipNameJudge(judge.scorer, thresholds=NameThresholds(probability, margin), info=judge.info)
        return strict.recognise([image], [meta])[0]

    assert verdict(base.probability, base.margin).hit  # "at or above" both thresholds
    assert not verdict(min(1.0, base.probability + 1e-4), 0.0).hit
    assert not verdict(0.0, base.margin + 1e-4).hit
    # Ranked below a rival: a miss whatever the thresholds (here the target is another character).
    other = rows_of(suite, "green_tree")[0].meta
    assert not verdict(0.0, 0.0, other).hit and verdict(0.0, 0.0, other).rank > 1


def test_a_new_character_needs_no_code(judge, suite):
    """Candidate texts come from the data: an unseen name against the known ones is simply a weak target."""
    meta = {"name": "Purple Moon", "names": ["Purple Moon"], "other_names": ["Red Ball", "Blue Box"], "distractors": ["a grey cloud"]}
    (verdict,) = judge.recognise([world.render("red_ball", 5)], [meta])
    assert not verdict.hit and verdict.best_text == "Red Ball"


# ------------------------------------------------------------------------------------ bad input


class CountingScorer:
    """The real SigLIP judge, counting how often images are embedded (to show nothing ran)."""

    def __init__(self, scorer):
        self.scorer, self.image_calls = scorer, 0

    def image_embeddings(self, images):
        self.image_calls += 1
        return self.scorer.image_embeddings(images)

    def text_embeddings(self, texts):
        return self.scorer.text_embeddings(texts)

    def logits_from_embeddings(self, image_emb, text_emb):
        return self.scorer.logits_from_embeddings(image_emb, text_emb)


def test_a_candidate_set_with_only_the_targets_names_is_refused_before_anything_runs(judge, suite):
    counting = CountingScorer(judge.scorer)
    checked = SiglipNameJudge(counting, info=judge.info)
    good = rows_of(suite, "red_ball")[0].meta
    lonely = {"name": "Red Ball", "names": ["Red Ball", "Bola Roja"], "other_names": ["Red Ball"], "distractors": []}
    images = [world.render("red_ball", 1), world.render("red_ball", 2)]
    with pytest.raises(HubInputError, match=r"candidate set of 'Red Ball' has only its own name"):
        checked.recognise(images, [good, lonely])
    assert counting.image_calls == 0  # refused before any image was scored
    with pytest.raises(HubInputError, match="has no name to look for"):
        checked.recognise(images[:1], [{"names": [], "other_names": ["Blue Box"]}])
    with pytest.raises(ValueError, match="2 images but 1 candidate sets"):
        checked.recognise(images, [good])
    assert checked.recognise([], []) == []


def test_missing_weights_and_bad_config_are_short_messages(tmp_path, model_dir):
    with pytest.raises(JudgeLoadError, match=r"judge 'names': folder .*nothing not found"):
        build_judge({"id": "names", "kind": "name", "source": f"folder:{tmp_path / 'nothing'}"}, use_cache=False)
    with pytest.raises(JudgeLoadError, match=r"unknown threshold same \(a name judge takes: probability, margin\)"):
        build_judge({"id": "names", "kind": "name", "source": f"folder:{model_dir}", "thresholds": {"same": 0.8}}, use_cache=False)
    with pytest.raises(JudgeLoadError, match="0 <= probability <= 1"):
        build_judge({"id": "names", "kind": "name", "source": f"folder:{model_dir}", "thresholds": {"probability": 2}}, use_cache=False)
    with pytest.raises(JudgeLoadError, match="image-text judge 'sig' is not loaded"):
        build_judge({"id": "names", "kind": "name", "source": "judge:sig"}, use_cache=False)


def test_judge_source_reuses_a_configured_siglip_judge(judge, model_dir, suite):
    siglip = build_judge({"id": "sig", "kind": "siglip", "source": f"folder:{model_dir}"}, use_cache=False)
    reused = build_judge({"id": "names2", "kind": "name", "source": "judge:sig"}, others={"sig": siglip}, use_cache=False)
    assert reused.scorer is siglip  # no second copy of the weights
    images = fresh("gold_star", 2)
    metas = [rows_of(suite, "gold_star")[0].meta] * 2
    assert [(v.hit, round(v.margin, 4)) for v in reused.recognise(images, metas)] == \
           [(v.hit, round(v.margin, 4)) for v in judge.recognise(images, metas)]
    # A reference judge can reuse the name judge's image embeddings (the demo-reference config).
    reference = build_judge({"id": "ref", "kind": "reference", "source": "judge:names2"}, others={"names2": reused}, use_cache=False)
    np.testing.assert_allclose(reference.embedder.image_embeddings(images), siglip.image_embeddings(images), atol=1e-6)


# ---------------------------------------------------------------------------------- calibration


def test_threshold_picking_on_known_scores():
    # 1-D: negatives 0.1..0.5 (10 of them), positives 0.45..0.9: at most 10% false -> one negative may pass.
    negatives = np.array([0.1, 0.12, 0.15, 0.2, 0.22, 0.25, 0.3, 0.35, 0.4, 0.5])
    positives = np.array([0.45, 0.6, 0.7, 0.9])
    threshold, tpr, fpr = pick_threshold(positives, negatives, 0.10)
    assert 0.4 < threshold <= 0.45 and tpr == 1.0 and fpr == pytest.approx(0.1)
    threshold, tpr, fpr = pick_threshold(positives, negatives, 0.0)
    assert 0.5 < threshold <= 0.6 and tpr == 0.75 and fpr == 0.0
    # 2-D: a closed negative ranked first with high probability forces the probability threshold up,
    # unless a margin threshold removes it more cheaply.
    trials = NameTrials(
        probability=np.array([0.9, 0.8, 0.7, 0.95, 0.2, 0.3]),
        margin=np.array([3.0, 2.5, 2.0, 0.5, -1.0, 1.0]),
        kind=np.array(["positive", "positive", "positive", "closed", "closed", "open"]),
        language=np.array(["en"] * 6),
    )
    thresholds, tpr, false = pick_name_thresholds(trials, max_false_hits=0.0)
    assert tpr == 1.0 and false == {"closed": 0.0, "open": 0.0}
    assert 0.5 < thresholds.margin <= 2.0 and thresholds.probability <= 0.7


def test_calibration_on_renders_keeps_false_hits_under_5_percent(judge, suite):
    images = render_known_truth(world.render_input, suite, seeds=6)
    result = calibrate_name_judge(judge, suite, images)
    assert result.n_positive == 4 * 6 * 2 and result.n_negative["closed"] == 4 * 6 * 2 * 3
    assert max(result.false_hit_rates.values()) <= 0.05
    assert result.true_hit_rate >= 0.9 and result.top1_rate >= 0.9
    assert set(result.by_language) == {"en", "es"}
    probability, margin = result.thresholds["probability"], result.thresholds["margin"]
    assert f"thresholds: {{probability: {probability}, margin: {margin}}}" in result.config_lines(), result.config_lines()
    # The calibrated thresholds, written into a judge, hold on renders calibration never saw.
    calibrated = SiglipNameJudge(judge.scorer, thresholds=NameThresholds(**result.thresholds), info=judge.info)
    hits = [v.hit for c in world.CHARACTERS for v in calibrated.recognise(fresh(c, 4, 3000), [rows_of(suite, c)[0].meta] * 4)]
    assert np.mean(hits) >= 0.9


def test_calibration_of_an_untrained_judge_still_bounds_false_hits(tmp_path, suite):
    """The procedure cannot buy a true-hit rate with false hits: a judge that knows nothing gets
    thresholds that keep its false hits <= 5%, and then it hits little."""
    untrained = build_judge({"id": "random-names", "kind": "name", "source": f"folder:{world.save_tiny_siglip(tmp_path / 'r')}"},
                            use_cache=False)
    result = calibrate_name_judge(untrained, suite, render_known_truth(world.render_input, suite, seeds=4))
    assert max(result.false_hit_rates.values()) <= 0.05
    assert result.true_hit_rate < 0.5


def test_reference_judge_calibration(judge, suite):
    reference = build_judge({"id": "shape-ref", "kind": "reference", "source": "judge:shape-names"},
                            others={"shape-names": judge}, use_cache=False)
    result = calibrate_reference_judge(reference, suite, render_known_truth(world.render_input, suite, seeds=6))
    assert result.false_hit_rates["closed"] <= 0.05 and result.true_hit_rate >= 0.8
    assert result.thresholds["min_fraction"] == 0.5
    # The calibrated `same`, written into a judge, holds on renders calibration never saw: each character's
    # fresh renders against its own gallery and against the others'.
    from evals.judges.reference import ReferenceJudge

    calibrated = ReferenceJudge(reference.embedder, threshold=result.thresholds["same"], min_fraction=0.5)
    galleries = {c: calibrated.embedder.image_embeddings(fresh(c, 4, 4000)) for c in world.CHARACTERS}
    probes = {c: calibrated.embedder.image_embeddings(fresh(c, 4, 5000)) for c in world.CHARACTERS}
    same = [v.same for c in world.CHARACTERS for v in calibrated.verdicts_from_embeddings(probes[c], galleries[c])]
    other = [v.same for c in world.CHARACTERS for o in world.CHARACTERS if o != c
             for v in calibrated.verdicts_from_embeddings(probes[c], galleries[o])]
    assert np.mean(same) >= 0.8 and np.mean(other) <= 0.1, (np.mean(same), np.mean(other))


def test_calibrate_command(tmp_path, model_dir, monkeypatch, capsys):
    from evals.__main__ import main

    prompts = world.write_prompts(tmp_path / "prompts")
    config = tmp_path / "config.yaml"
    config.write_text(f"""\
default_checkpoint: demo-random
data_dir: {tmp_path / 'data'}
demo_world: tests.name_world
checkpoints:
  - {{id: demo-random, name: Demo, family: sd15, source: "builtin:demo-random", is_demo: true}}
judges:
  - {{id: shape-names, kind: name, source: "folder:{model_dir}", thresholds: {{probability: 0.5, margin: 0.0}}}}
  - {{id: tagger, kind: tagger, source: "builtin:demo-random-tagger"}}
""", encoding="utf-8")
    monkeypatch.setenv("HUB_PROMPTS_DIR", str(prompts))
    monkeypatch.delenv("HUB_DATA_DIR", raising=False)
    assert main(["calibrate", "--judge", "shape-names", "--suite", "shapes", "--seeds", "3", "--config", str(config),
                 "--format", "json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["source"] == "render" and result["n_images"] == 12 and max(result["false_hit_rates"].values()) <= 0.05
    assert main(["calibrate", "--judge", "tagger", "--suite", "shapes", "--config", str(config)]) == 2
    assert "'tagger' is not a configured name or reference judge (configured: shape-names)" in capsys.readouterr().err
    assert main(["calibrate", "--judge", "shape-names", "--suite", "shapes", "--source", "galleries", "--config", str(config)]) == 2
    assert "needs galleries of at least two characters" in capsys.readouterr().err


# ------------------------------------------------------------------------------ suites and plans


def test_distractors_are_checked_and_one_name_suites_are_refused_at_plan_time(tmp_path, judge):
    from evals.judgeset import JudgeSet
    from evals.kinds.character import CharacterKind

    prompts = world.write_prompts(tmp_path / "p")
    path = prompts / "shapes.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace('  es: ["una hoja', '  fr: ["une page'), encoding="utf-8")
    with pytest.raises(HubInputError, match=r"distractors: language 'fr' is not in the suite's languages"):
        get_suite("shapes", prompts)
    # One character, no distractors: nothing to weigh its name against. Refused when the plan is made,
    # before any image is generated or scored.
    lonely = text.split("distractors:")[0] + "characters:\n" + text.split("characters:\n")[1].splitlines(keepends=True)[0]
    path.write_text(lonely, encoding="utf-8")
    suite = get_suite("shapes", prompts)
    assert suite.item_ids == ["red_ball"]
    with pytest.raises(HubInputError, match=r"suite 'shapes': character 'red_ball' \(en\): .*has only its own name"):
        CharacterKind().judges(JudgeSet(name=judge), suite)
    assert CharacterKind().judges(JudgeSet(), suite).galleries == {}  # without a name judge: nothing to check
