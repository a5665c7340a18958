"""Concurrency helpers for the arena tests."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable

from hub.errors import HubInputError


def burst(call: Callable[[int], object], n: int) -> Counter:
    """Run call(i) for i < n in n threads released together; count 'ok' and each refusal message."""
    outcomes: Counter = Counter()
    lock = threading.Lock()
    barrier = threading.Barrier(n)

    def worker(i: int) -> None:
        barrier.wait(timeout=60)
        try:
            call(i)
            key = "ok"
        except HubInputError as err:
            key = str(err)
        with lock:
            outcomes[key] += 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return outcomes
