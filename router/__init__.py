"""An event router daemon: vendor APIs in, vendor APIs out, one canonical event between.

This module is the plugin-facing API; plugins import from here only (tests
may also use :mod:`router.testing`). ``docs/reference/`` documents every name.
"""

from router.codec import Codec as Codec
from router.codec import Requirement as Requirement
from router.config import RouterConfig as RouterConfig
from router.config import SinkConfig as SinkConfig
from router.config import SourceConfig as SourceConfig
from router.errors import BadRequest as BadRequest
from router.errors import FieldError as FieldError
from router.errors import Forbidden as Forbidden
from router.errors import HeadersTooLarge as HeadersTooLarge
from router.errors import IngestError as IngestError
from router.errors import InternalError as InternalError
from router.errors import MethodNotAllowed as MethodNotAllowed
from router.errors import NestingTooDeep as NestingTooDeep
from router.errors import NotFound as NotFound
from router.errors import Overloaded as Overloaded
from router.errors import PayloadTooLarge as PayloadTooLarge
from router.errors import PluginError as PluginError
from router.errors import RateLimited as RateLimited
from router.errors import RequestTimeout as RequestTimeout
from router.errors import SinkError as SinkError
from router.errors import SinkRejected as SinkRejected
from router.errors import SinkUnavailable as SinkUnavailable
from router.errors import Unauthorized as Unauthorized
from router.errors import Untranslatable as Untranslatable
from router.errors import ValidationFailed as ValidationFailed
from router.event import CHANNELS as CHANNELS
from router.event import EVENT_TYPES as EVENT_TYPES
from router.event import Context as Context
from router.event import Device as Device
from router.event import Event as Event
from router.event import Identity as Identity
from router.event import Item as Item
from router.event import Money as Money
from router.event import Wallet as Wallet
from router.event import new_event_id as new_event_id
from router.event import now_ms as now_ms
from router.hookspecs import hookimpl as hookimpl
from router.quarantine import Quarantine as Quarantine
from router.quarantine import QuarantinedEvent as QuarantinedEvent
from router.registry import PluginInfo as PluginInfo
from router.registry import Registry as Registry
from router.sink import URL_OPTION as URL_OPTION
from router.sink import Sink as Sink
from router.sink import SinkRequest as SinkRequest
from router.sink import check_response as check_response
from router.source import FROM_SOURCE as FROM_SOURCE
from router.source import Envelope as Envelope
from router.source import FromSource as FromSource
from router.source import IngestRequest as IngestRequest
from router.source import IngestResult as IngestResult
from router.source import IngestRoute as IngestRoute
from router.source import Reply as Reply
from router.source import Source as Source
from router.validation import Validators as Validators
from router.validation import ValidatorSpec as ValidatorSpec
from router.version import __version__ as __version__
from router.wire import ABSENT as ABSENT
from router.wire import Absent as Absent
from router.wire import amount_of as amount_of
from router.wire import decimal_of as decimal_of
from router.wire import exact_decimal as exact_decimal
from router.wire import exact_int as exact_int
from router.wire import field_of as field_of
from router.wire import format_iso as format_iso
from router.wire import money_of as money_of
from router.wire import number_of as number_of
from router.wire import parse_iso as parse_iso
from router.wire import recall as recall
from router.wire import remember as remember
from router.wire import same_json as same_json

__all__ = [
    "ABSENT",
    "CHANNELS",
    "EVENT_TYPES",
    "FROM_SOURCE",
    "URL_OPTION",
    "Absent",
    "BadRequest",
    "Codec",
    "Context",
    "Device",
    "Envelope",
    "Event",
    "FieldError",
    "Forbidden",
    "FromSource",
    "HeadersTooLarge",
    "Identity",
    "IngestError",
    "IngestRequest",
    "IngestResult",
    "IngestRoute",
    "InternalError",
    "Item",
    "MethodNotAllowed",
    "Money",
    "NestingTooDeep",
    "NotFound",
    "Overloaded",
    "PayloadTooLarge",
    "PluginError",
    "PluginInfo",
    "Quarantine",
    "QuarantinedEvent",
    "RateLimited",
    "Registry",
    "Reply",
    "RequestTimeout",
    "Requirement",
    "RouterConfig",
    "Sink",
    "SinkConfig",
    "SinkError",
    "SinkRejected",
    "SinkRequest",
    "SinkUnavailable",
    "Source",
    "SourceConfig",
    "Unauthorized",
    "Untranslatable",
    "ValidationFailed",
    "ValidatorSpec",
    "Validators",
    "Wallet",
    "amount_of",
    "check_response",
    "decimal_of",
    "exact_decimal",
    "exact_int",
    "field_of",
    "format_iso",
    "hookimpl",
    "money_of",
    "new_event_id",
    "now_ms",
    "number_of",
    "parse_iso",
    "recall",
    "remember",
    "same_json",
]
