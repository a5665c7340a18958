"""Shared set-up for the hub benchmarks: the real app on a free local port, in a temporary folder."""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


@contextmanager
def hub_app(**limits) -> Iterator[tuple[str, object]]:
    from tests.hub_app import running_app

    with tempfile.TemporaryDirectory() as folder:
        with running_app(Path(folder) / "data", f"sqlite:///{folder}/hub.sqlite3", **limits) as (url, ctx):
            yield url, ctx


def median_seconds(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)
