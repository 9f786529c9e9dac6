"""The conformance suite fails a plugin that breaks what the core relies on."""

from __future__ import annotations

import types
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from router import (
    Codec,
    Envelope,
    Event,
    Identity,
    IngestRoute,
    Reply,
    Sink,
    SinkRequest,
    Source,
    ValidatorSpec,
    hookimpl,
)
from router.testing.conformance import Conformance, PluginUnderTest, exact_difference


class LossyCodec(Codec):
    """Sends a whole float back as an int: equal in Python, another type on the wire."""

    vendor = "lossy"

    def event_type(self, raw: Any) -> str | None:
        return "*"

    def decode(self, raw, *, id, received_at, meta) -> Event:
        return Event(
            id=id,
            type="click",
            timestamp=received_at,
            received_at=received_at,
            vendor="lossy",
            identity=Identity(user_id=raw["user"]),
            properties={"n": raw["n"]},
        )

    def encode(self, event: Event, options: Mapping[str, Any]) -> dict[str, Any]:
        n = event.properties["n"]
        return {"user": event.identity.user_id, "n": int(n) if n == int(n) else n}


class LossySource(Source):
    vendor = "lossy"
    routes = (IngestRoute("POST", "/lossy"),)
    credential_header = "x-key"

    def split(self, request, body: Any) -> Envelope:
        return Envelope([body])

    def error(self, request, error) -> Reply:
        if error.status == 404:
            return Reply(404, b"not here")  # another shape than every other error
        return Reply(error.status, {"error": error.message}, dict(error.headers))


class DeafSink(Sink):
    """Treats every answer as delivered, so nothing is ever retried."""

    kind = "lossy"
    vendor = "lossy"

    def build_request(self, batch: Sequence[bytes]) -> SinkRequest:
        return SinkRequest(self.options["url"], b"[" + b",".join(batch) + b"]", {})

    async def send(self, batch: Sequence[bytes]) -> None:
        url, body, headers = self.build_request(batch)
        await self.client.post(url, content=body, headers=headers)


def lossy_module(*, mark_sinks: bool = True) -> types.ModuleType:
    module = types.ModuleType("lossy_plugin")
    module.router_codecs = hookimpl(lambda: [LossyCodec()])
    schema = {
        "user": {"type": "string", "required": True},
        "n": {"type": "float", "required": True},
    }
    # No unknown keys: the codec under test loses only the number type.
    module.router_validators = hookimpl(
        lambda: [ValidatorSpec("lossy", "*", schema, allow_unknown=False)]
    )
    module.router_sources = hookimpl(lambda: [LossySource])
    sinks = lambda: [DeafSink]  # noqa: E731
    module.router_sinks = hookimpl(sinks) if mark_sinks else sinks
    return module


def suite(module: types.ModuleType) -> Conformance:
    class Lossy(Conformance):
        plugin = PluginUnderTest(
            f"lossy{id(module)}", module, sample={"user": "u", "n": 1.5}, max_examples=50
        )

    return Lossy()


def test_exact_difference_tells_json_types_apart():
    assert exact_difference({"a": [1, 2.5]}, {"a": [1, 2.5]}) is None
    assert exact_difference({"a": 1}, {"a": 1.0}) == "a: 1 (int) instead of 1.0 (float)"
    assert exact_difference([True], [1]) == "[0]: True (bool) instead of 1 (int)"
    assert exact_difference({}, {"p": {}}) == "the event: extra keys [], missing keys ['p']"


def test_the_round_trip_check_is_type_exact():
    lossy = suite(lossy_module())
    (spec,) = lossy.own_specs()
    with pytest.raises(AssertionError, match=r"n: \d+ \(int\) instead of .* \(float\)"):
        lossy.test_round_trip_is_type_exact(spec)


def test_an_error_in_another_shape_fails():
    lossy = suite(lossy_module())
    lossy.test_error_reply_in_the_vendor_shape(400)
    with pytest.raises(AssertionError, match="the 404 body is not in the shape"):
        lossy.test_error_reply_in_the_vendor_shape(404)


def test_a_hook_without_hookimpl_fails():
    lossy = suite(lossy_module(mark_sinks=False))
    with pytest.raises(AssertionError, match=r"router_sinks"):
        lossy.test_every_router_function_is_a_hookimpl()


async def test_a_sink_that_ignores_errors_fails():
    lossy = suite(lossy_module())
    with pytest.raises(pytest.fail.Exception, match="DID NOT RAISE"):
        await lossy.test_sink_handles_upstream_answers()


async def test_a_sink_that_maps_answers_passes():
    class Honest(DeafSink):
        send = Sink.send

    module = lossy_module()
    module.router_sinks = hookimpl(lambda: [Honest])
    await suite(module).test_sink_handles_upstream_answers()
