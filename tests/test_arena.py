"""Arena logic (leaderboards.arena): blind serving, balanced pairs, sample reuse, vote refusals, rate
limits, salted hashing, the database's one-vote rule under a race, the board.

Images come from where the app gets them: the real engine (the app's own `engine_generator`, over four
tiny random sd15 checkpoints) for new prompts, and stored eval samples for the prompts "prompt" and "p"
(the app serves stored samples before it generates), so the many-battle tests stay cheap."""

from __future__ import annotations

import datetime as dt
import random
import stat
import threading
from collections import Counter

import pandas as pd
import pytest
from PIL import Image, PngImagePlugin
from sqlalchemy import func, select, text

from hub.errors import HubInputError
from leaderboards.arena import Arena, ArenaLimits, SessionHasher, load_salt, rebuild_tallies, sampling_rates, tallies_frame
from leaderboards.boards import ArenaBoard, arena_board_from_counts
from leaderboards.db import init_db
from leaderboards.ratings import bradley_terry
from leaderboards.results import get_or_create_suite, upsert_checkpoint
from leaderboards.schema import Battle, Sample, Vote, utcnow

try:
    from tests.pg import postgres_server, postgres_url  # noqa: F401 - fixtures
except ImportError:
    from pg import postgres_server, postgres_url  # noqa: F401

MODELS = {"secret-model-alpha": "Alpha XL", "secret-model-beta": "Beta Turbo", "secret-model-gamma": "Gamma", "secret-model-delta": "Delta"}
COLOURS = {m: (40 * i, 200 - 40 * i, 90) for i, m in enumerate(MODELS)}


SAMPLE_PROMPTS = ("prompt", "p")


@pytest.fixture(scope="module")
def arena_engine(tmp_path_factory):
    """A real engine serving the four arena models (two random sd15 builtins, at 32 px and 2 steps)."""
    from hub.config import load_config
    from hub.engine import Engine
    from tests.conftest import write_config

    folder = tmp_path_factory.mktemp("arena-engine")
    defaults = {"width": 32, "height": 32, "steps": 2, "cfg": 5.0, "sampler": "euler_a"}
    checkpoints = [{"id": cid, "name": name, "family": "sd15", "source": f"builtin:demo-random{'-b' if i % 2 else ''}",
                    "is_demo": True, "defaults": defaults} for i, (cid, name) in enumerate(MODELS.items())]
    config = load_config(write_config(folder, checkpoints=checkpoints, default_checkpoint="secret-model-alpha"))
    engine = Engine(config, device="cpu")
    yield engine
    engine.shutdown()


class GenerateSpy:
    """The app's arena generator on the real engine, recording what it was asked (checkpoint, prompt, seed)."""

    def __init__(self, engine) -> None:
        from hub.ui.arena_parts import engine_generator

        self.generate = engine_generator(engine)
        self.calls: list[tuple[str, str, int]] = []

    def __call__(self, checkpoint: str, prompt: str, seed: int):
        self.calls.append((checkpoint, prompt, seed))
        return self.generate(checkpoint, prompt, seed)


class Clock:
    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture(params=["sqlite"])
def db(request, tmp_path):
    url = f"sqlite:///{tmp_path / 'arena.sqlite3'}" if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    database = init_db(url)
    with database.session() as s:
        for cid, name in MODELS.items():
            upsert_checkpoint(s, cid, name, "sdxl", f"builtin:{cid}", None, False)
    yield database
    database.dispose()


def store_samples(db, folder, prompts=SAMPLE_PROMPTS, seeds=(1, 2)) -> None:
    """Stored eval samples of every model for `prompts` (8 px images in the model's colour)."""
    folder.mkdir(parents=True, exist_ok=True)
    with db.session() as s:
        suite = get_or_create_suite(s, "characters", f"arena-{folder.name}",
                                    [{"item_id": f"i{k}", "language": "en", "text": prompt} for k, prompt in enumerate(prompts)])
        for k, prompt in enumerate(prompts):
            for model in MODELS:
                for seed in seeds:
                    path = folder / f"{model}-{k}-{seed}.png"
                    Image.new("RGB", (8, 8), COLOURS[model]).save(path)
                    s.add(Sample(cache_key=f"{folder.name}-{model}-{k}-{seed}", checkpoint_id=model, adapters="", suite_id=suite.id,
                                 item_id=f"i{k}", language="en", prompt_text=prompt, seed=seed, settings_hash="x", image_path=str(path)))


@pytest.fixture
def arena_parts(db, tmp_path, arena_engine):
    store_samples(db, tmp_path / "stored")
    return db, tmp_path, GenerateSpy(arena_engine)


