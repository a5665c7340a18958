"""Arena v2 (leaderboards.arena and friends) on a real SQLite file and a real PostgreSQL server:

undo (own last vote, 30 s, once; kept on record, out of the tallies), the live-vote unique index,
the personal board (after 20 votes, own votes only), battle categories and per-category boards, pair
sampling (few-vote pairs favoured, a floor for every pair, never a model with itself), the anonymised
votes download (CSV, Parquet, CLI), the clean-up job (also two at once), two Arena replicas on one
PostgreSQL database, withheld images. The app-level part (HTTP, gradio_client) is at the end.
"""

from __future__ import annotations

import datetime as dt
import random
import threading
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from hub.errors import HubInputError
from tests.threads import burst
from leaderboards.arena import Arena, ArenaLimits, SessionHasher, new_battle_id, tallies_frame
from leaderboards.arena_boards import NO_TIER, arena_categories, category_board, personal_board
from leaderboards.arena_cleanup import CLEANUP_GRACE, cleanup_expired_battles, start_cleanup_thread
from leaderboards.arena_sampling import FLOOR_SHARE, PairSampler, pair_probabilities
from leaderboards.arena_votes import EXPORT_COLUMNS, bump_tally, export_votes, public_battle_id
from leaderboards.db import Database, init_db
from leaderboards.ratings import bradley_terry, bradley_terry_from_counts
from leaderboards.results import get_or_create_suite, upsert_checkpoint
from leaderboards.schema import Battle, BattleRequest, Sample, Vote, utcnow
from tests.hub_app import client_session

try:
    from tests.pg import postgres_server, postgres_url  # noqa: F401 - fixtures
except ImportError:
    from pg import postgres_server, postgres_url  # noqa: F401

MODELS = {"m-alpha": "Alpha", "m-beta": "Beta", "m-gamma": "Gamma", "m-delta": "Delta"}
COLOURS = {m: (50 * i, 220 - 50 * i, 100) for i, m in enumerate(MODELS)}
SALT = b"v2-salt"


class Generator:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, int]] = []
        self._lock = threading.Lock()

    def __call__(self, checkpoint: str, prompt: str, seed: int):
        with self._lock:
            self.calls.append((checkpoint, prompt, seed))
        return Image.new("RGB", (16, 16), COLOURS[checkpoint]), None


class Clock:
    def __init__(self, start: dt.datetime | None = None) -> None:
        self.now = start or utcnow()

    def __call__(self) -> dt.datetime:
        return self.now


def open_db(url: str) -> Database:
    database = init_db(url)
    with database.session() as s:
        for cid, name in MODELS.items():
            upsert_checkpoint(s, cid, name, "sdxl", f"builtin:{cid}", None, False)
    return database


@pytest.fixture(params=["sqlite", "postgresql"])
def any_db(request, tmp_path):
    url = f"sqlite:///{tmp_path / 'v2.sqlite3'}" if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    database = open_db(url)
    yield database
    database.dispose()


@pytest.fixture
def db(tmp_path):
    database = open_db(f"sqlite:///{tmp_path / 'v2.sqlite3'}")
    yield database
    database.dispose()


def make_arena(database: Database, folder: Path, clock: Clock | None = None, salt: bytes = SALT, **limits) -> Arena:
    return Arena(
        database, folder / "data" / "arena", SessionHasher(salt), candidates=lambda: list(MODELS), generate=Generator(),
        limits=ArenaLimits(**{"votes_per_minute": 1000, "battles_per_minute": 1000, **limits}),
        rng=random.Random(11), now=clock or Clock(), sampler_refresh_s=0,
    )


def snapshot(database: Database) -> tuple:
    """Everything a refused request must leave unchanged."""
    with database.session() as s:
        votes = s.execute(select(Vote.id, Vote.battle_id, Vote.outcome, Vote.undone_at, Vote.blind).order_by(Vote.id)).all()
        tallies = sorted(tallies_frame(s).itertuples(index=False))
        battles = s.scalar(select(func.count()).select_from(Battle))
    return [tuple(v) for v in votes], tallies, battles


def tally_total(database: Database) -> int:
    with database.session() as s:
        return int(tallies_frame(s)["count"].sum())


