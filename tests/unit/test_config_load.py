"""Reading a config file: the built-in default, interpolation, placeholders, YAML errors."""

from __future__ import annotations

import pytest

from router.config.load import DEFAULT_CONFIG, blocked_plugins, read_config_file
from router.errors import ConfigError
from router.yamlsource import load_yaml


def test_interpolation_defaults_types_and_escapes():
    loaded = load_yaml(
        "a: ${N:-3}\nb: '${N:-3}'\nc: $${LITERAL}\nd: ${EMPTY:-x}\ne: ${SET}\n",
        "f.yaml",
        {"EMPTY": "", "SET": "v"},
    )
    assert loaded.data == {"a": 3, "b": "3", "c": "${LITERAL}", "d": "x", "e": "v"}
    assert loaded.secrets == {"v"}
    assert not loaded.problems


def test_duplicate_keys_and_yaml_errors():
    loaded = load_yaml("server:\n  bind: a:1\n  bind: b:2\n", "router.yaml", {})
    assert [str(p) for p in loaded.problems] == ["router.yaml:3: server.bind: duplicate key"]
    loaded = load_yaml("server: [1, 2\n", "router.yaml", {})
    assert len(loaded.problems) == 1
    assert str(loaded.problems[0]).startswith("router.yaml:2: invalid YAML")


def test_an_unset_variable_is_a_problem(tmp_path):
    path = tmp_path / "router.yaml"
    path.write_text("sinks:\n  f:\n    path: ${NOT_SET}\n")
    loaded = read_config_file(path, {})
    assert [str(p) for p in loaded.problems] == [
        f"{path}:3: sinks.f.path: environment variable ${{NOT_SET}} is not set"
    ]
    assert loaded.failed_paths == {("sinks", "f", "path")}


def test_no_environment_keeps_an_unset_variable_as_a_placeholder(tmp_path):
    path = tmp_path / "router.yaml"
    path.write_text(
        "a: ${NOT_SET}\nb: x-${NOT_SET}\nc: ${NOT_SET:-2}\nd: ${SET}\ne:\n  - ${NOT_SET}\n"
    )
    loaded = read_config_file(path, {"SET": "value"}, no_environment=True)
    assert loaded.problems == []
    assert loaded.data == {
        "a": "${NOT_SET}",
        "b": "x-${NOT_SET}",
        "c": 2,
        "d": "value",
        "e": ["${NOT_SET}"],
    }
    assert loaded.placeholders == {("a",), ("b",), ("e", 0)}
    assert loaded.secrets == {"value"}


def test_the_default_config_without_a_path():
    loaded = read_config_file(None, {})
    assert loaded.file == DEFAULT_CONFIG
    assert not loaded.problems and "sinks" in loaded.data


def test_an_unreadable_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read: No such file or directory"):
        read_config_file(tmp_path / "nope.yaml")


def test_router_check_missing_file(tmp_path, capsys):
    from router.cli import main

    assert main(["check", "-c", str(tmp_path / "nope.yaml")]) == 2
    assert "cannot read: No such file or directory" in capsys.readouterr().err


def test_blocked_plugins_are_read_before_validation():
    assert blocked_plugins(load_yaml("plugins: {disable: [a, 3, b]}\n", "f", {})) == ["a", "b"]
    assert blocked_plugins(load_yaml("plugins: 5\n", "f", {})) == []
    assert blocked_plugins(load_yaml("- 1\n", "f", {})) == []
