"""Engine work nobody waits for is cancelled: the Stop buttons, and clients that went away.

Each tab runs its engine call inside `RunningCalls.track`, which hands it a `CancelToken` for the
engine. The token is set
- by the tab's Stop button (`stop`), for the calls of the same hub session and tab only (a session
  cannot stop another's work: the session comes from the signed cookie, never from the client);
- by the watcher thread, when Gradio has marked every queue event of the call's page session dead
  (its browser tab closed, or its API client disconnected). Gradio itself never stops a running
  function: it only stops sending it results.
The engine then drops the job from its queue, or stops its call at the next denoising step.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from hub.engine.requests import CancelToken

WATCH_EVERY_S = 0.5
LEFT = "Cancelled: the page or client that asked for it disconnected."
STOPPED = "Stopped."


@dataclass(frozen=True, eq=False)
class TrackedCall:
    token: CancelToken
    session: str  # the hub session (signed cookie)
    tab: str
    page_session: str | None  # Gradio's session hash of the page or client connection


def page_disconnected(app: Any, page_session: str) -> bool:
    """True when Gradio has given up on every running event of this page session."""
    queue = getattr(app, "_queue", None)
    if queue is None:
        return False
    events = [event for job in list(getattr(queue, "active_jobs", []) or []) if job
              for event in job if getattr(event, "session_hash", None) == page_session]
    return bool(events) and not any(getattr(event, "alive", True) for event in events)


class RunningCalls:
    def __init__(self) -> None:
        self.app: Any = None  # the gr.Blocks whose queue tells disconnects (set when the app is built)
        self._calls: set[TrackedCall] = set()
        self._lock = threading.Lock()
        self._watcher: threading.Thread | None = None

    @contextmanager
    def track(self, session: str | None, tab: str, request: Any) -> Iterator[CancelToken]:
        call = TrackedCall(CancelToken(), session or "", tab, getattr(request, "session_hash", None))
        with self._lock:
            self._calls.add(call)
            if self._watcher is None or not self._watcher.is_alive():
                self._watcher = threading.Thread(target=self._watch, name="hub-disconnects", daemon=True)
                self._watcher.start()
        try:
            yield call.token
        finally:
            with self._lock:
                self._calls.discard(call)

    def stop(self, session: str | None, tab: str) -> int:
        """Cancel this session's calls in `tab`; how many there were."""
        if not session:
            return 0
        with self._lock:
            mine = [call for call in self._calls if call.session == session and call.tab == tab]
        for call in mine:
            call.token.cancel(STOPPED)
        return len(mine)

    def running(self) -> int:
        with self._lock:
            return len(self._calls)

    def _watch(self) -> None:
        while True:
            with self._lock:
                calls = list(self._calls)
                if not calls:
                    self._watcher = None
                    return
            for call in calls:
                if call.page_session and self.app is not None and page_disconnected(self.app, call.page_session):
                    call.token.cancel(LEFT)
            time.sleep(WATCH_EVERY_S)
