"""A training log every demo-world model commits next to its weights (`training_log.json`): the loss
curve every N steps, steps, batch size, device, threads and wall-clock seconds."""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class TrainingLog:
    model: str
    every: int = 50
    curve: list[tuple[int, float]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    started: float = field(default_factory=time.time)
    _sum: float = 0.0
    _count: int = 0

    def record(self, step: int, loss: float) -> float | None:
        """Add one step's loss; every `every` steps the mean of the window goes on the curve (and is returned)."""
        self._sum += loss
        self._count += 1
        if step % self.every == 0:
            mean = self._sum / self._count
            self.curve.append((step, round(mean, 5)))
            self._sum, self._count = 0.0, 0
            return mean
        return None

    @property
    def last(self) -> float | None:
        return self.curve[-1][1] if self.curve else None

    def finish(self, *, steps: int, batch_size: int, device: Any, **extra: Any) -> dict[str, Any]:
        import torch

        if self._count:  # the last, partial window
            self.curve.append((steps, round(self._sum / self._count, 5)))
            self._sum, self._count = 0.0, 0
        return {
            "model": self.model,
            "steps": steps,
            "batch_size": batch_size,
            "device": str(device),
            "device_name": torch.cuda.get_device_name(0) if str(device).startswith("cuda") else platform.processor()
            or platform.machine(),
            "torch_threads": torch.get_num_threads(),
            "cpu_count": os.cpu_count(),
            "seconds": round(time.time() - self.started, 1),
            "final_loss": self.last,
            "loss_every_steps": self.every,
            "loss_curve": [[s, v] for s, v in self.curve],
            **self.extra,
            **extra,
        }


def write_log(folder: str | Path, log: dict[str, Any], name: str = "training_log.json") -> Path:
    path = Path(folder) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(log, indent=1, ensure_ascii=False), encoding="utf-8")
    return path
