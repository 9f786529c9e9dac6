"""Checking a parsed config: line numbers, unknown keys, plugin schemas, the redis and
server sections, placeholders (``--no-environment``), `router check`."""

from __future__ import annotations

import copy
import textwrap

import pytest

from router.cli import main
from router.config import RedisConfig, load_config
from router.config import schema as core
from router.errors import ConfigError
from router.pluginmanager import make_plugin_manager
from router.registry import build_registry
from router.testing.daemon import build_config
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
    base = {
        "sources": {
            "c": {
                "plugin": "conscent",
                "auth": {"keys": ["k"], "header": "X-Key"},
                "rate_limit": {"rate": 5},
            }
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
    assert load_config(Loaded("router.yaml", copy.deepcopy(base)), registry)  # reaches the builders
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


# -- the redis section --------------------------------------------------------

SCALED = """\
redis:
  url: redis://:s3cret-pass@10.0.0.5:6379/2
  prefix: edge
  claim_idle: 10s
  command_timeout: 500ms
  reconnect: {initial_backoff: 50ms, max_backoff: 2s}
  dead_letters_max: 100000
sources:
  in:
    plugin: sample
    auth: none
    rate_limit: {rate: 100, backend: redis, on_backend_error: fail_closed}
sinks:
  out:
    plugin: sample
    url: http://127.0.0.1:1
    buffer: redis
    rate_limit: {events_per_second: 50, backend: redis}
routes: [{from: in, to: out}]
"""


def test_redis_section_is_typed_and_defaulted(sample):
    config = check(SCALED, plugins=sample)
    assert config.redis == RedisConfig(
        url="redis://:s3cret-pass@10.0.0.5:6379/2",
        prefix="edge",
        claim_idle=10.0,
        command_timeout=0.5,
        reconnect_initial_backoff=0.05,
        reconnect_max_backoff=2.0,
        dead_letters_max=100_000,
    )
    assert config.redis.connect_timeout == 2.0 and config.redis.consumer is None
    assert config.sinks["out"].buffer == "redis"
    assert config.sinks["out"].rate_limit.backend == "redis"
    assert config.sources["in"].rate_limit.backend == "redis"
    assert config.sources["in"].rate_limit.on_backend_error == "fail_closed"
    assert "s3cret-pass" in config.secrets  # never logged


def test_no_redis_section_means_none(sample):
    config = check(
        """\
        sources: {in: {plugin: sample, auth: none}}
        sinks: {out: {plugin: sample, url: "http://127.0.0.1:1"}}
        routes: [{from: in, to: out}]
        """,
        plugins=sample,
    )
    assert config.redis is None


def test_redis_users_without_redis_url_are_reported_with_their_line(sample):
    text = SCALED.split("sources:")[1]
    got = problems("sources:" + text, plugins=sample)
    hint = "needs the top-level redis section: redis: {url: redis://…}"
    assert f"router.yaml:5: sources.in.rate_limit.backend: backend: redis {hint}" in got
    assert f"router.yaml:10: sinks.out.buffer: buffer: redis {hint}" in got
    assert f"router.yaml:11: sinks.out.rate_limit.backend: backend: redis {hint}" in got


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("redis://localhost:6379/0", True),
        ("rediss://user:pw@cache.internal:6380/1", True),
        ("redis+sentinel://s1:26379,s2:26379/mymaster", True),
        ("redis+cluster://n1:7000,n2:7001", True),
        ("http://localhost:6379", False),
        ("localhost:6379", False),
    ],
)
def test_redis_url_schemes(sample, url, ok):
    text = f"redis: {{url: '{url}'}}\n" + SCALED.split("\n", 7)[7]
    if ok:
        assert check(text, plugins=sample).redis.url == url
    else:
        assert any(
            p.startswith("router.yaml:1: redis.url: value does not match")
            for p in problems(text, plugins=sample)
        )


def test_old_per_sink_redis_block_and_url_backend_are_gone(sample):
    got = problems(
        """\
        sources:
          in:
            plugin: sample
            auth: none
            rate_limit: {rate: 5, backend: "redis://localhost:6379"}
        sinks:
          out:
            plugin: sample
            url: http://127.0.0.1:1
            redis: {url: "redis://localhost:6379"}
        routes: [{from: in, to: out}]
        """,
        plugins=sample,
    )
    assert any(
        p.startswith("router.yaml:5: sources.in.rate_limit.backend: unallowed value") for p in got
    )
    assert "router.yaml:10: sinks.out.redis: unknown field" in got


