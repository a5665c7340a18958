"""Per-sample metric maths and the kinds' summaries, on hand-computed cases."""

import math

import pytest

from evals.kinds.character import CharacterKind
from evals.kinds.multilingual import MultilingualKind
from evals.metrics import anchored_alignment, cosine, hit_rate, tag_recall


def test_tag_recall_by_hand():
    # 2 of the 3 expected tags found; extra predicted tags don't matter.
    assert tag_recall({"1girl", "umbrella", "smile"}, ["1girl", "umbrella", "rain"]) == pytest.approx(2 / 3)
    # A tag the tagger does not know is not counted against the image: 1 of the 2 known tags found.
    assert tag_recall({"1girl"}, ["1girl", "rain", "unknown_tag"], known={"1girl", "rain"}) == pytest.approx(0.5)
    assert tag_recall(set(), ["1girl"]) == 0.0
    assert math.isnan(tag_recall({"1girl"}, ["x"], known={"1girl"}))


def test_anchored_alignment_by_hand():
    assert anchored_alignment(0.3, 0.6) == pytest.approx(0.5)
    assert anchored_alignment(0.6, 0.6) == pytest.approx(1.0)
    assert anchored_alignment(0.9, 0.6) == pytest.approx(1.5)
    assert math.isnan(anchored_alignment(0.5, 0.0))
    assert math.isnan(anchored_alignment(float("nan"), 0.5))


def test_cosine_and_hit_rate_by_hand():
    assert cosine([1, 0], [0, 1]) == pytest.approx(0.0)
    assert cosine([3, 4], [4, 3]) == pytest.approx(24 / 25)
    assert cosine([1, 0], [-1, 0]) == pytest.approx(-1.0)
    assert math.isnan(cosine([0, 0], [1, 0]))
    assert hit_rate([1, 0, 1, 1, float("nan")]) == 0.75


def test_character_summary_by_tier_and_language():
    records = []
    for item, tier, en, ja in [("a", "popular", 1, 1), ("b", "popular", 1, 0), ("c", "non_anime", 0, 0)]:
        for language, value in (("en", en), ("ja", ja)):
            records.append({"item_id": item, "group": tier, "language": language, "metric": "character_hit", "value": value})
    summary = CharacterKind().summarize(records, anchor="en", num_bootstrap=100)
    assert summary["overall"]["hit_rate"]["mean"] == pytest.approx(3 / 6)
    assert summary["by_language"]["en"]["hit_rate"]["mean"] == pytest.approx(2 / 3)
    assert summary["by_language"]["ja"]["hit_rate"]["mean"] == pytest.approx(1 / 3)
    assert summary["by_language"]["ja"]["hit_rate"]["gap_to_english"]["mean"] == pytest.approx(-1 / 3)
    assert summary["mean_over_languages"]["hit_rate"] == pytest.approx(0.5)
    assert list(summary["by_group"]) == ["popular", "non_anime"]  # the kind's tier order
    assert summary["by_group"]["popular"]["hit_rate"]["mean"] == pytest.approx(0.75)
    assert summary["by_group"]["popular"]["by_language"]["ja"]["hit_rate"]["mean"] == pytest.approx(0.5)
    assert summary["by_group"]["non_anime"]["n_items"] == 1


def test_multilingual_summary_gap():
    records = [
        {"item_id": "s1", "language": "en", "metric": "tag_recall", "value": 1.0},
        {"item_id": "s2", "language": "en", "metric": "tag_recall", "value": 0.5},
        {"item_id": "s1", "language": "es", "metric": "tag_recall", "value": 0.5},
        {"item_id": "s2", "language": "es", "metric": "tag_recall", "value": 0.5},
        {"item_id": "s1", "language": "es", "metric": "anchored_alignment", "value": 0.8},
    ]
    summary = MultilingualKind().summarize(records, anchor="en", num_bootstrap=100)
    assert list(summary["by_language"]) == ["en", "es"]
    es = summary["by_language"]["es"]
    assert es["tag_recall"]["mean"] == pytest.approx(0.5)
    assert es["tag_recall"]["gap_to_english"]["mean"] == pytest.approx(-0.25)
    assert es["anchored_alignment"]["mean"] == pytest.approx(0.8)
    assert "gap_to_english" not in es["anchored_alignment"]  # no English value recorded for it
