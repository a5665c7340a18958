"""A local Ray instance for the Ray tests: 2 CPUs, no dashboard, auth off, its own short temp folder,
with the hub's environment variables set aside while it runs and Serve shut down after."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

HUB_ENV = ("HUB_DATA_DIR", "HUB_DATABASE_URL", "HUB_RAY_ADDRESS", "HUB_SESSION_SALT")


@contextmanager
def local_ray() -> Iterator[str]:
    """Yields the instance's GCS address."""
    import ray

    saved = {key: os.environ.pop(key, None) for key in HUB_ENV}
    os.environ["RAY_AUTH_MODE"] = "disabled"
    temp = tempfile.mkdtemp(prefix="ray-", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
    ray.init(num_cpus=2, include_dashboard=False, _temp_dir=temp, logging_level="WARNING")
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        from ray import serve

        try:
            serve.shutdown()
        finally:
            ray.shutdown()
            shutil.rmtree(temp, ignore_errors=True)
            for key, value in saved.items():
                if value is not None:
                    os.environ[key] = value
