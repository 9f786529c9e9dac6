"""router.openapi: /openapi.json is valid OpenAPI 3.1 and its schemas agree with the validators."""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from openapi_spec_validator import validate as validate_openapi

from router.openapi import event_schema, events_schema, infer_schema
from router.testing.daemon import running_daemon
from router.testing.strategies import invalid_documents, json_values, valid_for_spec
from router.validation import Validators, ValidatorSpec

ROOT = Path(__file__).parents[2]
DEFAULT = (ROOT / "config" / "router.yaml").read_text()
PLUGINS = ("conscent", "segmento", "moloco", "endu")
SPECS = [
    spec
    for plugin in PLUGINS
    for spec in importlib.import_module(f"router_plugins.{plugin}").router_validators()
]
IDS = [f"{s.vendor}.{s.event_type}" for s in SPECS]


def _catalog_specs() -> list[ValidatorSpec]:
    """The schemas of tests/data/schemas, which use rules no vendor does (yet)."""
    path = ROOT / "tests" / "data" / "schemas" / "__init__.py"
    spec = importlib.util.spec_from_file_location("_router_test_schemas", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return list(module.test_specs())


CATALOG = _catalog_specs()
SLOW_OK = [HealthCheck.too_slow]

#: Rules the translation approximates (see router.openapi): an invalid
#: document that breaks one of these may still match the JSON Schema.
APPROXIMATED = {"regex"}

_VALIDATORS: dict[int, Any] = {}


def validator(schema: dict[str, Any]) -> jsonschema.Draft202012Validator:
    key = id(schema)
    if key not in _VALIDATORS:
        jsonschema.Draft202012Validator.check_schema(schema)
        _VALIDATORS[key] = (schema, jsonschema.Draft202012Validator(schema))
    return _VALIDATORS[key][1]


_EVENT_SCHEMAS = {id(spec): event_schema(spec) for spec in [*SPECS, *CATALOG]}


def codec_of(vendor: str) -> Any:
    (codec,) = importlib.import_module(f"router_plugins.{vendor}").router_codecs()
    return codec


def source_of(vendor: str) -> Any:
    (cls,) = importlib.import_module(f"router_plugins.{vendor}").router_sources()
    return cls


_UNIONS: dict[str, tuple[Validators, Any, dict[str, Any]]] = {}


def union(vendor: str) -> tuple[Validators, Any, dict[str, Any]]:
    """The vendor's validators, codec, and the JSON Schema of one of its events."""
    if vendor not in _UNIONS:
        specs = {s.event_type: s for s in SPECS if s.vendor == vendor}
        schema = events_schema(specs, source_of(vendor).event_type_field)
        _UNIONS[vendor] = (Validators(specs.values()), codec_of(vendor), schema)
    return _UNIONS[vendor]


def router_accepts(vendor: str, doc: Any) -> bool:
    validators, codec, _ = union(vendor)
    return validators.check(vendor, codec.event_type(doc), doc) == []


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
@settings(max_examples=8, deadline=None, suppress_health_check=SLOW_OK)
@given(data=st.data())
def test_valid_events_match_their_json_schema(spec: ValidatorSpec, data: st.DataObject) -> None:
    doc = data.draw(valid_for_spec(spec))
    errors = [e.message for e in validator(_EVENT_SCHEMAS[id(spec)]).iter_errors(doc)]
    assert errors == []
    # The vendor's event schema picks each type's schema as Validators.check does.
    _, _, schema = union(spec.vendor)
    assert validator(schema).is_valid(doc) == router_accepts(spec.vendor, doc)


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
@settings(max_examples=8, deadline=None, suppress_health_check=SLOW_OK)
@given(data=st.data())
def test_invalid_events_fail_their_json_schema(spec: ValidatorSpec, data: st.DataObject) -> None:
    invalid = data.draw(invalid_documents(spec.schema, allow_unknown=spec.allow_unknown))
    note(invalid.reason)
    rule = invalid.reason.rsplit(": ", 1)[-1].split(" ", 1)[0]
    if rule not in APPROXIMATED:
        assert not validator(_EVENT_SCHEMAS[id(spec)]).is_valid(invalid.document)
    _, _, schema = union(spec.vendor)
    if rule not in APPROXIMATED:
        assert validator(schema).is_valid(invalid.document) == router_accepts(
            spec.vendor, invalid.document
        )


@pytest.mark.parametrize("spec", CATALOG, ids=[f"{s.vendor}.{s.event_type}" for s in CATALOG])
@settings(max_examples=8, deadline=None, suppress_health_check=SLOW_OK)
@given(data=st.data())
def test_catalog_schemas_translate_exactly(spec: ValidatorSpec, data: st.DataObject) -> None:
    check = validator(_EVENT_SCHEMAS[id(spec)])
    valid = data.draw(valid_for_spec(spec))
    assert [e.message for e in check.iter_errors(valid)] == []
    invalid = data.draw(invalid_documents(spec.schema, allow_unknown=spec.allow_unknown))
    note(invalid.reason)
    if invalid.reason.rsplit(": ", 1)[-1].split(" ", 1)[0] not in APPROXIMATED:
        assert check.is_valid(invalid.document) == (
            Validators([spec]).check(spec.vendor, spec.event_type, invalid.document) == []
        )


@pytest.mark.parametrize("vendor", PLUGINS)
@settings(max_examples=30, deadline=None, suppress_health_check=SLOW_OK)
@given(doc=json_values())
def test_arbitrary_json_is_judged_as_the_router_does(vendor: str, doc: Any) -> None:
    _, _, schema = union(vendor)
    assert validator(schema).is_valid(doc) == router_accepts(vendor, doc)


def test_infer_schema_keeps_types_and_keys() -> None:
    schema = infer_schema({"code": 3, "message": "m", "details": [], "ok": False})
    assert schema["required"] == ["code", "message", "details", "ok"]
    assert schema["properties"]["code"] == {"type": "integer"}
    assert schema["properties"]["ok"] == {"type": "boolean"}


# -- the served document ------------------------------------------------------

AUTH = {
    "sources": {
        "conscent": {"plugin": "conscent", "auth": {"client_ids": ["c-1"]}, "prefix": "/c"},
        "moloco": {
            "plugin": "moloco",
            "auth": {"keys": ["mk-secret"]},
            "platforms": ["shop"],
            "rate_limit": {"rate": 100},
        },
        "endu": {"plugin": "endu", "auth": {"keys": ["ek-secret"]}, "paths": {"ingest": "/e"}},
    },
    "sinks": {"out": {"plugin": "file", "path": "out.ndjson"}},
    "routes": [{"from": ["conscent", "moloco", "endu"], "to": "out"}],
}


async def fetch_document(config: Any, tmp_path: Path, plugins: Any = ()) -> dict[str, Any]:
    async with running_daemon(config, data_dir=tmp_path / "data", plugins=plugins) as rd:
        r = await rd.client.get("/openapi.json")
        assert r.status_code == 200
        assert r.headers["content-type"] == "application/json"
        document = r.json()
    validate_openapi(document)
    assert document["openapi"].startswith("3.1")
    return document


async def test_default_config_document(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    doc = await fetch_document(DEFAULT, tmp_path)
    assert set(doc["paths"]) == {
        "/collect/event",
        "/api/v5/segmento/user-events",
        "/api/v5/segmento/user-events/failed",
        "/rmp/event/v1/platforms/{platform}/userevents",
        "/api/events/record",
    }
    moloco = doc["paths"]["/rmp/event/v1/platforms/{platform}/userevents"]["post"]
    assert [p["name"] for p in moloco["parameters"]] == ["platform"]
    assert "security" not in moloco and "securitySchemes" not in doc["components"]
    # No auth, no rate limit: nothing can answer 401, 403 or 429.
    assert set(moloco["responses"]) == {"200", "400", "413", "500", "503"}
    assert moloco["responses"]["400"]["content"]["application/json"]["schema"]["required"] == [
        "code",
        "message",
        "details",
    ]
    conscent = doc["paths"]["/collect/event"]["post"]
    assert "201" in conscent["responses"]
    body = conscent["requestBody"]["content"]["application/json"]["schema"]
    assert body["required"] == ["messageBody"]
    # Segmento quarantines invalid events: any event is documented as accepted.
    segmento = doc["paths"]["/api/v5/segmento/user-events"]["post"]["requestBody"]
    items = segmento["content"]["application/json"]["schema"]["properties"]["data"]["items"]
    assert items["anyOf"][1] == {
        "description": "an event that fails its schema: quarantined, not refused"
    }
    assert "anyOf" not in body["properties"]["messageBody"]["items"]
    # Segmento's read-only listing, with its paging parameters.
    listing = doc["paths"]["/api/v5/segmento/user-events/failed"]["get"]
    assert [p["name"] for p in listing["parameters"]] == ["page", "per_page"]
    assert set(listing["responses"]) == {"200", "400", "500"}
    # Endu's success is an empty 200: no content.
    assert "content" not in doc["paths"]["/api/events/record"]["post"]["responses"]["200"]


async def test_document_follows_the_config(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    doc = await fetch_document(AUTH, tmp_path)
    assert set(doc["paths"]) == {
        "/c/collect/event",
        "/rmp/event/v1/platforms/{platform}/userevents",
        "/e",
    }
    schemes = doc["components"]["securitySchemes"]
    assert schemes == {
        "moloco.credential": {"type": "apiKey", "in": "header", "name": "x-api-key"},
        "endu.credential": {"type": "http", "scheme": "bearer"},
    }
    moloco = doc["paths"]["/rmp/event/v1/platforms/{platform}/userevents"]["post"]
    assert moloco["security"] == [{"moloco.credential": []}]
    assert {"401", "403", "429"} <= set(moloco["responses"])
    assert "Retry-After" in moloco["responses"]["429"]["headers"]
    conscent = doc["paths"]["/c/collect/event"]["post"]
    assert "security" not in conscent  # client ids are in the body: 401/403 only
    assert {"401", "403"} <= set(conscent["responses"])
    # Keys never reach the document.
    assert b"secret" not in orjson.dumps(doc)


async def test_a_third_party_source_gets_its_shapes_inferred(
    tmp_path, sample, sample_config
) -> None:
    """The sample plugin declares nothing: its 202 and its error body are found by calling it."""
    async with running_daemon(sample_config, data_dir=tmp_path / "data", plugins=sample) as rd:
        doc = (await rd.client.get("/openapi.json")).json()
        bad = await rd.client.post("/sample/events", json={"nope": 1})
        good = await rd.client.post(
            "/sample/events", json={"events": [{"kind": "view", "user": "u"}]}
        )
    validate_openapi(doc)
    responses = doc["paths"]["/sample/events"]["post"]["responses"]
    assert good.status_code == 202 and "202" in responses
    jsonschema.validate(good.json(), responses["202"]["content"]["application/json"]["schema"])
    assert bad.status_code == 400
    error = responses["400"]["content"]["application/json"]["schema"]
    assert error["required"] == ["sample_error"]
    jsonschema.validate(bad.json(), error)
