"""Logging: JSON lines, levels, context, and redaction of lines, tracebacks, streams, configs."""

from __future__ import annotations

import io
import logging
import sys
import textwrap

import orjson
import pytest
import structlog

from router.cli import main
from router.config import load_config
from router.log import REDACTED, Redactor, configure_logging
from router.pluginmanager import make_plugin_manager
from router.registry import build_registry
from router.yamlsource import load_yaml
from tests.helpers import leaky_plugin, sample_plugin

SECRET = "s3cr3t-value-1234"


@pytest.fixture
def logs():
    """Configure logging with SECRET into a buffer; yield a function rendering it."""

    def configure(fmt: str, secrets=(SECRET,)) -> io.StringIO:
        stream = io.StringIO()
        configure_logging("debug", fmt, secrets=secrets, stream=stream, cache=False)
        return stream

    yield configure
    configure_logging("warning", "console", cache=False)


def test_json_lines_carry_event_level_utc_timestamp_and_bound_context():
    stream = io.StringIO()
    try:
        configure_logging("info", "json", stream=stream, cache=False)
        with structlog.contextvars.bound_contextvars(request_id="r-1"):
            structlog.get_logger().info("ingest.request_accepted", source="in", count=2)
        structlog.get_logger().debug("below.the.level")
    finally:
        configure_logging("warning", "console", cache=False)
    (line,) = stream.getvalue().splitlines()
    entry = orjson.loads(line)
    assert {k: entry[k] for k in ("event", "level", "request_id", "source", "count")} == {
        "event": "ingest.request_accepted",
        "level": "info",
        "request_id": "r-1",
        "source": "in",
        "count": 2,
    }
    assert entry["timestamp"].endswith("Z")


def test_stdlib_warnings_render_as_json_lines_too_and_their_infos_are_dropped():
    stream = io.StringIO()
    try:
        configure_logging("debug", "json", stream=stream, cache=False)
        logging.getLogger("hypercorn.error").info("Running on http://127.0.0.1:1")
        logging.getLogger("httpx").warning("pool is full")
    finally:
        configure_logging("warning", "console", cache=False)
    (line,) = stream.getvalue().splitlines()
    entry = orjson.loads(line)
    assert (entry["event"], entry["level"], entry["logger"]) == ("pool is full", "warning", "httpx")


def test_auto_format_is_json_when_the_stream_is_not_a_terminal():
    stream = io.StringIO()
    try:
        configure_logging("info", "auto", stream=stream, cache=False)
        structlog.get_logger().info("x.y")
    finally:
        configure_logging("warning", "console", cache=False)
    assert orjson.loads(stream.getvalue())["event"] == "x.y"


def fail_with_secret_in_locals(message: str = "boom") -> None:
    headers = {"x-api-key": SECRET}  # noqa: F841 (a local the traceback must not show)
    raise RuntimeError(message)


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_traceback_renders_no_locals_and_no_secret(logs, fmt):
    stream = logs(fmt)
    try:
        fail_with_secret_in_locals(f"failed with key {SECRET}")
    except RuntimeError:
        structlog.get_logger().error("test.failed", exc_info=True)
    out = stream.getvalue()
    assert "fail_with_secret_in_locals" in out  # the traceback is there
    assert f"failed with key {REDACTED}" in out
    assert SECRET not in out
    assert "x-api-key" not in out  # no frame locals at all


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_stdlib_loggers_and_their_tracebacks_are_redacted(logs, fmt):
    stream = logs(fmt)
    try:
        fail_with_secret_in_locals(f"bad {SECRET}")
    except RuntimeError:
        logging.getLogger("hypercorn.error").exception("Error with %s", SECRET)
    logging.getLogger("httpx").warning("sent %s", {"authkey": SECRET})
    out = stream.getvalue()
    assert "Error with" in out and "sent" in out
    assert SECRET not in out
    assert "x-api-key" not in out


def test_a_value_the_processor_cannot_see_into_is_redacted_in_the_rendered_line(logs):
    class Holder:
        def __repr__(self) -> str:
            return f"Holder(key={SECRET})"

    stream = logs("json")
    structlog.get_logger().info("test.holder", holder=Holder(), exc=ValueError(SECRET))
    line = orjson.loads(stream.getvalue())
    assert line["holder"] == f"Holder(key={REDACTED})"
    assert SECRET not in stream.getvalue()


def test_escaped_spellings_of_a_secret_are_redacted(logs):
    tricky = 'pa"ss\\wörd/+ 1'
    stream = logs("json", secrets=[tricky])
    log = structlog.get_logger()
    log.error("test.repr", error=repr(ValueError(tricky)))
    log.error("test.nested", value={"a": [tricky]})
    log.error("test.url", url="https://example.com/?k=pa%22ss%5Cw%C3%B6rd%2F%2B%201")
    out = stream.getvalue()
    for spelling in (tricky, orjson.dumps(tricky).decode()[1:-1], repr(tricky)[1:-1]):
        assert spelling not in out
    assert out.count(REDACTED) == 3
    assert "%22ss" not in out


