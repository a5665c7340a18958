"""What a test needs from the machine (a PostgreSQL server, Chromium, Ray): skipped with the reason
where it is missing, but a failure where CI says it must be there (`REQUIRE_POSTGRES=1`,
`REQUIRE_CHROMIUM=1`, `REQUIRE_RAY=1` in `.ci/run`), so that a skip never hides a broken install."""

from __future__ import annotations

import os

import pytest


def missing(env: str, reason: str, *, module: bool = False) -> None:
    """Skip (the whole module with `module=True`), or fail when `env` is set to 1."""
    if os.environ.get(env) == "1":
        pytest.fail(f"{reason} ({env}=1: CI requires it)", pytrace=False)
    pytest.skip(reason, allow_module_level=module)