# ------------------------------------------------------------------------------------------ undo
def test_undo_own_last_vote_once_within_30_seconds(any_db, tmp_path):
    clock = Clock()
    arena = make_arena(any_db, tmp_path, clock)
    served = arena.create_battle("1girl", session_id="me", client_ip="10.0.0.1")
    first = arena.record_vote(served.battle_id, "model_a", session_id="me")
    assert first.counted and tally_total(any_db) == 1

    before = snapshot(any_db)
    for battle_id, session, message in [
        (served.battle_id, "someone-else", "only undo your own vote"),
        ("A" * 32, "me", "Unknown battle"),  # well-formed but forged
        ("../../etc/passwd", "me", "Unknown battle"),
        (None, "me", "Unknown battle"),
        (served.battle_id, None, "Only the session that voted"),
    ]:
        with pytest.raises(HubInputError, match=message):
            arena.undo_vote(battle_id, session_id=session)
        assert snapshot(any_db) == before  # nothing changed

    clock.now += dt.timedelta(seconds=29)
    undone = arena.undo_vote(served.battle_id, session_id="me")
    assert undone.outcome == "model_a" and tally_total(any_db) == 0
    with any_db.session() as s:  # kept on record, marked undone
        (row,) = s.scalars(select(Vote).where(Vote.battle_id == served.battle_id)).all()
        assert row.undone_at is not None and row.outcome == "model_a"
    before = snapshot(any_db)
    with pytest.raises(HubInputError, match="already undone"):
        arena.undo_vote(served.battle_id, session_id="me")
    assert snapshot(any_db) == before

    # Voting again on that battle is allowed; the names were shown, so it is kept but not counted.
    again = arena.record_vote(served.battle_id, "model_b", session_id="me")
    assert not again.counted and tally_total(any_db) == 0
    with pytest.raises(HubInputError, match="already has a vote"):
        arena.record_vote(served.battle_id, "tie", session_id="me")
    before = snapshot(any_db)
    with pytest.raises(HubInputError, match="undone only once"):
        arena.undo_vote(served.battle_id, session_id="me")
    assert snapshot(any_db) == before

    # Too late, and not the last vote.
    late = arena.create_battle("1girl", session_id="me")
    arena.record_vote(late.battle_id, "tie", session_id="me")
    clock.now += dt.timedelta(seconds=ArenaLimits().undo_seconds + 1)
    before = snapshot(any_db)
    with pytest.raises(HubInputError, match="Too late"):
        arena.undo_vote(late.battle_id, session_id="me")
    older, newer = arena.create_battle("p", session_id="me"), arena.create_battle("p", session_id="me")
    arena.record_vote(older.battle_id, "model_a", session_id="me")
    arena.record_vote(newer.battle_id, "model_b", session_id="me")
    before = snapshot(any_db)
    with pytest.raises(HubInputError, match="Only your last vote"):
        arena.undo_vote(older.battle_id, session_id="me")
    assert snapshot(any_db) == before
    arena.undo_vote(newer.battle_id, session_id="me")
    with any_db.session() as s:
        assert s.scalar(select(func.count()).select_from(Vote)) == 5  # every vote stays on record
        assert s.scalar(select(func.count()).select_from(Vote).where(Vote.undone_at.is_(None))) == 3
    assert tally_total(any_db) == 2  # late (tie) and older (model_a): the blind, live ones


def test_one_live_vote_per_battle_is_a_database_rule(any_db, tmp_path):
    arena = make_arena(any_db, tmp_path)
    battle_id = arena.record_battle("m-alpha", "m-beta", "p", "a.png", "b.png")
    now = utcnow()
    with any_db.session() as s:
        s.add(Vote(battle_id=battle_id, outcome="model_a", created_at=now, undone_at=now))
        s.add(Vote(battle_id=battle_id, outcome="model_b", created_at=now))  # one undone + one live: fine
    with pytest.raises(IntegrityError, match=r"(?i)unique"):
        with any_db.session() as s:
            s.add(Vote(battle_id=battle_id, outcome="tie", created_at=now))  # a second live vote
    with pytest.raises(HubInputError, match="already has a vote"):
        arena.record_vote(battle_id, "tie")


# ------------------------------------------------------------------------------------------ personal board
def test_personal_board_after_20_votes_from_own_votes_only(db, tmp_path):
    arena = make_arena(db, tmp_path)
    rng = random.Random(5)

    def vote_many(session: str, n: int, favourite: str) -> list[tuple[str, str, str]]:
        rows = []
        for _ in range(n):
            served = arena.create_battle("p", session_id=session)
            with db.session() as s:
                battle = s.get(Battle, served.battle_id)
            if favourite in (battle.model_a, battle.model_b):
                outcome = "model_a" if battle.model_a == favourite else "model_b"
            else:
                outcome = rng.choice(["model_a", "model_b", "tie"])
            arena.record_vote(served.battle_id, outcome, session_id=session)
            rows.append((battle.model_a, battle.model_b, outcome))
        return rows

    crowd = vote_many("crowd", 60, "m-alpha")
    mine = vote_many("me", 19, "m-delta")
    with pytest.raises(HubInputError, match="vote on 1 more battle\\."):
        arena.personal_board("me")
    with pytest.raises(HubInputError, match="vote on 20 more battles"):
        arena.personal_board("newcomer")
    mine += vote_many("me", 1, "m-delta")
    last = arena.create_battle("p", session_id="me")
    arena.record_vote(last.battle_id, "model_a", session_id="me")
    arena.undo_vote(last.battle_id, session_id="me")  # an undone vote does not count

    board = arena.personal_board("me", num_bootstrap=20)
    assert board.attrs["votes"] == 20
    expected = bradley_terry(pd.DataFrame(mine, columns=["model_a", "model_b", "winner"]), num_bootstrap=20, min_battles=1)
    assert list(board["checkpoint"]) == list(expected.index) and board["checkpoint"].iloc[0] == "m-delta"
    assert list(board["your_rating"]) == [round(r) for r in expected["rating"]]
    assert list(board["name"]) == [MODELS[m] for m in board["checkpoint"]]
    with db.session() as s:
        community = bradley_terry_from_counts(tallies_frame(s), num_bootstrap=20)
    assert community.index[0] == "m-alpha"  # the crowd's favourite, not mine
    assert dict(zip(board["checkpoint"], board["community_rating"], strict=True)) == {
        m: round(community.loc[m, "rating"]) for m in board["checkpoint"]
    }
    theirs = arena.personal_board("crowd", num_bootstrap=20)
    assert theirs.attrs["votes"] == len(crowd) and theirs["checkpoint"].iloc[0] == "m-alpha"
    with pytest.raises(HubInputError, match="more battle"):  # no session: no votes of its own
        personal_board(db, None)


