"""Fixtures shared by the whole suite."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).parent
sys.path.insert(0, str(TESTS))

import sample_plugin  # noqa: E402


@pytest.fixture
def sample():
    """The neutral test vendor as an extra plugin: ``plugins=sample``."""
    return [("sample", sample_plugin)]


@pytest.fixture
def sample_config(tmp_path):
    """sample source (no auth) -> file sink, flushed quickly."""
    return {
        "sources": {"in": {"plugin": "sample", "auth": "none"}},
        "sinks": {
            "out": {
                "plugin": "file",
                "path": str(tmp_path / "out.ndjson"),
                "batch": {"max_wait": 0.01},
            }
        },
        "routes": [{"from": "in", "to": "out"}],
    }
