"""Logging: structlog key-value events, JSON lines when stdout is not a TTY.

Event names are dotted snake_case (``sink.batch_sent``); values go in keys.
Every credential found in the config is redacted from every log line, so a
secret can only leak by being logged under a key no one expected.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any, TextIO

import orjson
import structlog

__all__ = ["REDACTED", "configure_logging"]

REDACTED = "[redacted]"


class Redactor:
    """A structlog processor replacing known secret values anywhere in an event."""

    def __init__(self, secrets: Iterable[str]):
        # Longest first, so a secret containing another is replaced whole.
        self.secrets = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)

    def __call__(self, logger: Any, name: str, event: MutableMapping[str, Any]) -> Any:
        if self.secrets:
            for key, value in event.items():
                event[key] = self._clean(value)
        return event

    def _clean(self, value: Any) -> Any:
        if isinstance(value, str):
            for secret in self.secrets:
                if secret in value:
                    value = value.replace(secret, REDACTED)
            return value
        if isinstance(value, dict):
            return {k: self._clean(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self._clean(v) for v in value]
        return value


def _dumps(obj: Any, **_: Any) -> str:
    return orjson.dumps(obj, default=repr).decode()


def configure_logging(
    level: str = "info",
    fmt: str = "auto",
    *,
    secrets: Iterable[str] = (),
    stream: TextIO | None = None,
    cache: bool = True,
) -> None:
    """Configure structlog (and the stdlib loggers of hypercorn and httpx) for the daemon."""
    stream = stream or sys.stdout
    as_json = fmt == "json" or (fmt == "auto" and not stream.isatty())
    shared = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        Redactor(secrets),
    ]
    if as_json:
        renderer: Any = structlog.processors.JSONRenderer(serializer=_dumps)
        tail = [structlog.processors.dict_tracebacks, renderer]
    else:
        renderer = structlog.dev.ConsoleRenderer()
        tail = [renderer]
    structlog.configure(
        processors=[*shared, *tail],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        # One write() per line: lines from several worker processes never interleave.
        logger_factory=structlog.WriteLoggerFactory(stream),
        cache_logger_on_first_use=cache,
    )
    # Third-party stdlib loggers render through the same processors.
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                *([structlog.processors.dict_tracebacks] if as_json else []),
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    for name in ("hypercorn.error",):
        logging.getLogger(name).setLevel(logging.getLevelName(level.upper()))
    # coredis logs every failed connection attempt with a traceback; the router
    # logs Redis outages itself (redis.unavailable, redis.reconnected).
    logging.getLogger("coredis").setLevel(logging.CRITICAL)
