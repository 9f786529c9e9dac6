"""Logging: structlog key-value events, JSON lines when stdout is not a TTY.

Event names are dotted snake_case (``sink.batch_sent``); values go in keys.

Every credential found in the config is redacted twice: from the values of
each structlog event, and from the final rendered text of every line written
to the log stream (structlog, stdlib loggers such as hypercorn's and httpx's,
tracebacks included). A new log call cannot bypass the second pass. Tracebacks
never render frame locals. See docs/security.md, "Secrets and logs".
"""

from __future__ import annotations

import logging
import re
import sys
import weakref
from collections.abc import Iterable, MutableMapping
from typing import Any, TextIO
from urllib.parse import quote, quote_plus

import orjson
import structlog
from structlog.tracebacks import ExceptionDictTransformer

__all__ = [
    "MIN_SECRET_LENGTH",
    "REDACTED",
    "RedactingStream",
    "Redactor",
    "configure_logging",
    "learn_secrets",
    "redact_std_streams",
]

REDACTED = "[redacted]"

#: Shorter secrets are not redacted: replacing every "abc" in every line would
#: garble the logs without protecting a credential that weak.
MIN_SECRET_LENGTH = 4


def _spellings(secret: str) -> set[str]:
    """The ways a secret can appear in a rendered line: as is, JSON-, repr- and URL-escaped."""
    return {
        secret,
        orjson.dumps(secret).decode()[1:-1],
        repr(secret)[1:-1],
        # A repr inside a JSON string escapes it twice (e.g. error=repr(exc)).
        orjson.dumps(repr(secret)[1:-1]).decode()[1:-1],
        quote(secret, safe=""),
        quote_plus(secret, safe=""),
    }


class Redactor:
    """Replaces known secret values in text, and (as a structlog processor) in event values."""

    def __init__(self, secrets: Iterable[str]):
        self._set(secrets)
        _REDACTORS.add(self)

    def learn(self, secrets: Iterable[str]) -> None:
        """Redact ``secrets`` too from now on (it never forgets one)."""
        self._set({*self.secrets, *self.short, *secrets})

    def _set(self, secrets: Iterable[str]) -> None:
        secrets = {s for s in secrets if isinstance(s, str)}
        #: The secrets too short to redact (see MIN_SECRET_LENGTH).
        self.short = sorted(s for s in secrets if len(s) < MIN_SECRET_LENGTH)
        self.secrets = sorted(
            {s for s in secrets if len(s) >= MIN_SECRET_LENGTH}, key=len, reverse=True
        )
        spellings = {v for s in self.secrets for v in _spellings(s)}
        # Longest first, so a secret containing another is replaced whole.
        self._pattern = (
            re.compile("|".join(re.escape(s) for s in sorted(spellings, key=len, reverse=True)))
            if spellings
            else None
        )

    def __bool__(self) -> bool:
        return self._pattern is not None

    def redact(self, text: str) -> str:
        """``text`` with every secret replaced by :data:`REDACTED`."""
        if self._pattern is None:
            return text
        return self._pattern.sub(REDACTED, text)

    def __call__(self, logger: Any, name: str, event: MutableMapping[str, Any]) -> Any:
        if self._pattern is not None:
            for key, value in event.items():
                event[key] = self._clean(value)
        return event

    def _clean(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, dict):
            return {k: self._clean(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self._clean(v) for v in value]
        return value


#: Every live Redactor, so secrets a reloaded config brings reach them all.
_REDACTORS: weakref.WeakSet[Redactor] = weakref.WeakSet()


def learn_secrets(secrets: Iterable[str]) -> None:
    """Redact ``secrets`` in every redactor of this process (a reloaded config's new ones)."""
    secrets = set(secrets)
    for redactor in list(_REDACTORS):
        redactor.learn(secrets)


class RedactingStream:
    """A text stream that redacts secrets from everything written to it.

    Each log line is one ``write()`` (structlog's WriteLogger and the stdlib
    StreamHandler both write a whole record at once), so a secret is never
    split across two calls.
    """

    def __init__(self, stream: TextIO, redactor: Redactor):
        self.stream = stream
        self.redactor = redactor

    def write(self, text: str) -> int:
        self.stream.write(self.redactor.redact(text))
        return len(text)

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        self.stream.flush()

    def isatty(self) -> bool:
        return self.stream.isatty()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


def redact_std_streams(secrets: Iterable[str]) -> None:
    """Redact ``secrets`` from whatever the process writes to sys.stdout and sys.stderr.

    Covers output that bypasses logging: an uncaught exception's traceback,
    warnings, a plugin's print(). Call it once, in the process's entry point.
    The streams are wrapped even with no secrets yet: a reload may bring some
    (:func:`learn_secrets`).
    """
    redactor = Redactor(secrets)
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if isinstance(stream, RedactingStream):
            stream = stream.stream
        setattr(sys, name, RedactingStream(stream, redactor))


def _dumps(obj: Any, **_: Any) -> str:
    return orjson.dumps(obj, default=repr).decode()


#: Tracebacks as JSON without frame locals: a frame's locals hold requests,
#: headers and configs, and structlog renders them by default.
_tracebacks = structlog.processors.ExceptionRenderer(ExceptionDictTransformer(show_locals=False))


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
    if isinstance(stream, RedactingStream):  # redact_std_streams ran: one pass is enough
        stream = stream.stream
    as_json = fmt == "json" or (fmt == "auto" and not stream.isatty())
    redactor = Redactor(secrets)
    # Wrapped even with no secrets yet: a reload may bring some (learn_secrets).
    out: TextIO = RedactingStream(stream, redactor)  # type: ignore[assignment]
    shared = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redactor,
    ]
    if as_json:
        renderer: Any = structlog.processors.JSONRenderer(serializer=_dumps)
        tail = [_tracebacks, renderer]
    else:
        # plain_traceback never shows locals (rich's and better_exceptions' would).
        renderer = structlog.dev.ConsoleRenderer(exception_formatter=structlog.dev.plain_traceback)
        tail = [renderer]
    structlog.configure(
        processors=[*shared, *tail],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        # One write() per line: lines from several worker processes never interleave.
        logger_factory=structlog.WriteLoggerFactory(out),
        cache_logger_on_first_use=cache,
    )
    # Third-party stdlib loggers render through the same processors.
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                *([_tracebacks] if as_json else []),
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    # Warnings and errors only: hypercorn's info lines ("Running on …") are not events.
    hypercorn_level = max(logging.WARNING, logging.getLevelName(level.upper()))
    logging.getLogger("hypercorn.error").setLevel(hypercorn_level)
    # coredis logs every failed connection attempt with a traceback; the router
    # logs Redis outages itself (redis.unavailable, redis.reconnected).
    logging.getLogger("coredis").setLevel(logging.CRITICAL)
    if redactor.short:
        structlog.get_logger().warning(
            "logging.short_secrets",
            count=len(redactor.short),
            message=f"secrets shorter than {MIN_SECRET_LENGTH} characters are not "
            "redacted from the logs; use longer credentials",
        )