# ------------------------------------------------------------------------------------------ categories
def add_samples(database: Database, folder: Path, prompts: list[dict], models: list[str], seeds=(1, 2)) -> None:
    """Stored eval samples (files and rows) for `prompts` from `models`."""
    folder.mkdir(parents=True, exist_ok=True)
    with database.session() as s:
        suite = get_or_create_suite(s, "characters", "v1", prompts)
        s.flush()
        from leaderboards.schema import Prompt

        ids = {(p.item_id, p.language): p.id for p in s.scalars(select(Prompt).where(Prompt.suite_id == suite.id))}
        for p in prompts:
            for model in models:
                for seed in seeds:
                    path = folder / f"{model}-{p['item_id']}-{p['language']}-{seed}.png"
                    Image.new("RGB", (8, 8), COLOURS.get(model, (1, 2, 3))).save(path)
                    s.add(Sample(
                        cache_key=f"{model}-{p['item_id']}-{p['language']}-{seed}", checkpoint_id=model, adapters="",
                        suite_id=suite.id, prompt_id=ids[(p["item_id"], p["language"])], item_id=p["item_id"],
                        language=p["language"], prompt_text=p["text"], seed=seed, settings_hash="x", image_path=str(path),
                    ))


SUITE_PROMPTS = [
    {"item_id": "miku", "language": "ja", "text": "初音ミク、ツインテール", "meta": {"tier": "popular"}},
    {"item_id": "miku", "language": "en", "text": "hatsune miku, twintails", "meta": {"tier": "popular"}},
    {"item_id": "shrek", "language": "en", "text": "shrek, green ogre, swamp", "meta": {"tier": "non-anime"}},
]


def test_battles_record_their_category_and_boards_per_category(db, tmp_path):
    arena = make_arena(db, tmp_path)
    add_samples(db, tmp_path / "samples", SUITE_PROMPTS, ["m-alpha", "m-beta", "m-gamma"])
    votes: dict[tuple[str, str | None], list[tuple[str, str, str]]] = {}
    outcomes = ["model_a", "model_b", "tie", "tie (bothbad)", "model_a"]
    for prompt, category in [
        (SUITE_PROMPTS[0]["text"], ("ja", "popular")),
        (SUITE_PROMPTS[2]["text"], ("en", "non-anime")),
        ("1girl, my own words", ("custom", None)),
    ]:
        for i in range(5):
            served = arena.create_battle(prompt, session_id=f"s{i}")
            with db.session() as s:
                battle = s.get(Battle, served.battle_id)
            assert (battle.language, battle.tier) == category
            assert battle.image_source == ("generated" if category[0] == "custom" else "samples")
            arena.record_vote(served.battle_id, outcomes[i], session_id=f"s{i}")
            votes.setdefault(category, []).append((battle.model_a, battle.model_b, outcomes[i]))
    categories = arena_categories(db)
    assert set(zip(categories["language"], categories["tier"], categories["votes"], strict=True)) == {
        ("ja", "popular", 5), ("en", "non-anime", 5), ("custom", NO_TIER, 5)
    }
    for (language, tier), rows in votes.items():
        board = category_board(db, language=language, tier=tier or NO_TIER, num_bootstrap=20, min_battles=1)
        direct = bradley_terry(pd.DataFrame(rows, columns=["model_a", "model_b", "winner"]), num_bootstrap=20, min_battles=1)
        assert list(board["checkpoint"]) == list(direct.index)
        assert list(board["rating"]) == [round(r) for r in direct["rating"]]
        assert {"lower", "upper", "interval", "rank", "name"} <= set(board.columns)
    by_tier = category_board(db, tier="popular", num_bootstrap=10)
    assert by_tier["battles"].sum() == 2 * 5
    assert category_board(db, language="xx-unknown", num_bootstrap=10).empty
    assert arena.random_suite_prompt() in {p["text"] for p in SUITE_PROMPTS}
    assert arena.random_suite_prompt(language="ja") == SUITE_PROMPTS[0]["text"]
    with pytest.raises(HubInputError, match="No stored eval prompts"):
        arena.random_suite_prompt(language="ko")


