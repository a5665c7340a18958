"""The eval runner on the tiny random demo pipeline and the tiny random tagger.

Runs go through the real engine, database (migrations) and judges; only the sizes are tiny.
"""

import time
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import func, select

from core.keys import format_adapters, parse_adapters
from evals.plan import cache_key, item_seed
from evals.report import build_report
from evals.runner import EvalError, EvalRunner, RunOptions
from evals.worker import EvalWorker
from hub.config import load_config
from hub.errors import HubInputError
from leaderboards.db import init_db
from leaderboards.schema import EvalRun, Prompt, PromptSuite, Sample, Score
from tests.tiny_suites import MULTILINGUAL_SUITE, character_suite, write_prompts

CONFIG = """\
default_checkpoint: demo-random
data_dir: {data_dir}
checkpoints:
  - id: demo-random
    name: Demo (random)
    family: sd15
    source: builtin:demo-random
    is_demo: true
    defaults: {{width: 32, height: 32, steps: 2, cfg: 2.0, sampler: euler_a}}
judges:
  - id: demo-random-tagger
    kind: tagger
    source: builtin:demo-random-tagger
    version: random-1
    thresholds: {{general: 0.35, character: {character_threshold}}}
  - id: broken-tagger
    kind: tagger
    source: folder:{data_dir}/no-such-tagger
default_judges:
  tagger: demo-random-tagger
"""


THRESHOLD = 0.5  # the random tagger's character probabilities straddle 0.5: hits and misses both occur


