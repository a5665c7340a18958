"""Who is calling, and what they may do: the client address we trust, sign-in tokens, roles.

Engine side (no gradio): the UI turns a request into an `Identity` with `hub.ui.identity`, and the CLI
and tests can build one directly.

- Client address: the socket peer, unless that peer is a trusted proxy (`server.trusted_proxies`);
  then the right-most hop of `X-Forwarded-For` that is not itself a trusted proxy. A header sent by
  anyone else is ignored, so a visitor cannot pick their own address and reset the per-IP limits.
- Roles: visitor (anonymous) < user (signed in) < maintainer. Each action needs at least the role
  named in `permissions`. In auth mode `none` every caller is the local maintainer.
- Tokens (auth mode `token`): only SHA-256 hex digests are configured (`auth.tokens` or
  `HUB_AUTH_TOKENS=id:role:sha256,...`); a presented token is hashed and compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from hub.config import ROLES, AuthSettings, HubConfig, TokenSpec
from hub.errors import HubInputError

TOKENS_ENV = "HUB_AUTH_TOKENS"
# What each permission is called in a refusal ("Sign in to ...").
ACTIONS = {
    "vote": "vote",
    "generate": "generate images",
    "register_checkpoint": "register a checkpoint",
    "queue_eval": "queue an eval run",
    "upload_gallery": "upload a reference gallery",
    "train_lora": "train a LoRA on the server",
    "probe_character": "ask who can draw a character",
    "moderate": "use the maintainer tools",
}
LOCAL_USER = "local"


class AccessDenied(HubInputError):
    """The caller's role may not do this (the page translates it by its `err.access.*` template)."""


@dataclass(frozen=True)
class Identity:
    """One caller. `session_id` is server-issued (signed cookie), never a value the client chose;
    `user` is `hf:<name>`, `token:<id>` or `local`, None for a visitor."""

    session_id: str | None
    client_ip: str | None
    role: str = "visitor"
    user: str | None = None

    @property
    def signed_in(self) -> bool:
        return self.user is not None

    @property
    def is_maintainer(self) -> bool:
        return self.role == "maintainer"

    def at_least(self, role: str) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)


# ------------------------------------------------------------------------------------ client address


@lru_cache(maxsize=64)
def _networks(cidrs: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(c, strict=False) for c in cidrs)


def _parse_ip(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    value = value.strip().strip('"')
    if value.startswith("[") and "]" in value:  # [v6]:port
        value = value[1:value.index("]")]
    elif value.count(":") == 1:  # v4:port
        value = value.split(":", 1)[0]
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


def is_trusted(address: str | None, trusted_proxies: Sequence[str]) -> bool:
    ip = _parse_ip(address) if address else None
    return ip is not None and any(ip in net for net in _networks(tuple(trusted_proxies)))


def client_address(peer: str | None, forwarded_for: str | None, trusted_proxies: Sequence[str]) -> str | None:
    """The address limits are keyed on (see the module docstring). `forwarded_for` is the raw
    `X-Forwarded-For` header (hops comma-separated, the nearest last)."""
    if not forwarded_for or not is_trusted(peer, trusted_proxies):
        return peer
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    for hop in reversed(hops):
        ip = _parse_ip(hop)
        if ip is None:
            return peer  # a malformed chain: fall back to the proxy itself, never to a client's words
        if not is_trusted(str(ip), trusted_proxies):
            return str(ip)
    return peer  # every hop is one of our proxies


# --------------------------------------------------------------------------------------------- tokens


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def configured_tokens(auth: AuthSettings) -> list[TokenSpec]:
    """`auth.tokens` plus `HUB_AUTH_TOKENS` (`id:role:sha256`, comma-separated)."""
    tokens = list(auth.tokens)
    for entry in (os.environ.get(TOKENS_ENV) or "").split(","):
        entry = entry.strip()
        if not entry:
            continue
        parts = entry.split(":")
        if len(parts) != 3:
            raise ValueError(f"{TOKENS_ENV}: entries are id:role:sha256, got one with {len(parts)} parts")
        tokens.append(TokenSpec(id=parts[0], role=parts[1], sha256=parts[2].lower()))  # type: ignore[arg-type]
    return tokens


def check_token(token: str | None, tokens: Iterable[TokenSpec]) -> TokenSpec | None:
    """The configured token this one hashes to, else None (every entry compared, in constant time)."""
    if not token or len(token) > 512:
        return None
    digest = hash_token(token.strip())
    found = None
    for spec in tokens:
        if hmac.compare_digest(digest, spec.sha256):
            found = spec
    return found


# ---------------------------------------------------------------------------------------------- roles


def role_of(user: str | None, auth: AuthSettings, token_role: str | None = None) -> str:
    """A signed-in user's role: maintainer when listed in `auth.maintainers` (by HF name or token
    id, with or without the `hf:` / `token:` prefix) or when their token says so; else user."""
    if user is None:
        return "visitor"
    if user == LOCAL_USER:
        return "maintainer"
    bare = user.split(":", 1)[1] if ":" in user else user
    maintainers = {m.strip() for m in auth.maintainers}
    if user in maintainers or bare in maintainers or token_role == "maintainer":
        return "maintainer"
    return "user"


def local_identity(session_id: str | None, client_ip: str | None) -> Identity:
    """Auth mode `none`: the one person on their own machine, with every right."""
    return Identity(session_id=session_id, client_ip=client_ip, role="maintainer", user=LOCAL_USER)


def require(identity: Identity, action: str, config: HubConfig) -> None:
    """Refuse, with "sign in to ..." or "only maintainers ...", when the caller's role is too low."""
    needed = "maintainer" if action == "moderate" else getattr(config.permissions, action)
    if identity.at_least(needed):
        return
    what = ACTIONS.get(action, action)
    if needed == "maintainer":
        raise AccessDenied(f"Only maintainers can {what}.")
    raise AccessDenied(f"Sign in to {what}.")
