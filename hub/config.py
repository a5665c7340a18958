"""The hub's deployment config: `spaces_config.yaml`, validated.

Every checkpoint, LoRA and judge the hub may load is declared here; nothing else can be loaded
from the UI. A wrong or missing key raises `ConfigError` naming the key and the file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from core import settings
from core.ids import is_hub_repo_id, is_id
from core.settings import REPO_ROOT

DEFAULT_CONFIG_PATH = REPO_ROOT / "spaces_config.yaml"

SOURCE_KINDS = ("hub", "folder", "file", "builtin")
RATINGS = ("general", "sensitive", "questionable", "explicit")


class ConfigError(ValueError):
    """The config file is wrong; the message names the file and the key."""


def check_id(value: str, what: str = "id") -> str:
    if not is_id(value):
        raise ValueError(f"{what} {value!r} must be lowercase letters, digits, '.', '_' or '-' (max 64)")
    return value


def parse_source(source: str) -> tuple[str, str]:
    """`hub:org/name`, `folder:path`, `file:path.safetensors` or `builtin:name` -> (kind, value)."""
    kind, sep, value = source.partition(":")
    if not sep or kind not in SOURCE_KINDS or not value:
        raise ValueError(f"source {source!r} must look like one of {', '.join(k + ':...' for k in SOURCE_KINDS)}")
    if kind == "file" and not value.endswith(".safetensors"):
        raise ValueError(f"source {source!r}: single-file weights must be .safetensors")
    if kind == "hub" and not is_hub_repo_id(value):
        raise ValueError(f"source {source!r}: a Hub source is hub:org/name or hub:org/name@revision")
    return kind, value


def check_family(value: str) -> str:
    from hub.families import FAMILIES

    if value not in FAMILIES:
        raise ValueError(f"unknown family {value!r} (known: {', '.join(sorted(FAMILIES))})")
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GenerationDefaults(_Strict):
    width: int = Field(512, ge=16, le=4096)
    height: int = Field(512, ge=16, le=4096)
    steps: int = Field(25, ge=1, le=200)
    cfg: float = Field(7.0, ge=0.0, le=50.0)
    sampler: str = "euler_a"
    negative_prompt: str = ""
    quality_prefix: str = ""  # prepended by the UI's "quality tags" toggle, never silently
    quality_suffix: str = ""
    # A1111 numbering (1: the last layer, 2: the one before); None: the family's default (SD 1.5: 1,
    # SDXL: 2). Only CLIP families take it; set it where the model card asks (many SD 1.5 anime models: 2).
    clip_skip: int | None = Field(None, ge=1, le=12)


class CheckpointExample(_Strict):
    """A prompt that shows what the checkpoint draws (the Generate tab's examples); unset settings
    take the checkpoint's defaults."""

    prompt: str = Field(min_length=1, max_length=1000)
    negative_prompt: str = ""
    seed: int = Field(0, ge=0, le=2**32 - 1)
    steps: int | None = Field(None, ge=1, le=200)
    cfg: float | None = Field(None, ge=0.0, le=50.0)


class CheckpointLimits(_Strict):
    """What one checkpoint may be asked for, within the hub's `limits`. Unset: derived from the
    checkpoint's own size (its default width x height): at most 2x that area and 2x its longer side,
    so a 64-px demo model is never asked for 1536 px."""

    max_size: int | None = Field(None, ge=16)
    max_pixels: int | None = Field(None, ge=256)
    max_steps: int | None = Field(None, ge=1)
    # Measured speed where this deployment knows it (seconds per megapixel of output per denoising
    # step, on its device); unset: the device's prior in `engine.seconds_per_megapixel_step`, then
    # the engine learns it from real calls.
    seconds_per_megapixel_step: float | None = Field(None, gt=0)


class CheckpointSpec(_Strict):
    id: str
    name: str
    family: str
    source: str
    description: str = ""
    requires_gpu: bool = False
    prediction_type: Literal["epsilon", "v_prediction"] | None = None
    is_demo: bool = False
    defaults: GenerationDefaults = GenerationDefaults()
    size_presets: list[tuple[int, int]] = []
    limits: CheckpointLimits = CheckpointLimits()
    examples: list[CheckpointExample] = []

    _id = field_validator("id")(check_id)
    _family = field_validator("family")(check_family)

    def limits_within(self, hub: "Limits") -> "Limits":
        """The hub's limits narrowed to this checkpoint (see `CheckpointLimits`)."""
        own, native = self.limits, self.defaults
        max_size = own.max_size or 2 * max(native.width, native.height)
        max_pixels = own.max_pixels or 2 * native.width * native.height
        return hub.model_copy(update={
            "max_size": max(hub.min_size, min(hub.max_size, max_size)),
            "max_pixels": max(hub.min_size**2, min(hub.max_pixels, max_pixels)),
            "max_steps": min(hub.max_steps, own.max_steps or hub.max_steps),
        })

    @field_validator("source")
    @classmethod
    def _source(cls, value: str) -> str:
        parse_source(value)
        return value

    @property
    def source_kind(self) -> str:
        return parse_source(self.source)[0]

    @property
    def source_value(self) -> str:
        return parse_source(self.source)[1]

    @property
    def hub_repo(self) -> str:
        """`org/name` of a `hub:` source (without any pinned revision)."""
        return self.source_value.partition("@")[0]

    @property
    def pinned_revision(self) -> str | None:
        """The revision written in the source (`hub:org/name@rev`), if any."""
        if self.source_kind != "hub":
            return None
        return self.source_value.partition("@")[2] or None


class LoraSpec(_Strict):
    id: str
    name: str
    source: str
    base_family: str
    # Checkpoints this LoRA was trained on; empty = any checkpoint of the family. Same family is not
    # always the same architecture (the demo models are tiny SD layouts), so trainers record it.
    base_checkpoints: list[str] = []
    trigger_words: list[str] = []
    preview: str | None = None
    default_weight: float = Field(0.8, ge=-2.0, le=2.0)
    description: str = ""

    _id = field_validator("id")(check_id)
    _family = field_validator("base_family")(check_family)

    @field_validator("source")
    @classmethod
    def _source(cls, value: str) -> str:
        kind, _ = parse_source(value)
        if kind == "builtin":
            raise ValueError("LoRAs cannot be builtin")
        return value


class JudgeSpec(_Strict):
    id: str
    kind: str  # a judge kind registered in evals.judges.registry (tagger, siglip, clip, reference, ...)
    source: str
    version: str = "1"
    requires_gpu: bool = False
    thresholds: dict[str, float] = {}
    options: dict[str, Any] = {}

    _id = field_validator("id")(check_id)


class Limits(_Strict):
    max_prompt_chars: int = Field(1000, ge=1)
    min_size: int = Field(32, ge=8)
    max_size: int = Field(1536, ge=16)
    max_pixels: int = Field(1536 * 1536, ge=256)
    max_steps: int = Field(100, ge=1)
    max_cfg: float = Field(30.0, gt=0)
    max_batch: int = Field(4, ge=1)
    max_upload_bytes: int = Field(10 * 1024 * 1024, ge=1024)
    max_upload_pixels: int = Field(4096 * 4096, ge=256)
    max_loras: int = Field(4, ge=0)
    votes_per_minute: int = Field(30, ge=1)
    battles_per_minute: int = Field(10, ge=1)
    # Images a visitor or user may have generated a minute (per session; ip_multiplier x per address).
    images_per_minute: int = Field(60, ge=1)
    battle_ttl_minutes: int = Field(60, ge=1)
    lora_upload_min_images: int = Field(4, ge=1)
    lora_upload_max_images: int = Field(40, ge=1)
    max_references: int = Field(4, ge=0)  # reference images per request (the family may take fewer)
    max_grid_cells: int = Field(16, ge=1)  # cells of one same-seed comparison grid
    # Admission (README "Limits and the cost model"): an interactive request whose estimated time on
    # this device is over `max_request_seconds` is refused with the estimate; eval batches are sized
    # to stay under `max_eval_batch_seconds`; the watchdog stops any call past `max_call_seconds`.
    max_request_seconds: float = Field(60.0, gt=0)
    max_eval_batch_seconds: float = Field(60.0, gt=0)
    max_call_seconds: float = Field(300.0, gt=0)
    undo_seconds: int = Field(30, ge=0)  # how long a voter may take back a vote
    personal_board_min_votes: int = Field(20, ge=2)
    # Outputs rated above this by the tagger's rating head are withheld. None: `sensitive` on a
    # Space (SPACE_ID is set), `explicit` (filter off) elsewhere.
    public_max_rating: Literal["general", "sensitive", "questionable", "explicit"] | None = None
    # Prompts containing one of these (case-insensitive) are refused in public mode.
    blocked_prompt_terms: list[str] = []

    @property
    def max_rating(self) -> str:
        if self.public_max_rating is not None:
            return self.public_max_rating
        return "sensitive" if os.environ.get("SPACE_ID") else "explicit"


ROLES = ("visitor", "user", "maintainer")
Role = Literal["visitor", "user", "maintainer"]
AUTH_MODES = ("auto", "none", "hf_oauth", "token")


class TokenSpec(_Strict):
    """A sign-in token (mode `token`): only its SHA-256 is written down, never the token itself."""

    id: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    role: Literal["user", "maintainer"] = "user"

    _id = field_validator("id")(check_id)


class AuthSettings(_Strict):
    """Who is who. `none`: everyone is the local maintainer (one person on their own machine; the page
    says so). `hf_oauth`: Hugging Face sign-in (a Space). `token`: tokens whose hashes are listed here
    or in `HUB_AUTH_TOKENS` (`id:role:sha256,...`). `auto`: `hf_oauth` on a Space, else `none`.
    `HUB_AUTH_MODE` overrides the mode."""

    mode: Literal["auto", "none", "hf_oauth", "token"] = "auto"
    # HF usernames (hf_oauth) or token ids (token) that get the maintainer role.
    maintainers: list[str] = []
    tokens: list[TokenSpec] = []
    # An author's own registration is approved at once (never on a Space: leave it off there).
    auto_approve: bool = False

    @property
    def authors_approve_own(self) -> bool:
        """`auto_approve`, never on a Space: there every author's checkpoint waits for a maintainer."""
        return self.auto_approve and not os.environ.get("SPACE_ID")

    @property
    def resolved_mode(self) -> str:
        mode = os.environ.get("HUB_AUTH_MODE") or self.mode
        if mode not in AUTH_MODES:
            raise ConfigError(f"HUB_AUTH_MODE={mode!r}: choose one of {', '.join(AUTH_MODES)}")
        if mode == "auto":
            return "hf_oauth" if os.environ.get("SPACE_ID") else "none"
        return mode


class Permissions(_Strict):
    """The lowest role allowed each action (visitor < user < maintainer)."""

    vote: Role = "visitor"
    generate: Role = "visitor"
    register_checkpoint: Role = "user"
    queue_eval: Role = "user"
    upload_gallery: Role = "user"
    train_lora: Role = "user"
    probe_character: Role = "user"  # "who can draw X?": GPU work, counted in the eval quota


class Quotas(_Strict):
    """Per signed-in user, over the last 24 hours (maintainers are not counted)."""

    registrations_per_day: int = Field(3, ge=0)
    eval_gpu_hours_per_day: float = Field(4.0, ge=0)
    galleries_per_day: int = Field(10, ge=0)
    lora_trainings_per_day: int = Field(2, ge=0)
    # The eval quota weighs a run by its estimated GPU time: images it will generate x this.
    eval_gpu_seconds_per_image: float = Field(6.0, gt=0)


class ServerSettings(_Strict):
    """What the web server trusts. `trusted_proxies`: CIDRs of the proxies in front of the hub (on a
    Space, the Space's proxy); `X-Forwarded-For` is read only when the direct peer is one of them."""

    trusted_proxies: list[str] = []
    # The session cookie: SameSite `none` (with Secure) where the page is embedded, as on a Space;
    # None picks `none` on a Space and `lax` elsewhere.
    cookie_samesite: Literal["lax", "strict", "none"] | None = None

    @field_validator("trusted_proxies")
    @classmethod
    def _cidrs(cls, values: list[str]) -> list[str]:
        import ipaddress

        for value in values:
            ipaddress.ip_network(value, strict=False)  # ValueError names the bad entry
        return values

    @property
    def proxies(self) -> list[str]:
        """`trusted_proxies`, or `HUB_TRUSTED_PROXIES` (comma-separated CIDRs) when that is set."""
        env = os.environ.get("HUB_TRUSTED_PROXIES")
        if env is None:
            return list(self.trusted_proxies)
        return self._cidrs([c.strip() for c in env.split(",") if c.strip()])

    @property
    def samesite(self) -> str:
        if self.cookie_samesite is not None:
            return self.cookie_samesite
        return "none" if os.environ.get("SPACE_ID") else "lax"


class RaySettings(_Strict):
    """Serving and eval workers on Ray (engine.backend: ray); see docs/SCALING.md."""

    address: str = "auto"  # auto: start a local Ray instance; ray://host:10001 joins a cluster
    # auto: one GPU per replica where the cluster has GPUs, else CPUs only (a CPU machine just works).
    num_gpus_per_replica: Annotated[float, Field(ge=0)] | Literal["auto"] = "auto"
    num_cpus_per_replica: float = Field(1.0, ge=0)
    min_replicas: int = Field(1, ge=0)
    max_replicas: int = Field(1, ge=1)
    checkpoints_per_replica: int = Field(2, ge=1)
    eval_workers: int = Field(2, ge=1)


class BootstrapEval(_Strict):
    """An eval run queued on a fresh database, so the boards fill from the first start."""

    checkpoint: str
    suite: str
    seeds: int = Field(2, ge=1, le=16)
    adapters: str = ""
    limit: int | None = Field(None, ge=1)  # only the first N items
    languages: list[str] | None = None  # only these languages


class EngineSettings(_Strict):
    device: Literal["auto", "cuda", "mps", "cpu"] = "auto"
    cpu_cache_gb: float = Field(16.0, ge=0)  # non-resident checkpoints kept in CPU memory
    max_loaded_loras: int = Field(8, ge=1)
    max_batch_images: int = Field(8, ge=1)  # how many images one batched pipeline call may hold
    batch_window_ms: int = Field(15, ge=0)  # how long the worker waits for compatible requests
    compile: bool = False  # torch.compile the denoiser (GPU deployments, not ZeroGPU)
    lora_hotswap_rank: int = Field(64, ge=1)
    cpu_offload: bool = False
    # Inpainting: the original is pasted back outside the mask, feathered over this many pixels.
    mask_blur: int = Field(4, ge=0, le=64)
    backend: Literal["local", "ray"] = "local"
    ray: RaySettings = RaySettings()
    # The cost model's prior, per device type: seconds per megapixel of output per denoising step
    # before a checkpoint's first measured call (an SDXL-size model; small models learn their own).
    seconds_per_megapixel_step: dict[str, float] = {"cuda": 0.25, "mps": 2.0, "cpu": 30.0}
    # Long calls pause between denoising steps to serve waiting interactive requests (step-level
    # interleaving); off: a request waits for the call on the device to end.
    interleave: bool = True


class ProbeSettings(_Strict):
    """The "who can draw X?" probe (evals/probe.py): the suite whose templates, characters and distractors a probe
    uses, and how much one probe may ask for."""

    suite: str = "characters"  # the demo config uses demo-characters
    default_seeds: int = Field(4, ge=1)
    max_seeds: int = Field(8, ge=1)
    max_checkpoints: int = Field(4, ge=1)
    max_name_chars: int = Field(80, ge=1)


class McpSettings(_Strict):
    """The hub's read-only API as an MCP server (Gradio's `mcp_server`): boards, report cards, probe
    answers already on record, recipe reading. GPU work (generation, probes) and votes stay off it unless
    `gpu_tools` is on."""

    enabled: bool = True
    gpu_tools: bool = False


class HubConfig(_Strict):
    title: str = "Sakuga Hub"
    default_checkpoint: str
    checkpoints: list[CheckpointSpec]
    loras: list[LoraSpec] = []
    judges: list[JudgeSpec] = []
    default_judges: dict[str, str] = {}  # role ("tagger", "image_text", "reference") -> judge id
    database_url: str | None = None
    data_dir: str = "hub_data"
    engine: EngineSettings = EngineSettings()
    limits: Limits = Limits()
    auth: AuthSettings = AuthSettings()
    permissions: Permissions = Permissions()
    quotas: Quotas = Quotas()
    server: ServerSettings = ServerSettings()
    probe: ProbeSettings = ProbeSettings()
    mcp: McpSettings = McpSettings()
    arena_checkpoints: list[str] = []  # empty: every available checkpoint of a generation family
    edit_arena_checkpoints: list[str] = []  # empty: every available checkpoint that edits images
    bootstrap_evals: list[BootstrapEval] = []  # queued on a fresh database; empty disables it
    # A module giving the demo world's hooks (portraits for the arena and edit inputs); None: no demo
    # world. Named here, imported by the app: nothing else imports the demo world.
    demo_world: str | None = None
    source_path: str | None = None  # where this config was read from (set by the loader)

    @model_validator(mode="after")
    def _cross_checks(self) -> "HubConfig":
        for kind, items in (("checkpoint", self.checkpoints), ("lora", self.loras), ("judge", self.judges)):
            seen: set[str] = set()
            for item in items:
                if item.id in seen:
                    raise ValueError(f"duplicate {kind} id {item.id!r}")
                seen.add(item.id)
        ids = {c.id for c in self.checkpoints}
        if self.default_checkpoint not in ids:
            raise ValueError(f"default_checkpoint {self.default_checkpoint!r} is not a listed checkpoint")
        for key in ("arena_checkpoints", "edit_arena_checkpoints"):
            for cid in getattr(self, key):
                if cid not in ids:
                    raise ValueError(f"{key}: {cid!r} is not a listed checkpoint")
        for run in self.bootstrap_evals:
            if run.checkpoint not in ids:
                raise ValueError(f"bootstrap_evals: {run.checkpoint!r} is not a listed checkpoint")
        judge_ids = {j.id for j in self.judges}
        for role, jid in self.default_judges.items():
            if jid not in judge_ids:
                raise ValueError(f"default_judges.{role}: {jid!r} is not a listed judge")
        return self

    # -- lookups -------------------------------------------------------------------------------
    def checkpoint(self, checkpoint_id: str) -> CheckpointSpec:
        for spec in self.checkpoints:
            if spec.id == checkpoint_id:
                return spec
        raise KeyError(checkpoint_id)

    def lora(self, lora_id: str) -> LoraSpec:
        for spec in self.loras:
            if spec.id == lora_id:
                return spec
        raise KeyError(lora_id)

    def judge(self, judge_id: str) -> JudgeSpec:
        for spec in self.judges:
            if spec.id == judge_id:
                return spec
        raise KeyError(judge_id)

    @property
    def data_path(self) -> Path:
        return settings.data_dir(self.data_dir)

    @property
    def resolved_database_url(self) -> str:
        return settings.database_url(self.database_url, self.data_path)


def _format_validation_error(err: ValidationError, path: Path) -> str:
    lines = []
    for item in err.errors():
        loc = ".".join(str(part) for part in item["loc"]) or "(top level)"
        msg = item["msg"]
        if item["type"] == "missing":
            msg = "required key is missing"
        elif item["type"] == "extra_forbidden":
            msg = "unknown key"
        lines.append(f"{path}: {loc}: {msg}")
    return "\n".join(lines)


def load_config(path: str | os.PathLike[str] | None = None) -> HubConfig:
    """Read and validate the hub config (default: `spaces_config.yaml`, or `HUB_CONFIG`)."""
    config_path = Path(path or os.environ.get("HUB_CONFIG") or DEFAULT_CONFIG_PATH)
    try:
        raw = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{config_path}: config file not found") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{config_path}: not valid YAML: {err}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{config_path}: the top level must be a mapping of keys")
    raw["source_path"] = str(config_path)
    try:
        return HubConfig.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(_format_validation_error(err, config_path)) from None
