"""Who can draw X? Any typed character name, drawn by every served checkpoint and judged.

A probe takes a name in one of the probe suite's languages (`probe.suite` in the config: `characters`
on a GPU deployment, `demo-characters` in the demo world), writes it into that suite's template for the
language, draws it with N seeds on each checkpoint at eval priority (interactive requests go first) and
counts the hits. Who decides, in this order, and said on the card:

1. `tagger`: the tagger's vocabulary has the name as a character tag (or an alias of one). The tagger
   decides at its character threshold, as on the character board.
2. `suite`: the name is one of the suite's characters (any language's name, or its id). It is judged
   exactly as the suite judges that character (tagger, reference gallery or name judge), with the
   suite's own candidate set: the verdict means what the board's does.
3. `zero_shot`: anything else. The name judge weighs the typed name against the suite's characters'
   names and generic distractors. Nothing validated the judge on this name, so the card labels the
   verdict zero-shot and uncalibrated.

Answers are cached by (name, language, checkpoint version, seeds, judge) in `leaderboards.probes`: the
second identical probe generates nothing. Each probe is counted, so maintainers see the most-asked names
(`promotion_entry` drafts a `characters` suite entry for one).
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evals.judgeset import JudgeSet, load_judges
from evals.kinds.character import EVIDENCE, HIT, CharacterJudges, CharacterKind, character_scores, decider_id, find_galleries, judge_for
from evals.kinds.schema import name_candidates
from evals.plan import item_seed
from evals.samples import SampleView
from evals.suites import Suite, get_suite
from hub.engine.requests import EVAL, GenerationRequest
from hub.errors import HubInputError
from hub.recipe import save_png
from leaderboards import probes
from leaderboards.db import Database
from leaderboards.intervals import binomial_interval

TAGGER, SUITE, ZERO_SHOT = "tagger", "suite", "zero_shot"
# Characters that would make a name markup, a path or a template: refused, not cleaned.
FORBIDDEN = set("<>{}[]`|\\/$*#")
ProgressFn = Callable[[int, int, str], None]


class ProbeError(HubInputError):
    """A probe refused before any work (the message says what to change)."""


@dataclass(frozen=True)
class NameMatch:
    """Who decides a probed name, and the prompt row's meta the character scorer reads."""

    decided_by: str  # TAGGER | SUITE | ZERO_SHOT
    meta: dict[str, Any]
    item_id: str  # the suite character, or "probe:<name key>"
    character: str | None = None  # the suite character's English name, when one matched


@dataclass(frozen=True)
class ProbeRow:
    checkpoint: str
    hits: int
    n: int
    rate: float
    lower: float
    upper: float
    judge_id: str
    cached: bool
    images: tuple[str, ...] = ()  # absolute paths (the UI shows them; never put in text)


@dataclass(frozen=True)
class ProbeCard:
    name: str
    language: str
    prompt: str
    decided_by: str
    suite: str
    character: str | None
    rows: tuple[ProbeRow, ...]
    generated: int  # images drawn for this probe (0: every answer came from the cache)

    @property
    def calibrated(self) -> bool:
        return self.decided_by != ZERO_SHOT

    def as_dict(self) -> dict[str, Any]:
        """The card for the API and MCP: numbers and who judged; no file paths."""
        return {
            "name": self.name, "language": self.language, "prompt": self.prompt, "decided_by": self.decided_by,
            "calibrated": self.calibrated, "suite": self.suite, "character": self.character, "generated": self.generated,
            "results": [{"checkpoint": r.checkpoint, "hits": r.hits, "n": r.n, "hit_rate": r.rate, "lower": r.lower,
                         "upper": r.upper, "judge": r.judge_id, "cached": r.cached} for r in self.rows],
        }


@dataclass
class ProbeContext:
    """What a probe runs on: the engine, the database, the config, where images go."""

    engine: Any
    db: Database
    config: Any
    data_dir: Path
    prompts_dir: Any = None
    judge_device: Any = None
    _judges: dict[str, CharacterJudges] = field(default_factory=dict)

    @property
    def suite(self) -> Suite:
        suite = get_suite(self.config.probe.suite, self.prompts_dir)
        if suite.kind != "character_recognition":
            raise ProbeError(f"probe.suite '{suite.name}' is not a character suite")
        return suite

    def judges(self, suite: Suite) -> CharacterJudges:
        """The character judges of the probe suite (loaded once per suite version)."""
        if suite.version_hash not in self._judges:
            judge_set: JudgeSet = load_judges(self.config, CharacterKind.roles, data_dir=self.data_dir, device=self.judge_device,
                                              prompts_dir=self.prompts_dir)
            self._judges[suite.version_hash] = CharacterJudges(judge_set, find_galleries(suite, judge_set.reference), suite)
        return self._judges[suite.version_hash]


# ------------------------------------------------------------------------------------ checking


