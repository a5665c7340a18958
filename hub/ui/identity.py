"""Who a request comes from: the server-issued session cookie, the trusted client address, the signed-in
user and their role (see `hub.access` for the rules).

Sessions: `SessionCookies` is an ASGI middleware in front of the whole app. Every request carries a
signed, HTTP-only cookie `hub_session` (itsdangerous, keyed by the hub's session salt,
`HUB_SESSION_SALT`); a request without one, or with a forged or expired one, gets a fresh id: the
middleware puts the new cookie into the request itself (so the handler sees it at once) and sets it on
the response. A Gradio `session_hash` is chosen by the client and is never used as an identity.
The same middleware serves every response with `X-Content-Type-Options: nosniff`.

Sign-in, by `auth.mode`:
- `none`: every caller is the local maintainer (the page says so);
- `token`: the API sends `X-Hub-Token: <token>`; the page signs its session in with a token
  (stored as the session's salted hash -> user in `sign_ins`);
- `hf_oauth`: Gradio's Hugging Face OAuth (`gr.LoginButton`), read from its session
  (`oauth_info.userinfo.preferred_username`).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from http.cookies import SimpleCookie
from typing import Any

import gradio as gr
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import delete

from hub.access import (
    AccessDenied,
    Identity,
    check_token,
    client_address,
    configured_tokens,
    local_identity,
    require,
    role_of,
)
from hub.config import HubConfig
from hub.ui.context import HubContext
from leaderboards.arena_sessions import SessionHasher, load_salt
from leaderboards.moderation import BanList
from leaderboards.quotas import spend, spend_rate
from leaderboards.schema import SignIn, UsageEvent, utcnow

COOKIE_NAME = "hub_session"
TOKEN_HEADER = "x-hub-token"
COOKIE_MAX_AGE_S = 30 * 24 * 3600


class SessionSigner:
    """Signs and checks session ids (the cookie's value)."""

    def __init__(self, salt: bytes) -> None:
        self._serializer = URLSafeTimedSerializer(salt, salt="sakuga-hub-session")

    def issue(self) -> tuple[str, str]:
        """A new (session id, cookie value)."""
        session_id = secrets.token_urlsafe(24)
        return session_id, self._serializer.dumps(session_id)

    def check(self, value: str | None) -> str | None:
        """The session id in a cookie value we signed, else None."""
        if not value or len(value) > 200:
            return None
        try:
            session_id = self._serializer.loads(value, max_age=COOKIE_MAX_AGE_S)
        except BadSignature:
            return None
        return session_id if isinstance(session_id, str) else None


def _cookie_from_headers(headers: list[tuple[bytes, bytes]]) -> str | None:
    for name, value in headers:
        if name == b"cookie":
            jar = SimpleCookie()
            try:
                jar.load(value.decode("latin-1"))
            except Exception:  # noqa: BLE001 - a malformed Cookie header is no session
                continue
            if COOKIE_NAME in jar:
                return jar[COOKIE_NAME].value
    return None


class SessionCookies:
    """ASGI middleware: a signed session cookie on every request, nosniff on every response."""

    def __init__(self, app: Any, signer: SessionSigner, samesite: str = "lax") -> None:
        self.app = app
        self.signer = signer
        self.samesite = samesite

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = list(scope.get("headers") or [])
        new_cookie = None
        if self.signer.check(_cookie_from_headers(headers)) is None:
            _, new_cookie = self.signer.issue()
            # Drop the client's cookie of that name (forged or stale) and hand the handler ours.
            kept = []
            for name, value in headers:
                if name == b"cookie":
                    parts = [p for p in value.decode("latin-1").split(";") if p.strip().split("=", 1)[0] != COOKIE_NAME]
                    value = "; ".join(p.strip() for p in parts).encode("latin-1")
                    if not value:
                        continue
                kept.append((name, value))
            kept.append((b"cookie", f"{COOKIE_NAME}={new_cookie}".encode("latin-1")))
            scope = dict(scope, headers=kept)

        async def send_with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                out = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"x-content-type-options"]
                out.append((b"x-content-type-options", b"nosniff"))
                if new_cookie is not None:
                    flags = f"; Path=/; Max-Age={COOKIE_MAX_AGE_S}; HttpOnly; SameSite={self.samesite.capitalize()}"
                    if self.samesite == "none":
                        flags += "; Secure"  # browsers drop SameSite=None cookies that are not Secure
                    out.append((b"set-cookie", f"{COOKIE_NAME}={new_cookie}{flags}".encode("latin-1")))
                message = dict(message, headers=out)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def trust_only_our_proxies(trusted_proxies: list[str]) -> None:
    """uvicorn (under Gradio) rewrites the client address from X-Forwarded-For whenever the peer is
    in `FORWARDED_ALLOW_IPS`, which defaults to loopback: any local client could then pick its own
    address. Set that list to `server.trusted_proxies` (nothing when empty) before the server starts,
    so uvicorn and `hub.access.client_address` trust the same proxies."""
    import ipaddress

    os.environ["FORWARDED_ALLOW_IPS"] = ",".join(str(ipaddress.ip_network(c, strict=False)) for c in trusted_proxies)


