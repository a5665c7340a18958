"""Launch the real hub app for HTTP tests (gradio_client), on 127.0.0.1 and a free port."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def session_cookie(data_dir: Path, session_id: str) -> str:
    """The `hub_session` cookie the server would issue for `session_id` (signed with the data folder's
    salt): tests use it to act as the session a battle was recorded for."""
    from hub.ui.identity import SessionSigner
    from leaderboards.arena_sessions import load_salt

    return SessionSigner(load_salt(data_dir))._serializer.dumps(session_id)


def signed_client(url: str, data_dir: Path, session_id: str, **kwargs: Any) -> Any:
    """A gradio_client that carries the signed session cookie of `session_id`."""
    from gradio_client import Client

    return Client(url, verbose=False, ssl_verify=False, httpx_kwargs={"cookies": {"hub_session": session_cookie(data_dir, session_id)}},
                  **kwargs)


def client_session(data_dir: Path, client: Any) -> str:
    """The session id the server issued to a gradio_client (its signed `hub_session` cookie)."""
    from hub.ui.identity import SessionSigner
    from leaderboards.arena_sessions import load_salt

    session_id = SessionSigner(load_salt(data_dir)).check(client.cookies.get("hub_session"))
    assert session_id, "the client holds no session cookie from this server"
    return session_id


@contextmanager
def running_app(data_dir: Path, database_url: str, *, start_worker: bool = False, bootstrap_evals: list | None = None,
                config_updates: dict[str, Any] | None = None, session_cookies: bool = True,
                **limits: Any) -> Iterator[tuple[str, Any]]:
    """The app from spaces_config.yaml with its data dir and database replaced, limits overridden, and
    no bootstrap evals unless given (they would keep a test's worker busy for minutes).
    `config_updates`: other top-level config values (e.g. `auth`, `server`, `quotas` models).
    `session_cookies=False` serves without the session middleware: only `benchmarks/bench_votes.py`
    uses it, as the baseline the signed sessions are measured against.

    Yields (url, HubContext)."""
    from hub.config import load_config
    from hub.ui import build_app, launch_kwargs
    from hub.ui.context import close_context, create_context
    from hub.ui.mcp import limit_mcp_tools

    saved = {k: os.environ.pop(k, None) for k in ("HUB_DATABASE_URL", "HUB_DATA_DIR", "HUB_SESSION_SALT")}
    # Gradio recomputes queue analytics (a DataFrame of up to 10,000 past events) after every event
    # unless told otherwise: quadratic work under thousands of votes.
    analytics = os.environ.setdefault("GRADIO_ANALYTICS_CACHE_FREQUENCY", "1000")
    try:
        config = load_config()
        config = config.model_copy(
            update={
                "data_dir": str(data_dir),
                "database_url": database_url,
                "limits": config.limits.model_copy(update=limits),
                "bootstrap_evals": list(bootstrap_evals or []),
                **(config_updates or {}),
            }
        )
        # No eval worker unless asked: most tests drive the arena and boards, where queued runs must stay queued.
        ctx = create_context(config, start_worker=start_worker)
        demo = build_app(ctx)
        demo.queue(default_concurrency_limit=8)
        kwargs = launch_kwargs(ctx)
        if not session_cookies:
            kwargs.pop("app_kwargs")
        demo.launch(server_name="127.0.0.1", server_port=_free_port(), prevent_thread_lock=True, quiet=True, **kwargs)
        limit_mcp_tools(demo, config)
        try:
            yield demo.local_url, ctx
        finally:
            demo.close()
            close_context(ctx)
    finally:
        if analytics == "1000" and os.environ.get("GRADIO_ANALYTICS_CACHE_FREQUENCY") == "1000":
            os.environ.pop("GRADIO_ANALYTICS_CACHE_FREQUENCY", None)
        for key, value in saved.items():
            if value is not None:
                os.environ[key] = value


def cast_votes(url: str, assignments: list[tuple[str, list[tuple[str, str]]]]) -> tuple[list[tuple[str, str]], list[str]]:
    """Run in a worker process: one gradio_client per (session cookie, votes), each in its own thread
    (`session_cookie` gives the cookie of the session the battles were served to).

    Returns (the (name_a, name_b) answers, error messages). Clients live in other processes than the
    server so that client-side work does not compete with the app for one interpreter lock.
    """
    import threading

    from gradio_client import Client

    answers: list[tuple[str, str]] = []
    errors: list[str] = []
    lock = threading.Lock()

    def run(cookie: str, votes: list[tuple[str, str]]) -> None:
        try:
            # ssl_verify=False: plain http on loopback; otherwise gradio_client builds a fresh TLS
            # context (loading the CA bundle) for every request, costing more CPU than the vote.
            # A generous read timeout: 32 clients fetch the app's config at once on 2 busy cores.
            client = Client(url, verbose=False, ssl_verify=False,
                            httpx_kwargs={"cookies": {"hub_session": cookie}, "timeout": 120})
            for battle_id, outcome in votes:
                answer = client.predict(battle_id, outcome, api_name="/vote")
                with lock:
                    answers.append(tuple(answer))
        except BaseException as err:  # noqa: BLE001 - reported to the parent
            with lock:
                errors.append(f"{type(err).__name__}: {err}")

    threads = [threading.Thread(target=run, args=item) for item in assignments]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers, errors


def fake_hugging_face(monkeypatch: Any, username: str) -> None:
    """Hugging Face's answer to a sign-in (the profile Gradio's OAuth puts in its session), faked: the
    one thing that cannot exist here. Gradio's login routes, its session cookie and the hub's roles stay real."""
    import time

    import gradio.oauth

    def provider_answer() -> dict:
        return {"access_token": "hf_fake", "token_type": "bearer", "expires_in": 3600, "scope": "openid profile",
                "expires_at": int(time.time()) + 3600,
                "userinfo": {"preferred_username": username, "name": username.title(), "sub": "1", "profile": "", "picture": ""}}

    monkeypatch.setattr(gradio.oauth, "_get_mocked_oauth_info", provider_answer)
