"""``router config``: the effective config as a document, every secret redacted."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import textwrap

import yaml

from router.cli import main
from router.config import RouterConfig, config_document, dump_config, load_config
from router.config.settings import RedisConfig, ServerConfig, SinkConfig, SourceConfig
from router.log import _spellings  # the forms the log redaction covers
from router.pluginmanager import make_plugin_manager
from router.registry import build_registry
from router.yamlsource import load_yaml

#: Sets something in every section, and no credential, so that nothing is redacted.
FULL = """\
server:
  bind: 127.0.0.1:9100
  max_body_bytes: 2MiB
  keepalive_timeout: 500ms
logging: {level: debug, format: json}
redis:
  url: redis://127.0.0.1:6379/3
  prefix: edge
  reconnect: {max_backoff: 2s}
sources:
  in:
    plugin: sample
    auth: none
    prefix: /tenant
    rate_limit: {rate: 20, key: credential}
  open:
    plugin: conscent
    auth: none
    on_invalid: quarantine
sinks:
  out:
    plugin: sample
    url: http://127.0.0.1:1/collect
    batch: {max_wait: 50ms}
    retry: {max_attempts: 3}
    rate_limit: {events_per_second: 5}
    dedup: {window: 1h}
    type_map: {purchase: buy}
  file:
    plugin: file
    path: out.ndjson
    buffer: memory
routes:
  - from: [in, open]
    to: out
    filter: {types: [purchase, page_view], match: {country: FR}}
  - {from: open, to: file}
"""


def check(text: str, env=None, file="router.yaml") -> RouterConfig:
    registry = build_registry(make_plugin_manager(autoload=False, extra=_sample()))
    return load_config(load_yaml(textwrap.dedent(text), file, env or {}), registry)


def _sample():
    from tests.helpers import sample_plugin

    return [("sample", sample_plugin)]


def without_as_written(config: RouterConfig) -> RouterConfig:
    """``config`` without what differs by design: the file, and options as written."""
    return dataclasses.replace(
        config,
        file="",
        sources={k: dataclasses.replace(v, options={}) for k, v in config.sources.items()},
        sinks={k: dataclasses.replace(v, options={}) for k, v in config.sinks.items()},
    )


def test_the_output_loads_back_to_an_equal_config():
    config = check(FULL)
    again = check(dump_config(config), file="printed.yaml")
    assert without_as_written(again) == without_as_written(config)
    assert config_document(again) == config_document(config)
    # Options a plugin reads stay as they were.
    assert again.sinks["out"].options["url"] == "http://127.0.0.1:1/collect"
    assert again.sinks["out"].options["type_map"] == {"purchase": "buy"}


def test_every_settings_field_is_in_the_document():
    """A field added to the settings and forgotten here would be silently left out."""
    doc = config_document(check(FULL))

    def names(cls, renamed):
        fields = {f.name for f in dataclasses.fields(cls)} - {"name", "options"}
        return {renamed.get(name, name) for name in fields}

    assert names(SinkConfig, {"dedup_window": "dedup"}) <= set(doc["sinks"]["out"])
    assert names(SourceConfig, {}) <= set(doc["sources"]["in"])
    reconnect = {"reconnect_initial_backoff": "reconnect", "reconnect_max_backoff": "reconnect"}
    assert names(RedisConfig, reconnect) - {"consumer", "dead_letters_max"} <= set(doc["redis"])


def test_defaults_are_filled_in_and_units_resolved():
    doc = config_document(check(FULL))
    assert doc["server"]["workers"] == ServerConfig().workers
    assert doc["server"]["max_body_bytes"] == 2 << 20
    assert doc["server"]["keepalive_timeout"] == 0.5
    assert doc["sinks"]["out"]["spool"]["max_events"] == 1_000_000
    assert doc["sinks"]["file"]["batch"]["max_events"] == 1000  # the file sink's own default
    assert doc["sources"]["in"]["rate_limit"]["burst"] == 20
    assert doc["redis"]["reconnect"] == {"initial_backoff": 0.1, "max_backoff": 2.0}


SECRETS = {
    "SAMPLE_KEY": 'k3y-with "quotes" and\\back/slash',
    "REDIS_PASSWORD": "p@ss/wörd",
    "UPSTREAM_TOKEN": "tok-3f9a",
    "API_KEY": "api-key-value",
}

WITH_SECRETS = """\
redis:
  url: redis://:${REDIS_PASSWORD}@127.0.0.1:6379
sources:
  in:
    plugin: sample
    auth:
      keys: ["${SAMPLE_KEY}", "literal-key-123"]
sinks:
  out:
    plugin: sample
    url: "http://127.0.0.1:1/x?token=${UPSTREAM_TOKEN}&page=2"
    api_key: ${API_KEY}
  mirror:
    plugin: sample
    url: "http://user:pct%2Fsecret@127.0.0.1:1/"
routes: [{from: in, to: [out, mirror]}]
"""


def test_no_secret_is_printed_in_any_form_the_logs_redact():
    config = check(WITH_SECRETS, SECRETS)
    secrets = {*SECRETS.values(), "literal-key-123", "pct%2Fsecret", "pct/secret"}
    assert secrets <= config.secrets
    text = dump_config(config)
    leaked = [(secret, form) for secret in secrets for form in _spellings(secret) if form in text]
    assert leaked == []
    assert text.count("[redacted]") >= 6
    assert "redis://:[redacted]@127.0.0.1:6379" in text


def test_router_config_subprocess(tmp_path):
    path = tmp_path / "router.yaml"
    path.write_text(
        textwrap.dedent("""\
        redis:
          url: redis://:${REDIS_PASSWORD}@127.0.0.1:6379
        sources:
          in:
            plugin: conscent
            auth: {keys: ["${SAMPLE_KEY}"], header: X-Key}
        sinks:
          f: {plugin: file, path: "${UPSTREAM_TOKEN}.ndjson"}
        routes: [{from: in, to: f}]
        """)
    )
    env = {**os.environ, **SECRETS, "ROUTER_DISABLE_PLUGIN_AUTOLOAD": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "router", "config", "-c", str(path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    doc = yaml.safe_load(done.stdout)
    assert doc["sources"]["in"]["auth"] == {"keys": ["[redacted]"], "header": "x-key"}
    assert doc["sinks"]["f"]["path"] == "[redacted].ndjson"
    assert doc["redis"]["url"] == "redis://:[redacted]@127.0.0.1:6379"
    assert doc["server"]["bind"] == "127.0.0.1:8080"
    assert not any(form in done.stdout for s in SECRETS.values() for form in _spellings(s))


def test_a_bad_config_exits_2_with_the_same_lines_as_router_check(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("ROUTER_DISABLE_PLUGIN_AUTOLOAD", "1")
    path = tmp_path / "router.yaml"
    path.write_text("server:\n  workers: many\nsinks:\n  f: {plugin: file}\n")
    assert main(["check", "-c", str(path)]) == 2
    expected = capsys.readouterr().err
    assert main(["config", "-c", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.err == expected and captured.out == ""
    assert expected.splitlines() == [
        f"{path}:2: server.workers: must be of integer type",
        f"{path}:4: sinks.f.path: required field",
    ]