def _kept(ctx: HubContext, name: str, make: Any) -> Any:
    """One `make()` per context, kept on it (the salt is read once; the ban list keeps its cache)."""
    existing = ctx.__dict__.get(name)
    if existing is None:
        existing = ctx.__dict__[name] = make()
    return existing


def signer_for(ctx: HubContext) -> SessionSigner:
    return _kept(ctx, "_session_signer", lambda: SessionSigner(load_salt(ctx.data_dir)))


def middleware_for(ctx: HubContext) -> list[Any]:
    """`app_kwargs["middleware"]` for `demo.launch`."""
    from starlette.middleware import Middleware

    return [Middleware(SessionCookies, signer=signer_for(ctx), samesite=ctx.config.server.samesite)]


# ---------------------------------------------------------------------------------------- identity


def _header(request: Any, name: str) -> str | None:
    headers = getattr(request, "headers", None)
    if headers is None or not hasattr(headers, "get"):
        return None
    return headers.get(name)


def session_of(ctx: HubContext, request: Any) -> str | None:
    """The verified session id of a request (the middleware made sure there is one)."""
    if request is None:
        return None
    cookies = getattr(request, "cookies", None) or {}
    value = cookies.get(COOKIE_NAME) if hasattr(cookies, "get") else None
    return signer_for(ctx).check(value)


def address_of(config: HubConfig, request: Any) -> str | None:
    if request is None:
        return None
    client = getattr(request, "client", None)
    peer = getattr(client, "host", None)
    return client_address(peer, _header(request, "x-forwarded-for"), config.server.proxies)


def hasher_for(ctx: HubContext) -> SessionHasher:
    return _kept(ctx, "_identity_hasher", lambda: SessionHasher(load_salt(ctx.data_dir)))


def bans_for(ctx: HubContext) -> BanList:
    return _kept(ctx, "_ban_list", lambda: BanList(ctx.db))


def _oauth_user(request: Any) -> str | None:
    # The starlette request under gr.Request (whose attributes come back converted, not as dicts).
    raw = request.__dict__.get("request") if isinstance(request, gr.Request) else request
    try:
        session = raw.session  # Gradio's OAuth session (SessionMiddleware); absent without OAuth
    except (AssertionError, AttributeError, KeyError):
        return None
    info = session.get("oauth_info") if hasattr(session, "get") else None
    if not isinstance(info, dict):
        return None
    expires = info.get("expires_at")
    if isinstance(expires, (int, float)) and expires < utcnow().timestamp():
        return None
    name = (info.get("userinfo") or {}).get("preferred_username")
    return f"hf:{name}" if isinstance(name, str) and name else None


def identify(ctx: HubContext, request: Any) -> Identity:
    """The caller of a request: session, trusted address, user and role."""
    session_id = session_of(ctx, request)
    address = address_of(ctx.config, request)
    auth = ctx.config.auth
    mode = auth.resolved_mode
    if mode == "none":
        return local_identity(session_id, address)
    if mode == "token":
        presented = _header(request, TOKEN_HEADER) if request is not None else None
        if presented:
            spec = check_token(presented, configured_tokens(auth))
            if spec is None:
                raise AccessDenied("That sign-in token is not valid.")
            user = f"token:{spec.id}"
            return Identity(session_id, address, role_of(user, auth, spec.role), user)
        if session_id:
            with ctx.db.session() as session:
                row = session.get(SignIn, hasher_for(ctx).hash(session_id, "session"))
            if row is not None:
                return Identity(session_id, address, row.role, row.user)
        return Identity(session_id, address)
    user = _oauth_user(request) if request is not None else None
    return Identity(session_id, address, role_of(user, auth), user)


