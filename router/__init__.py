"""An event router daemon: vendor APIs in, vendor APIs out, one canonical event between.

This module is the plugin-facing API; plugins import from here only.
"""

from router.codec import Codec as Codec
from router.codec import Requirement as Requirement
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
from router.sink import URL_OPTION as URL_OPTION
from router.sink import Sink as Sink
from router.sink import SinkRequest as SinkRequest
from router.source import Envelope as Envelope
from router.source import IngestRequest as IngestRequest
from router.source import IngestResult as IngestResult
from router.source import IngestRoute as IngestRoute
from router.source import Reply as Reply
from router.source import Source as Source
from router.validation import ValidatorSpec as ValidatorSpec

__version__ = "0.1.0"

__all__ = [
    "CHANNELS",
    "EVENT_TYPES",
    "URL_OPTION",
    "BadRequest",
    "Codec",
    "Context",
    "Device",
    "Envelope",
    "Event",
    "FieldError",
    "Forbidden",
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
    "Quarantine",
    "QuarantinedEvent",
    "RateLimited",
    "Reply",
    "RequestTimeout",
    "Requirement",
    "Sink",
    "SinkError",
    "SinkRejected",
    "SinkRequest",
    "SinkUnavailable",
    "Source",
    "Unauthorized",
    "Untranslatable",
    "ValidationFailed",
    "ValidatorSpec",
    "Wallet",
    "hookimpl",
    "new_event_id",
    "now_ms",
]
