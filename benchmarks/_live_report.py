"""What the GPU checks share: a report that prints each number and rewrites its JSON file as it lands
(a step killed at its time limit keeps everything it measured), and the list of missed goals that
makes a check exit non-zero."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


class LiveReport(dict):
    """A dict that prints every value set and, given `path`, rewrites the JSON file each time."""

    def __init__(self, path: str | Path | None = None, **values: Any) -> None:
        super().__init__()
        self.path = Path(path) if path else None
        self.failures: list[str] = []
        if self.path:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        for key, value in values.items():
            self[key] = value

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, value)
        print(f"{key} = {value}", flush=True)
        self.save()

    def save(self) -> None:
        if self.path:
            body = {**self, "failures": self.failures}
            self.path.write_text(json.dumps(body, indent=2, default=str) + "\n", encoding="utf-8")

    def expect(self, ok: bool, failure: str) -> bool:
        """Record `failure` (a missed goal) unless `ok`."""
        if not ok:
            self.failures.append(failure)
            print(f"FAIL {failure}", file=sys.stderr, flush=True)
            self.save()
        return ok

    def exit_code(self) -> int:
        print(json.dumps(dict(self), indent=2, default=str), flush=True)
        for failure in self.failures:
            print(f"FAIL {failure}", file=sys.stderr, flush=True)
        return 1 if self.failures else 0