def write_world(root: Path, character_threshold: float = THRESHOLD) -> Path:
    write_prompts(root / "prompts", character_suite(), MULTILINGUAL_SUITE)
    config = root / "config.yaml"
    config.write_text(CONFIG.format(data_dir=root / "data", character_threshold=character_threshold), encoding="utf-8")
    return config


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Engine, database and runner shared by the tests of this module (building the demo pipeline once)."""
    from hub.engine import Engine

    root = tmp_path_factory.mktemp("evalworld")
    config = load_config(write_world(root))
    mp = pytest.MonkeyPatch()
    mp.setenv("HUB_DATA_DIR", str(root / "data"))
    mp.delenv("HUB_DATABASE_URL", raising=False)
    engine = Engine(config, device="cpu")
    db = init_db(f"sqlite:///{root / 'hub.sqlite3'}")
    runner = EvalRunner(engine, db, config, data_dir=root / "data", prompts_dir=root / "prompts")
    yield runner
    engine.shutdown()
    db.dispose()
    mp.undo()


def count(db, model, *where) -> int:
    with db.session() as session:
        return session.execute(select(func.count()).select_from(model).where(*where)).scalar_one()


def stored_hits(db) -> list[tuple[str, str, int, float, float, str]]:
    """(item, language, seed, hit, evidence, image path) of every character_hit row."""
    from sqlalchemy.orm import aliased

    evidence = aliased(Score)
    with db.session() as session:
        return session.execute(
            select(Sample.item_id, Sample.language, Sample.seed, Score.value, evidence.value, Sample.image_path)
            .join(Score, Score.sample_id == Sample.id)
            .join(evidence, (evidence.sample_id == Sample.id) & (evidence.metric == "character_prob"))
            .where(Score.metric == "character_hit")
        ).all()


def test_character_run_writes_samples_scores_and_run_row(world):
    result = world.run(RunOptions("demo-random", "tiny-chars", seeds=2, batch_size=4), progress=False)
    assert result.status == "complete"
    assert result.generated == 3 * 3 * 2 and result.reused == 0
    db = world.db
    assert count(db, Sample) == 18
    # Every sample has its PNG under <data_dir>/samples/, with the recipe inside.
    with db.session() as session:
        samples = session.execute(select(Sample)).scalars().all()
        for s in samples:
            path = Path(s.image_path)
            assert path.is_file() and (world.data_dir / "samples") in path.parents
        run = session.get(EvalRun, result.run_id)
        assert run.status == "complete" and run.n_generated == 18 and run.finished_at is not None
        assert run.judge_id == "demo-random-tagger" and run.judge_version == "random-1"
        assert run.settings_hash and run.settings["suite_version"] and run.settings["seeds"] == 2
        suite = session.get(PromptSuite, run.suite_id)
        assert suite.name == "tiny-chars" and len(suite.version_hash) == 64
        tiers = {p.item_id: p.meta["tier"] for p in session.execute(select(Prompt).where(Prompt.suite_id == suite.id)).scalars()}
        assert tiers == {"miku": "popular", "kino": "niche", "shrek": "non_anime"}
        # character_hit only where a judge can decide: the tagger knows miku and kino, nobody judges shrek.
        hits = session.execute(
            select(Sample.item_id, Score.value).join(Score, Score.sample_id == Sample.id).where(Score.metric == "character_hit")
        ).all()
    assert sorted({item for item, _ in hits}) == ["kino", "miku"]
    assert len(hits) == 12
    assert result.unjudged == 6
    # Each hit is the tagger's verdict on that very image at the real threshold: re-judge the stored PNGs.
    from evals.judges.registry import build_judge

    tagger = build_judge(world.config.judge("demo-random-tagger"), data_dir=world.data_dir, prompts_dir=world.prompts_dir)
    rows = stored_hits(db)
    probs = tagger.predict([path for *_, path in rows])
    tags = {"miku": "hatsune_miku", "kino": "kino_(kino_no_tabi)"}
    for (item, _, _, hit, evidence, _), row in zip(rows, probs):
        p = float(row[tagger.tags.index[tags[item]]])
        assert evidence == pytest.approx(p, abs=1e-5)
        assert hit == float(p >= THRESHOLD)


def test_seeds_derive_from_suite_item_and_index_and_are_shared_by_languages(world):
    with world.db.session() as session:
        seeds = session.execute(select(Sample.item_id, Sample.language, Sample.seed)).all()
    by_item: dict[str, set[tuple[str, int]]] = {}
    for item, language, seed in seeds:
        by_item.setdefault(item, set()).add((language, seed))
    per_item = {item: {seed for _, seed in pairs} for item, pairs in by_item.items()}
    for item, item_seeds in per_item.items():
        assert item_seeds == {item_seed("tiny-chars", item, i) for i in range(2)}
        for language in ("en", "ja", "es"):  # every language uses the same seeds: gaps stay paired
            assert {seed for lang, seed in by_item[item] if lang == language} == item_seeds
    assert per_item["miku"] != per_item["kino"]  # items do not share noise draws


def test_rerun_generates_nothing(world):
    before = count(world.db, Sample)
    result = world.run(RunOptions("demo-random", "tiny-chars", seeds=2), progress=False)
    assert (result.generated, result.reused, result.scored) == (0, 18, 0)
    assert count(world.db, Sample) == before
    # More seeds: only the new seed is generated.
    result = world.run(RunOptions("demo-random", "tiny-chars", seeds=3, languages=("en",)), progress=False)
    assert (result.generated, result.reused) == (3, 6)


def test_report_per_tier_and_language(world):
    report = build_report(world.db, "demo-random", "tiny-chars", num_bootstrap=50)
    suite = report["suites"]["tiny-chars"]
    assert suite["kind"] == "character_recognition" and suite["group_field"] == "tier"
    # The latest complete run is the seeds=3 English-only one; its samples share settings and version
    # with the first run, so every stored sample of the suite counts.
    assert set(suite["by_language"]) == {"en", "ja", "es"}
    rows = stored_hits(world.db)
    for language in ("en", "ja"):
        hits = [hit for item, lang, _, hit, _, _ in rows if lang == language]
        assert suite["by_language"][language]["hit_rate"]["mean"] == pytest.approx(sum(hits) / len(hits))
    assert suite["by_language"]["en"]["hit_rate"]["gap_to_english"]["mean"] == 0.0
    assert set(suite["by_group"]) == {"popular", "niche"}
    miku_ja = [hit for item, lang, _, hit, _, _ in rows if item == "miku" and lang == "ja"]
    assert suite["by_group"]["popular"]["by_language"]["ja"]["hit_rate"]["mean"] == pytest.approx(sum(miku_ja) / len(miku_ja))
    assert suite["unjudged_items"] == ["shrek"]  # listed, not counted as a miss
    assert suite["judged_by"] == ["demo-random-tagger"]
    with pytest.raises(HubInputError, match="no complete eval of 'nope'"):
        build_report(world.db, "nope")


def test_multilingual_run_paired_metrics(world):
    result = world.run(RunOptions("demo-random", "tiny-ml", seeds=1, languages=("ja",)), progress=False)
    # English was added: the paired metrics need the English image of each scene.
    assert result.generated == 2 * 2
    with world.db.session() as session:
        rows = session.execute(
            select(Sample.item_id, Sample.language, Score.metric, Score.value).join(Score, Score.sample_id == Sample.id)
            .where(Sample.item_id.in_(["rainy", "cat"]))
        ).all()
    metrics = {(item, lang, metric): value for item, lang, metric, value in rows}
    # The stored scores are what the configured judge says of the stored PNGs, loaded again from disk.
    from evals.judgeset import load_judges
    from evals.metrics import cosine, tag_recall

    tagger = load_judges(world.config, ["tagger"], data_dir=world.data_dir, prompts_dir=world.prompts_dir).tagger
    with world.db.session() as session:
        stored = {(s.item_id, s.language): (s.image_path, p.meta) for s, p in session.execute(
            select(Sample, Prompt).join(Prompt, Prompt.id == Sample.prompt_id)
            .where(Sample.item_id.in_(["rainy", "cat"])))}
    for item in ("rainy", "cat"):
        assert metrics[(item, "en", "anchored_alignment")] == 1.0
        assert metrics[(item, "en", "crosslingual_cosine")] == pytest.approx(1.0)
        ratio = metrics[(item, "ja", "anchor_text_score")] / metrics[(item, "en", "anchor_text_score")]
        assert metrics[(item, "ja", "anchored_alignment")] == pytest.approx(ratio)
        ja, en = (Image.open(stored[(item, lang)][0]) for lang in ("ja", "en"))
        vectors = tagger.image_embeddings([ja, en])
        assert metrics[(item, "ja", "crosslingual_cosine")] == pytest.approx(cosine(vectors[0], vectors[1]), abs=1e-5)
        assert metrics[(item, "ja", "crosslingual_cosine")] < 0.9999  # a different picture from the English one
        expected_tags = stored[(item, "ja")][1]["tags"]
        found = tagger.decide(tagger.predict([ja]))[0]
        assert metrics[(item, "ja", "tag_recall")] == pytest.approx(tag_recall(found, expected_tags, tagger.tags.index))
    # The scene's own tags: only the scene that names some ("rainy": umbrella, rain; "cat": none).
    found = tagger.decide(tagger.predict([Image.open(stored[("rainy", "ja")][0])]))[0]
    assert metrics[("rainy", "ja", "scene_tag_recall")] == pytest.approx(
        tag_recall(found, ["umbrella", "rain"], tagger.tags.index))
    assert ("cat", "ja", "scene_tag_recall") not in metrics
    report = build_report(world.db, "demo-random", "tiny-ml", num_bootstrap=50)["suites"]["tiny-ml"]
    ja = report["by_language"]["ja"]
    assert set(ja) == {"tag_recall", "scene_tag_recall", "anchored_alignment", "crosslingual_cosine"}
    assert ja["anchored_alignment"]["gap_to_english"]["mean"] == pytest.approx(ja["anchored_alignment"]["mean"] - 1.0)
    # The board reads the same rows and gives the same numbers.
    from leaderboards.eval_boards import MULTILINGUAL_BOARD, build_eval_board

    board = build_eval_board(world.db, MULTILINGUAL_BOARD, suite="tiny-ml", num_bootstrap=50)
    assert set(board["language"]) == {"all", "en", "ja"}
    cell = board[(board["language"] == "ja") & (board["metric"] == "anchored_alignment")].iloc[0]
    assert (cell["value"], cell["lower"], cell["upper"]) == (ja["anchored_alignment"]["mean"], ja["anchored_alignment"]["lower"],
                                                            ja["anchored_alignment"]["upper"])


def test_board_and_report_give_identical_intervals(world):
    """The Leaderboard tab, the CSV export and `evals report` summarise the same rows with the same
    interval method: every cell of the board equals the report's number for it."""
    from leaderboards.eval_boards import CHARACTER_BOARD, build_eval_board, display_eval_board

    board = build_eval_board(world.db, CHARACTER_BOARD, suite="tiny-chars")
    report = build_report(world.db, "demo-random", "tiny-chars")["suites"]["tiny-chars"]

    def cell(group, language):
        row = board[(board["group"] == group) & (board["language"] == language)].iloc[0]
        return tuple(None if v != v else v for v in (row["value"], row["lower"], row["upper"]))  # NaN: no interval

    def triple(est):
        return est["mean"], est["lower"], est["upper"]

    assert cell("all", "all") == triple(report["overall"]["hit_rate"])
    rows = stored_hits(world.db)
    for language in ("en", "ja", "es"):
        assert cell("all", language) == triple(report["by_language"][language]["hit_rate"])
        # ... and both are the stored verdicts, read here with plain SQL (not through either builder).
        hits = [hit for _, lang, _, hit, _, _ in rows if lang == language]
        value, lower, upper = cell("all", language)
        assert value == pytest.approx(sum(hits) / len(hits))
        assert lower <= value <= upper and (lower < upper or len(set(hits)) == 1)
        for tier in ("popular", "niche"):
            assert cell(tier, language) == triple(report["by_group"][tier]["by_language"][language]["hit_rate"])
    shown = display_eval_board(board, CHARACTER_BOARD)
    assert list(shown.columns[:5]) == ["checkpoint", "version", "tier", "metric", "all"]
    assert {"en", "ja", "es", "judged by", "unjudged items"} <= set(shown.columns)
    top = shown[shown["tier"] == "all"].iloc[0]
    assert top["judged by"] == "demo-random-tagger" and top["unjudged items"] == 1  # shrek