def test_router_check_reports_buffer_redis_without_url(tmp_path, capsys):
    path = tmp_path / "router.yaml"
    path.write_text(
        textwrap.dedent("""\
        sources: {in: {plugin: conscent, auth: none}}
        sinks:
          out:
            plugin: conscent
            url: http://127.0.0.1:1
            api_key: k
            buffer: redis
        routes: [{from: in, to: out}]
        """)
    )
    assert main(["check", "-c", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}:7: sinks.out.buffer: buffer: redis needs the top-level redis section" in err


def test_the_example_in_docs_scaling_is_a_valid_config():
    from pathlib import Path

    doc = (Path(__file__).parents[2] / "docs" / "scaling.md").read_text()
    example = doc.split("```yaml\n", 1)[1].split("```", 1)[0]
    example += "routes: [{from: conscent, to: moloco}]\n"
    env = {"MOLOCO_URL": "http://127.0.0.1:1", "MOLOCO_API_KEY": "k", "MOLOCO_PLATFORM": "p"}
    loaded = load_yaml(example, "scaling.md", env)
    config = load_config(loaded, build_registry(make_plugin_manager(autoload=False)))
    assert config.redis.claim_idle == 30.0
    assert config.sinks["moloco"].buffer == "redis"
    assert config.sinks["moloco"].dedup_window == 3600.0


# -- the server section -------------------------------------------------------


def server(**options) -> dict:
    return {
        "server": options,
        "sources": {"in": {"plugin": "conscent", "auth": "none"}},
        "sinks": {"out": {"plugin": "file", "path": "out.ndjson"}},
        "routes": [{"from": "in", "to": "out"}],
    }


def test_defaults():
    config, _ = build_config(server())
    s = config.server
    assert (s.max_json_depth, s.max_header_bytes, s.max_connections) == (64, 16384, 1000)
    assert (s.keepalive_timeout, s.body_timeout) == (5.0, 10.0)


def test_values_are_parsed():
    config, _ = build_config(
        server(max_header_bytes="32KiB", keepalive_timeout="500ms", body_timeout="1m")
    )
    s = config.server
    assert (s.max_header_bytes, s.keepalive_timeout, s.body_timeout) == (32768, 0.5, 60.0)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_json_depth": 500}, "server.max_json_depth: max value is 128"),
        ({"max_json_depth": 1}, "server.max_json_depth: min value is 2"),
        ({"body_timeout": 0}, "server.body_timeout: must be longer than 0 s"),
        ({"keepalive_timeout": "soon"}, "server.keepalive_timeout: must be a duration"),
        ({"max_connections": 0}, "server.max_connections: min value is 1"),
        ({"max_header_bytes": "big"}, "server.max_header_bytes: must be a size"),
    ],
)
def test_bad_values_name_the_key(options, message):
    with pytest.raises(ConfigError) as caught:
        build_config(server(**options))
    assert message in str(caught.value)


# -- placeholders (router check --no-environment) ---------------------------------


def check_unset(text: str, plugins=()):
    """``text`` checked with no variable set, each ``${VAR}`` a placeholder."""
    loaded = load_yaml(textwrap.dedent(text), "router.yaml", {}, placeholders=True)
    registry = build_registry(make_plugin_manager(autoload=False, extra=plugins))
    return load_config(loaded, registry)


UNSET = """\
server:
  bind: ${BIND}
  workers: ${WORKERS}
  shutdown_timeout: ${STOP_AFTER}
redis:
  url: ${REDIS_URL}
sources:
  in:
    plugin: sample
    auth:
      keys: ["${SAMPLE_KEY}"]
    prefix: ${TENANT_PREFIX}
sinks:
  out:
    plugin: sample
    url: ${UPSTREAM_URL}
    buffer: redis
    timeout: ${TIMEOUT}
routes:
  - from: in
    to: out
"""


def test_a_placeholder_passes_where_a_string_is_allowed(sample):
    config = check_unset(UNSET, sample)
    # Strings keep the placeholder, even where a regex would refuse it.
    assert config.redis.url == "${REDIS_URL}"
    assert config.sources["in"].prefix == "${TENANT_PREFIX}"
    assert config.sources["in"].auth.keys == ("${SAMPLE_KEY}",)
    assert config.sinks["out"].options["url"] == "${UPSTREAM_URL}"