def allowed(ctx: HubContext, request: Any, action: str) -> Identity:
    """The caller, when their role may do `action`; else AccessDenied ("Sign in to ..."). A banned
    session or address is refused every action that spends GPU time or changes a board (the arena
    checks its own, in the vote's transaction)."""
    who = identify(ctx, request)
    require(who, action, ctx.config)
    if action not in ("vote", "generate") and not who.is_maintainer:
        hasher = hasher_for(ctx)
        if bans_for(ctx).contains(hasher.hash(who.session_id, "session"), hasher.hash(who.client_ip, "ip")):
            raise AccessDenied("This session or address is banned from the arena.")
    return who


def sign_in_with_token(ctx: HubContext, request: Any, token: str) -> Identity:
    """Auth mode `token`: bind this browser session to the token's user (until sign-out)."""
    if ctx.config.auth.resolved_mode != "token":
        raise AccessDenied("Token sign-in is off on this hub.")
    session_id = session_of(ctx, request)
    spec = check_token((token or "").strip(), configured_tokens(ctx.config.auth))
    if spec is None or session_id is None:
        raise AccessDenied("That sign-in token is not valid.")
    user = f"token:{spec.id}"
    role = role_of(user, ctx.config.auth, spec.role)
    key = hasher_for(ctx).hash(session_id, "session")
    with ctx.db.write_session() as session:
        session.execute(delete(SignIn).where(SignIn.session_hash == key))
        session.add(SignIn(session_hash=key, user=user, role=role, created_at=utcnow()))
    return Identity(session_id, address_of(ctx.config, request), role, user)


def sign_out(ctx: HubContext, request: Any) -> None:
    session_id = session_of(ctx, request)
    if session_id is None:
        return
    with ctx.db.write_session() as session:
        session.execute(delete(SignIn).where(SignIn.session_hash == hasher_for(ctx).hash(session_id, "session")))


# ------------------------------------------------------------------------------------------ quotas


@contextmanager
def quota_spent(ctx: HubContext, who: Identity, action: str, amount: float, limit: float) -> Iterator[None]:
    """Spend from `who`'s daily quota before work that lives outside the database (a LoRA training, a
    gallery on disk); the spending is taken back if the work fails. Maintainers are not counted."""
    if who.is_maintainer or who.user is None:
        yield
        return
    with ctx.db.write_session() as session:
        event_id = spend(session, who.user, action, amount, limit).id
    try:
        yield
    except BaseException:
        with ctx.db.write_session() as session:
            session.execute(delete(UsageEvent).where(UsageEvent.id == event_id))
        raise


def quota_for(who: Identity, limit: float) -> float | None:
    """The quota to charge `who` (None: maintainers and the local user are not counted)."""
    return None if who.is_maintainer or who.user is None else limit


IP_MULTIPLIER = 10  # an address may be shared by many people (as for the arena's limits)


def charge_images(ctx: HubContext, request: Any, images: int) -> Identity:
    """Generation spends GPU time: the caller must be allowed to generate, and `images` more must fit
    in `limits.images_per_minute` for the session and ten times that for the address (maintainers,
    and the local user of auth mode `none`, are not limited)."""
    who = allowed(ctx, request, "generate")
    if who.is_maintainer:
        return who
    hasher = hasher_for(ctx)
    limit = float(ctx.config.limits.images_per_minute)
    owners = [(f"session:{hasher.hash(who.session_id, 'session')}" if who.session_id else "", limit),
              (f"ip:{hasher.hash(who.client_ip, 'ip')}" if who.client_ip else "", limit * IP_MULTIPLIER)]
    with ctx.db.write_session() as session:
        spend_rate(session, "images", owners, float(images))
    return who