def test_std_streams_are_redacted(monkeypatch):
    from router.log import redact_std_streams

    out, err = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", err)
    redact_std_streams([SECRET])
    print("printed", SECRET)
    sys.stderr.write(f"Traceback: RuntimeError: {SECRET}\n")
    assert out.getvalue() == f"printed {REDACTED}\n"
    assert err.getvalue() == f"Traceback: RuntimeError: {REDACTED}\n"


def test_secrets_shorter_than_four_characters_are_not_redacted_and_say_so(logs):
    assert Redactor(["abc"]).redact("abc abcd") == "abc abcd"
    assert Redactor(["abcd"]).redact("abc abcd") == f"abc {REDACTED}"
    stream = logs("json", secrets=["k"])
    assert '"event":"logging.short_secrets"' in stream.getvalue()


CONFIG = """\
redis: {url: "redis://default:redis-pass-77@127.0.0.1:6379/0"}
sources:
  in: {plugin: sample, auth: {keys: ["${KEY}", literal-key-42]}}
  leak: {plugin: leaky, auth: {keys: [leaky-key-55]}, passphrase: declared-pass-66}
sinks:
  out:
    plugin: sample
    url: "https://user:url-pass-88@example.com/x?token=query-token-99&page=2"
    api_key: sink-key-11
  leaky: {plugin: leaky, url: "http://127.0.0.1:1", signature: declared-sig-22}
routes: [{from: [in, leak], to: [out, leaky]}]
"""
CONFIG_SECRETS = [
    "env-key-33",
    "literal-key-42",
    "leaky-key-55",
    "declared-pass-66",
    "redis-pass-77",
    "url-pass-88",
    "query-token-99",
    "sink-key-11",
    "declared-sig-22",
]


def load(text: str, env: dict[str, str]):
    loaded = load_yaml(textwrap.dedent(text), "router.yaml", env)
    registry = build_registry(
        make_plugin_manager(
            autoload=False, extra=[("sample", sample_plugin), ("leaky", leaky_plugin)]
        )
    )
    return load_config(loaded, registry)


def test_config_secrets_cover_env_urls_and_plugin_declared_options():
    config = load(CONFIG, {"KEY": "env-key-33"})
    assert set(CONFIG_SECRETS) <= config.secrets
    assert "2" not in config.secrets and "page" not in config.secrets


def test_config_reprs_show_no_credentials():
    config = load(CONFIG, {"KEY": "env-key-33"})
    for obj in (config, config.sources["in"], config.sinks["out"], config.redis):
        text = repr(obj)
        for secret in CONFIG_SECRETS:
            assert secret not in text, (secret, text)
    assert f"redis://default:{REDACTED}@127.0.0.1:6379/0" in repr(config.redis)
    assert "sinks={'out': SinkConfig(name='out', plugin='sample'" in repr(config)


def test_router_check_never_prints_a_secret_quoted_in_a_problem(tmp_path, monkeypatch):
    path = tmp_path / "router.yaml"
    path.write_text(
        textwrap.dedent("""\
        sources:
          in:
            plugin: segmento
            auth: {keys: [a-good-key]}
            rate_limit: {rate: 1, key: "${API_KEY}"}
        sinks: {}
        routes: []
        """)
    )
    monkeypatch.setenv("API_KEY", "sk-live-0123456789")
    stderr = io.StringIO()
    assert main(["check", "-c", str(path)], stderr=stderr) == 2
    assert f"unknown key '{REDACTED}'" in stderr.getvalue()
    assert "sk-live-0123456789" not in stderr.getvalue()


def test_a_reloaded_configs_secrets_are_learned_by_every_redactor():
    from router.log import learn_secrets

    stream = io.StringIO()
    configure_logging("info", "json", secrets=["first-secret"], stream=stream, cache=False)
    redactor = Redactor([])  # e.g. the one /readyz uses
    structlog.get_logger().info("before", value="second-secret-1")
    learn_secrets(["second-secret-1"])
    structlog.get_logger().info("after", value="second-secret-1 and first-secret")
    logging.getLogger("hypercorn.error").warning("stdlib says second-secret-1")
    lines = stream.getvalue().splitlines()
    assert "second-secret-1" in lines[0]  # not a secret yet
    assert all("second-secret-1" not in line and "first-secret" not in line for line in lines[1:])
    assert redactor.redact("x second-secret-1") == f"x {REDACTED}"