def check_name(name: Any, max_chars: int) -> str:
    """A typed character name, stripped; refused when empty, too long, or markup / path / template text."""
    if not isinstance(name, str) or not name.strip():
        raise ProbeError("Type a character's name.")
    name = " ".join(name.split())
    if len(name) > max_chars:
        raise ProbeError(f"That name is too long: at most {max_chars} characters.")
    if ".." in name or any(ch in FORBIDDEN for ch in name) or any(unicodedata.category(ch).startswith("C") for ch in name):
        raise ProbeError("A name is plain text: no markup, path or control characters.")
    if not any(unicodedata.category(ch).startswith("L") for ch in name):
        raise ProbeError("A name needs at least one letter.")
    return name


def check_request(ctx: ProbeContext, suite: Suite, name: Any, language: Any, checkpoints: Sequence[str] | None,
                  seeds: Any) -> tuple[str, str, tuple[str, ...], int]:
    """Name, language, checkpoints and seed count, checked against the limits; every refusal says why."""
    limits = ctx.config.probe
    name = check_name(name, limits.max_name_chars)
    if language not in suite.languages:
        raise ProbeError(f"Unknown language '{language}': choose one of {', '.join(suite.languages)}.")
    if isinstance(seeds, bool) or not isinstance(seeds, (int, float)) or seeds != seeds or int(seeds) != seeds:
        raise ProbeError(f"Seeds must be a whole number from 1 to {limits.max_seeds}.")
    if not 1 <= int(seeds) <= limits.max_seeds:
        raise ProbeError(f"Seeds must be a whole number from 1 to {limits.max_seeds}.")
    served = served_checkpoints(ctx)
    chosen = tuple(dict.fromkeys(checkpoints or served))
    if not chosen:
        raise ProbeError("No checkpoint that draws from text is served here.")
    if len(chosen) > limits.max_checkpoints:
        raise ProbeError(f"Too many checkpoints: at most {limits.max_checkpoints} in one probe.")
    for checkpoint in chosen:
        if checkpoint not in ctx.engine.checkpoint_ids(available_only=True, task="text2img"):
            raise ProbeError(f"Unknown checkpoint '{checkpoint}' for a probe: choose from {', '.join(served) or 'none'}.")
    return name, language, chosen, int(seeds)


def served_checkpoints(ctx: ProbeContext) -> list[str]:
    """What a probe draws with by default: the arena's generation checkpoints that are served here (every
    text-to-image checkpoint when the config names none), at most `probe.max_checkpoints`."""
    drawing = ctx.engine.checkpoint_ids(available_only=True, task="text2img")
    listed = [c for c in ctx.config.arena_checkpoints if c in drawing] or drawing
    return listed[: ctx.config.probe.max_checkpoints]


# ------------------------------------------------------------------------------------ matching


def _item_names(item: Any) -> set[str]:
    return {probes.name_key(n) for n in [item.name, item.id.replace("_", " "), *item.names.values()] if n}


def match_name(name: str, language: str, suite: Suite, judges: CharacterJudges) -> NameMatch:
    """Who decides `name` (see the module docstring), with the candidate set the name judge would use."""
    key = probes.name_key(name)
    tagger = judges.tagger
    tag = tagger.tags.character_tag(name) if tagger is not None else None
    item = next((i for i in suite.items if key in _item_names(i) or (tag is not None and i.tag == tag)), None)
    if item is not None:
        meta = dict(suite.spec.rows(suite, item, language).meta)
        meta["names"] = sorted({*meta["names"], name})
        view = SampleView(0, item.id, language, 0, "", "", meta)
        decided = TAGGER if judges.tagger is not None and judge_for(view, judges) is judges.tagger else SUITE
        return NameMatch(decided, meta, item.id, item.name)
    others = [{"en": o.name, **o.names} for o in suite.items]
    candidates = name_candidates({language: name}, others, suite.settings.get("distractors", {}), language)
    meta = {"tier": "probe", "tag": tag, "name": name, "references": None, **candidates}
    return NameMatch(TAGGER if tag else ZERO_SHOT, meta, f"probe:{key}")


def prompt_for(suite: Suite, name: str, language: str) -> str:
    return suite.settings["templates"][language].replace("{name}", name)


# ------------------------------------------------------------------------------------- running


def probe_seeds(name: str, language: str, seeds: int) -> list[int]:
    """Fixed by (name, index) and shared by every language and checkpoint, so answers compare."""
    return [item_seed("probe", probes.name_key(name), i) for i in range(seeds)]


def cost_images(ctx: ProbeContext, name: str, language: str, checkpoints: Sequence[str], seeds: int) -> int:
    """How many images a probe would draw now (cached answers cost nothing)."""
    suite = ctx.suite
    judges = ctx.judges(suite)
    match = match_name(name, language, suite, judges)
    judge_id = _judge_id(match, judges)
    with ctx.db.session() as session:
        return sum(seeds for checkpoint in checkpoints
                   if probes.cached_result(session, _key(ctx, name, language, checkpoint, seeds, judge_id)) is None)