def test_bad_input_records_nothing_complete(world):
    runs_before = count(world.db, EvalRun)
    with pytest.raises(EvalError, match=r"unknown checkpoint 'nope' \(known: demo-random\)"):
        world.run(RunOptions("nope", "tiny-chars"), progress=False)
    with pytest.raises(HubInputError, match=r"suite 'tiny-chars' has no language 'ko'"):
        world.run(RunOptions("demo-random", "tiny-chars", languages=("ko",)), progress=False)
    with pytest.raises(HubInputError, match=r"unknown suite 'missing'"):
        world.run(RunOptions("demo-random", "missing"), progress=False)
    with pytest.raises(EvalError, match=r"unknown LoRA 'ghost'"):
        world.run(RunOptions("demo-random", "tiny-chars", adapters=(("ghost", 0.8),)), progress=False)
    assert count(world.db, EvalRun) == runs_before  # refused before a run was recorded
    # A judge that fails to load: the run is recorded as failed, with the reason, never complete.
    with pytest.raises(HubInputError, match=r"judge 'broken-tagger'.*not found"):
        world.run(RunOptions("demo-random", "tiny-chars", judges=("broken-tagger",)), progress=False)
    with world.db.session() as session:
        last = session.execute(select(EvalRun).order_by(EvalRun.id.desc()).limit(1)).scalar_one()
    assert last.status == "failed" and "broken-tagger" in last.error


