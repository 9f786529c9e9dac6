"""The endu provider plugin: Endu's "Submit an event" API, in and out.

See ``docs/vendors/endu.md`` and ``docs/translation/endu.md``.
"""

from router import hookimpl

from .codec import EnduCodec
from .ingest import EnduSource
from .schema import VALIDATORS
from .sink import EnduSink


@hookimpl
def router_codecs():
    return [EnduCodec()]


@hookimpl
def router_validators():
    return list(VALIDATORS)


@hookimpl
def router_sources():
    return [EnduSource]


@hookimpl
def router_sinks():
    return [EnduSink]
