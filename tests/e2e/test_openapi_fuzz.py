"""Schemathesis against every ingest route, from the daemon's own /openapi.json.

The daemon runs as ``python -m router run`` on a random loopback port, once
with the shipped default config and once with credentials, a rate limit and
moved paths. Each route gets a bounded number of positive and negative
examples (derandomized, so CI sees the same ones every run), checked for: no
5xx, only documented statuses, content types and headers, bodies that match
their documented schemas, schema-valid requests accepted and schema-invalid
ones refused. The daemon must not log an error meanwhile.
"""

from __future__ import annotations

import collections
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import requests
import schemathesis
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    positive_data_acceptance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

pytestmark = pytest.mark.slow

ROOT = Path(__file__).parents[2]
DEFAULT = (ROOT / "config" / "router.yaml").read_text()
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    # The document is exact: what it allows is accepted, what it forbids refused.
    positive_data_acceptance,
    negative_data_rejection,
]
#: Examples per route and generation mode: enough to reach every error path
#: of the envelopes, bounded so the module stays well under a minute. For a
#: longer hunt, ROUTER_FUZZ_EXAMPLES=500 draws that many with fresh seeds.
HUNT = os.environ.get("ROUTER_FUZZ_EXAMPLES")
EXAMPLES = int(HUNT or 15)

KEYS = {"moloco": "mk-fuzz-0123", "segmento": "sk-fuzz-4567", "endu": "ek-fuzz-89ab"}
AUTH = {
    "server": {"max_body_bytes": 65536},
    "sources": {
        "conscent": {"plugin": "conscent", "auth": {"client_ids": ["c-1"]}, "prefix": "/c"},
        "segmento": {
            "plugin": "segmento",
            "auth": {"keys": [KEYS["segmento"]]},
            "rate_limit": {"rate": 1000, "burst": 1000},
        },
        "moloco": {"plugin": "moloco", "auth": {"keys": [KEYS["moloco"]]}, "platforms": ["shop"]},
        "endu": {"plugin": "endu", "auth": {"keys": [KEYS["endu"]]}, "paths": {"ingest": "/e"}},
    },
    "sinks": {"out": {"plugin": "file", "path": "out.ndjson"}},
    "routes": [{"from": ["conscent", "segmento", "moloco", "endu"], "to": "out"}],
}
#: How a request carries each source's credential, when it has keys.
CREDENTIALS = {
    "/api/v5/segmento/user-events": ("authkey", KEYS["segmento"]),
    "/api/v5/segmento/user-events/failed": ("authkey", KEYS["segmento"]),
    "/rmp/event/v1/platforms/{platform}/userevents": ("x-api-key", KEYS["moloco"]),
    "/e": ("authorization", "Bearer " + KEYS["endu"]),
}
#: Every route of each config: the ingest routes, and Segmento's listing.
ROUTES = {
    "default": [
        ("POST", "/collect/event"),
        ("POST", "/api/v5/segmento/user-events"),
        ("GET", "/api/v5/segmento/user-events/failed"),
        ("POST", "/rmp/event/v1/platforms/{platform}/userevents"),
        ("POST", "/api/events/record"),
    ],
    "auth": [
        ("POST", "/c/collect/event"),
        ("POST", "/api/v5/segmento/user-events"),
        ("GET", "/api/v5/segmento/user-events/failed"),
        ("POST", "/rmp/event/v1/platforms/{platform}/userevents"),
        ("POST", "/e"),
    ],
}


class Daemon:
    """``router run`` in a child process; its JSON log lines are kept."""

    def __init__(self, config: str, workdir: Path):
        path = workdir / "router.yaml"
        path.write_text(config)
        args = ["run", "-c", str(path), "--bind", "127.0.0.1:0", "--admin-bind", "127.0.0.1:0"]
        self.process = subprocess.Popen(
            [sys.executable, "-m", "router", *args],
            cwd=workdir,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env={**os.environ, "ROUTER_DISABLE_PLUGIN_AUTOLOAD": "1"},
        )
        self.logs: list[dict[str, Any]] = []
        self.url = ""
        self._ready = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()
        if not self._ready.wait(60) or not self.url:
            self.process.kill()
            raise RuntimeError("the daemon did not start:\n" + "\n".join(map(str, self.logs)))

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            try:
                entry = orjson.loads(line)
            except orjson.JSONDecodeError:
                entry = {"event": "raw", "line": line.decode(errors="replace")}
            self.logs.append(entry)
            if entry.get("event") == "daemon.ready":
                self.url = entry["binds"][0]
                self._ready.set()
        self._ready.set()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def errors(self, *, since: int = 0) -> list[dict[str, Any]]:
        """Error lines logged after the first ``since`` lines."""
        return [e for e in self.logs[since:] if e.get("level") in ("error", "critical")]


