"""A conformance suite every router plugin runs with a few lines.

Subclass :class:`Conformance` in a test module and describe the plugin::

    from router.testing.conformance import Conformance, PluginUnderTest
    import router_example

    class TestConformance(Conformance):
        plugin = PluginUnderTest("example", router_example, sample={"event": "x", "user": "u"})

pytest then collects one test per check (and per event type where a check
is property-based):

- the hooks register what they return, and every ``router_*`` function is a hookimpl;
- ``encode(decode(raw)) == raw``, type-exact (``1`` is not ``1.0``), for
  events generated from the plugin's own validators;
- ``Codec.passthrough``: where it claims true, the sink's options change nothing;
- every other installed vendor's valid events encode, through the plugin's
  sinks, to an event its validators accept, or raise ``Untranslatable``;
- errors (400, 401, 403, 404, 405, 413, 429, 503) in the vendor's one shape,
  with their headers, from ``Source.error`` and from a daemon on loopback;
- the sink's answer to 5xx, 429 with ``Retry-After``, 4xx and 2xx from
  :class:`~router.testing.upstream.FakeUpstream`.

Generated events come from :func:`router.testing.strategies.valid_for_spec`.
"""

from __future__ import annotations

import base64
import copy
import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings

from router.codec import Codec
from router.errors import (
    BadRequest,
    Forbidden,
    IngestError,
    MethodNotAllowed,
    NotFound,
    Overloaded,
    PayloadTooLarge,
    RateLimited,
    SinkRejected,
    SinkUnavailable,
    Unauthorized,
    Untranslatable,
)
from router.event import Event
from router.hookspecs import PROJECT
from router.outbound import ConnectionPool
from router.pluginmanager import BUILTIN_PLUGINS, make_plugin_manager
from router.registry import Registry, build_registry
from router.sink import Sink
from router.source import IngestRequest, Source, credential_header, credential_problem
from router.testing.daemon import running_daemon
from router.testing.strategies import valid_for_spec
from router.testing.upstream import FakeUpstream
from router.testing.upstream import Reply as UpstreamReply
from router.validation import ValidatorSpec

__all__ = ["ERRORS", "Conformance", "PluginUnderTest", "exact_difference"]