def _judge_id(match: NameMatch, judges: CharacterJudges) -> str:
    judge_id = decider_id(SampleView(0, match.item_id, "", 0, "", "", match.meta), judges)
    if judge_id is None:
        raise ProbeError("No judge here can tell this character: configure a tagger or a name judge.")
    return judge_id


def _key(ctx: ProbeContext, name: str, language: str, checkpoint: str, seeds: int, judge_id: str) -> probes.ProbeKey:
    return probes.ProbeKey(probes.name_key(name), language, checkpoint, ctx.engine.checkpoint_version(checkpoint), seeds, judge_id)


def run_probe(ctx: ProbeContext, name: Any, language: Any, checkpoints: Sequence[str] | None = None, seeds: Any = None,
              progress: ProgressFn | None = None, count: bool = True) -> ProbeCard:
    """Check, count, answer from the cache where it can, draw and judge the rest; the card."""
    suite = ctx.suite
    seeds = ctx.config.probe.default_seeds if seeds is None else seeds
    name, language, chosen, seeds = check_request(ctx, suite, name, language, checkpoints, seeds)
    judges = ctx.judges(suite)
    match = match_name(name, language, suite, judges)
    judge_id = _judge_id(match, judges)
    prompt = prompt_for(suite, name, language)
    if count:
        with ctx.db.write_session() as session:
            probes.count_ask(session, name, language)
    rows: list[ProbeRow] = []
    generated = 0
    report = progress or (lambda done, total, desc: None)
    for index, checkpoint in enumerate(chosen):
        key = _key(ctx, name, language, checkpoint, seeds, judge_id)
        with ctx.db.session() as session:
            stored = probes.cached_result(session, key)
            samples = list(stored.samples) if stored is not None else None
        cached = samples is not None
        if samples is None:
            report(index, len(chosen), f"{checkpoint}: drawing {seeds} images")
            samples = _draw_and_judge(ctx, suite, judges, match, checkpoint, prompt, probe_seeds(name, language, seeds), key)
            generated += len(samples)
            with ctx.db.write_session() as session:
                probes.record_result(session, key, decided_by=match.decided_by, prompt=prompt, samples=samples)
        hits = sum(int(s["hit"]) for s in samples)
        estimate = binomial_interval(hits, len(samples))
        images = tuple(str(ctx.data_dir / s["image"]) for s in samples if (ctx.data_dir / s["image"]).is_file())
        rows.append(ProbeRow(checkpoint, hits, len(samples), estimate.mean, estimate.lower, estimate.upper, judge_id, cached, images))
        report(index + 1, len(chosen), f"{checkpoint}: {hits}/{len(samples)}")
    return ProbeCard(name, language, prompt, match.decided_by, suite.name, match.character, tuple(rows), generated)


def _draw_and_judge(ctx: ProbeContext, suite: Suite, judges: CharacterJudges, match: NameMatch, checkpoint: str, prompt: str,
                    seeds: list[int], key: probes.ProbeKey) -> list[dict[str, Any]]:
    requests = [GenerationRequest(prompt=prompt, negative_prompt=suite.negative_prompt, checkpoint=checkpoint, seed=seed,
                                  priority=EVAL) for seed in seeds]
    images = [out[0] for out in ctx.engine.run_many(requests)]
    views = [SampleView(i, match.item_id, key.language, seed, prompt, "", match.meta, image=item.image)
             for i, (seed, item) in enumerate(zip(seeds, images, strict=True))]
    scores = character_scores(views, judges, [v.image for v in views])
    by_sample = {(row.sample_id, row.metric): row.value for row in scores}
    folder = hashlib.sha256(repr(key).encode()).hexdigest()[:16]
    samples = []
    for view, item in zip(views, images, strict=True):
        relative = Path("probes") / folder / f"{view.seed}.png"
        save_png(item.image, item.recipe, ctx.data_dir / relative)
        samples.append({"seed": view.seed, "hit": int(by_sample.get((view.id, HIT), 0.0)),
                        "evidence": float(by_sample.get((view.id, EVIDENCE), float("nan"))), "image": relative.as_posix()})
    return samples


# ----------------------------------------------------------------------------------- promotion


def promotion_entry(db: Database, suite: Suite, name: str) -> dict[str, Any]:
    """A draft `characters` entry for a most-asked name: the names it was asked with, per language (the
    others left for a maintainer to fill, since a suite character needs a name in every language)."""
    with db.session() as session:
        asked = probes.asked_languages(session, name)
    if not asked:
        raise ProbeError(f"Nobody has asked for '{name}' yet.")
    english = asked.get("en") or next(iter(asked.values()))
    item_id = "_".join(probes.name_key(english).split()).replace("'", "")
    return {"id": item_id, "name": english, "franchise": "", "tier": "non_anime", "tag": None,
            "names": {lang: asked.get(lang, "") for lang in suite.languages}}
