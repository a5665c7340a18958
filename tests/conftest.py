"""Shared fixtures: a hub config pointing at a temporary data folder, tiny models built in code."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# No test touches the network.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def write_config(folder: Path, **overrides) -> Path:
    """A small hub config with the two builtin random checkpoints, plus `overrides` (top-level keys)."""
    config = {
        "title": "Sakuga Hub (test)",
        "default_checkpoint": "demo-random",
        "data_dir": str(folder / "data"),
        "engine": {"batch_window_ms": 30},
        "demo_world": "demoworld.hooks",
        "checkpoints": [
            {
                "id": "demo-random",
                "name": "Demo (random weights)",
                "family": "sd15",
                "source": "builtin:demo-random",
                "is_demo": True,
                "defaults": {"width": 64, "height": 64, "steps": 3, "cfg": 5.0, "sampler": "euler_a"},
            },
            {
                "id": "demo-random-b",
                "name": "Demo B (random weights)",
                "family": "sd15",
                "source": "builtin:demo-random-b",
                "is_demo": True,
                "defaults": {"width": 64, "height": 64, "steps": 3, "cfg": 5.0, "sampler": "euler_a"},
            },
        ],
    }
    for key, value in overrides.items():
        if key == "checkpoints_extra":
            config["checkpoints"].extend(value)
        else:
            config[key] = value
    path = folder / "spaces_config.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def builtin_root(tmp_path_factory) -> Path:
    """Builtin checkpoints built once per test session, shared by every test's data folder."""
    from hub.builtin import ensure_builtin_checkpoint

    root = tmp_path_factory.mktemp("builtin")
    for name in ("demo-random", "demo-random-b"):
        ensure_builtin_checkpoint(name, root)
    return root


@pytest.fixture
def hub_config_path(tmp_path, builtin_root, monkeypatch) -> Path:
    """A config whose data folder already holds the builtin checkpoints (symlinked, built once)."""
    monkeypatch.delenv("HUB_DATA_DIR", raising=False)
    monkeypatch.delenv("HUB_DATABASE_URL", raising=False)
    data = tmp_path / "data"
    data.mkdir()
    (data / "builtin").symlink_to(builtin_root, target_is_directory=True)
    return write_config(tmp_path)
