"""The process's engine: one per process owns the accelerator.

`get_engine(config)` gives the local `hub.engine.Engine`, or with `engine.backend: ray` a
`hub.remote.RemoteEngine` (the same methods and errors; the work runs on Ray Serve replicas). It sits
above both so that neither imports the other's module to be chosen; Ray itself is imported only when a
remote engine connects.
"""

from __future__ import annotations

import threading
from typing import Any

from core.keys import sha256_hex
from hub.config import HubConfig
from hub.engine import Engine
from hub.remote import RemoteEngine

_ENGINES: dict[str, Engine] = {}
_ENGINES_LOCK = threading.Lock()


def _closed(engine: Any) -> bool:
    return engine.queue.closed if isinstance(engine, Engine) else bool(getattr(engine, "closed", False))


def get_engine(config: HubConfig) -> Engine:
    """The process's engine for this config (one per process owns the accelerator). Keyed by the
    config's content and data folder, not by object identity, so an equal config reuses the engine.

    `engine.backend: ray` gives a `hub.remote.RemoteEngine` instead: the same methods and errors, the
    work done by engine replicas on Ray Serve. Only then is Ray imported."""
    key = sha256_hex({"config": config.model_dump(mode="json"), "data": str(config.data_path)})
    with _ENGINES_LOCK:
        engine = _ENGINES.get(key)
        if engine is None or _closed(engine):
            if config.engine.backend == "ray":
                engine = RemoteEngine(config)  # type: ignore[assignment]
            else:
                engine = Engine(config)
            _ENGINES[key] = engine
        return engine
