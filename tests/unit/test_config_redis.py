"""The top-level ``redis`` section, and the features that need it (no Redis server used)."""

from __future__ import annotations

import textwrap

import pytest

from router.cli import main
from router.config import RedisConfig, load_config
from router.errors import ConfigError
from router.pluginmanager import make_plugin_manager
from router.registry import build_registry
from router.yamlsource import load_yaml


def check(text: str, plugins=()):
    loaded = load_yaml(textwrap.dedent(text), "router.yaml", {})
    return load_config(loaded, build_registry(make_plugin_manager(autoload=False, extra=plugins)))


def problems(text: str, plugins=()) -> list[str]:
    with pytest.raises(ConfigError) as info:
        check(text, plugins)
    return [str(p) for p in info.value.problems]


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
    config = check(SCALED, sample)
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
        sample,
    )
    assert config.redis is None


def test_redis_users_without_redis_url_are_reported_with_their_line(sample):
    text = SCALED.split("sources:")[1]
    got = problems("sources:" + text, sample)
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
        assert check(text, sample).redis.url == url
    else:
        assert any(
            p.startswith("router.yaml:1: redis.url: value does not match")
            for p in problems(text, sample)
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
        sample,
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
