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


class Goals:
    """Goals of one benchmark run: each printed as met / NOT met; `exit()` is non-zero if one was missed."""

    def __init__(self) -> None:
        self.missed: list[str] = []

    def check(self, name: str, value: float, target: float, *, at_least: bool, unit: str = "") -> bool:
        met = value >= target if at_least else value <= target
        sign = ">=" if at_least else "<="
        print(f"goal {name}: {value:.3g}{unit} (goal {sign} {target:g}{unit}) -> {'met' if met else 'NOT met'}")
        if not met:
            self.missed.append(name)
        return met

    def exit(self) -> None:
        if self.missed:
            print(f"missed: {', '.join(self.missed)}")
            raise SystemExit(1)