# ------------------------------------------------------------------------------------------ sampling
def test_pair_probabilities_favour_few_votes_and_keep_a_floor():
    widths = {"m-alpha": 40.0, "m-beta": 45.0, "m-gamma": 300.0}
    votes = {("m-alpha", "m-beta"): 900, ("m-alpha", "m-gamma"): 30, ("m-beta", "m-gamma"): 25}
    three = pair_probabilities(["m-alpha", "m-beta", "m-gamma"], widths, votes).set_index(["model_a", "model_b"])
    assert len(three) == 3 and three["probability"].sum() == pytest.approx(1.0)
    saturated = three.loc[("m-alpha", "m-beta"), "probability"]
    assert (three["probability"] >= FLOOR_SHARE / 3 - 1e-12).all()
    assert three.loc[("m-alpha", "m-gamma"), "probability"] > 2 * saturated
    assert saturated < 0.2  # a third would be uniform
    # A new model (no votes, so the widest interval) is paired most, but no pair drops under the floor.
    four = pair_probabilities(list(MODELS), widths, votes).set_index(["model_a", "model_b"])
    floor = FLOOR_SHARE / 6
    assert len(four) == 6 and four["probability"].sum() == pytest.approx(1.0)
    assert (four["probability"] >= floor - 1e-12).all()
    assert four.loc[("m-alpha", "m-beta"), "probability"] == pytest.approx(floor, rel=0.05)
    with_delta = [p for (a, b), p in four["probability"].items() if "m-delta" in (a, b)]
    assert min(with_delta) > max(p for (a, b), p in four["probability"].items() if "m-delta" not in (a, b))
    # Without any vote every pair has the same chance.
    uniform = pair_probabilities(list(MODELS), {}, {})
    assert uniform["probability"].tolist() == pytest.approx([1 / 6] * 6)