def make_arena(parts, **limits) -> tuple[Arena, GenerateSpy, Clock]:
    db, tmp_path, generator = parts
    clock = Clock()
    arena = Arena(
        db, tmp_path / "arena", SessionHasher(b"test-salt"), candidates=lambda: list(MODELS), generate=generator,
        limits=ArenaLimits(**{"votes_per_minute": 1000, "battles_per_minute": 1000, **limits}),
        rng=random.Random(7), now=clock,
    )
    return arena, generator, clock


def test_served_battle_names_no_model(db, tmp_path, arena_parts):
    arena, generator, _ = make_arena(arena_parts)
    served = arena.create_battle("1girl, red scarf", session_id="sess-1", client_ip="10.0.0.1")
    assert len(served.battle_id) >= 32
    assert served.image_a.parent == served.image_b.parent == tmp_path / "arena"
    for path in (served.image_a, served.image_b):
        assert len(path.stem) == 32 and all(c in "0123456789abcdef" for c in path.stem)
        data = path.read_bytes()
        assert not any(m.encode() in data or MODELS[m].encode() in data for m in MODELS)
        with Image.open(path) as image:
            assert not getattr(image, "text", {}) and "parameters" not in image.info
    with db.session() as s:
        battle = s.get(Battle, served.battle_id)
        assert battle.model_a != battle.model_b and battle.image_source == "generated"
        assert {battle.model_a, battle.model_b} == {c for c, _, _ in generator.calls}
        assert generator.calls[0][2] == generator.calls[1][2]  # same seed for both sides
        # Only salted hashes are stored: the raw session id and IP appear nowhere in the database.
        assert battle.session_hash == SessionHasher(b"test-salt").hash("sess-1") != "sess-1"
        assert battle.ip_hash not in (None, "10.0.0.1")
    dump = "\n".join(db.engine.raw_connection().driver_connection.iterdump()) if db.is_sqlite else ""
    assert "sess-1" not in dump and "10.0.0.1" not in dump


def test_pairs_are_uniform_without_votes_and_sides_random(db, tmp_path, arena_parts):
    """With no votes every pair has the same weight: draws are uniform over the 6 pairs, never a
    model with itself, and each model is on the left about half the time."""
    arena, _, _ = make_arena(arena_parts)
    for _ in range(240):
        arena.create_battle("prompt", session_id="s")
    with db.session() as s:
        rows = s.execute(select(Battle.model_a, Battle.model_b)).all()
    assert all(a != b for a, b in rows)
    per_pair = Counter(frozenset(r) for r in rows)
    assert len(per_pair) == 6 and all(22 <= n <= 58 for n in per_pair.values()), per_pair  # 40 +- 3 sd
    left = Counter(a for a, _ in rows)
    assert all(40 <= left[m] <= 80 for m in MODELS), left  # each model ~60 times on the left
    rates = sampling_rates_of(db)
    served = rates.set_index("checkpoint")["battles_served"]
    assert served.sum() == 480 and all(85 <= n <= 155 for n in served)  # 120 each
    assert rates["share"].sum() == pytest.approx(1.0)


def sampling_rates_of(db) -> pd.DataFrame:
    with db.session() as s:
        return sampling_rates(s)


def test_stored_eval_samples_are_reused_without_generation(db, tmp_path, arena_parts):
    arena, generator, _ = make_arena(arena_parts)
    prompt = "1girl, hatsune miku, twintails"
    sample_dir = tmp_path / "samples" / "secret-model-alpha"  # a path that names the model
    sample_dir.mkdir(parents=True)
    with db.session() as s:
        suite = get_or_create_suite(s, "characters", "h", [{"item_id": "miku", "language": "en", "text": prompt}])
        for model in ("secret-model-alpha", "secret-model-beta"):
            for seed in (1, 2):
                path = sample_dir / f"{model}-{seed}.png"
                info = PngImagePlugin.PngInfo()
                info.add_text("parameters", f"Model: {model}")
                Image.new("RGB", (8, 8), COLOURS[model]).save(path, pnginfo=info)
                s.add(Sample(cache_key=f"{model}-{seed}", checkpoint_id=model, adapters="", suite_id=suite.id, item_id="miku",
                             language="en", prompt_text=prompt, seed=seed, settings_hash="x", image_path=str(path)))
    served = arena.create_battle(prompt, session_id="s")
    assert generator.calls == []
    with db.session() as s:
        battle = s.get(Battle, served.battle_id)
    assert battle.image_source == "samples"
    assert {battle.model_a, battle.model_b} == {"secret-model-alpha", "secret-model-beta"}
    for path, model in ((served.image_a, battle.model_a), (served.image_b, battle.model_b)):
        with Image.open(path) as image:
            assert image.getpixel((0, 0))[:3] == COLOURS[model]
            assert "parameters" not in image.info
        assert b"secret-model" not in path.read_bytes()
    arena.create_battle("a prompt with no samples", session_id="s")
    assert len(generator.calls) == 2


