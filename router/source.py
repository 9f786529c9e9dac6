"""What a plugin provides to receive events: a ``Source`` subclass per vendor API.

The core owns the request pipeline (body limit, auth, JSON, rate limit,
validation, decoding, routing, spooling); a Source supplies only the
vendor-specific steps: where the credential is, how the envelope wraps events,
and how success and errors look on the wire. See ``docs/plugins.md``.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Final

import orjson

from router.credentials import (
    AUTH_STYLE_SCHEMA,
    CREDENTIAL_STYLES,
    credential_header,
    credential_problem,
    find_credential,
)
from router.errors import BadRequest, FieldError, IngestError

if TYPE_CHECKING:
    from router.quarantine import Quarantine

__all__ = [
    "AUTH_STYLE_SCHEMA",
    "CREDENTIAL_STYLES",
    "FROM_SOURCE",
    "Envelope",
    "FromSource",
    "IngestRequest",
    "IngestResult",
    "IngestRoute",
    "Reply",
    "Source",
    "credential_header",
    "credential_problem",
]


class FromSource(enum.Enum):
    """The type of ``FROM_SOURCE``."""

    FROM_SOURCE = "from_source"

    def __repr__(self) -> str:
        return "FROM_SOURCE"


#: The default of ``IngestRoute.events_field``: the Source's ``events_field``.
FROM_SOURCE: Final = FromSource.FROM_SOURCE


@dataclass(frozen=True, slots=True)
class IngestRoute:
    """One HTTP endpoint of a source.

    :param method: ``"POST"``, ``"GET"``…
    :param path: Quart-style path, may hold converters (``/v1/<platform>/events``).
    :param name: Names the route: a source's config moves it with
        ``paths: {<name>: /other}``, and ``IngestRequest.route`` tells a
        Source's methods which route a request came in on.
    :param handler: ``None`` for the core ingest pipeline; otherwise the name of
        an ``async`` method of the Source that answers the request itself
        (``async def handler(self, request) -> Reply``), for read-only routes
        such as a failed-events listing.
    :param events_field: The body field holding this route's array of events,
        ``None`` for a body that is one event, or ``FROM_SOURCE`` (the
        default) for the Source's ``Source.events_field``. One API's
        routes may differ: a batch route takes ``{"batch": [...]}``, a
        single-event route the event itself.
    """

    method: str
    path: str
    name: str = "ingest"
    handler: str | None = None
    events_field: str | FromSource | None = FROM_SOURCE


@dataclass(frozen=True, slots=True, repr=False)
class IngestRequest:
    """An HTTP request as a Source sees it, built by the core for every request.

    :param method: The HTTP method, upper-case (``"POST"``).
    :param path: The path the client asked for, with the source's ``prefix``.
    :param headers: Request headers; names are lower-case, and of a repeated
        header the last value is kept.
    :param body: The raw body, at most ``server.max_body_bytes``; the core has
        already parsed it when ``Source.split`` is called.
    :param path_params: Values of the route's converters (``<platform>``).
    :param query: Query parameters; of a repeated one the first value is kept,
        and an empty value is kept (``?page=``).
    :param remote_addr: The client's IP address (``""`` if unknown).
    :param request_id: The client's ``X-Request-Id``, or one the core made.
    :param route: The ``IngestRoute.name`` of the route that matched
        (``""`` outside a request, as in ``router translate``).
    """

    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes = b""
    path_params: Mapping[str, str] = field(default_factory=dict)
    query: Mapping[str, str] = field(default_factory=dict)
    remote_addr: str = ""
    request_id: str = ""
    route: str = ""

    def __repr__(self) -> str:
        # Header and query values carry credentials and the body carries user
        # data: a repr shows their names and size only.
        return (
            f"IngestRequest(method={self.method!r}, path={self.path!r}, "
            f"headers={sorted(self.headers)!r}, body=<{len(self.body)} bytes>, "
            f"path_params={dict(self.path_params)!r}, query={sorted(self.query)!r}, "
            f"remote_addr={self.remote_addr!r}, request_id={self.request_id!r}, "
            f"route={self.route!r})"
        )


@dataclass(slots=True)
class Reply:
    """An HTTP response. ``body`` is bytes (sent as is) or a JSON-able value."""

    status: int
    body: Any = b""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"


@dataclass(frozen=True, slots=True)
class Envelope:
    """The events found in one request body, and the request-level fields around them.

    ``meta`` reaches ``Codec.decode`` with every event (Moloco's ``platform``
    path parameter, Conscent's ``messageHeaders``…).
    """

    events: Sequence[Any]
    meta: Mapping[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class IngestResult:
    """What happened to each event of one accepted request (index-aligned).

    ``ids[i]`` is the router's event id of event ``i`` or ``None`` if it
    failed; ``failed`` maps the index of each quarantined event to its errors.
    """

    envelope: Envelope
    ids: list[str | None]
    failed: dict[int, list[FieldError]] = field(default_factory=dict)
    #: ``orjson.dumps`` of each event, index-aligned, when the core made them
    #: already (to store the events as received); else None.
    dumped: list[bytes] | None = None

    @property
    def accepted(self) -> int:
        return sum(1 for i in self.ids if i is not None)

    def event_json(self, index: int) -> bytes:
        """Event ``index`` of the envelope as compact JSON (``orjson.dumps``).

        The bytes the core stored for a sink that takes the events as
        received, when there are some: an echo of the stored event costs no
        second encoding.
        """
        if self.dumped is not None:
            return self.dumped[index]
        return orjson.dumps(self.envelope.events[index])


def _request_schema(field: str | None, event: Mapping[str, Any]) -> Mapping[str, Any]:
    if field is None:
        return event
    return {
        "type": "object",
        "required": [field],
        "properties": {field: {"type": "array", "minItems": 1, "items": event}},
    }


class Source:
    """Base class for one vendor's ingest API. One instance per configured source.

    Class attributes declare the API; methods are called by the core on every
    request and must not block (no I/O outside ``async`` query handlers).

    The core constructs it as ``Source(name, options, quarantine=...)``:
    ``name`` is the source's name in the config (``sources.<name>``) and
    ``options`` its whole validated config section: the keys of
    ``options_schema`` and the core's own, which the core acts on
    (``plugin``, ``auth``, ``prefix``, ``paths``, ``on_invalid``,
    ``rate_limit``). ``prefix``, ``paths`` and ``path_of`` read
    the two that place the routes.
    """

    #: The codec that decodes this source's events (usually the plugin name).
    vendor: ClassVar[str]
    #: The HTTP endpoints of this API.
    routes: ClassVar[Sequence[IngestRoute]]
    #: Cerberus schema of the source's own options in the config.
    options_schema: ClassVar[Mapping[str, Any]] = {}
    #: The body field holding the array of events (``"messageBody"``), or
    #: ``None`` for single-event APIs; a route may set its own
    #: (``IngestRoute.events_field``, read with ``events_field_of``).
    #: Used by the default ``split``, in error messages
    #: (``messageBody[2].eventLocation: …``) and by ``router translate`` to
    #: tell a whole request body from a single event.
    events_field: ClassVar[str | None] = None
    #: What to do with invalid events unless the config says: the vendor's own behaviour.
    default_on_invalid: ClassVar[str] = "reject"
    #: Where clients of this API send their key unless ``auth.style`` says
    #: (one of :data:`CREDENTIAL_STYLES`); the core reads it, so a source
    #: rarely overrides :meth:`credential`.
    credential_style: ClassVar[str] = "header"
    #: The request header holding the credential, if the API uses one
    #: (``header`` style; ``bearer`` and ``basic`` default to ``authorization``).
    credential_header: ClassVar[str | None] = None
    #: ``basic`` style: which part of ``user:password`` is the key (``auth.part``).
    credential_part: ClassVar[str] = "user"
    #: ``query`` style: the query parameter holding the key (``auth.param``).
    credential_param: ClassVar[str | None] = None
    #: ``body`` style: the field of the JSON body holding the key, dotted for
    #: a nested one (``auth.field``).
    credential_field: ClassVar[str | None] = None
    #: Extra keys this source accepts in its ``auth`` option, checked by
    #: ``authorize`` (Conscent's ``client_ids`` allow-list). The core
    #: itself handles ``auth: none`` and ``auth: {keys: [...], header: ...}``.
    auth_schema: ClassVar[Mapping[str, Any]] = {}
    #: Rate-limit keys this source can compute besides ``remote_addr`` and
    #: ``credential`` (see ``rate_limit_key``).
    rate_limit_keys: ClassVar[Sequence[str]] = ()

    # -- how the API looks in /openapi.json (router.openapi) -------------------
    #: The event field whose value ``Codec.event_type`` returns
    #: (``"eventType"``), so the document gives each type its own schema;
    #: ``None`` documents any type's schema as an alternative.
    event_type_field: ClassVar[str | None] = None
    #: ``"bearer"`` when the credential header is ``Authorization: Bearer <key>``.
    credential_scheme: ClassVar[str | None] = None
    #: The status of the reply of ``accepted``; ``None``: that of a sample reply.
    accepted_status: ClassVar[int | None] = None
    #: JSON Schema of the body ``accepted`` returns; ``None``: inferred
    #: from a sample reply (an empty body is documented as no content).
    accepted_schema: ClassVar[Mapping[str, Any] | None] = None
    #: JSON Schema of the body ``error`` returns, for every status;
    #: ``None``: inferred from sample replies (with and without field errors).
    error_schema: ClassVar[Mapping[str, Any] | None] = None

    def __init__(
        self, name: str, options: Mapping[str, Any], *, quarantine: Quarantine | None = None
    ):
        # Only handler routes read the quarantine; split and the hooks need no storage.
        self.name = name
        self.options = options
        self.quarantine = quarantine

    # -- the credential (auth.style) ---------------------------------------------

    def _auth(self) -> Mapping[str, Any]:
        auth = self.options.get("auth")
        return auth if isinstance(auth, Mapping) else {}

    @property
    def auth_style(self) -> str:
        """The configured ``auth.style``, else :attr:`credential_style`."""
        return self._auth().get("style") or self.credential_style

    def _header(self) -> str | None:
        header = credential_header(type(self), self._auth())
        return header.lower() if header else None

    def credential_hint(self) -> str:
        """Where the credential goes, for error messages: ``"the x-api-key header"``."""
        style, auth = self.auth_style, self._auth()
        if style == "bearer":
            return f"the {self._header()} header as 'Bearer <key>'"
        if style == "basic":
            part = auth.get("part") or self.credential_part
            as_what = "user name" if part == "user" else "password"
            return f"HTTP Basic auth in the {self._header()} header, the key as the {as_what}"
        if style == "query":
            return f"the {auth.get('param') or self.credential_param} query parameter"
        if style == "body":
            return f"the {auth.get('field') or self.credential_field} field of the body"
        return f"the {self._header()} header"

    def credential(self, request: IngestRequest, body: Any = None) -> str | None:
        """The credential the client sent, or ``None``; compared with ``auth.keys``.

        Default: found where ``auth.style`` (else :attr:`credential_style`)
        says; the core passes the parsed ``body`` for the ``body`` style only,
        after the JSON is parsed and before :meth:`split`. A Basic value is
        decoded (never returned with its scheme), a Bearer token stripped of it.
        """
        return find_credential(type(self), self._auth(), request.headers, request.query, body)

    @property
    def prefix(self) -> str:
        """The ``prefix`` option: prepended to every route's path (``""`` if unset)."""
        return self.options.get("prefix") or ""

    @property
    def paths(self) -> Mapping[str, str]:
        """The ``paths`` option: route name -> the path that replaces the route's own."""
        return self.options.get("paths") or {}

    def path_of(self, route: IngestRoute) -> str:
        """The path ``route`` is served on under this source's ``prefix`` and ``paths``."""
        return self.prefix + self.paths.get(route.name, route.path)

    @classmethod
    def events_field_of(cls, route: str) -> str | None:
        """The events field of the route named ``route``: its own, else ``events_field``.

        An unknown name (``""`` outside a request) gives ``events_field``.
        """
        for known in cls.routes:
            if known.name == route and not isinstance(known.events_field, FromSource):
                return known.events_field
        return cls.events_field

    def split(self, request: IngestRequest, body: Any) -> Envelope:
        """Find the events in a parsed JSON body. Raise ``BadRequest`` if malformed.

        Default: with no events field for the request's route
        (``events_field_of``) the body is one event; with one, the body is
        an object whose field holds a non-empty array of events, and its other
        fields are the envelope's ``meta``.
        """
        if not isinstance(body, dict):
            raise BadRequest("request body must be a JSON object")
        field = self.events_field_of(request.route)
        if field is None:
            return Envelope([body])
        events = body.get(field)
        if not isinstance(events, list) or not events:
            raise BadRequest(f"{field}: must be a non-empty array of events")
        return Envelope(events, {k: v for k, v in body.items() if k != field})

    def request_schema(self, event: Mapping[str, Any]) -> Mapping[str, Any]:
        """JSON Schema of the request body ``split`` accepts, given that of one event.

        Default: the event itself, or with ``events_field`` an object whose
        ``events_field`` is a non-empty array of events. A route with its own
        ``events_field`` is documented by ``route_request_schema``.
        """
        return _request_schema(self.events_field, event)

    def route_request_schema(
        self, route: IngestRoute, event: Mapping[str, Any]
    ) -> Mapping[str, Any]:
        """JSON Schema of the body ``route`` accepts: ``request_schema``, unless
        the route has its own ``events_field``."""
        if isinstance(route.events_field, FromSource):
            return self.request_schema(event)
        return _request_schema(route.events_field, event)

    def error_statuses(self) -> Mapping[int, str]:
        """Error statuses this source's own methods answer with, and why.

        The core documents the ones it answers with (400, 413, 500, 503, and
        401/403 with ``auth.keys``, 429 with ``rate_limit``); add those
        ``split`` or ``authorize`` raise under this source's options.
        """
        return {}

    def query_operation(self, route: IngestRoute) -> Mapping[str, Any] | None:
        """OpenAPI operation fields of a read-only route (one with a ``handler``).

        ``parameters`` and the ``responses`` its handler answers with; the
        core adds the credential's security and its 401/403 and 500.
        ``None`` (the default) leaves the route out of ``/openapi.json``.
        """
        return None

    def authorize(self, request: IngestRequest, envelope: Envelope) -> None:
        """Check credentials carried in the body, after ``split``.

        ``self.options["auth"]`` holds the source's ``auth`` option (``None``
        for ``auth: none``). Raise ``Unauthorized`` or ``Forbidden``.
        Header keys (``auth.keys``) were already checked by the core.
        """

    def rate_limit_key(self, key: str, request: IngestRequest, envelope: Envelope) -> str | None:
        """The value of a source-specific rate-limit key (one of ``rate_limit_keys``)."""
        return None

    def accepted(self, request: IngestRequest, result: IngestResult) -> Reply:
        """The success response."""
        return Reply(200, {})

    def error(self, request: IngestRequest, error: IngestError) -> Reply:
        """The error response in the vendor's shape, with ``error.status`` and ``error.headers``."""
        return Reply(
            error.status, {"error": error.title, "message": error.message}, dict(error.headers)
        )
