"""Blind arena battles and votes.

A battle is served as `(battle_id, image_a, image_b)`: the id is an unguessable random token, the images
are PNG files with random names and no metadata, so nothing names the models before the vote.

- Pairs are drawn balanced over pairs (the least-served pair among the candidates, ties broken at
  random) and the sides are swapped at random, so no model is drawn against the leader more than others.
- When stored eval samples exist for the exact prompt (no adapters), the battle reuses them (no GPU
  work); otherwise both images are generated with the same seed through the `generate` callable.
- One vote per battle is enforced by the database (UNIQUE battle_id); outcomes by a CHECK; a vote is
  refused for unknown/forged/expired ids, a battle served to another session, or over the per-session
  (and per-IP) rate limit. The vote and its tally update commit in one transaction.
- Edit battles (`create_edit_battle`, kind 'edit'): two edit-capable checkpoints edit the same input
  image with the same instruction and seed through the `edit` callable. They are voted through the same
  `record_vote`, but rated on their own board: `vote_tallies` (the generation board's input) counts
  only 'generate' battles, and the edit board reads `vote_counts(session, "edit")`.
- Sessions and client IPs are stored only as salted HMAC-SHA256 hashes. The salt comes from
  `HUB_SESSION_SALT`, else from `<data_dir>/session_salt` (created, mode 0600, on first use).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os
import random
import re
import secrets
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from PIL import Image
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hub.errors import HubInputError
from leaderboards.db import Database
from leaderboards.schema import VOTE_OUTCOMES, Battle, Checkpoint, Sample, Vote, VoteTally, as_utc, utcnow

SALT_ENV = "HUB_SESSION_SALT"
SALT_FILE = "session_salt"
BATTLE_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{20,64}$")
RATE_WINDOW = dt.timedelta(minutes=1)

# (checkpoint_id, prompt, seed) -> (PIL image, recipe or None). The recipe goes to `save_image`.
GenerateFn = Callable[[str, str, int], tuple[Image.Image, Any]]
SaveImageFn = Callable[[Image.Image, Any, Path], None]
# (checkpoint_id, input image, instruction, seed) -> (PIL image, recipe or None).
EditFn = Callable[[str, Image.Image, str, int], tuple[Image.Image, Any]]
# Which battles feed `vote_tallies` (the generation arena board).
TALLIED_KIND = "generate"


@dataclass(frozen=True)
class ArenaLimits:
    votes_per_minute: int = 30
    battles_per_minute: int = 10
    battle_ttl_minutes: int = 60
    # Per-IP limits are this many times the per-session ones (many users can share one IP).
    ip_multiplier: int = 10
    max_prompt_chars: int = 1000

    @classmethod
    def from_config(cls, limits: Any) -> ArenaLimits:
        """From `hub.config.Limits` (or anything with the same attribute names)."""
        defaults = cls()
        return cls(
            votes_per_minute=int(getattr(limits, "votes_per_minute", defaults.votes_per_minute)),
            battles_per_minute=int(getattr(limits, "battles_per_minute", defaults.battles_per_minute)),
            battle_ttl_minutes=int(getattr(limits, "battle_ttl_minutes", defaults.battle_ttl_minutes)),
            max_prompt_chars=int(getattr(limits, "max_prompt_chars", defaults.max_prompt_chars)),
        )


def load_salt(data_dir: str | Path | None = None) -> bytes:
    """The hashing salt: `HUB_SESSION_SALT`, else `<data_dir>/session_salt` (created on first use)."""
    env = os.environ.get(SALT_ENV, "")
    if env:
        return env.encode()
    if data_dir is None:
        raise ValueError(f"no salt: set {SALT_ENV} or give a data dir")
    path = Path(data_dir) / SALT_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # O_EXCL: two processes starting together agree on one salt (the loser reads the winner's).
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32))
    for _ in range(100):
        text = path.read_text().strip()
        if text:
            return text.encode()
        threading.Event().wait(0.01)  # the creator is still writing
    raise RuntimeError(f"{path} is empty")


class SessionHasher:
    """Salted HMAC-SHA256 of session ids and IPs (only these hashes are stored)."""

    def __init__(self, salt: bytes) -> None:
        if not salt:
            raise ValueError("empty salt")
        self._salt = salt

    def hash(self, value: str | None, kind: str = "session") -> str | None:
        if not value:
            return None
        return hmac.new(self._salt, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class ServedBattle:
    battle_id: str
    image_a: Path
    image_b: Path


@dataclass(frozen=True)
class VoteResult:
    battle_id: str
    outcome: str
    model_a: str
    model_b: str
    name_a: str
    name_b: str


def save_clean_png(image: Image.Image, _recipe: Any, path: Path) -> None:
    """Save pixels only: no text chunks, EXIF or ICC profile (nothing that could name the model)."""
    clean = image.convert("RGBA" if image.mode in ("RGBA", "LA", "P") else "RGB").copy()
    clean.info = {}
    clean.save(path, format="PNG")


def new_battle_id() -> str:
    return secrets.token_urlsafe(24)  # 32 chars, 192 random bits


def bump_tally(session: Session, model_a: str, model_b: str, outcome: str, by: int = 1) -> None:
    """vote_tallies[(a, b, outcome)] += by, as one upsert statement."""
    table = VoteTally.__table__
    values = {"model_a": model_a, "model_b": model_b, "outcome": outcome, "n": by}
    dialect = session.get_bind().dialect.name
    if dialect in ("sqlite", "postgresql"):
        if dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert as dialect_insert
        else:
            from sqlalchemy.dialects.postgresql import insert as dialect_insert
        stmt = dialect_insert(table).values(**values)
        stmt = stmt.on_conflict_do_update(
            index_elements=["model_a", "model_b", "outcome"], set_={"n": table.c.n + stmt.excluded.n}
        )
        session.execute(stmt)
        return
    where = (table.c.model_a == model_a, table.c.model_b == model_b, table.c.outcome == outcome)
    if session.execute(update(table).where(*where).values(n=table.c.n + by)).rowcount == 0:
        session.execute(insert(table).values(**values))


def _grouped_votes(session: Session, kind: str) -> Sequence[Any]:
    """(model_a, model_b, outcome, count) over the votes on battles of one kind."""
    return session.execute(
        select(Battle.model_a, Battle.model_b, Vote.outcome, func.count())
        .join(Vote, Vote.battle_id == Battle.id)
        .where(Battle.kind == kind)
        .group_by(Battle.model_a, Battle.model_b, Vote.outcome)
    ).all()


def rebuild_tallies(session: Session) -> None:
    """Recompute `vote_tallies` from `votes` on generation battles (repair tool; normally maintained per vote)."""
    session.execute(delete(VoteTally))
    rows = _grouped_votes(session, TALLIED_KIND)
    if rows:
        session.execute(
            insert(VoteTally), [{"model_a": a, "model_b": b, "outcome": o, "n": n} for a, b, o, n in rows]
        )


def tallies_frame(session: Session) -> pd.DataFrame:
    """Vote counts as (model_a, model_b, winner, count) rows: the input of `bradley_terry_from_counts`."""
    table = VoteTally.__table__
    rows = session.connection().execute(select(table.c.model_a, table.c.model_b, table.c.outcome, table.c.n)).all()
    return rows_frame(rows, ["model_a", "model_b", "winner", "count"])


def vote_counts(session: Session, kind: str = TALLIED_KIND) -> pd.DataFrame:
    """(model_a, model_b, winner, count) for one battle kind: the tallies for 'generate'; for 'edit'
    (far fewer votes) grouped from `votes` directly."""
    if kind == TALLIED_KIND:
        return tallies_frame(session)
    return rows_frame(_grouped_votes(session, kind), ["model_a", "model_b", "winner", "count"])


def rows_frame(rows: Sequence[Any], columns: list[str]) -> pd.DataFrame:
    """DataFrame from result rows, column by column (pandas is slow on a list of Row objects)."""
    if not rows:
        return pd.DataFrame({c: [] for c in columns})
    return pd.DataFrame(dict(zip(columns, (list(col) for col in zip(*rows)), strict=True)))


def sampling_rates(session: Session, kind: str = TALLIED_KIND) -> pd.DataFrame:
    """How often each checkpoint was served in battles of one kind, and voted on (public sampling rates)."""
    served: dict[str, int] = {}
    for column in (Battle.model_a, Battle.model_b):
        for model, n in session.execute(select(column, func.count()).where(Battle.kind == kind).group_by(column)):
            served[model] = served.get(model, 0) + int(n)
    voted: dict[str, int] = {}
    counts = vote_counts(session, kind)
    pair_votes = counts.groupby(["model_a", "model_b"])["count"].sum() if not counts.empty else {}
    for (model_a, model_b), n in dict(pair_votes).items():
        voted[model_a] = voted.get(model_a, 0) + int(n)
        voted[model_b] = voted.get(model_b, 0) + int(n)
    total_slots = sum(served.values())
    frame = pd.DataFrame(
        {
            "checkpoint": sorted(served),
            "battles_served": [served[m] for m in sorted(served)],
            "votes": [voted.get(m, 0) for m in sorted(served)],
        }
    )
    frame["share"] = frame["battles_served"] / total_slots if total_slots else 0.0
    return frame


class PairBalancer:
    """Per-pair served counts of one battle kind (loaded once from the database, then counted in process)."""

    def __init__(self, kind: str = TALLIED_KIND) -> None:
        self.kind = kind
        self._counts: dict[frozenset[str], int] | None = None
        self._lock = threading.Lock()

    def _load(self, session: Session) -> dict[frozenset[str], int]:
        counts: dict[frozenset[str], int] = {}
        for a, b, n in session.execute(
            select(Battle.model_a, Battle.model_b, func.count())
            .where(Battle.kind == self.kind)
            .group_by(Battle.model_a, Battle.model_b)
        ):
            key = frozenset((a, b))
            counts[key] = counts.get(key, 0) + int(n)
        return counts

    def draw(self, session: Session, candidates: Sequence[str], rng: random.Random) -> tuple[str, str]:
        """The least-served pair (random among equals), sides in random order; counts it as served."""
        models = sorted(set(candidates))
        if len(models) < 2:
            raise HubInputError("The arena needs at least two available checkpoints.")
        with self._lock:
            if self._counts is None:
                self._counts = self._load(session)
            pairs = [(a, b) for i, a in enumerate(models) for b in models[i + 1 :]]
            fewest = min(self._counts.get(frozenset(p), 0) for p in pairs)
            a, b = rng.choice([p for p in pairs if self._counts.get(frozenset(p), 0) == fewest])
            self._counts[frozenset((a, b))] = fewest + 1
        return (a, b) if rng.random() < 0.5 else (b, a)


class Arena:
    """Serves battles and records votes. Thread-safe; one per process."""

    def __init__(
        self,
        db: Database,
        image_dir: str | Path,
        hasher: SessionHasher,
        *,
        candidates: Callable[[], Sequence[str]],
        generate: GenerateFn | None = None,
        edit_candidates: Callable[[], Sequence[str]] | None = None,
        edit: EditFn | None = None,
        save_image: SaveImageFn = save_clean_png,
        limits: ArenaLimits = ArenaLimits(),
        rng: random.Random | None = None,
        now: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self.db = db
        self.image_dir = Path(image_dir)
        self.hasher = hasher
        self.candidates = candidates
        self.generate = generate
        self.edit_candidates = edit_candidates
        self.edit = edit
        self.save_image = save_image
        self.limits = limits
        self._rng = rng or random.SystemRandom()
        self._rng_lock = threading.Lock()
        self._now = now
        self._balancer = PairBalancer("generate")
        self._edit_balancer = PairBalancer("edit")

    # ------------------------------------------------------------------------------ battles
    def create_battle(
        self, prompt: str, session_id: str | None = None, client_ip: str | None = None
    ) -> ServedBattle:
        prompt = (prompt or "").strip()
        if not prompt:
            raise HubInputError("Enter a prompt first.")
        if len(prompt) > self.limits.max_prompt_chars:
            raise HubInputError(f"The prompt is too long (max {self.limits.max_prompt_chars} characters).")
        session_hash = self.hasher.hash(session_id, "session")
        ip_hash = self.hasher.hash(client_ip, "ip")
        now = self._now()
        with self.db.session() as session:
            self._check_rate(
                session, Battle, session_hash, ip_hash, now, self.limits.battles_per_minute, "new battles"
            )
            candidates = [c for c in dict.fromkeys(self.candidates())]
            stored = self._stored_samples(session, prompt, candidates)
        image_dir = self.image_dir
        image_dir.mkdir(parents=True, exist_ok=True)
        path_a = image_dir / f"{secrets.token_hex(16)}.png"
        path_b = image_dir / f"{secrets.token_hex(16)}.png"
        with self._rng_lock:
            rng = random.Random(self._rng.getrandbits(64))
        with self.db.session() as session:
            if len(stored) >= 2:
                model_a, model_b = self._balancer.draw(session, list(stored), rng)
                source = "samples"
            else:
                model_a, model_b = self._balancer.draw(session, candidates, rng)
                source = "generated"
        if source == "samples":
            seeds = sorted(set(stored[model_a]) & set(stored[model_b]))
            seed_a = seed_b = rng.choice(seeds) if seeds else None
            if seed_a is None:
                seed_a, seed_b = rng.choice(sorted(stored[model_a])), rng.choice(sorted(stored[model_b]))
            for model, seed, path in ((model_a, seed_a, path_a), (model_b, seed_b, path_b)):
                with Image.open(stored[model][seed]) as img:
                    img.load()
                    self.save_image(img, None, path)
        else:
            if self.generate is None:
                raise HubInputError("No stored images for this prompt, and generation is not available here.")
            seed = rng.randrange(2**31)
            for model, path in ((model_a, path_a), (model_b, path_b)):
                image, recipe = self.generate(model, prompt, seed)
                self.save_image(image, recipe, path)
        battle_id = self.record_battle(
            model_a, model_b, prompt, path_a, path_b, session_hash=session_hash, ip_hash=ip_hash, image_source=source
        )
        return ServedBattle(battle_id, path_a, path_b)

    def create_edit_battle(
        self,
        image: Image.Image,
        instruction: str,
        session_id: str | None = None,
        client_ip: str | None = None,
    ) -> ServedBattle:
        """A blind edit battle: two edit-capable checkpoints edit `image` with `instruction`, same seed."""
        if not isinstance(image, Image.Image):
            raise HubInputError("Upload an image to edit first.")
        instruction = (instruction or "").strip() if isinstance(instruction, str) else ""
        if not instruction:
            raise HubInputError("Enter an edit instruction first.")
        if len(instruction) > self.limits.max_prompt_chars:
            raise HubInputError(f"The instruction is too long (max {self.limits.max_prompt_chars} characters).")
        if self.edit is None or self.edit_candidates is None:
            raise HubInputError("Editing is not available here.")
        candidates = list(dict.fromkeys(self.edit_candidates()))
        if len(candidates) < 2:
            raise HubInputError("The edit arena needs at least two available edit-capable checkpoints.")
        session_hash = self.hasher.hash(session_id, "session")
        ip_hash = self.hasher.hash(client_ip, "ip")
        with self.db.session() as session:
            # One budget for new battles of either kind.
            self._check_rate(
                session, Battle, session_hash, ip_hash, self._now(), self.limits.battles_per_minute, "new battles"
            )
        with self._rng_lock:
            rng = random.Random(self._rng.getrandbits(64))
        with self.db.session() as session:
            model_a, model_b = self._edit_balancer.draw(session, candidates, rng)
        self.image_dir.mkdir(parents=True, exist_ok=True)
        path_a = self.image_dir / f"{secrets.token_hex(16)}.png"
        path_b = self.image_dir / f"{secrets.token_hex(16)}.png"
        seed = rng.randrange(2**31)
        source = image.copy()
        source.info = {}
        for model, path in ((model_a, path_a), (model_b, path_b)):
            try:
                edited, recipe = self.edit(model, source.copy(), instruction, seed)
            except HubInputError as err:
                # The battle is blind: an input error must not name the checkpoint that raised it.
                message = str(err)
                for name in (model_a, model_b):
                    message = message.replace(repr(name), "one of the checkpoints").replace(name, "one of the checkpoints")
                raise HubInputError(message) from None
            self.save_image(edited, recipe, path)
        battle_id = self.record_battle(
            model_a, model_b, instruction, path_a, path_b,
            session_hash=session_hash, ip_hash=ip_hash, image_source="generated", kind="edit",
        )
        return ServedBattle(battle_id, path_a, path_b)

    def record_battle(
        self,
        model_a: str,
        model_b: str,
        prompt: str,
        image_a: str | Path,
        image_b: str | Path,
        *,
        session_hash: str | None = None,
        ip_hash: str | None = None,
        image_source: str = "generated",
        kind: str = "generate",
    ) -> str:
        """Store a served battle (images already written) and return its id."""
        battle_id = new_battle_id()
        now = self._now()
        with self.db.write_session() as session:
            session.add(
                Battle(
                    id=battle_id,
                    kind=kind,
                    model_a=model_a,
                    model_b=model_b,
                    prompt=prompt,
                    image_a=str(image_a),
                    image_b=str(image_b),
                    session_hash=session_hash,
                    ip_hash=ip_hash,
                    image_source=image_source,
                    created_at=now,
                    expires_at=now + dt.timedelta(minutes=self.limits.battle_ttl_minutes),
                )
            )
        return battle_id

    def _stored_samples(self, session: Session, prompt: str, candidates: Sequence[str]) -> dict[str, dict[int, str]]:
        """checkpoint -> {seed: image path} of stored eval samples for exactly this prompt."""
        if not candidates:
            return {}
        found: dict[str, dict[int, str]] = {}
        rows = session.execute(
            select(Sample.checkpoint_id, Sample.seed, Sample.image_path).where(
                Sample.prompt_text == prompt, Sample.adapters == "", Sample.checkpoint_id.in_(list(candidates))
            )
        )
        for checkpoint_id, seed, image_path in rows:
            if Path(image_path).is_file():
                found.setdefault(checkpoint_id, {})[int(seed)] = image_path
        return found

    # ------------------------------------------------------------------------------ votes
    def record_vote(
        self, battle_id: str, outcome: str, session_id: str | None = None, client_ip: str | None = None
    ) -> VoteResult:
        """Record one vote; returns both identities. Raises HubInputError with the reason if refused."""
        if outcome not in VOTE_OUTCOMES:
            raise HubInputError(f"Unknown outcome {str(outcome)[:40]!r}: choose one of {', '.join(VOTE_OUTCOMES)}.")
        if not isinstance(battle_id, str) or not BATTLE_ID_PATTERN.match(battle_id):
            raise HubInputError("Unknown battle: start a new battle.")
        session_hash = self.hasher.hash(session_id, "session")
        ip_hash = self.hasher.hash(client_ip, "ip")
        now = self._now()
        try:
            with self.db.write_session() as session:
                battle = session.get(Battle, battle_id)
                if battle is None:
                    raise HubInputError("Unknown battle: start a new battle.")
                if session.execute(select(Vote.id).where(Vote.battle_id == battle_id)).first() is not None:
                    raise HubInputError("This battle already has a vote: start a new battle.")
                if as_utc(battle.expires_at) <= now:
                    raise HubInputError("This battle has expired: start a new battle.")
                if battle.session_hash and session_hash and battle.session_hash != session_hash:
                    raise HubInputError("This battle was served to another session.")
                self._check_rate(session, Vote, session_hash, ip_hash, now, self.limits.votes_per_minute, "votes")
                session.add(
                    Vote(battle_id=battle_id, outcome=outcome, session_hash=session_hash, ip_hash=ip_hash, created_at=now)
                )
                session.flush()  # the UNIQUE(battle_id) check fires here, before the tally moves
                if battle.kind == TALLIED_KIND:  # edit votes go to the edit board only
                    bump_tally(session, battle.model_a, battle.model_b, outcome)
                names = dict(
                    session.execute(
                        select(Checkpoint.id, Checkpoint.display_name).where(
                            Checkpoint.id.in_([battle.model_a, battle.model_b])
                        )
                    ).all()
                )
                model_a, model_b = battle.model_a, battle.model_b
        except IntegrityError:
            # A concurrent vote on the same battle committed first (UNIQUE battle_id).
            raise HubInputError("This battle already has a vote: start a new battle.") from None
        return VoteResult(
            battle_id, outcome, model_a, model_b, names.get(model_a, model_a), names.get(model_b, model_b)
        )

    def _check_rate(
        self,
        session: Session,
        table: type[Battle] | type[Vote],
        session_hash: str | None,
        ip_hash: str | None,
        now: dt.datetime,
        per_minute: int,
        what: str,
    ) -> None:
        since = now - RATE_WINDOW
        checks = ((table.session_hash, session_hash, per_minute), (table.ip_hash, ip_hash, per_minute * self.limits.ip_multiplier))
        for column, value, limit in checks:
            if value is None:
                continue
            recent = session.execute(
                select(func.count()).select_from(table).where(column == value, table.created_at > since)
            ).scalar_one()
            if recent >= limit:
                raise HubInputError(f"Too many {what}: at most {limit} per minute. Please wait a moment.")