def test_vote_records_once_and_reveals_names(db, tmp_path, arena_parts):
    arena, _, _ = make_arena(arena_parts)
    served = arena.create_battle("prompt", session_id="s1")
    result = arena.record_vote(served.battle_id, "tie (bothbad)", session_id="s1")
    with db.session() as s:
        battle = s.get(Battle, served.battle_id)
    assert (result.model_a, result.model_b) == (battle.model_a, battle.model_b)
    assert (result.name_a, result.name_b) == (MODELS[battle.model_a], MODELS[battle.model_b])
    with pytest.raises(HubInputError, match="already has a vote"):
        arena.record_vote(served.battle_id, "model_a", session_id="s1")
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Vote)) == 1
        assert tallies_frame(s).to_dict("records") == [
            {"model_a": battle.model_a, "model_b": battle.model_b, "winner": "tie (bothbad)", "count": 1}
        ]


@pytest.mark.parametrize(
    "battle_id, outcome, message",
    [
        ("A" * 32, "model_a", "Unknown battle"),  # well-formed but forged
        ("../../etc/passwd", "model_a", "Unknown battle"),
        ("", "model_a", "Unknown battle"),
        (None, "model_a", "Unknown battle"),
        ("VALID", "bothbad", "Unknown outcome"),
        ("VALID", "tie(bothbad)", "Unknown outcome"),
        ("VALID", "", "Unknown outcome"),
    ],
)
def test_bad_votes_are_refused(db, tmp_path, arena_parts, battle_id, outcome, message):
    arena, _, _ = make_arena(arena_parts)
    served = arena.create_battle("prompt", session_id="s")
    with pytest.raises(HubInputError, match=message):
        arena.record_vote(served.battle_id if battle_id == "VALID" else battle_id, outcome, session_id="s")
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Vote)) == 0


def test_expired_battle_and_other_session_are_refused(db, tmp_path, arena_parts):
    arena, _, clock = make_arena(arena_parts, battle_ttl_minutes=5)
    served = arena.create_battle("prompt", session_id="owner")
    with pytest.raises(HubInputError, match="another session"):
        arena.record_vote(served.battle_id, "model_a", session_id="intruder")
    clock.now += dt.timedelta(minutes=6)
    with pytest.raises(HubInputError, match="expired"):
        arena.record_vote(served.battle_id, "model_a", session_id="owner")


def test_rate_limits_per_session_and_ip(db, tmp_path, arena_parts):
    arena, _, clock = make_arena(arena_parts, votes_per_minute=3, battles_per_minute=4, ip_multiplier=2)
    battles = [arena.create_battle("p", session_id="s1", client_ip="1.1.1.1") for _ in range(4)]
    with pytest.raises(HubInputError, match="Too many new battles"):
        arena.create_battle("p", session_id="s1", client_ip="1.1.1.1")
    for served in battles[:3]:
        arena.record_vote(served.battle_id, "model_a", session_id="s1", client_ip="1.1.1.1")
    with pytest.raises(HubInputError, match="Too many votes: at most 3 per minute"):
        arena.record_vote(battles[3].battle_id, "model_a", session_id="s1", client_ip="1.1.1.1")
    # Same IP, other sessions: the per-IP limit (3 x 2) still applies.
    others = [arena.create_battle("p", session_id=f"o{i}", client_ip="1.1.1.1") for i in range(4)]
    for served, session in zip(others[:3], ("o0", "o1", "o2"), strict=True):
        arena.record_vote(served.battle_id, "model_b", session_id=session, client_ip="1.1.1.1")
    with pytest.raises(HubInputError, match="at most 6 per minute"):
        arena.record_vote(others[3].battle_id, "model_b", session_id="o3", client_ip="1.1.1.1")
    clock.now += dt.timedelta(seconds=61)  # the window moves on
    arena.record_vote(battles[3].battle_id, "model_a", session_id="s1", client_ip="1.1.1.1")


