"""router.loader: a config read together with the plugins it enables."""

from __future__ import annotations

from pathlib import Path

import pytest

from router.errors import ConfigError
from router.loader import load, registry_only


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "router.yaml"
    path.write_text(text)
    return str(path)


CONFIG = """
plugins: {disable: [moloco]}
sources:
  web: {plugin: conscent, auth: none}
sinks:
  out: {plugin: file, path: %s}
routes:
  - {from: web, to: [out]}
"""


def test_load_without_a_path_reads_the_default_config_with_every_builtin():
    config, registry = load(None)
    assert set(config.sources) == {"conscent", "endu", "moloco", "segmento"}
    assert {"conscent", "endu", "moloco", "segmento"} <= set(registry.sources)


def test_load_honours_plugins_disable_and_the_blocked_argument(tmp_path):
    path = write(tmp_path, CONFIG % (tmp_path / "out.jsonl"))
    config, registry = load(path)
    assert "moloco" not in registry.sources and "conscent" in registry.sources
    assert set(config.sinks) == {"out"}
    _, registry = load(path, blocked=["segmento"])
    assert not {"moloco", "segmento"} & set(registry.sources)


def test_load_names_a_source_whose_plugin_is_blocked(tmp_path):
    path = write(tmp_path, CONFIG % (tmp_path / "out.jsonl"))
    with pytest.raises(ConfigError, match="no source plugin 'conscent'"):
        load(path, blocked=["conscent"])


def test_registry_only_lists_the_plugins_a_config_enables(tmp_path):
    path = write(tmp_path, CONFIG % (tmp_path / "out.jsonl"))
    assert "moloco" not in {p.name for p in registry_only(path).plugins}
    assert "moloco" in {p.name for p in registry_only(None).plugins}
