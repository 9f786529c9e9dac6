"""The error tree: its docstring, statuses, and the messages the errors build."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from router import errors
from router.errors import (
    ConfigError,
    ConfigProblem,
    FieldError,
    IngestError,
    PluginError,
    RouterError,
    SinkUnavailable,
    StorageUnusable,
    Untranslatable,
)


def documented_tree() -> dict[str, str]:
    """class name -> parent name, as drawn in the module docstring."""
    parents: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    for line in errors.__doc__.splitlines():
        match = re.match(r"^(\s*)(?:[│ ]*[├└]── )?([A-Z]\w+)\b", line)
        if not match or match.group(2) not in vars(errors):
            continue
        depth = line.find(match.group(2))
        while stack and stack[-1][0] >= depth:
            stack.pop()
        if stack:
            parents[match.group(2)] = stack[-1][1]
        stack.append((depth, match.group(2)))
    return parents


def router_errors() -> dict[str, type[RouterError]]:
    return {
        name: cls
        for name, cls in vars(errors).items()
        if isinstance(cls, type) and issubclass(cls, RouterError) and cls is not RouterError
    }


def test_the_docstring_draws_every_error_under_its_base_class():
    tree = documented_tree()
    actual = {
        name: next(base.__name__ for base in cls.__bases__ if issubclass(base, RouterError))
        for name, cls in router_errors().items()
    }
    assert tree == actual


def test_every_error_is_exported():
    assert set(router_errors()) <= set(errors.__all__)
    assert errors.__all__ == sorted(errors.__all__)


def test_each_ingest_error_has_its_own_status_but_the_500s_and_400s():
    statuses = {
        cls.status: name
        for name, cls in router_errors().items()
        if issubclass(cls, IngestError) and cls.status not in (400, 500)
    }
    assert sorted(statuses) == [401, 403, 404, 405, 408, 413, 429, 431, 503]


def test_an_ingest_error_keeps_its_own_copy_of_the_headers():
    headers = {"Retry-After": "1"}
    error = errors.RateLimited("slow down", headers=headers)
    headers["Retry-After"] = "99"
    assert error.headers == {"Retry-After": "1"}
    assert (error.source, error.request_id, error.errors) == (None, None, [])


@pytest.mark.parametrize(
    ("path", "text"),
    [
        (("items", 0, "id"), "items[0].id: required"),
        ((0, "id"), "[0].id: required"),
        (("a", "b"), "a.b: required"),
        ((), "required"),
    ],
)
def test_a_field_error_names_its_path_as_written_in_json(path, text):
    assert str(FieldError(path, "required")) == text


def test_a_config_error_prints_one_problem_per_line_with_file_line_and_key():
    error = ConfigError(
        [
            ConfigProblem("router.yaml", 3, "sinks.out.url", "required field"),
            ConfigProblem("router.yaml", None, "", "empty file"),
        ]
    )
    assert str(error) == "router.yaml:3: sinks.out.url: required field\nrouter.yaml: empty file"
    assert len(error.problems) == 2


def test_a_plugin_error_names_the_plugin_and_the_hook_if_any():
    assert str(PluginError("moloco", "router_sinks", "boom")) == (
        "plugin 'moloco' in hook router_sinks: boom"
    )
    assert str(PluginError("moloco", None, "cannot import")) == "plugin 'moloco': cannot import"


@pytest.mark.parametrize(
    ("status", "pause"), [(429, True), (503, True), (500, False), (None, False)]
)
def test_only_429_and_503_pause_the_whole_sink(status, pause):
    assert SinkUnavailable("x", status=status).pause is pause


def test_untranslatable_and_storage_unusable_keep_what_they_name():
    error = Untranslatable("moloco", "no user id", field="user_id")
    assert (str(error), error.field) == ("moloco: no user id", "user_id")
    unusable = StorageUnusable(Path("/d/spool.db"), "damaged")
    assert (unusable.path, str(unusable)) == ("/d/spool.db", "damaged")
