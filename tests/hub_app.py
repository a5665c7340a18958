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


@contextmanager
def running_app(data_dir: Path, database_url: str, **limits: Any) -> Iterator[tuple[str, Any]]:
    """The app from spaces_config.yaml with its data dir and database replaced, limits overridden.

    Yields (url, HubContext)."""
    from hub.config import load_config
    from hub.ui import build_app, launch_kwargs
    from hub.ui.context import create_context

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
            }
        )
        ctx = create_context(config)
        demo = build_app(ctx)
        demo.queue(default_concurrency_limit=8)
        demo.launch(
            server_name="127.0.0.1", server_port=_free_port(), prevent_thread_lock=True, quiet=True,
            **launch_kwargs(ctx),
        )
        try:
            yield demo.local_url, ctx
        finally:
            demo.close()
            ctx.db.dispose()
    finally:
        if analytics == "1000" and os.environ.get("GRADIO_ANALYTICS_CACHE_FREQUENCY") == "1000":
            os.environ.pop("GRADIO_ANALYTICS_CACHE_FREQUENCY", None)
        for key, value in saved.items():
            if value is not None:
                os.environ[key] = value