#: The error statuses checked, and the exception the core raises for each.
ERRORS: Mapping[int, type[IngestError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    405: MethodNotAllowed,
    413: PayloadTooLarge,
    429: RateLimited,
    503: Overloaded,
}

#: The key the daemon checks are configured with.
KEY = "conformance-key"
#: The header the daemon checks rate-limit by, so each check has its own bucket.
CLIENT = "x-conformance-client"
_ID = "0190d5a0-0000-7000-8000-000000000000"
_RECEIVED = 1_700_000_000_000
_HOOKS = ("router_codecs", "router_validators", "router_sources", "router_sinks")


@dataclass(frozen=True)
class PluginUnderTest:
    """What the suite needs to know about a plugin beyond its hooks.

    :param name: The plugin's name (its entry point's, or the built-in's).
    :param module: The object holding its hookimpls (usually the package).
    :param sample: One valid request body for the source's ingest route.
    :param path: The concrete path to post ``sample`` to; default: the first
        ingest route's (give it when that path has ``<converters>``).
    :param source_options: Options of the configured source besides ``plugin``/``auth``.
    :param auth: ``auth`` keys besides ``keys`` (``style``, ``field``…).
    :param sink_options: Options of the configured sink besides ``plugin``
        and ``url`` (which points at the fake upstream).
    :param upstream_ok: How the upstream answers a request it accepts.
    :param max_examples: Hypothesis examples per event type of this plugin;
        a third of it for other vendors' types.
    """

    name: str
    module: Any
    sample: Any
    path: str | None = None
    source_options: Mapping[str, Any] = field(default_factory=dict)
    auth: Mapping[str, Any] = field(default_factory=dict)
    sink_options: Mapping[str, Any] = field(default_factory=dict)
    upstream_ok: UpstreamReply = field(default_factory=UpstreamReply)
    max_examples: int = 15


@functools.cache
def _registry(name: str, module: Any) -> Registry:
    """Every installed plugin, with ``module`` registered as ``name`` if it is not already."""
    pm = make_plugin_manager()
    if not pm.has_plugin(name):
        pm = make_plugin_manager(extra=[(name, module)])
    return build_registry(pm)


def exact_difference(got: Any, want: Any, path: str = "") -> str | None:
    """Where ``got`` differs from ``want`` in value or JSON type, or ``None`` if nowhere.

    ``1 == 1.0 == True`` in Python; on the wire they are three things.
    """
    here = path or "the event"
    if type(got) is not type(want):
        return f"{here}: {got!r} ({type(got).__name__}) instead of {want!r} ({type(want).__name__})"
    if isinstance(want, dict):
        if set(got) != set(want):
            extra, missing = sorted(set(got) - set(want)), sorted(set(want) - set(got))
            return f"{here}: extra keys {extra}, missing keys {missing}"
        for key in want:
            found = exact_difference(got[key], want[key], f"{path}.{key}" if path else str(key))
            if found:
                return found
        return None
    if isinstance(want, list):
        if len(got) != len(want):
            return f"{here}: {len(got)} items instead of {len(want)}"
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            found = exact_difference(g, w, f"{path}[{i}]")
            if found:
                return found
        return None
    return None if got == want else f"{here}: {got!r} instead of {want!r}"


def _shape(body: Any) -> Any:
    """What identifies an error body's shape: its top-level keys, or its kind."""
    if isinstance(body, bytes | bytearray):
        if not body:
            return "no body"
        try:
            body = orjson.loads(body)
        except orjson.JSONDecodeError:
            return "text"
    if isinstance(body, dict):
        return tuple(sorted(body))
    return type(body).__name__


class Conformance:
    """Subclass as ``Test…`` and set :attr:`plugin`; every ``test_`` method is a check."""

    plugin: ClassVar[PluginUnderTest]

    # -- what is under test ----------------------------------------------------------

    @property
    def registry(self) -> Registry:
        return _registry(self.plugin.name, self.plugin.module)

    def _own(self, hook: str) -> list[Any]:
        """What the plugin's own implementation of ``hook`` returns, called through pluggy."""
        pm = self.registry.pm
        others = [p for p in pm.get_plugins() if p is not pm.get_plugin(self.plugin.name)]
        caller = pm.subset_hook_caller(hook, remove_plugins=others)
        return [item for result in caller() if result for item in result]

    @property
    def codecs(self) -> list[Codec]:
        return self._own("router_codecs")

    @property
    def vendors(self) -> set[str]:
        return {codec.vendor for codec in self.codecs}

    @property
    def source_class(self) -> type[Source]:
        sources = self._own("router_sources")
        assert sources, f"plugin {self.plugin.name!r} registers no source"
        return sources[0]

    @property
    def sink_classes(self) -> list[type[Sink]]:
        return self._own("router_sinks")

    def own_specs(self) -> list[ValidatorSpec]:
        specs = self.registry.validators.specs
        return [specs[key] for key in sorted(specs) if key[0] in self.vendors]

    def other_specs(self) -> list[ValidatorSpec]:
        specs = self.registry.validators.specs
        return [
            specs[key]
            for key in sorted(specs)
            if key[0] not in self.vendors and key[0] in self.registry.codecs
        ]

    def ingest_path(self) -> str:
        if self.plugin.path is not None:
            return self.plugin.path
        route = next(r for r in self.source_class.routes if r.handler is None)
        assert "<" not in route.path, (
            f"{route.path} has path parameters: give PluginUnderTest(path=...) a concrete one"
        )
        return route.path

    def auth(self) -> dict[str, Any]:
        auth = {"keys": [KEY], **self.plugin.auth}
        if credential_problem(self.source_class, auth) and "header" not in auth:
            auth["header"] = "x-conformance-key"  # the API has no standard header
        return auth

    def make_source(self) -> Source:
        options = {"plugin": self.plugin.name, "auth": self.auth(), **self.plugin.source_options}
        return self.source_class("conformance", options)

    def sink_options(self) -> dict[str, Any]:
        return {"url": "http://127.0.0.1:9/conformance", **self.plugin.sink_options}

    def sample_events(self) -> list[Event]:
        """The sample request's events, decoded."""
        source = self.make_source()
        request = IngestRequest("POST", self.ingest_path(), {}, orjson.dumps(self.plugin.sample))
        envelope = source.split(request, copy.deepcopy(self.plugin.sample))
        codec = self.registry.codecs[self.source_class.vendor]
        return [
            codec.decode(raw, id=_ID, received_at=_RECEIVED, meta=envelope.meta)
            for raw in envelope.events
        ]

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        """One test per event type for the property checks, per status for the errors."""
        if "spec" in metafunc.fixturenames:
            specs = self.own_specs()
            metafunc.parametrize("spec", specs, ids=[f"{s.vendor}.{s.event_type}" for s in specs])
        if "other" in metafunc.fixturenames:
            pairs = [
                pytest.param(sink, spec, id=f"{sink.kind}<-{spec.vendor}.{spec.event_type}")
                for sink in self.sink_classes
                if sink.vendor is not None
                for spec in self.other_specs()
            ]
            if not pairs:  # no sink translates: one test says so
                pairs = [pytest.param(None, None, id="no-translating-sink")]
            metafunc.parametrize(("sink_class", "other"), pairs)
        if "status" in metafunc.fixturenames:
            metafunc.parametrize("status", list(ERRORS))

    def _settings(self, examples: int) -> settings:
        return settings(
            max_examples=max(1, examples),
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        )

    # -- hooks -----------------------------------------------------------------------

    def test_every_router_function_is_a_hookimpl(self):
        """A ``router_*`` function without ``@hookimpl`` is silently never called."""
        marker = f"{PROJECT}_impl"
        module = self.plugin.module
        unmarked = [
            name
            for name in dir(module)
            if name.startswith(f"{PROJECT}_")
            and callable(getattr(module, name))
            and not hasattr(getattr(module, name), marker)
        ]
        assert unmarked == [], f"decorate with @hookimpl (from router): {unmarked}"

    def test_hooks_register_what_they_return(self):
        registry = self.registry
        for codec in self.codecs:
            # Each call returns new instances: the registered one is of the same class.
            assert type(registry.codecs[codec.vendor]) is type(codec)
            assert any(key[0] == codec.vendor for key in registry.validators.specs), (
                f"codec {codec.vendor!r} has no validators (router_validators)"
            )
        for source in self._own("router_sources"):
            assert registry.sources[source.vendor] is source
            assert source.vendor in registry.codecs, f"no codec for source vendor {source.vendor}"
            assert source.routes, f"{source.__name__} declares no routes"
        for sink in self.sink_classes:
            assert registry.sinks[sink.kind] is sink
            assert sink.vendor is None or sink.vendor in registry.codecs, (
                f"no codec for sink vendor {sink.vendor}"
            )
        for spec in self._own("router_validators"):
            assert registry.validators.specs[(spec.vendor, spec.event_type)] == spec
        assert any(p.name == self.plugin.name for p in registry.plugins), "not in /plugins"

    # -- translation -----------------------------------------------------------------

    def test_round_trip_is_type_exact(self, spec: ValidatorSpec):
        codec = self.registry.codecs[spec.vendor]
        validators = self.registry.validators

        @self._settings(self.plugin.max_examples)
        @given(valid_for_spec(spec))
        def round_trip(raw: dict[str, Any]) -> None:
            # Generated for this spec; the codec may pick another by type.
            if validators.check(spec.vendor, codec.event_type(raw), raw):
                return
            original = copy.deepcopy(raw)
            event = codec.decode(raw, id=_ID, received_at=_RECEIVED, meta={})
            assert exact_difference(raw, original) is None, "decode mutated its input"
            assert exact_difference(codec.encode(event, {}), original) is None, exact_difference(
                codec.encode(event, {}), original
            )
            again = Event.from_dict(orjson.loads(orjson.dumps(event.to_dict())))
            difference = exact_difference(codec.encode(again, {}), original)
            assert difference is None, f"after Event.to_dict/from_dict: {difference}"

        round_trip()

    def test_passthrough_claim_holds(self, spec: ValidatorSpec):
        codec = self.registry.codecs[spec.vendor]
        options = self.sink_options()
        validators = self.registry.validators
        claimed = codec.passthrough(options)
        assert isinstance(claimed, bool)
        if not claimed:
            return  # every event is translated: nothing is claimed

        @self._settings(self.plugin.max_examples)
        @given(valid_for_spec(spec))
        def unchanged(raw: dict[str, Any]) -> None:
            if validators.check(spec.vendor, codec.event_type(raw), raw):
                return
            event = codec.decode(raw, id=_ID, received_at=_RECEIVED, meta={})
            difference = exact_difference(codec.encode(event, options), raw)
            assert difference is None, f"passthrough({dict(options)}) is true, yet {difference}"

        unchanged()

    def test_other_vendors_encode_valid_or_untranslatable(
        self, sink_class: type[Sink] | None, other: ValidatorSpec | None
    ):
        if sink_class is None or other is None:
            assert not [s for s in self.sink_classes if s.vendor is not None]
            return
        registry = self.registry
        source_codec = registry.codecs[other.vendor]
        vendor = sink_class.vendor
        assert vendor is not None
        sink = sink_class(
            "conformance",
            self.sink_options(),
            client=httpx.AsyncClient(),
            codec=registry.codecs[vendor],
        )

        @self._settings(self.plugin.max_examples // 3 or 1)
        @given(valid_for_spec(other))
        def encodes(raw: dict[str, Any]) -> None:
            if registry.validators.check(other.vendor, source_codec.event_type(raw), raw):
                return
            event = source_codec.decode(raw, id=_ID, received_at=_RECEIVED, meta={})
            try:
                doc = sink.encode(event)
            except Untranslatable:
                return
            assert sink.codec is not None
            errors = registry.validators.check(vendor, sink.codec.event_type(doc), doc)
            assert errors == [], f"{vendor} rejects what it encoded: {errors}"
            orjson.dumps(doc)  # what is queued is JSON

        encodes()

    # -- errors ----------------------------------------------------------------------

    def render(self, status: int, message: str = "conformance") -> Any:
        error = ERRORS[status](message, headers={"Retry-After": "7", "X-Conformance": "1"})
        error.source, error.request_id = "conformance", "r-1"
        request = IngestRequest("POST", self.ingest_path(), {}, b"", request_id="r-1")
        return self.make_source().error(request, error)

    def test_error_reply_in_the_vendor_shape(self, status: int):
        reply = self.render(status)
        assert reply.status == status
        if not isinstance(reply.body, bytes):
            orjson.dumps(reply.body)
        for name, value in {"Retry-After": "7", "X-Conformance": "1"}.items():
            # The core adds error.headers; the source may not contradict them.
            given = {k.lower(): v for k, v in reply.headers.items()}.get(name.lower(), value)
            assert given == value, f"{name}: {given!r} instead of {value!r}"
        assert _shape(reply.body) == _shape(self.render(400).body), (
            f"the {status} body is not in the shape of the 400 body"
        )

    @pytest.mark.slow
    async def test_daemon_answers_errors_in_the_vendor_shape(self, tmp_path: Path):
        source = self.make_source()
        path = self.ingest_path()
        sample = self.plugin.sample
        events = len(self.sample_events())
        body = orjson.dumps(sample)
        sinks = [s for s in self.sink_classes if s.vendor is not None] or self.sink_classes
        async with FakeUpstream.running() as upstream:
            upstream.refuse()  # events stay in the spool: the second request is a 503
            config: dict[str, Any] = {
                "server": {"max_body_bytes": max(4096, 2 * len(body)), "shutdown_timeout": 1},
                "sources": {
                    "in": {
                        "plugin": self.source_class.vendor,
                        "auth": self.auth(),
                        "rate_limit": {"rate": 0.001, "burst": 1, "key": f"header:{CLIENT}"},
                        **self.plugin.source_options,
                    }
                },
                "sinks": {
                    "out": {
                        "plugin": sinks[0].kind,
                        **self.sink_options(),
                        "url": upstream.url,
                        "spool": {"max_events": events, "when_full": "block"},
                        "retry": {"initial_backoff": 0.05, "max_backoff": 0.2},
                    }
                },
                "routes": [{"from": "in", "to": "out"}],
            }
            async with running_daemon(config, data_dir=tmp_path, plugins=self._extra()) as rd:
                client = rd.client
                n = iter(range(1000))

                async def post(key: str | None, content: Any, **headers: str) -> httpx.Response:
                    request = self._with_key(source, key, content, path)
                    return await client.post(
                        request["path"],
                        content=request["body"],
                        headers={
                            "content-type": "application/json",
                            CLIENT: f"c{next(n)}",
                            **request["headers"],
                            **headers,
                        },
                    )

                got = {
                    401: await post(None, sample),
                    403: await post("wrong-key", sample),
                    400: await post(KEY, b"{"),
                    413: await post(KEY, b" " * (2 * max(4096, 2 * len(body)))),
                    405: await client.request("PUT", path),
                }
                ok = await post(KEY, sample)
                assert 200 <= ok.status_code < 300, ok.text
                got[503] = await post(KEY, sample)
                await post(KEY, sample, **{CLIENT: "greedy"})
                got[429] = await post(KEY, sample, **{CLIENT: "greedy"})
                unknown = path.rstrip("/") + "/conformance-unknown"
                missing = await client.post(unknown, content=b"{}")

        want = _shape(self.render(400).body)
        for status, response in got.items():
            assert response.status_code == status, (status, response.status_code, response.text)
            assert _shape(response.content) == want, (status, response.text)
        assert "allow" in got[405].headers
        assert got[429].headers.get("retry-after") and got[503].headers.get("retry-after")
        assert missing.status_code == 404 and missing.json()

    def _extra(self) -> list[tuple[str, Any]]:
        """The plugin for a daemon that loads no entry points: only the built-ins and it."""
        if self.plugin.name in {name for name, _ in BUILTIN_PLUGINS}:
            return []
        return [(self.plugin.name, self.plugin.module)]

    def _with_key(self, source: Source, key: str | None, content: Any, path: str) -> dict[str, Any]:
        """The request that sends ``content`` with ``key`` where the source's style says."""
        style, auth = source.auth_style, self.auth()
        headers: dict[str, str] = {}
        if key is not None and not isinstance(content, bytes):
            if style == "body":
                content = copy.deepcopy(content)
                where = content
                *parents, last = str(auth.get("field") or source.credential_field).split(".")
                for part in parents:
                    where = where.setdefault(part, {})
                where[last] = key
            elif style == "query":
                path = f"{path}?{auth.get('param') or source.credential_param}={key}"
        if key is not None and style not in ("body", "query"):
            header = credential_header(type(source), auth)
            assert header is not None
            if style == "bearer":
                headers[header] = f"Bearer {key}"
            elif style == "basic":
                headers[header] = "Basic " + base64.b64encode(f"{key}:".encode()).decode()
            else:
                headers[header] = key
        body = content if isinstance(content, bytes) else orjson.dumps(content)
        return {"path": path, "body": body, "headers": headers}

    # -- the sink --------------------------------------------------------------------

    async def test_sink_handles_upstream_answers(self):
        events = self.sample_events()
        for sink_class in self.sink_classes:
            codec = self.registry.codecs.get(sink_class.vendor) if sink_class.vendor else None
            failed: BaseException | None = None
            async with FakeUpstream.running() as upstream:
                # The pool the core gives a sink, so the answers go through what runs.
                client = ConnectionPool(timeout=10)
                options = {**self.sink_options(), "url": upstream.url}
                sink = sink_class("conformance", options, client=client, codec=codec)
                await sink.open()
                try:
                    batch = [orjson.dumps(sink.encode(e)) for e in events]
                    batch = batch[: sink_class.max_batch_events or len(batch)]
                    await self._check_answers(sink, batch, upstream)
                except (AssertionError, pytest.fail.Exception) as exc:
                    failed = exc  # raised below, not wrapped in the upstream's nursery group
                finally:
                    await sink.aclose()
                    await client.aclose()
            if failed is not None:
                raise failed

    async def _check_answers(self, sink: Sink, batch: Sequence[bytes], upstream: FakeUpstream):
        name = type(sink).__name__
        for status in (500, 503):
            upstream.script(UpstreamReply(status, {"error": "busy"}))
            with pytest.raises(SinkUnavailable) as unavailable:
                await sink.send(batch)
            assert unavailable.value.status == status, f"{name} on {status}"
        upstream.script(UpstreamReply(429, {"error": "slow down"}, headers={"Retry-After": "7"}))
        with pytest.raises(SinkUnavailable) as limited:
            await sink.send(batch)
        assert limited.value.pause and limited.value.retry_after == 7, f"{name} on 429"
        for status in (400, 422):
            upstream.script(UpstreamReply(status, {"error": "bad event"}))
            with pytest.raises(SinkRejected) as rejected:
                await sink.send(batch)
            assert rejected.value.status == status, f"{name} on {status}"
        before = len(upstream.requests)
        upstream.script(self.plugin.upstream_ok)
        await sink.send(batch)
        assert len(upstream.requests) == before + 1, f"{name} sent no request on success"
