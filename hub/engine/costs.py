"""The engine's cost model: how long a job will take on this device, learned from real calls.

A call's time is `steps x (per_step + rate x megapixels)`, where `megapixels` counts every image of
the call (a batch of 4 at 1024x1024 is 4.2) and img2img or inpainting run `strength` of their steps.
`rate` (seconds per megapixel-step) is what grows with the request; `per_step` is the fixed cost of a
step, which dominates tiny models and tiny images. Both are kept per checkpoint and task on this
device, fitted by least squares with forgetting (a warm-up or a noisy neighbour fades) from every
finished call. Before a checkpoint's first call, `rate` is the checkpoint's own
(`limits.seconds_per_megapixel_step` in its config entry) or the device's prior
(`engine.seconds_per_megapixel_step`) and `per_step` is 0. The fits are kept in
`<data_dir>/cost_model.json`, so a restart remembers what it measured.

Linear in pixels is optimistic at sizes where attention's quadratic cost shows; the watchdog
(`limits.max_call_seconds`) bounds that.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from hub.config import HubConfig
from hub.engine.requests import Job

log = logging.getLogger(__name__)

FORGET = 0.8  # weight the fit keeps of what came before, per observation
SAVE_EVERY_S = 5.0  # the file is written at most this often (every call would put disk I/O on the hot path)


def steps_and_megapixels(job: Job) -> tuple[int, float]:
    """Denoising steps a job runs and the megapixels of its images (0, 0 for exclusive work)."""
    if job.spec is None or job.task == "exclusive":
        return 0, 0.0
    steps = job.steps
    if job.strength is not None and job.task in ("img2img", "inpaint"):
        steps = max(1, math.ceil(steps * job.strength))
    return steps, job.batch * job.width * job.height / 1e6


def work_of(job: Job) -> float:
    """Megapixel-steps of a job."""
    steps, megapixels = steps_and_megapixels(job)
    return steps * megapixels


@dataclass
class Fit:
    """Exponentially weighted sums for `seconds_per_step = per_step + rate x megapixels`."""

    n: float = 0.0
    x: float = 0.0
    y: float = 0.0
    xx: float = 0.0
    xy: float = 0.0

    def add(self, megapixels: float, seconds_per_step: float) -> None:
        for name in ("n", "x", "y", "xx", "xy"):
            setattr(self, name, getattr(self, name) * FORGET)
        self.n += 1
        self.x += megapixels
        self.y += seconds_per_step
        self.xx += megapixels * megapixels
        self.xy += megapixels * seconds_per_step

    def solve(self) -> tuple[float, float]:
        """(per_step, rate). Calls all of one size cannot split the two: then all of it is rate, which
        overestimates bigger requests (the safe side)."""
        spread = self.n * self.xx - self.x * self.x
        if spread > 1e-12 * max(self.n * self.xx, 1e-30):
            rate = (self.n * self.xy - self.x * self.y) / spread
            per_step = (self.y - rate * self.x) / self.n
            if rate > 0 and per_step >= 0:
                return per_step, rate
        return 0.0, self.y / self.x if self.x > 0 else 0.0


class CostModel:
    def __init__(self, config: HubConfig, device: str, path: Path | None = None):
        self.config = config
        self.device = device
        self.path = path
        self._fits: dict[str, Fit] = {}
        self._lock = threading.Lock()
        self._saved_at: float | None = None  # monotonic time of the last write; None: never written
        if path is not None and path.is_file():
            try:
                saved = json.loads(path.read_text(encoding="utf-8"))
                self._fits = {str(key): Fit(**fit) for key, fit in saved.get(device, {}).items()}
            except (ValueError, OSError, AttributeError, TypeError):
                log.warning("cost model: ignoring an unreadable %s", path.name)

    @staticmethod
    def _key(job: Job) -> str:
        assert job.spec is not None
        return f"{job.spec.id}/{job.task}"

    def coefficients(self, job: Job) -> tuple[float, float]:
        """(seconds per step, seconds per megapixel-step) for this job's checkpoint and task here."""
        with self._lock:
            fit = self._fits.get(self._key(job))
            if fit is not None and fit.x > 0:
                return fit.solve()
        assert job.spec is not None
        own = job.spec.limits.seconds_per_megapixel_step
        if own is not None:
            return 0.0, own
        priors = self.config.engine.seconds_per_megapixel_step
        return 0.0, priors.get(self.device.split(":")[0], priors.get("cpu", 30.0))

    def measured(self, job: Job) -> bool:
        with self._lock:
            fit = self._fits.get(self._key(job))
            return fit is not None and fit.x > 0

    def estimate(self, jobs: list[Job] | Job) -> float:
        """Estimated seconds of one pipeline call running `jobs` together (one job: its own call)."""
        jobs = jobs if isinstance(jobs, list) else [jobs]
        jobs = [job for job in jobs if job.spec is not None and job.task != "exclusive"]
        if not jobs:
            return 0.0
        per_step, rate = self.coefficients(jobs[0])
        steps = max(steps_and_megapixels(job)[0] for job in jobs)
        megapixels = sum(steps_and_megapixels(job)[1] for job in jobs)
        return steps * (per_step + rate * megapixels)

    def observe(self, jobs: list[Job], seconds: float) -> None:
        """Learn from a finished call: `seconds` it took on the device for these jobs together."""
        jobs = [job for job in jobs if job.spec is not None and job.task != "exclusive"]
        if not jobs or seconds <= 0:
            return
        steps = max(steps_and_megapixels(job)[0] for job in jobs)
        megapixels = sum(steps_and_megapixels(job)[1] for job in jobs)
        if steps <= 0 or megapixels <= 0:
            return
        with self._lock:
            self._fits.setdefault(self._key(jobs[0]), Fit()).add(megapixels, seconds / steps)
        now = time.monotonic()
        if self._saved_at is None or now - self._saved_at >= SAVE_EVERY_S:
            self.save()

    def save(self) -> None:
        """Write the fits (the engine calls it on shutdown too, so nothing measured is lost)."""
        if self.path is None:
            return
        with self._lock:
            fits = {key: asdict(fit) for key, fit in self._fits.items()}
            self._saved_at = time.monotonic()
        if not fits:  # nothing measured: leave what an earlier run wrote
            return
        try:
            saved = json.loads(self.path.read_text(encoding="utf-8")) if self.path.is_file() else {}
        except (ValueError, OSError):
            saved = {}
        saved[self.device] = fits
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            partial = self.path.with_name(f".{self.path.name}.{os.getpid()}.{threading.get_ident()}")
            partial.write_text(json.dumps(saved, indent=1, sort_keys=True), encoding="utf-8")
            os.replace(partial, self.path)  # whole or not at all: a reader never sees half a file
        except OSError:
            log.warning("cost model: cannot write %s", self.path.name)
