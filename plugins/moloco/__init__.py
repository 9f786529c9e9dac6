"""The moloco provider plugin: Moloco's Event API (PostUserEvent) in and out.

See ``docs/vendors/moloco.md`` and ``docs/translation/moloco.md``.
"""

from router import hookimpl

from .codec import MolocoCodec
from .ingest import MolocoSource
from .schema import VALIDATORS
from .sink import MolocoSink


@hookimpl
def router_codecs():
    return [MolocoCodec()]


@hookimpl
def router_validators():
    return list(VALIDATORS)


@hookimpl
def router_sources():
    return [MolocoSource]


@hookimpl
def router_sinks():
    return [MolocoSink]