def test_sampler_draws_follow_the_rule_and_never_pair_a_model_with_itself(db, tmp_path, capsys):
    # A saturated pair (alpha-beta, 600 votes), a pair with few votes (gamma-delta, 3), the rest in between.
    with db.session() as s:
        for (a, b), n in {("m-alpha", "m-beta"): 600, ("m-alpha", "m-gamma"): 60, ("m-beta", "m-gamma"): 60,
                          ("m-alpha", "m-delta"): 40, ("m-beta", "m-delta"): 40, ("m-gamma", "m-delta"): 3}.items():
            bump_tally(s, a, b, "model_a", by=n // 2 + n % 2)
            bump_tally(s, a, b, "model_b", by=n // 2)
    sampler = PairSampler("generate", refresh_s=60)
    rng = random.Random(3)
    draws = 6000
    with db.session() as s:
        table = sampler.probabilities(s, list(MODELS)).set_index(["model_a", "model_b"])
        counts = Counter(frozenset(sampler.draw(s, list(MODELS), rng)) for _ in range(draws))
    few, saturated = frozenset(("m-gamma", "m-delta")), frozenset(("m-alpha", "m-beta"))
    assert counts[few] > 2 * counts[saturated]
    floor = FLOOR_SHARE / 6
    for (a, b), row in table.iterrows():
        observed = counts[frozenset((a, b))] / draws
        assert row["probability"] >= floor
        assert abs(observed - row["probability"]) < 0.02, (a, b, observed, row["probability"])
        assert observed > 0.8 * floor
    with capsys.disabled():
        print("\nsampling rates (expected / observed over", draws, "draws):")
        for (a, b), row in table.iterrows():
            print(f"  {a:>8} vs {b:<8} votes {row['votes']:>4}  p {row['probability']:.3f}  "
                  f"seen {counts[frozenset((a, b))] / draws:.3f}")
    with db.session() as s:
        with pytest.raises(HubInputError, match="at least two different"):
            sampler.draw(s, ["m-alpha", "m-alpha"], rng)
        assert all(set(sampler.draw(s, ["m-alpha", "m-alpha", "m-beta"], rng)) == {"m-alpha", "m-beta"} for _ in range(50))
    arena = make_arena(db, tmp_path)
    arena.candidates = lambda: ["m-alpha", "m-alpha"]
    with pytest.raises(HubInputError, match="at least two different"):
        arena.create_battle("p", session_id="s")
    arena.candidates = lambda: list(MODELS)
    public = arena.pair_rates()
    assert len(public) == 6 and public["probability"].sum() == pytest.approx(1.0)


# ------------------------------------------------------------------------------------------ download
def test_votes_download_is_anonymous_and_counts_only_counted_votes(db, tmp_path, capsys):
    arena = make_arena(db, tmp_path)
    add_samples(db, tmp_path / "samples", SUITE_PROMPTS[:1], ["m-alpha", "m-beta"])
    kept = []
    for i in range(4):
        served = arena.create_battle(SUITE_PROMPTS[0]["text"] if i == 0 else "1girl", session_id=f"voter-{i}", client_ip="10.1.2.3")
        arena.record_vote(served.battle_id, "model_a", session_id=f"voter-{i}", client_ip="10.1.2.3")
        kept.append(served.battle_id)
    undone = arena.create_battle("1girl", session_id="voter-0")
    arena.record_vote(undone.battle_id, "model_b", session_id="voter-0")
    arena.undo_vote(undone.battle_id, session_id="voter-0")
    revoted = arena.create_battle("1girl", session_id="voter-1")
    arena.record_vote(revoted.battle_id, "model_b", session_id="voter-1")
    arena.undo_vote(revoted.battle_id, session_id="voter-1")
    arena.record_vote(revoted.battle_id, "tie", session_id="voter-1")  # not blind: left out
    with db.session() as s:
        hashes = {h for row in s.execute(select(Vote.session_hash, Vote.ip_hash)) for h in row if h}

    csv_path = export_votes(db, tmp_path / "out" / "votes.csv", "csv")
    parquet_path = export_votes(db, tmp_path / "out" / "votes.parquet", "PARQUET")
    for frame, raw in ((pd.read_csv(csv_path), csv_path.read_bytes()), (pd.read_parquet(parquet_path), parquet_path.read_bytes())):
        assert list(frame.columns) == EXPORT_COLUMNS and len(frame) == 4
        assert sorted(frame["battle"]) == sorted(public_battle_id(b) for b in kept)
        assert not any(h.encode() in raw for h in hashes) and b"10.1.2.3" not in raw and b"voter-" not in raw
        assert not any(b.encode() in raw for b in kept + [undone.battle_id, revoted.battle_id])
        assert set(frame["outcome"]) == {"model_a"} and set(frame["kind"]) == {"generate"}
        assert sorted(frame["language"]) == ["custom", "custom", "custom", "ja"]
    assert pd.read_parquet(parquet_path)["time"].dt.tz is not None
    with pytest.raises(HubInputError, match="choose csv or parquet"):
        export_votes(db, tmp_path / "x.json", "json")

    from leaderboards.__main__ import main

    out = tmp_path / "cli" / "votes.parquet"
    assert main(["--db", db.url, "export-votes", "--format", "parquet", "--out", str(out)]) == 0
    assert len(pd.read_parquet(out)) == 4
    with pytest.raises(SystemExit) as refused:  # argparse: exit 2 naming the allowed formats
        main(["--db", db.url, "export-votes", "--format", "xml", "--out", str(out)])
    assert refused.value.code == 2 and "invalid choice: 'xml'" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------ clean-up
def test_cleanup_deletes_images_of_expired_unvoted_battles_only(any_db, tmp_path):
    start = utcnow() - dt.timedelta(hours=3)
    clock = Clock(start)
    arena = make_arena(any_db, tmp_path, clock, battle_ttl_minutes=60)
    unvoted = [arena.create_battle("p", session_id="s") for _ in range(3)]
    voted = arena.create_battle("p", session_id="s")
    arena.record_vote(voted.battle_id, "model_a", session_id="s")
    undone = arena.create_battle("p", session_id="s")
    arena.record_vote(undone.battle_id, "model_b", session_id="s")
    arena.undo_vote(undone.battle_id, session_id="s")  # no live vote: its images go too
    clock.now = start + dt.timedelta(minutes=50)
    fresh = arena.create_battle("p", session_id="s")  # expires at +110 min
    with any_db.session() as s:
        s.add(BattleRequest(kind="generate", session_hash="old", created_at=start - dt.timedelta(days=2)))
    data_dir = tmp_path / "data"

    # Within the grace period after expiry nothing is touched.
    assert cleanup_expired_battles(any_db, data_dir, now=start + dt.timedelta(minutes=61)) == 0
    now = start + dt.timedelta(minutes=60) + CLEANUP_GRACE + dt.timedelta(minutes=1)
    assert cleanup_expired_battles(any_db, data_dir, now=now) == 4
    for served in [*unvoted, undone]:
        assert not served.image_a.exists() and not served.image_b.exists()
    for served in (voted, fresh):
        assert served.image_a.exists() and served.image_b.exists()
    with any_db.session() as s:
        rows = {b.id: b for b in s.scalars(select(Battle))}
        assert s.scalar(select(func.count()).select_from(BattleRequest).where(BattleRequest.session_hash == "old")) == 0
    assert all(rows[b.battle_id].expired_at is not None and rows[b.battle_id].images_deleted for b in [*unvoted, undone])
    assert rows[voted.battle_id].expired_at is not None and not rows[voted.battle_id].images_deleted
    assert rows[fresh.battle_id].expired_at is None
    assert cleanup_expired_battles(any_db, data_dir, now=now) == 0  # idempotent
    clock.now = start + dt.timedelta(minutes=55)  # even if a clock said the battle were still open
    with pytest.raises(HubInputError, match="expired"):
        arena.record_vote(unvoted[0].battle_id, "model_a", session_id="s")


def test_two_cleanups_at_once_claim_each_battle_once(any_db, tmp_path):
    clock = Clock(utcnow() - dt.timedelta(hours=3))
    arena = make_arena(any_db, tmp_path, clock, battle_ttl_minutes=10)
    served = [arena.create_battle("p", session_id=f"s{i}") for i in range(30)]
    replica = Database(any_db.url)  # a second app replica's connection pool
    totals: list[int] = []
    barrier = threading.Barrier(2)

    def run(database: Database) -> None:
        barrier.wait(timeout=30)
        totals.append(cleanup_expired_battles(database, tmp_path / "data"))

    try:
        threads = [threading.Thread(target=run, args=(d,)) for d in (any_db, replica)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    finally:
        replica.dispose()
    assert len(totals) == 2 and sum(totals) == 30  # each battle cleaned once, by one of them
    assert not any(p.exists() for s in served for p in (s.image_a, s.image_b))


def test_cleanup_thread_runs_and_stops(db, tmp_path):
    clock = Clock(utcnow() - dt.timedelta(hours=3))
    arena = make_arena(db, tmp_path, clock, battle_ttl_minutes=10)
    served = arena.create_battle("p", session_id="s")
    thread = start_cleanup_thread(db, tmp_path / "data", interval_s=0.05)
    try:
        for _ in range(200):
            if thread.cleaned:
                break
            threading.Event().wait(0.05)
    finally:
        thread.stop()
    assert thread.cleaned == 1 and thread.runs >= 1 and not thread.is_alive()
    assert not served.image_a.exists()
    with pytest.raises(ValueError, match="interval_s must be positive"):
        start_cleanup_thread(db, tmp_path, interval_s=0)


# ------------------------------------------------------------------------------------------ replicas
def test_two_arena_replicas_share_battles_on_postgresql(postgres_url, tmp_path):
    first_db, second_db = open_db(postgres_url), Database(postgres_url)
    try:
        one = make_arena(first_db, tmp_path / "one")
        two = make_arena(second_db, tmp_path / "two", votes_per_minute=5)
        served = one.create_battle("1girl", session_id="traveller")
        result = two.record_vote(served.battle_id, "model_b", session_id="traveller")
        assert {result.name_a, result.name_b} <= set(MODELS.values()) and result.counted
        one.undo_vote(served.battle_id, session_id="traveller")
        assert not two.record_vote(served.battle_id, "tie", session_id="traveller").counted
        # Another salt is another deployment: its sessions are not ours.
        stranger = make_arena(second_db, tmp_path / "three", salt=b"other-salt")
        other = one.create_battle("1girl", session_id="traveller")
        with pytest.raises(HubInputError, match="another session"):
            stranger.record_vote(other.battle_id, "model_a", session_id="traveller")
        # One budget across replicas: 20 votes from one session at once through both, limit 5.
        one.limits = two.limits
        battles = [one.record_battle("m-alpha", "m-beta", "p", "a", "b", session_hash=one.hasher.hash("burst")) for _ in range(20)]
        outcomes = burst(lambda i: (one if i % 2 else two).record_vote(battles[i], "model_a", session_id="burst"), 20)
        assert outcomes == {"ok": 5, "Too many votes: at most 5 per minute. Please wait a moment.": 15}
    finally:
        first_db.dispose()
        second_db.dispose()


# ------------------------------------------------------------------------------------------ withheld images
def test_pairs_with_a_withheld_image_are_never_served(db, tmp_path):
    arena = make_arena(db, tmp_path)
    alpha = COLOURS["m-alpha"]

    def no_alpha(image: Image.Image) -> str | None:
        return "rating: explicit" if image.getpixel((0, 0))[:3] == alpha else None

    served = [arena.create_battle("p", session_id="s", is_withheld=no_alpha) for _ in range(25)]
    with db.session() as s:
        pairs = [(b.model_a, b.model_b) for b in s.scalars(select(Battle))]
    assert len(pairs) == 25 and not any("m-alpha" in p for p in pairs)
    files = {p.name for p in (tmp_path / "data" / "arena").iterdir()}
    assert files == {p.name for b in served for p in (b.image_a, b.image_b)}  # nothing withheld was written

    before = snapshot(db)
    with pytest.raises(HubInputError, match="withheld"):
        arena.create_battle("p", session_id="s", is_withheld=lambda image: "blocked")
    assert snapshot(db) == before and len(list((tmp_path / "data" / "arena").iterdir())) == 50

    # Stored samples: a withheld sample is skipped, the battle uses the others.
    add_samples(db, tmp_path / "samples", SUITE_PROMPTS[2:], ["m-alpha", "m-beta", "m-gamma"])
    for _ in range(6):
        battle = arena.create_battle(SUITE_PROMPTS[2]["text"], session_id="s", is_withheld=no_alpha)
        with db.session() as s:
            row = s.get(Battle, battle.battle_id)
        assert {row.model_a, row.model_b} == {"m-beta", "m-gamma"} and row.image_source == "samples"
    arena.is_withheld = lambda image: "blocked"  # the Arena's own filter applies when the call gives none
    with pytest.raises(HubInputError, match="withheld"):
        arena.create_battle(SUITE_PROMPTS[2]["text"], session_id="s")


def test_bad_input_is_refused_with_nothing_stored(db, tmp_path):
    arena = make_arena(db, tmp_path)
    before = snapshot(db)
    for prompt in (None, 42, "", "   "):
        with pytest.raises(HubInputError, match="Enter a prompt"):
            arena.create_battle(prompt, session_id="s")
    for outcome in (None, "A", "model_c"):
        with pytest.raises(HubInputError, match="Unknown outcome"):
            arena.record_vote("x" * 32, outcome, session_id="s")
    with pytest.raises(HubInputError, match="Unknown battle"):
        arena.undo_vote(12345, session_id="s")
    with pytest.raises(HubInputError, match="Unknown battle kind"):
        arena.pair_rates("music")
    with pytest.raises(HubInputError, match="battle itself"):
        arena.record_battle("m-alpha", "m-alpha", "p", "a", "b")
    assert snapshot(db) == before
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(BattleRequest)) == 0


def test_old_votes_are_carried_over_by_the_migration(tmp_path):
    """A database at 0002 with votes upgrades to 0003: votes live and blind, tallies unchanged,
    sample battles get their category."""
    from sqlalchemy import text

    from leaderboards.db import upgrade

    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    database = Database(url)
    try:
        upgrade(database.engine, "0002")
        now = utcnow()
        with database.session() as s:
            for cid in ("m-alpha", "m-beta"):
                s.execute(text("INSERT INTO checkpoints (id, display_name, family, source, is_demo, status, created_at) "
                               "VALUES (:id, :id, 'sd15', 'builtin:x', false, 'available', :t)"), {"id": cid, "t": now})
        with database.session() as s:
            suite = get_or_create_suite(s, "characters", "v1", SUITE_PROMPTS[:1])
            s.flush()
            s.execute(text("INSERT INTO samples (cache_key, checkpoint_id, adapters, suite_id, prompt_id, item_id, language, "
                           "prompt_text, seed, settings_hash, image_path, created_at) VALUES ('k', 'm-alpha', '', :suite, "
                           "(SELECT id FROM prompts LIMIT 1), 'miku', 'ja', :p, 1, 'x', 'x.png', :t)"),
                      {"suite": suite.id, "p": SUITE_PROMPTS[0]["text"], "t": now})
            for source, prompt in [("samples", SUITE_PROMPTS[0]["text"]), ("generated", "typed")]:
                battle_id = new_battle_id()
                s.execute(text("INSERT INTO battles (id, kind, model_a, model_b, prompt, image_a, image_b, image_source, "
                               "created_at, expires_at) VALUES (:id, 'generate', 'm-alpha', 'm-beta', :p, 'a', 'b', :src, :t, :t)"),
                          {"id": battle_id, "p": prompt, "src": source, "t": now})
                s.execute(text("INSERT INTO votes (battle_id, outcome, created_at) VALUES (:b, 'model_a', :t)"), {"b": battle_id, "t": now})
            s.execute(text("INSERT INTO vote_tallies (model_a, model_b, outcome, n) VALUES ('m-alpha', 'm-beta', 'model_a', 2)"))
        upgrade(database.engine)
        with database.session() as s:
            assert s.scalar(select(func.count()).select_from(Vote).where(Vote.undone_at.is_(None), Vote.blind.is_(True))) == 2
            assert tallies_frame(s)["count"].tolist() == [2]
            categories = dict(s.execute(select(Battle.prompt, Battle.language)).all())
            tiers = dict(s.execute(select(Battle.prompt, Battle.tier)).all())
        assert categories == {SUITE_PROMPTS[0]["text"]: "ja", "typed": "custom"}
        assert tiers == {SUITE_PROMPTS[0]["text"]: "popular", "typed": None}
    finally:
        database.dispose()


def test_arena_modules_stay_plain_data():
    """leaderboards.arena* import nothing from hub, evals, demoworld, torch or gradio."""
    import os
    import subprocess
    import sys

    code = (
        "import sys, leaderboards.arena, leaderboards.arena_boards, leaderboards.arena_cleanup, "
        "leaderboards.arena_samples, leaderboards.arena_sampling, leaderboards.arena_sessions, leaderboards.arena_votes; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('hub', 'evals', 'demoworld', 'torch', 'diffusers', 'gradio', 'transformers')))"
    )
    root = Path(__file__).resolve().parent.parent
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(root)}, cwd=root)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


