"""Built-in credential styles (``auth.style``): where the core finds a client's key."""

from __future__ import annotations

import base64

import pytest

from router import IngestRequest, Source
from router.errors import ConfigError
from router.testing.daemon import build_config, running_daemon
from tests.helpers import sample_plugin


class Plain(Source):
    vendor = "sample"
    routes = ()


def source(**auth) -> Source:
    return Plain("in", {"auth": {"keys": ["k"], **auth}})


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def request(headers=None, query=None) -> IngestRequest:
    return IngestRequest("POST", "/", headers=headers or {}, query=query or {})


@pytest.mark.parametrize(
    ("auth", "headers", "query", "body", "expected"),
    [
        ({"header": "x-key"}, {"x-key": "k1"}, {}, None, "k1"),
        ({"style": "bearer"}, {"authorization": "Bearer k1"}, {}, None, "k1"),
        ({"style": "bearer"}, {"authorization": "bearer  k1 "}, {}, None, "k1"),
        ({"style": "bearer"}, {"authorization": "Basic k1"}, {}, None, None),
        ({"style": "basic"}, {"authorization": basic("wk", "")}, {}, None, "wk"),
        ({"style": "basic", "part": "password"}, {"authorization": basic("u", "p")}, {}, None, "p"),
        ({"style": "basic"}, {"authorization": "Basic !!!"}, {}, None, None),
        ({"style": "basic"}, {"authorization": "Bearer wk"}, {}, None, None),
        ({"style": "query", "param": "api_key"}, {}, {"api_key": "k1"}, None, "k1"),
        ({"style": "body", "field": "writeKey"}, {}, {}, {"writeKey": "k1"}, "k1"),
        ({"style": "body", "field": "meta.key"}, {}, {}, {"meta": {"key": "k1"}}, "k1"),
        ({"style": "body", "field": "writeKey"}, {}, {}, [{"writeKey": "k1"}], None),
        ({"style": "body", "field": "writeKey"}, {}, {}, {"writeKey": 5}, None),
    ],
)
def test_each_style_finds_the_key(auth, headers, query, body, expected):
    assert source(**auth).credential(request(headers, query), body) == expected


def test_the_header_style_decodes_basic_rather_than_returning_it_raw():
    got = source(header="authorization").credential(
        request({"authorization": basic("wk", "")}), None
    )
    assert got == "wk"


def test_the_style_defaults_to_the_class_attribute():
    class Keyed(Plain):
        credential_style = "query"
        credential_param = "key"

    assert Keyed("in", {"auth": {"keys": ["k"]}}).credential(request(query={"key": "q"})) == "q"
    assert "the key query parameter" in Keyed("in", {}).credential_hint()


def config(auth) -> dict:
    return {
        "sources": {"in": {"plugin": "sample", "auth": auth}},
        "sinks": {"out": {"plugin": "file", "path": "out.ndjson"}},
        "routes": [{"from": "in", "to": "out"}],
    }


@pytest.mark.parametrize(
    ("auth", "message"),
    [
        ({"keys": ["k"], "style": "query"}, "auth.style query needs auth.param"),
        ({"keys": ["k"], "style": "body"}, "auth.style body needs auth.field"),
        ({"keys": ["k"], "style": "cookie"}, "unallowed value cookie"),
    ],
)
def test_config_names_what_a_style_lacks(auth, message):
    with pytest.raises(ConfigError, match=message):
        build_config(config(auth), plugins=[("sample", sample_plugin)])


async def test_a_key_in_the_body_is_checked_after_parsing(tmp_path):
    auth = {"keys": ["wk-1"], "style": "body", "field": "writeKey"}
    async with running_daemon(
        config(auth), data_dir=tmp_path, plugins=[("sample", sample_plugin)]
    ) as rd:
        events = [{"kind": "view", "user": "u"}]
        ok = await rd.client.post("/sample/events", json={"events": events, "writeKey": "wk-1"})
        assert ok.status_code == 202, ok.text
        missing = await rd.client.post("/sample/events", json={"events": events})
        assert missing.status_code == 401
        assert "the writeKey field of the body" in missing.text
        wrong = await rd.client.post("/sample/events", json={"events": events, "writeKey": "x"})
        assert wrong.status_code == 403


async def test_basic_auth_with_the_key_as_user_name(tmp_path):
    auth = {"keys": ["wk-1"], "style": "basic"}
    async with running_daemon(
        config(auth), data_dir=tmp_path, plugins=[("sample", sample_plugin)]
    ) as rd:
        body = {"events": [{"kind": "view", "user": "u"}]}
        ok = await rd.client.post("/sample/events", json=body, auth=("wk-1", ""))
        assert ok.status_code == 202, ok.text
        wrong = await rd.client.post("/sample/events", json=body, auth=("nope", ""))
        assert wrong.status_code == 403