def test_prompt_is_checked(db, tmp_path, arena_parts):
    arena, _, _ = make_arena(arena_parts, max_prompt_chars=20)
    with pytest.raises(HubInputError, match="Enter a prompt"):
        arena.create_battle("   ", session_id="s")
    with pytest.raises(HubInputError, match="too long"):
        arena.create_battle("x" * 21, session_id="s")
    few = Arena(db, tmp_path, SessionHasher(b"s"), candidates=lambda: ["secret-model-alpha"], generate=arena_parts[2])
    with pytest.raises(HubInputError, match="at least two"):
        few.create_battle("p")


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_simultaneous_votes_on_one_battle_store_exactly_one(backend, tmp_path, request, arena_engine):
    url = f"sqlite:///{tmp_path / 'race.sqlite3'}" if backend == "sqlite" else request.getfixturevalue("postgres_url")
    database = init_db(url)
    try:
        with database.session() as s:
            for cid, name in MODELS.items():
                upsert_checkpoint(s, cid, name, "sdxl", f"builtin:{cid}", None, False)
        arena, _, _ = make_arena((database, tmp_path, GenerateSpy(arena_engine)))
        battle_ids = [arena.record_battle("secret-model-alpha", "secret-model-beta", "p", "a", "b") for _ in range(20)]
        outcomes: list[str] = []
        barrier = threading.Barrier(8)

        def voter(k: int) -> None:
            for battle_id in battle_ids:
                try:
                    barrier.wait(timeout=30)
                    arena.record_vote(battle_id, ("model_a", "model_b", "tie", "tie (bothbad)")[k % 4])
                    outcomes.append("ok")
                except HubInputError as err:
                    outcomes.append("dup" if "already has a vote" in str(err) else str(err))

        threads = [threading.Thread(target=voter, args=(k,)) for k in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert Counter(outcomes) == {"ok": 20, "dup": 140}
        with database.session() as s:
            assert s.scalar(select(func.count()).select_from(Vote)) == 20
            assert s.scalar(text("SELECT SUM(n) FROM vote_tallies")) == 20
    finally:
        database.dispose()


def test_salt_file_is_created_once_and_private(tmp_path, monkeypatch):
    monkeypatch.delenv("HUB_SESSION_SALT", raising=False)
    salt = load_salt(tmp_path)
    assert salt == load_salt(tmp_path) and len(salt) == 64
    assert stat.S_IMODE((tmp_path / "session_salt").stat().st_mode) == 0o600
    monkeypatch.setenv("HUB_SESSION_SALT", "from-env")
    assert load_salt(tmp_path) == b"from-env"
    assert SessionHasher(b"a").hash("s") != SessionHasher(b"b").hash("s")
    assert SessionHasher(b"a").hash("s", "session") != SessionHasher(b"a").hash("s", "ip")
    assert SessionHasher(b"a").hash(None) is None


def test_board_from_tallies_matches_ratings_on_votes(db, tmp_path, arena_parts, capsys):
    arena, _, _ = make_arena(arena_parts)
    rng = random.Random(3)
    strength = {"secret-model-alpha": 1200, "secret-model-beta": 1000, "secret-model-gamma": 900, "secret-model-delta": 800}
    rows = []
    for _ in range(400):
        served = arena.create_battle("p", session_id="s")
        with db.session() as s:
            battle = s.get(Battle, served.battle_id)
        p = 1 / (1 + 10 ** ((strength[battle.model_b] - strength[battle.model_a]) / 400))
        outcome = "tie" if rng.random() < 0.1 else ("model_a" if rng.random() < p else "model_b")
        arena.record_vote(served.battle_id, outcome, session_id="s")
        rows.append((battle.model_a, battle.model_b, outcome))
    cached = ArenaBoard(db, min_battles=50)
    cached.wait_for_elo()
    board = cached.table()
    direct = bradley_terry(pd.DataFrame(rows, columns=["model_a", "model_b", "winner"]), min_battles=50)
    assert list(board["checkpoint"]) == list(direct.index) == sorted(strength, key=strength.get, reverse=True)
    assert list(board["rating"]) == [round(r) for r in direct["rating"]]
    assert list(board["name"]) == [MODELS[m] for m in board["checkpoint"]]
    assert board["elo"].notna().all() and not board["provisional"].any()
    with db.session() as s:
        before = tallies_frame(s).sort_values(["model_a", "model_b", "winner"]).reset_index(drop=True)
    with db.write_session() as s:
        rebuild_tallies(s)
    with db.session() as s:
        after = tallies_frame(s).sort_values(["model_a", "model_b", "winner"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(before, after)
    assert arena_board_from_counts(before.iloc[0:0]).empty

    from leaderboards.__main__ import main

    assert main(["--db", db.url, "ratings", "--min-battles", "50"]) == 0
    printed = capsys.readouterr().out
    assert all(name in printed for name in MODELS.values()) and "rating" in printed