def test_a_placeholder_in_a_field_that_takes_no_string_gets_the_default(sample):
    config = check_unset(UNSET, sample)
    assert (config.server.bind, config.server.workers) == ("127.0.0.1:8080", 1)
    assert config.server.shutdown_timeout == 10.0
    assert config.sinks["out"].timeout == 10.0


def test_placeholders_leave_every_other_problem_reported(sample):
    with pytest.raises(ConfigError) as info:
        check_unset(UNSET.replace("buffer: redis", "buffer: tape"), sample)
    assert [str(p) for p in info.value.problems] == [
        "router.yaml:17: sinks.out.buffer: unallowed value tape"
    ]


def test_without_placeholders_an_unset_variable_is_still_an_error(sample):
    got = problems(UNSET, {}, sample)
    assert "router.yaml:2: server.bind: environment variable ${BIND} is not set" in got


def test_a_placeholder_anywhere_in_the_core_schema_never_crashes():
    """Placeholders are left out where they do not fit: never a crash of the builders."""
    base = {
        "sources": {
            "c": {
                "plugin": "conscent",
                "auth": {"keys": ["k"], "header": "X-Key"},
                "rate_limit": {"rate": 5},
            }
        },
        "sinks": {"f": {"plugin": "file", "path": "x", "rate_limit": {"events_per_second": 1}}},
        "routes": [{"from": "c", "to": "f", "filter": {"types": ["a"]}}],
        "redis": {"url": "redis://127.0.0.1"},
    }
    paths = [
        *_core_paths(core.SERVER_SCHEMA, ("server",)),
        *_core_paths(core.LOGGING_SCHEMA, ("logging",)),
        *_core_paths(core.SOURCE_CORE_SCHEMA, ("sources", "c")),
        *_core_paths(core.SINK_CORE_SCHEMA, ("sinks", "f")),
        *_core_paths(core.ROUTE_SCHEMA, ("routes", 0)),
        *_core_paths(core.REDIS_SCHEMA, ("redis",)),
    ]
    registry = build_registry(make_plugin_manager(autoload=False))
    assert load_config(Loaded("router.yaml", copy.deepcopy(base)), registry)  # reaches the builders
    crashes = []
    for path in paths:
        doc = copy.deepcopy(base)
        parent = doc
        for key in path[:-1]:
            parent = parent[key] if isinstance(parent, list) else parent.setdefault(key, {})
        parent[path[-1]] = "${UNSET}"
        loaded = Loaded("router.yaml", doc, placeholders={path})
        try:
            load_config(loaded, registry)
        except ConfigError:
            pass
        except Exception as exc:
            crashes.append(f"{dotted(path)}: {type(exc).__name__}: {exc}")
    assert crashes == []


def test_router_check_no_environment(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("ROUTER_DISABLE_PLUGIN_AUTOLOAD", "1")
    monkeypatch.delenv("OUT_PATH", raising=False)
    path = tmp_path / "router.yaml"
    path.write_text(
        "server:\n  workers: ${WORKERS}\nsinks:\n  f:\n    plugin: file\n    path: ${OUT_PATH}\n"
    )
    assert main(["check", "-c", str(path)]) == 2
    assert "sinks.f.path: environment variable ${OUT_PATH} is not set" in capsys.readouterr().err
    assert main(["check", "--no-environment", "-c", str(path)]) == 0
    assert "ok: 0 sources, 1 sinks, 0 routes" in capsys.readouterr().out
    path.write_text(path.read_text() + "  g: {plugin: file}\n")
    assert main(["check", "--no-environment", "-c", str(path)]) == 2
    assert capsys.readouterr().err.splitlines() == [f"{path}:7: sinks.g.path: required field"]


def test_delivery_process_with_several_workers_is_one_problem_at_its_line():
    text = """\
    server:
      workers: 2
      delivery: process
    sinks:
      out: {plugin: file, path: out.ndjson}
    """
    assert problems(text) == [
        f"router.yaml:3: server.delivery: {core.ONE_INGEST_PROCESS}",
    ]
    assert check(text.replace("workers: 2", "workers: 1")).server.delivery == "process"
    assert problems(text.replace("process", "elsewhere")) == [
        "router.yaml:3: server.delivery: unallowed value elsewhere",
    ]