# ------------------------------------------------------------------------------------------ over HTTP
@pytest.fixture(scope="module")
def app(tmp_path_factory):
    try:
        from tests.hub_app import running_app
    except ImportError:
        from hub_app import running_app
    from hub.ui.arena_tab import arena_candidates

    folder = tmp_path_factory.mktemp("arena-v2-app")
    with running_app(folder / "data", f"sqlite:///{folder / 'app.sqlite3'}", votes_per_minute=1000) as (url, ctx):
        candidates = arena_candidates(ctx)
        assert len(candidates) == 2
        # Stored eval samples for both candidates: battles on these prompts need no generation.
        add_samples(ctx.db, folder / "samples", SUITE_PROMPTS, candidates, seeds=(1, 2, 3))
        yield url, ctx


def _client(url: str):
    from gradio_client import Client

    return Client(url, verbose=False, ssl_verify=False)


@pytest.mark.timeout(300)
def test_battle_vote_undo_personal_category_and_download_over_http(app, tmp_path):
    url, ctx = app
    arena = ctx._arena
    me, other = _client(url), _client(url)
    endpoints = me.view_api(return_format="dict", print_info=False)["named_endpoints"]
    assert [p["parameter_name"] for p in endpoints["/undo_vote"]["parameters"]] == ["battle_id"]
    assert endpoints["/personal_board"]["parameters"] == []  # no session id from the caller
    assert [p["parameter_name"] for p in endpoints["/vote"]["parameters"]] == ["battle_id", "outcome"]

    battle_id, image_a, image_b = me.predict(SUITE_PROMPTS[0]["text"], api_name="/battle")
    for path in (image_a, image_b):
        with Image.open(path) as image:
            assert image.size == (8, 8)  # the stored pixels: the page enlarges them, the API does not
    with ctx.db.session() as s:
        battle = s.get(Battle, battle_id)
    assert (battle.language, battle.tier, battle.image_source) == ("ja", "popular", "samples")
    names = me.predict(battle_id, "model_a", api_name="/vote")
    with pytest.raises(Exception, match="only undo your own vote"):
        other.predict(battle_id, api_name="/undo_vote")
    assert "Vote undone" in me.predict(battle_id, api_name="/undo_vote")
    with pytest.raises(Exception, match="already undone"):
        me.predict(battle_id, api_name="/undo_vote")
    with pytest.raises(Exception, match="Unknown battle"):
        me.predict("A" * 32, api_name="/undo_vote")
    assert me.predict(battle_id, "model_b", api_name="/vote") == names  # voted again (not counted)

    message, table = me.predict(api_name="/personal_board")
    assert "vote on 19 more battles" in message and not table["data"]
    mine = [arena.record_battle(*arena_candidates_of(ctx), "p", "a.png", "b.png", session_hash=arena.hasher.hash(client_session(ctx.data_dir, me)))
            for _ in range(19)]
    for i, bid in enumerate(mine):
        me.predict(bid, ("model_a", "tie")[i % 2], api_name="/vote")
    message, table = me.predict(api_name="/personal_board")
    assert "only you see it" in message and len(table["data"]) == 2
    assert {"your_rating", "community_rating"} <= set(table["headers"])
    assert "vote on 20 more battles" in other.predict(api_name="/personal_board")[0]

    counted_battle, _, _ = me.predict(SUITE_PROMPTS[0]["text"], api_name="/battle")
    me.predict(counted_battle, "model_b", api_name="/vote")
    table, note = me.predict("ja", "popular", api_name="/category_board")
    assert len(table["data"]) == 2 and "language **ja**" in note
    table, note = me.predict("ko", "all", api_name="/category_board")
    assert not table["data"] and "No counted votes" in note

    exported = me.predict("csv", api_name="/export_votes")
    frame = pd.read_csv(exported)
    assert list(frame.columns) == EXPORT_COLUMNS and len(frame) == 20  # 19 + 1; the undone and the repeat left out
    raw = Path(exported).read_bytes()
    assert arena.hasher.hash(client_session(ctx.data_dir, me)).encode() not in raw and client_session(ctx.data_dir, me).encode() not in raw
    assert len(pd.read_parquet(me.predict("parquet", api_name="/export_votes"))) == 20
    with pytest.raises(Exception, match="csv.*parquet"):  # Gradio checks the choice first
        me.predict("json", api_name="/export_votes")

    # Bad input: short messages, nothing stored, the server stays up.
    with ctx.db.session() as s:
        before = s.scalar(select(func.count()).select_from(Battle))
    with pytest.raises(Exception, match="Enter a prompt"):
        me.predict("   ", api_name="/battle")
    saved = arena.candidates
    arena.candidates = lambda: [saved()[0], saved()[0]]
    try:
        with pytest.raises(Exception, match="at least two different"):
            me.predict("1girl, typed", api_name="/battle")
    finally:
        arena.candidates = saved
    with ctx.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Battle)) == before
    battle_id, _, _ = other.predict(SUITE_PROMPTS[2]["text"], api_name="/battle")
    assert other.predict(battle_id, "tie", api_name="/vote")


def arena_candidates_of(ctx) -> list[str]:
    from hub.ui.arena_tab import arena_candidates

    return arena_candidates(ctx)[:2]


def test_demo_portrait_comes_from_the_context(app):
    from hub.ui import build_app

    _, ctx = app

    def portrait_button(demo) -> dict:
        (button,) = [c for c in demo.config["components"] if c.get("props", {}).get("elem_id") == "edit-arena-portrait"]
        return button["props"]

    configured = ctx.demo_portrait
    ctx.demo_portrait = None  # a deployment without the demo world
    try:
        assert portrait_button(build_app(ctx))["visible"] is False
        ctx.demo_portrait = lambda: (Image.new("RGB", (64, 64), (9, 9, 9)), "make her hair red")
        demo = build_app(ctx)
        assert portrait_button(demo)["visible"] is True
        fn = next(f.fn for f in demo.fns.values() if getattr(f.fn, "__name__", "") == "portrait")
        image, instruction = fn()
        assert image.size == (64, 64) and instruction == "make her hair red"
    finally:
        ctx.demo_portrait = configured
