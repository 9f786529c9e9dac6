"""Config loading: line numbers, interpolation, unknown keys, plugin schemas, `router check`."""

from __future__ import annotations

import copy
import textwrap

import pytest

from router.cli import main
from router.config import load_config, parse_duration, parse_size
from router.errors import ConfigError
from router.pluginmanager import make_plugin_manager
from router.registry import build_registry
from router.yamlsource import Loaded, dotted, load_yaml


def check(text: str, env=None, plugins=()):
    loaded = load_yaml(textwrap.dedent(text), "router.yaml", env or {})
    registry = build_registry(make_plugin_manager(autoload=False, extra=plugins))
    return load_config(loaded, registry)


def problems(text: str, env=None, plugins=()) -> list[str]:
    with pytest.raises(ConfigError) as info:
        check(text, env, plugins)
    return [str(p) for p in info.value.problems]


GOOD = """\
server:
  bind: 127.0.0.1:9000
  max_body_bytes: 2MiB
  shutdown_timeout: 5s
sources:
  in:
    plugin: sample
    auth:
      keys: ["${SAMPLE_KEY}"]
sinks:
  out:
    plugin: sample
    url: ${UPSTREAM_URL:-http://127.0.0.1:1}
    batch: {max_events: 50, max_wait: 250ms}
routes:
  - from: in
    to: out
"""


def test_valid_config_is_typed_and_defaulted(sample):
    config = check(GOOD, {"SAMPLE_KEY": "s3cret-key"}, sample)
    assert config.server.bind == "127.0.0.1:9000"
    assert config.server.max_body_bytes == 2 * 1024 * 1024
    assert config.server.shutdown_timeout == 5.0
    assert config.server.workers == 1
    assert config.sources["in"].auth.keys == ("s3cret-key",)
    assert config.sources["in"].auth.header == "x-sample-key"
    assert config.sinks["out"].options["url"] == "http://127.0.0.1:1"
    assert config.sinks["out"].batch.max_events == 50
    assert config.sinks["out"].batch.max_wait == 0.25
    assert config.sinks["out"].retry.max_attempts == 20
    assert config.routes[0].sources == ("in",) and config.routes[0].sinks == ("out",)
    assert "s3cret-key" in config.secrets


def test_every_problem_is_reported_with_its_line(sample):
    text = """\
    server:
      bind: 127.0.0.1:9000
      workrs: 2
      max_body_bytes: lots
    sources:
      in:
        plugin: sample
        auth:
          keys: ["${MISSING_KEY}"]
        rate_limit:
          burst: 10
    sinks:
      out:
        plugin: sample
        batch:
          max_event: 5
    routes:
      - from: in
        to: nowhere
    """
    got = problems(text, {}, sample)
    assert "router.yaml:3: server.workrs: unknown field" in got
    assert (
        "router.yaml:4: server.max_body_bytes: must be a size such as 1048576, 512KiB or 1MiB"
    ) in got
    assert (
        "router.yaml:9: sources.in.auth.keys[0]: environment variable ${MISSING_KEY} is not set"
    ) in got
    assert "router.yaml:10: sources.in.rate_limit.rate: required field" in got
    assert "router.yaml:13: sinks.out.url: required field" in got
    assert "router.yaml:16: sinks.out.batch.max_event: unknown field" in got
    assert "router.yaml:19: routes[0].to: no sink named 'nowhere'" in got


def test_wrong_types_and_unknown_plugins(sample):
    got = problems(
        """\
    server:
      workers: two
    sources:
      a:
        plugin: nosuch
        auth: none
    sinks:
      b:
        plugin: sample
        url: 5
        max_concurrency: 0
    routes:
      - {from: a, to: b}
    """,
        {},
        sample,
    )
    assert "router.yaml:2: server.workers: must be of integer type" in got
    assert any(
        p.startswith("router.yaml:5: sources.a.plugin: no source plugin 'nosuch'") for p in got
    )
    assert "router.yaml:10: sinks.b.url: must be of string type" in got
    assert "router.yaml:11: sinks.b.max_concurrency: min value is 1" in got