def test_cache_key_covers_its_parts():
    base = dict(version="c", adapters="", adapter_hashes=[], text="p", seed=0, settings_hash="s")
    key = cache_key(**base)
    for field, value in [("version", "c2"), ("adapters", "lora:0.8"), ("text", "p2"), ("seed", 1), ("settings_hash", "s2")]:
        assert cache_key(**{**base, field: value}) != key
    assert cache_key(**base) == key
    # One canonical adapter string, whatever order or spelling the LoRAs were given in.
    assert parse_adapters("b, a:0.8") == (("a", 0.8), ("b", 1.0))
    assert format_adapters((("b", 1.0), ("a", 0.80))) == "a:0.8,b:1"
    with pytest.raises(HubInputError, match="listed twice"):
        parse_adapters("a:1, a:0.5")


def test_worker_runs_queued_runs_and_takes_over_after_the_lease(world):
    from leaderboards import queue

    run_id = world.queue(RunOptions("demo-random", "tiny-ml", seeds=1, limit=1))
    with world.db.session() as session:
        assert session.get(EvalRun, run_id).status == "queued"
    # A worker claims it and "dies" (no heartbeat): the run stays claimed while its lease lasts...
    # The clock is an input: the claim happened ten minutes ago, for a 60 s lease.
    import datetime as dt

    from leaderboards.schema import utcnow

    claimed_at = utcnow() - dt.timedelta(minutes=10)
    dead = queue.claim_next_run(world.db, "dead-worker", lease_seconds=60, now=claimed_at)
    assert dead.id == run_id
    assert queue.claim_next_run(world.db, "other", lease_seconds=60, now=claimed_at + dt.timedelta(seconds=59)) is None
    # ... and a live worker takes it over once the lease has expired (now), then completes it.
    assert EvalWorker(world, poll_seconds=0.05).drain() == [run_id]
    with world.db.session() as session:
        run = session.get(EvalRun, run_id)
    assert run.status == "complete" and run.worker_id == world.worker_id and run.lease_expires_at is None
    # A queued run with bad input fails with its reason; the worker keeps going.
    bad = world.queue(RunOptions("demo-random", "tiny-ml", seeds=1, limit=1, languages=("ja",)))
    with world.db.write_session() as session:
        session.get(EvalRun, bad).settings = {"languages": ["xx"]}
    thread = EvalWorker(world, poll_seconds=0.05).start()
    for _ in range(200):
        with world.db.session() as session:
            if session.get(EvalRun, bad).status == "failed":
                break
        time.sleep(0.05)
    thread.stop()
    with world.db.session() as session:
        failed = session.get(EvalRun, bad)
    assert failed.status == "failed" and "no language 'xx'" in failed.error


