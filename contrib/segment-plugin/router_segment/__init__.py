"""The Segment HTTP Tracking API for the event router: a source and a sink.

Receives ``/v1/track``, ``/v1/identify``, ``/v1/page`` and ``/v1/batch`` as
Segment does (Basic write key, ``200 {"success": true}``, 32 KB per call,
500 KB per batch), and delivers batches to Segment's ``/v1/batch``.
"""

from __future__ import annotations

from router import hookimpl

from router_segment.codec import SegmentCodec
from router_segment.schema import VALIDATORS
from router_segment.sink import SegmentSink
from router_segment.source import SegmentSource

__version__ = "0.1.0"


@hookimpl
def router_codecs():
    return [SegmentCodec()]


@hookimpl
def router_validators():
    return VALIDATORS


@hookimpl
def router_sources():
    return [SegmentSource]


@hookimpl
def router_sinks():
    return [SegmentSink]
