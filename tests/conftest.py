"""Fixtures shared by the whole suite."""

from __future__ import annotations

import pytest

from tests.helpers import sample_plugin

#: ``hook_marker``: ``@pytest.mark.hook(name)`` fails a test that never calls that hook;
#: ``pytester``: tests/test_meta.py runs small suites to show the meta checks can fail.
pytest_plugins = ["tests.helpers.hook_marker", "pytester"]


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