def test_queue_refuses_bad_input(world):
    with pytest.raises(HubInputError, match="has no language 'zz'"):
        world.queue(RunOptions("demo-random", "tiny-chars", languages=("zz",)))
    with pytest.raises(HubInputError, match="seeds must be at least 1"):
        world.queue(RunOptions("demo-random", "tiny-chars", seeds=0))


def test_character_scoring_routes_samples_to_tagger_or_reference_judge(tmp_path):
    """A known tag -> the tagger decides at its character threshold; no tag but a gallery -> the
    reference judge; neither -> no score (unjudged, not a miss)."""
    import numpy as np
    from PIL import Image

    from evals.judges.reference import ReferenceJudge
    from evals.judges.tagger import TaggerJudge, build_random_tagger
    from evals.judgeset import JudgeSet
    from evals.kinds import character
    from evals.samples import SampleView

    tagger = TaggerJudge.load(build_random_tagger(tmp_path / "t", [("hatsune_miku", 4)], input_size=16), device="cpu",
                              thresholds={"character": 0.5})

    class MeanColour:
        def image_embeddings(self, images):
            v = np.stack([np.asarray(im.convert("RGB"), np.float32).reshape(-1, 3).mean(0) + 1e-3 for im in images])
            return v / np.linalg.norm(v, axis=1, keepdims=True)

    gallery = tmp_path / "refs"
    gallery.mkdir()
    Image.new("RGB", (8, 8), (0, 200, 0)).save(gallery / "a.png")
    judges = JudgeSet(tagger=tagger, reference=ReferenceJudge(MeanColour(), threshold=0.95))
    green, red = Image.new("RGB", (8, 8), (0, 210, 0)), Image.new("RGB", (8, 8), (220, 0, 0))
    samples = [
        SampleView(1, "miku", "en", 0, "", "", {"tag": "hatsune_miku"}, red),
        SampleView(2, "shrek", "en", 0, "", "", {"tag": None, "references": str(gallery)}, green),
        SampleView(3, "shrek", "ja", 0, "", "", {"tag": None, "references": str(gallery)}, red),
        SampleView(4, "bean", "en", 0, "", "", {"tag": None}, red),
    ]
    rows = {(r.sample_id, r.metric): (r.judge_id, r.value) for r in character.character_scores(samples, judges, [s.image for s in samples])}
    miku = float(tagger.predict([red])[0][tagger.tags.index["hatsune_miku"]])
    assert rows[(1, "character_hit")] == ("tagger", float(miku >= 0.5))  # the tagger's own verdict at its threshold
    assert rows[(2, "character_hit")] == ("reference", 1.0)
    assert rows[(3, "character_hit")] == ("reference", 0.0)
    assert not any(sid == 4 for sid, _ in rows)