def test_auth_must_be_explicit(sample):
    got = problems(
        """\
    sources:
      a: {plugin: sample}
    sinks:
      f: {plugin: file, path: /tmp/x}
    routes: [{from: a, to: f}]
    """,
        {},
        sample,
    )
    assert "router.yaml:2: sources.a.auth: required field" in got


def test_duplicate_keys_and_yaml_errors():
    got = problems("server:\n  bind: a:1\n  bind: b:2\n")
    assert "router.yaml:3: server.bind: duplicate key" in got
    got = problems("server: [1, 2\n")
    assert len(got) == 1 and got[0].startswith("router.yaml:2: invalid YAML")


def test_interpolation_defaults_types_and_escapes(sample):
    loaded = load_yaml(
        "a: ${N:-3}\nb: '${N:-3}'\nc: $${LITERAL}\nd: ${EMPTY:-x}\ne: ${SET}\n",
        "f.yaml",
        {"EMPTY": "", "SET": "v"},
    )
    assert loaded.data == {"a": 3, "b": "3", "c": "${LITERAL}", "d": "x", "e": "v"}
    assert loaded.secrets == {"v"}
    assert not loaded.problems


def test_same_path_on_two_sources_is_a_conflict(sample):
    got = problems(
        """\
    sources:
      a: {plugin: sample, auth: none}
      b: {plugin: sample, auth: none}
    sinks:
      f: {plugin: file, path: /tmp/x}
    routes: [{from: [a, b], to: f}]
    """,
        {},
        sample,
    )
    assert any("POST /sample/events is also served by source 'a'" in p for p in got)


def test_prefix_resolves_the_conflict(sample):
    config = check(
        """\
    sources:
      a: {plugin: sample, auth: none}
      b: {plugin: sample, auth: none, prefix: /tenant-b}
    sinks:
      f: {plugin: file, path: /tmp/x}
    routes: [{from: [a, b], to: f}]
    """,
        {},
        sample,
    )
    assert config.sources["b"].prefix == "/tenant-b"


def test_required_plugin_versions(sample):
    base = """\
    plugins:
      require: [{req}]
    """
    assert check(base.format(req="'sample>=1.2'"), {}, sample)
    got = problems(base.format(req="'sample>=2.0'"), {}, sample)
    assert got == [
        "router.yaml:2: plugins.require[0]: plugin 'sample' is version 1.2.3, "
        "sample>=2.0 is required"
    ]
    got = problems(base.format(req="absent"), {}, sample)
    assert got == ["router.yaml:2: plugins.require[0]: required plugin 'absent' is not installed"]


def test_units():
    assert parse_duration("500ms") == 0.5
    assert parse_duration("2m") == 120
    assert parse_duration(3) == 3.0
    assert parse_size("1KiB") == 1024
    assert parse_size("2MB") == 2_000_000
    with pytest.raises(ValueError):
        parse_duration("soon")