@pytest.fixture(scope="module")
def daemons(tmp_path_factory) -> Iterator[dict[str, Daemon]]:
    started: dict[str, Daemon] = {}
    try:
        for name, config in (("default", DEFAULT), ("auth", yaml.safe_dump(AUTH))):
            started[name] = Daemon(config, tmp_path_factory.mktemp(name))
        yield started
    finally:
        for daemon in started.values():
            daemon.stop()


_SCHEMAS: dict[str, Any] = {}


def load(daemon: Daemon) -> Any:
    """The daemon's document as schemathesis sees it, loaded once per daemon."""
    if daemon.url not in _SCHEMAS:
        schema = schemathesis.openapi.from_url(daemon.url + "/openapi.json")
        # An unknown query parameter is ignored, as HTTP APIs do, not refused.
        schema.config.generation.update(allow_extra_parameters=False)
        _SCHEMAS[daemon.url] = schema
    return _SCHEMAS[daemon.url]


@pytest.mark.parametrize(
    ("config", "method", "path"),
    [(config, *route) for config, routes in ROUTES.items() for route in routes],
    ids=[f"{config}-{m} {p}" for config, routes in ROUTES.items() for m, p in routes],
)
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
def test_route_keeps_its_documented_promises(daemons, config, method, path, mode) -> None:
    daemon = daemons[config]
    operation = load(daemon)[path][method]
    logged = len(daemon.logs)
    credential = CREDENTIALS.get(path) if config == "auth" else None
    session = requests.Session()

    @settings(
        max_examples=EXAMPLES,
        derandomize=not HUNT,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode), sends=st.sampled_from(SENDS))
    def run(case: Any, sends: str) -> None:
        headers = {}
        if credential is not None and sends != "nothing":
            name, key = credential
            headers[name] = key if sends == "the key" else key[:-1] + "x"
        case.body = integral_floats_as_ints(case.body)
        if config == "auth" and sends == "the key":
            carry_the_credential(case)
        response = case.call_and_validate(
            base_url=daemon.url, session=session, headers=headers, checks=CHECKS
        )
        statuses[response.status_code] += 1

    statuses: collections.Counter[int] = collections.Counter()
    try:
        run()
    finally:
        session.close()
        # With -s, the figures docs/delivery.md quotes (cases tried, statuses seen).
        seen = ", ".join(f"{n} x {status}" for status, n in sorted(statuses.items()))
        print(f"\nfuzz: {config} {method} {path} {mode}: {statuses.total()} cases: {seen}")
    assert daemon.errors(since=logged) == []


def carry_the_credential(case: Any) -> None:
    """The credentials that travel in a path or a body, which the document cannot give.

    Conscent's ``clientId`` of every event must be one of ``client_ids`` and
    Moloco's platform one of ``platforms``; random ones would only ever meet
    the 403 of the allow-list, never the route's other answers.
    """
    if case.path_parameters and "platform" in case.path_parameters:
        case.path_parameters["platform"] = "shop"
    if case.path.endswith("/collect/event") and isinstance(case.body, dict):
        events = case.body.get("messageBody")
        for event in events if isinstance(events, list) else ():
            if isinstance(event, dict) and "clientId" in event:
                event["clientId"] = "c-1"


def integral_floats_as_ints(value: Any) -> Any:
    """``2.0`` as ``2``: the one thing the document cannot say.

    JSON Schema counts ``2.0`` as an integer; the router, like the vendors'
    APIs, wants an integer written as one, so a generated ``2.0`` would be a
    valid request refused (see router.openapi).
    """
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**63:
        return int(value)
    if isinstance(value, list):
        return [integral_floats_as_ints(v) for v in value]
    if isinstance(value, dict):
        return {k: integral_floats_as_ints(v) for k, v in value.items()}
    return value


#: With a source's keys configured: the right key mostly, a wrong one, or none.
SENDS = ["the key", "the key", "the key", "a wrong key", "nothing"]


def test_the_document_is_served_as_json(daemons) -> None:
    r = requests.get(daemons["auth"].url + "/openapi.json", timeout=10)
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    for key in KEYS.values():
        assert key not in r.text