# ------------------------------------------------------------ name judge, galleries, agreement


NAME_JUDGES = """\
  - id: names
    kind: name
    source: folder:{names}
    thresholds: {{probability: 0.0, margin: 0.0}}
  - id: ref
    kind: reference
    source: judge:names
    thresholds: {{same: 0.0, min_fraction: 0.5}}
"""


def test_name_judge_decides_untagged_characters_and_is_compared_with_the_tagger(world, tmp_path):
    """With a name judge configured: shrek (no tag) is decided by it; where the tagger decides, the name
    judge's verdict is recorded and compared (never counted); then an author's gallery for shrek makes the
    reference judge (with the gallery's hash in its id) decide it instead, without generating anything."""
    from evals.galleries import save_gallery
    from evals.report import format_table
    from leaderboards.eval_boards import CHARACTER_BOARD, build_eval_board, display_eval_board
    from tests.name_world import save_tiny_siglip

    names = save_tiny_siglip(tmp_path / "names", extra_words=("Hatsune", "Miku", "初音ミク", "Kino", "キノ", "Shrek", "シュレック"))
    text = Path(world.config.source_path).read_text(encoding="utf-8")
    text = text.replace("default_judges:\n  tagger: demo-random-tagger\n", "")
    text += NAME_JUDGES.format(names=names) + "default_judges: {tagger: demo-random-tagger, name: names, reference: ref}\n"
    (tmp_path / "config.yaml").write_text(text, encoding="utf-8")
    runner = EvalRunner(world.engine, world.db, load_config(tmp_path / "config.yaml"), data_dir=world.data_dir,
                        prompts_dir=world.prompts_dir)
    options = RunOptions("demo-random", "tiny-chars", seeds=1, languages=("en", "ja"))
    result = runner.run(options, progress=False)
    assert result.status == "complete" and result.unjudged == 0  # shrek too, now

    with world.db.session() as session:
        stored = session.execute(
            select(Sample.id, Sample.item_id, Sample.language, Sample.seed, Score.judge_id, Score.metric, Score.value)
            .join(Score, Score.sample_id == Sample.id)
        ).all()
    # The samples this run planned: seed index 0, English and Japanese.
    rows = [r for r in stored if r.language in ("en", "ja") and r.seed == item_seed("tiny-chars", r.item_id, 0)]
    hits = {(r.id, r.judge_id): r.value for r in rows if r.metric == "character_hit"}
    items = {r.id: r.item_id for r in rows}
    assert {items[sid] for sid, judge in hits if judge == "names"} == {"shrek"}
    tagger_hit = {sid: v for (sid, judge), v in hits.items() if judge == "demo-random-tagger"}
    name_hit = {r.id: r.value for r in rows if r.metric == "character_hit_name"}
    agree = {r.id: (r.judge_id, r.value) for r in rows if r.metric == "character_judges_agree"}
    assert set(name_hit) == set(tagger_hit) == set(agree) and {items[s] for s in agree} == {"miku", "kino"}
    for sid in agree:
        assert agree[sid] == ("demo-random-tagger~names", float(tagger_hit[sid] == name_hit[sid]))

    report = build_report(world.db, "demo-random", "tiny-chars", num_bootstrap=50)["suites"]["tiny-chars"]
    assert report["judged_by"] == ["demo-random-tagger", "names"] and report["unjudged_items"] == []
    assert report["unjudged_warning"] is None
    agreement = report["overall"]["tagger_name_agreement"]
    assert agreement["n_items"] == 2 and agreement["n"] == len(agree) == 4
    assert agreement["mean"] == pytest.approx(sum(v for _, v in agree.values()) / len(agree))
    assert report["overall"]["hit_rate"]["n_items"] == 3  # shrek now counts; agreement rows never do
    table = format_table({"suites": {"tiny-chars": report}})
    assert "tagger vs name judge: same verdict on" in table and "NOT JUDGED" not in table
    board = build_eval_board(world.db, CHARACTER_BOARD, suite="tiny-chars", num_bootstrap=50)
    cell = board[(board["group"] == "all") & (board["language"] == "all") & (board["metric"] == "tagger_name_agreement")].iloc[0]
    assert (cell["value"], cell["lower"], cell["upper"]) == (agreement["mean"], agreement["lower"], agreement["upper"])
    shown = display_eval_board(board, CHARACTER_BOARD)
    assert set(shown["warning"]) == {""}

    # An author's gallery for shrek: at the next plan the reference judge decides it, the gallery's hash
    # in its id; nothing is generated, shrek's samples are scored again, the name judge's old verdicts
    # on shrek stop counting.
    record = save_gallery(world.data_dir, "tiny-chars", "shrek", [Image.new("RGB", (32, 32), c) for c in ("red", "green", "blue")],
                          prompts_dir=world.prompts_dir)
    again = runner.run(options, progress=False)
    assert again.generated == 0 and again.scored > 0
    report = build_report(world.db, "demo-random", "tiny-chars", num_bootstrap=50)["suites"]["tiny-chars"]
    gallery_judge = f"ref@{record.sha256[:12]}"
    assert report["judged_by"] == ["demo-random-tagger", gallery_judge]
    assert report["judges"]["gallery:shrek"]["sha256"] == record.sha256
    with world.db.session() as session:
        decided = session.execute(select(Score.judge_id, func.count()).join(Sample, Sample.id == Score.sample_id)
                                  .where(Sample.item_id == "shrek", Score.metric == "character_hit").group_by(Score.judge_id)).all()
    assert dict(decided)[gallery_judge] == dict(decided)["names"]  # both stored; only the gallery's counts
    shrek_rows = report["by_group"]["non_anime"]["hit_rate"]
    assert shrek_rows["n"] == dict(decided)[gallery_judge]


def test_unjudged_items_are_said_loudly(world):
    """tiny-chars with the plain config: shrek has no judge; the report says so first, the board in a column."""
    from evals.report import format_table
    from leaderboards.eval_boards import CHARACTER_BOARD, build_eval_board, display_eval_board

    world.run(RunOptions("demo-random", "tiny-chars", seeds=1, languages=("en",)), progress=False)
    report = build_report(world.db, "demo-random", "tiny-chars", num_bootstrap=20)
    table = format_table(report).splitlines()
    assert table[1].startswith("!! ⚠ 1 item NOT JUDGED")  # right under the suite's header line
    assert report["suites"]["tiny-chars"]["unjudged_warning"].startswith("⚠ 1 item NOT JUDGED")
    shown = display_eval_board(build_eval_board(world.db, CHARACTER_BOARD, suite="tiny-chars", num_bootstrap=20), CHARACTER_BOARD)
    top = shown[shown["tier"] == "all"].iloc[0]
    assert top["unjudged items"] == 1 and top["warning"].startswith("⚠ 1 item NOT JUDGED")