def test_router_check_cli(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("ROUTER_DISABLE_PLUGIN_AUTOLOAD", "1")
    good = tmp_path / "good.yaml"
    good.write_text("sinks:\n  f: {plugin: file, path: out.ndjson}\n")
    assert main(["check", "-c", str(good)]) == 0
    assert "ok: 0 sources, 1 sinks, 0 routes" in capsys.readouterr().out

    bad = tmp_path / "bad.yaml"
    bad.write_text(
        textwrap.dedent("""\
        server:
          shutdown_timout: 3
        sinks:
          f:
            plugin: file
            path: ${NOT_SET_ANYWHERE}
            batch: {max_events: many}
          g:
            plugin: file
        logging: {level: loud}
    """)
    )
    assert main(["check", "-c", str(bad)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [
        f"{bad}:2: server.shutdown_timout: unknown field",
        f"{bad}:6: sinks.f.path: environment variable ${{NOT_SET_ANYWHERE}} is not set",
        f"{bad}:7: sinks.f.batch.max_events: must be of integer type",
        f"{bad}:8: sinks.g.path: required field",
        f"{bad}:10: logging.level: unallowed value loud",
    ]


def test_router_check_missing_file(tmp_path, capsys):
    assert main(["check", "-c", str(tmp_path / "nope.yaml")]) == 2
    assert "cannot read: No such file or directory" in capsys.readouterr().err


def test_memory_bounds_are_sizes_with_defaults(sample):
    config = check(GOOD, {"SAMPLE_KEY": "k"}, sample)
    assert config.server.max_inflight_bytes == 16 << 20
    assert config.sinks["out"].max_inflight_bytes == 16 << 20
    assert config.sinks["out"].spool.memory_bytes == 16 << 20
    text = GOOD.replace("  shutdown_timeout: 5s\n", "  max_inflight_bytes: 64MiB\n").replace(
        "    batch: {max_events: 50, max_wait: 250ms}\n",
        "    max_inflight_bytes: 4MiB\n    spool: {memory_bytes: 2MiB}\n",
    )
    config = check(text, {"SAMPLE_KEY": "k"}, sample)
    assert config.server.max_inflight_bytes == 64 << 20
    assert config.sinks["out"].max_inflight_bytes == 4 << 20
    assert config.sinks["out"].spool.memory_bytes == 2 << 20
    got = problems(text.replace("2MiB}", "lots}"), {"SAMPLE_KEY": "k"}, sample)
    assert any("sinks.out.spool.memory_bytes: must be a size such" in p for p in got), got
    got = problems(text.replace("64MiB", "0"), {"SAMPLE_KEY": "k"}, sample)
    assert got == [
        "router.yaml:4: server.max_inflight_bytes: must be a size of at least 1 byte, such as 16MiB"
    ]


def _core_paths(schema, prefix):
    for key, rule in schema.items():
        yield (*prefix, key)
        if rule.get("type") == "dict" and isinstance(rule.get("schema"), dict):
            yield from _core_paths(rule["schema"], (*prefix, key))


def test_a_wrong_typed_value_anywhere_in_the_core_schema_is_a_config_problem():
    """Never a crash of the code that builds the typed config after validation."""
    from router import config as core

    base = {
        "sources": {
            "c": {"plugin": "conscent", "auth": {"keys": ["k"]}, "rate_limit": {"rate": 5}}
        },
        "sinks": {"f": {"plugin": "file", "path": "x", "rate_limit": {"events_per_second": 1}}},
        "routes": [{"from": "c", "to": "f", "filter": {"types": ["a"]}}],
        "redis": {"url": "redis://127.0.0.1"},
    }
    paths = [
        *_core_paths(core.SERVER_SCHEMA, ("server",)),
        *_core_paths(core.LOGGING_SCHEMA, ("logging",)),
        *_core_paths(core.SOURCE_CORE_SCHEMA, ("sources", "c")),
        ("sources", "c", "auth", "keys"),
        *_core_paths(core.SINK_CORE_SCHEMA, ("sinks", "f")),
        *_core_paths(core.ROUTE_SCHEMA, ("routes", 0)),
        *_core_paths(core.REDIS_SCHEMA, ("redis",)),
        ("plugins", "disable"),
        ("plugins", "require"),
        ("sources",),
        ("sinks",),
        ("routes",),
    ]
    registry = build_registry(make_plugin_manager(autoload=False))
    crashes = []
    for path in paths:
        for bad in ("lots", [1], {"a": 1}, True, None, -1, 1.5, 10**20, "", [{"a": 1}]):
            doc = copy.deepcopy(base)
            parent = doc
            for key in path[:-1]:
                parent = parent[key] if isinstance(parent, list) else parent.setdefault(key, {})
            parent[path[-1]] = bad
            try:
                load_config(Loaded("router.yaml", doc), registry)
            except ConfigError:
                pass
            except Exception as exc:
                crashes.append(f"{dotted(path)}: {bad!r}: {type(exc).__name__}: {exc}")
    assert crashes == []
