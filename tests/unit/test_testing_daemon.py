"""build_config and running_daemon: a validated config, and a daemon in the test's Trio loop."""

from __future__ import annotations

import pytest
import trio

from router.errors import ConfigError
from router.testing.daemon import build_config, running_daemon

YAML = """\
sources: {in: {plugin: conscent, auth: none}}
sinks: {out: {plugin: file, path: "${OUT}"}}
routes: [{from: in, to: out}]
"""


def test_build_config_takes_yaml_text_with_variables_or_a_dict(tmp_path):
    config, registry = build_config(YAML, env={"OUT": str(tmp_path / "o.ndjson")})
    assert config.sinks["out"].options["path"] == str(tmp_path / "o.ndjson")
    assert "conscent" in registry.sources
    same, _ = build_config(
        {
            "sources": {"in": {"plugin": "conscent", "auth": "none"}},
            "sinks": {"out": {"plugin": "file", "path": str(tmp_path / "o.ndjson")}},
            "routes": [{"from": "in", "to": "out"}],
        }
    )
    assert same.sinks["out"].options == config.sinks["out"].options


def test_build_config_raises_the_config_error_with_the_test_file_name():
    with pytest.raises(ConfigError, match=r"^<test>:2: sinks\.out\.path: environment variable"):
        build_config(YAML, env={})
    with pytest.raises(ConfigError, match="invalid YAML"):
        build_config("sources: [", file="x.yaml")


async def test_running_daemon_binds_loopback_serves_and_reconciles(tmp_path):
    out = tmp_path / "out.ndjson"
    ping = {"clientId": "c1", "eventType": "EXIT", "eventLocation": "PAGE",
            "anonId": "8f14e45f-ceea-467f-a8b4-43c6f1a0b8d1"}  # fmt: skip
    config = YAML.replace("${OUT}", str(out)).replace("path:", "batch: {max_wait: 0.01}, path:")
    async with running_daemon(config, data_dir=tmp_path / "d") as rd:
        assert rd.url.startswith("http://127.0.0.1:") and not rd.url.endswith(":0")
        assert rd.daemon.data_dir == tmp_path / "d"
        r = await rd.client.post("/collect/event", json={"messageBody": [ping]})
        assert r.status_code == 201, r.text
        with trio.fail_after(10):
            while rd.reconcile("out")["delivered"] < 1:  # noqa: ASYNC110 - counters have no event
                await trio.sleep(0.01)
        totals = rd.reconcile("out")
        assert (totals["accepted"], totals["delivered"], totals["balance"]) == (1, 1, 0)
    assert not rd.daemon.ready  # stopped gracefully on exit
    assert out.read_text().count("\n") == 1
