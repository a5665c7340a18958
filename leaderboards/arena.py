"""Blind arena battles and votes.

A battle is served as `(battle_id, image_a, image_b)`: the id is an unguessable random token, the images
are PNG files with random names and no metadata, so nothing names the models before the vote.

- Pairs: drawn by `arena_sampling.PairSampler` (never a model with itself; pairs with few votes and
  models with wide intervals are favoured, every pair keeps a known minimum rate; see that module's
  docstring for the rule). Sides are swapped at random.
- Images: when stored eval samples exist for the exact prompt (no adapters) from at least two
  candidates, the battle reuses them (no GPU work) and records their category: the sample's prompt
  language and, for character suites, its tier (`prompts.meta`). Otherwise both images are generated
  with the same seed through the `generate` callable; the category is language 'custom', no tier.
- Withheld images: an optional `is_withheld(image) -> reason | None` (per call or per Arena) is asked
  about both images before anything is written; a pair with a withheld side is never served: another
  pair is drawn without the withheld side (that stored sample, or that model for this generated
  prompt), up to MAX_DRAWS times, then the request is refused with a short message.
- Votes: one *live* vote per battle, enforced by the database (a unique index on battle_id over the
  votes with undone_at IS NULL); outcomes by a CHECK. A vote is refused for unknown/forged/expired ids,
  a battle served to another session, or over the per-session (and per-IP) rate limit. The vote and
  its tally update commit in one transaction.
- Undo (`undo_vote`): the voter's own last vote, within `limits.undo_seconds` (30 s), once per battle. The vote
  row stays on record with `undone_at` set, its tally is taken back in the same transaction, and the
  battle can be voted on again. That second vote is cast after the names were shown, so it is stored
  with blind = false: it counts on the voter's personal board, not in the community tallies/ratings
  (only blind votes count). Refused (nothing changed): too late, not the last vote, someone else's
  vote, unknown battle, already undone, a battle already undone once.
- Exact limits (`arena_sessions`): each budget check and the insert that spends it share one write
  transaction that first serialises on the hashed session and IP (advisory locks on PostgreSQL; SQLite
  has one writer). New battles are admitted by a `battle_requests` row written *before* any image is
  generated (a request that then fails still used its slot); votes count the `votes` rows (undone
  ones included, so vote-undo cycles cannot beat the limit).
- Edit battles (`create_edit_battle`, kind 'edit'): two edit-capable checkpoints edit the same input
  image with the same instruction and seed through the `edit` callable. They are voted through the same
  `record_vote`, but rated on their own board: `vote_tallies` (the generation board's input) counts
  only 'generate' battles, and the edit board reads `vote_counts(session, "edit")`.
- Sessions and client IPs are stored only as salted HMAC-SHA256 hashes (`arena_sessions`). Replicas
  sharing one database and one salt serve and accept each other's battles.

Related modules: `arena_ballots` (votes and their undo: `Arena.record_vote`, `undo_vote`,
`personal_board`), `arena_sessions` (salt, hashes, limits, locks), `arena_votes` (which votes count,
tallies, the votes download), `arena_sampling` (pairs, sampling-rate tables), `arena_samples` (reusing
stored eval samples), `arena_boards` (per-category and personal boards), `arena_cleanup` (deleting the
images of expired, unvoted battles).
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import secrets
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from PIL import Image

from core.errors import InputError as HubInputError
from leaderboards.arena_ballots import BANNED_MESSAGE, ArenaBallots, UndoResult, VoteResult
from leaderboards.arena_samples import sample_seeds, stored_samples, suite_prompts
from leaderboards.arena_sampling import PairSampler, sampling_rates
from leaderboards.arena_sessions import (
    RATE_WINDOW,
    SALT_ENV,
    SALT_FILE,
    ArenaLimits,
    SessionHasher,
    advisory_key,
    advisory_lock,
    check_rate,
    load_salt,
)
from leaderboards.arena_votes import TALLIED_KIND, rebuild_tallies, rows_frame, tallies_frame, vote_counts
from leaderboards.db import Database
from leaderboards.moderation import BanList
from leaderboards.schema import CUSTOM_LANGUAGE, Battle, BattleRequest, utcnow

__all__ = [
    "RATE_WINDOW",
    "SALT_ENV",
    "SALT_FILE",
    "advisory_key",
    "advisory_lock",
    "check_rate",
    "Arena",
    "ArenaLimits",
    "ServedBattle",
    "SessionHasher",
    "UndoResult",
    "VoteResult",
    "TALLIED_KIND",
    "load_salt",
    "new_battle_id",
    "rebuild_tallies",
    "rows_frame",
    "sampling_rates",
    "save_clean_png",
    "tallies_frame",
    "vote_counts",
]

log = logging.getLogger(__name__)

MAX_DRAWS = 3
WITHHELD_MESSAGE = "The content filter withheld the images for this prompt: try another prompt."

# (checkpoint_id, prompt, seed) -> (PIL image, recipe or None). The recipe goes to `save_image`.
GenerateFn = Callable[[str, str, int], tuple[Image.Image, Any]]
SaveImageFn = Callable[[Image.Image, Any, Path], None]
# (checkpoint_id, input image, instruction, seed) -> (PIL image, recipe or None).
EditFn = Callable[[str, Image.Image, str, int], tuple[Image.Image, Any]]
# image -> why it is withheld (logged, never shown), or None when it may be shown.
WithheldFn = Callable[[Image.Image], str | None]


@dataclass(frozen=True)
class ServedBattle:
    battle_id: str
    image_a: Path
    image_b: Path


def save_clean_png(image: Image.Image, _recipe: Any, path: Path) -> None:
    """Save pixels only: no text chunks, EXIF or ICC profile (nothing that could name the model)."""
    clean = image.convert("RGBA" if image.mode in ("RGBA", "LA", "P") else "RGB").copy()
    clean.info = {}
    clean.save(path, format="PNG")


def new_battle_id() -> str:
    return secrets.token_urlsafe(24)  # 32 chars, 192 random bits


def _load_image(path: str | Path) -> Image.Image:
    with Image.open(path) as image:
        image.load()
        return image.copy()


class Arena(ArenaBallots):
    """Serves battles and records votes (`ArenaBallots`). Thread-safe; one per process (several replicas may share a
    database and a salt)."""

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
        is_withheld: WithheldFn | None = None,
        sampler_refresh_s: float = 10.0,
    ) -> None:
        self.db = db
        # Absolute, so the clean-up job can tell which stored paths lie in its data folder.
        self.image_dir = Path(image_dir).absolute()
        self.hasher = hasher
        self.candidates = candidates
        self.generate = generate
        self.edit_candidates = edit_candidates
        self.edit = edit
        self.save_image = save_image
        self.limits = limits
        self.is_withheld = is_withheld
        self._rng = rng or random.SystemRandom()
        self._rng_lock = threading.Lock()
        self._now = now
        self.bans = BanList(db)
        self.samplers = {
            "generate": PairSampler("generate", refresh_s=sampler_refresh_s),
            "edit": PairSampler("edit", refresh_s=sampler_refresh_s),
        }

    def _new_rng(self) -> random.Random:
        with self._rng_lock:
            return random.Random(self._rng.getrandbits(64))

    def _draw(self, kind: str, candidates: Sequence[str], rng: random.Random) -> tuple[str, str]:
        with self.db.session() as session:
            return self.samplers[kind].draw(session, candidates, rng)

    def _new_paths(self) -> tuple[Path, Path]:
        self.image_dir.mkdir(parents=True, exist_ok=True)
        return self.image_dir / f"{secrets.token_hex(16)}.png", self.image_dir / f"{secrets.token_hex(16)}.png"

    # ------------------------------------------------------------------------------ battles
    def create_battle(
        self,
        prompt: str,
        session_id: str | None = None,
        client_ip: str | None = None,
        *,
        is_withheld: WithheldFn | None = None,
    ) -> ServedBattle:
        prompt = (prompt or "").strip() if isinstance(prompt, str) else ""
        if not prompt:
            raise HubInputError("Enter a prompt first.")
        if len(prompt) > self.limits.max_prompt_chars:
            raise HubInputError(f"The prompt is too long (max {self.limits.max_prompt_chars} characters).")
        session_hash = self.hasher.hash(session_id, "session")
        ip_hash = self.hasher.hash(client_ip, "ip")
        candidates = list(dict.fromkeys(self.candidates()))
        with self.db.session() as session:
            stored = stored_samples(session, prompt, candidates)
        use_samples = len(stored) >= 2
        if not use_samples:
            if len(candidates) < 2:
                raise HubInputError("The arena needs at least two different available checkpoints.")
            if self.generate is None:
                raise HubInputError("No stored images for this prompt, and generation is not available here.")
        self._reserve_battle(session_hash, ip_hash, "generate")
        rng = self._new_rng()
        withheld = is_withheld or self.is_withheld
        blocked: set[tuple[str, int]] = set()  # withheld stored samples
        excluded: set[str] = set()  # models whose generated image was withheld
        for _ in range(MAX_DRAWS):
            if use_samples:
                pool = [m for m, seeds in stored.items() if any((m, s) not in blocked for s in seeds)]
                if len(pool) < 2:
                    break
                model_a, model_b = self._draw("generate", pool, rng)
                seed_a, seed_b = sample_seeds(stored, model_a, model_b, blocked, rng)
                images = [_load_image(stored[model_a][seed_a].path), _load_image(stored[model_b][seed_b].path)]
                recipes: list[Any] = [None, None]
                keys = [(model_a, seed_a), (model_b, seed_b)]
                language, tier = stored[model_a][seed_a].language, stored[model_a][seed_a].tier
            else:
                pool = [m for m in candidates if m not in excluded]
                if len(pool) < 2:
                    break
                model_a, model_b = self._draw("generate", pool, rng)
                seed = rng.randrange(2**31)
                (image_a, recipe_a), (image_b, recipe_b) = (
                    self.generate(model_a, prompt, seed),  # type: ignore[misc]
                    self.generate(model_b, prompt, seed),  # type: ignore[misc]
                )
                images, recipes, keys = [image_a, image_b], [recipe_a, recipe_b], []
                language, tier = CUSTOM_LANGUAGE, None
            if withheld is not None:
                reasons = [withheld(image) for image in images]
                if any(reasons):
                    log.info("arena: withheld %s (%s)", [m for m, r in zip((model_a, model_b), reasons) if r], reasons)
                    # Samples: skip that stored image. Generation: this prompt gets that model's
                    # images withheld, so draw the next pair without it.
                    blocked.update(key for key, reason in zip(keys, reasons, strict=False) if reason)
                    excluded.update(m for m, reason in zip((model_a, model_b), reasons, strict=True) if reason)
                    continue
            path_a, path_b = self._new_paths()
            self.save_image(images[0], recipes[0], path_a)
            self.save_image(images[1], recipes[1], path_b)
            battle_id = self.record_battle(
                model_a, model_b, prompt, path_a, path_b, session_hash=session_hash, ip_hash=ip_hash,
                image_source="samples" if use_samples else "generated", language=language, tier=tier,
            )
            return ServedBattle(battle_id, path_a, path_b)
        raise HubInputError(WITHHELD_MESSAGE)

    def create_edit_battle(
        self,
        image: Image.Image,
        instruction: str,
        session_id: str | None = None,
        client_ip: str | None = None,
        *,
        is_withheld: WithheldFn | None = None,
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
            raise HubInputError("The edit arena needs at least two different available edit-capable checkpoints.")
        session_hash = self.hasher.hash(session_id, "session")
        ip_hash = self.hasher.hash(client_ip, "ip")
        self._reserve_battle(session_hash, ip_hash, "edit")  # one budget for new battles of either kind
        rng = self._new_rng()
        withheld = is_withheld or self.is_withheld
        source = image.copy()
        source.info = {}
        excluded: set[str] = set()  # models whose edit was withheld
        for _ in range(MAX_DRAWS):
            pool = [m for m in candidates if m not in excluded]
            if len(pool) < 2:
                break
            model_a, model_b = self._draw("edit", pool, rng)
            seed = rng.randrange(2**31)
            outputs = []
            for model in (model_a, model_b):
                try:
                    outputs.append(self.edit(model, source.copy(), instruction, seed))
                except HubInputError as err:
                    # The battle is blind: an input error must not name the checkpoint that raised it.
                    message = str(err)
                    for name in (model_a, model_b):
                        message = message.replace(repr(name), "one of the checkpoints").replace(name, "one of the checkpoints")
                    raise HubInputError(message) from None
            if withheld is not None:
                reasons = [withheld(edited) for edited, _ in outputs]
                if any(reasons):
                    log.info("arena: withheld edit by %s (%s)", [m for m, r in zip((model_a, model_b), reasons) if r], reasons)
                    excluded.update(m for m, reason in zip((model_a, model_b), reasons, strict=True) if reason)
                    continue
            path_a, path_b = self._new_paths()
            for (edited, recipe), path in zip(outputs, (path_a, path_b), strict=True):
                self.save_image(edited, recipe, path)
            battle_id = self.record_battle(
                model_a, model_b, instruction, path_a, path_b,
                session_hash=session_hash, ip_hash=ip_hash, image_source="generated", kind="edit",
            )
            return ServedBattle(battle_id, path_a, path_b)
        raise HubInputError(WITHHELD_MESSAGE.replace("this prompt", "this edit"))

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
        language: str = CUSTOM_LANGUAGE,
        tier: str | None = None,
    ) -> str:
        """Store a served battle (images already written) and return its id."""
        if model_a == model_b:
            raise HubInputError("A checkpoint cannot battle itself.")
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
                    language=(language or CUSTOM_LANGUAGE)[:16],
                    tier=tier[:32] if tier else None,
                    created_at=now,
                    expires_at=now + dt.timedelta(minutes=self.limits.battle_ttl_minutes),
                )
            )
        return battle_id

    def _reserve_battle(self, session_hash: str | None, ip_hash: str | None, kind: str) -> None:
        """Admit one new battle against the per-session and per-IP budgets, exactly (see docstring)."""
        if session_hash is None and ip_hash is None:
            return
        now = self._now()
        with self.db.write_session() as session:
            advisory_lock(session, "battle", session_hash, ip_hash)
            if self.bans.contains(session_hash, ip_hash):
                raise HubInputError(BANNED_MESSAGE)
            check_rate(session, BattleRequest, session_hash, ip_hash, now, self.limits.battles_per_minute,
                       self.limits.ip_multiplier, "new battles")
            session.add(BattleRequest(kind=kind, session_hash=session_hash, ip_hash=ip_hash, created_at=now))

    def random_suite_prompt(self, language: str | None = None) -> str:
        """A stored eval prompt with images from at least two current candidates (battles on it reuse
        them and carry its language and tier)."""
        with self.db.session() as session:
            prompts = suite_prompts(session, list(dict.fromkeys(self.candidates())), language, self.limits.max_prompt_chars)
        if not prompts:
            raise HubInputError("No stored eval prompts with images from two checkpoints yet: type a prompt.")
        return self._new_rng().choice(prompts)

    def pair_rates(self, kind: str = TALLIED_KIND) -> pd.DataFrame:
        """The public per-pair sampling table now: votes, interval widths, weight, draw probability."""
        if kind not in self.samplers:
            raise HubInputError(f"Unknown battle kind {str(kind)[:20]!r}.")
        source = self.candidates if kind == "generate" else (self.edit_candidates or (lambda: []))
        with self.db.session() as session:
            return self.samplers[kind].probabilities(session, list(dict.fromkeys(source())), fresh=True)
