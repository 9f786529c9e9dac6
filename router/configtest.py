"""``router test``: config unit tests, each case run through a real daemon.

A case file (YAML, see ``docs/testing-configs.md``) names a config and a
list of cases; each case posts one request in the source vendor's wire
format and states what must come of it: the HTTP answer, each sink's
payloads, the dead letters and the quarantined events. What a case does not
list must not happen.

Each case runs the daemon itself (:func:`router.daemon.serve`) in this
process, on ``127.0.0.1:0`` with a temporary data dir, every sink's ``url``
pointed at its own recording :class:`~router.testing.upstream.FakeUpstream`,
and ids and times fixed (:func:`router.event.deterministic`), so a case
cannot drift from what the daemon does and its outputs can be diffed.
"""

from __future__ import annotations

import functools
import re
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

import httpx
import orjson
import trio

from router.config import RouterConfig, blocked_plugins, load_config
from router.configcase import Case, CaseFileError, Outcome, case_files, load_cases
from router.configcompare import compare
from router.deadletters import DeadLetters
from router.event import deterministic
from router.pluginmanager import make_plugin_manager
from router.quarantine import Quarantine
from router.registry import Registry, build_registry
from router.testing.upstream import FakeUpstream, Reply
from router.yamlsource import load_yaml

__all__ = [
    "Case",
    "CaseFileError",
    "Outcome",
    "compare",
    "load_cases",
    "main",
    "run_case",
]

#: How often ``/readyz`` is read while waiting for the sinks' queues to empty.
POLL_INTERVAL = 0.02
#: The ``x-request-id`` a case's request carries unless its headers set one.
REQUEST_ID = "router-test"
#: ``${NAME}`` with no ``:-default``: a case that does not set it gets a placeholder.
_BARE_VAR = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


# -- the config under test -----------------------------------------------------------


class _CaseEnv(Mapping[str, str]):
    """The case's ``env``; a ``${NAME}`` with no default that it does not set reads ``test-name``.

    Credentials and URLs need a value to pass validation; the URLs are replaced
    by the recording upstreams' anyway. The process's own environment is not
    read, so a case runs the same on every machine.
    """

    def __init__(self, given: Mapping[str, str], bare: set[str]):
        self.given = given
        self.bare = bare

    def __getitem__(self, name: str) -> str:
        if name in self.given:
            return self.given[name]
        if name in self.bare:
            return f"test-{name.lower()}"
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        return iter({*self.given, *self.bare})

    def __len__(self) -> int:
        return len({*self.given, *self.bare})


def build_case_config(
    case: Case,
    upstreams: Mapping[str, str],
    data_dir: Path,
    registries: dict[tuple[str, ...], Registry] | None = None,
) -> tuple[RouterConfig, Registry]:
    """The case's config as the test daemon runs it.

    Changed from the file: ``server.bind`` (``127.0.0.1:0``), ``data_dir``,
    ``workers`` (1), ``admin.bind`` (``off``: a case needs no admin listener);
    each sink's ``url`` (its upstream); Redis queues and limits become local
    ones (``buffer: disk``, ``backend: memory``).

    :raises ConfigError: if the config is not valid.
    """
    text = case.config.read_text(encoding="utf-8")
    loaded = load_yaml(text, str(case.config), _CaseEnv(case.env, set(_BARE_VAR.findall(text))))
    data = loaded.data
    if isinstance(data, dict):
        server = data.get("server") if isinstance(data.get("server"), dict) else {}
        data["server"] = {**server, "bind": "127.0.0.1:0", "data_dir": str(data_dir), "workers": 1}
        admin = data.get("admin") if isinstance(data.get("admin"), dict) else {}
        data["admin"] = {**admin, "bind": "off"}
        data.pop("redis", None)
        for kind in ("sources", "sinks"):
            for opts in (data.get(kind) or {}).values():
                if not isinstance(opts, dict):
                    continue
                if opts.get("buffer") == "redis":
                    opts["buffer"] = "disk"
                limit = opts.get("rate_limit")
                if isinstance(limit, dict) and limit.get("backend") == "redis":
                    limit["backend"] = "memory"
        for name, opts in (data.get("sinks") or {}).items():
            if isinstance(opts, dict) and name in upstreams:
                opts["url"] = upstreams[name]
    blocked = tuple(blocked_plugins(loaded))
    registries = {} if registries is None else registries
    if blocked not in registries:
        # Once per run and set of plugins: loading them is most of a case's time.
        registries[blocked] = build_registry(make_plugin_manager(blocked=blocked))
    registry = registries[blocked]
    return load_config(loaded, registry), registry


def _sinks_with_url(case: Case) -> list[str]:
    """The sinks of the case's config that send over HTTP (have a ``url``)."""
    loaded = load_yaml(case.config.read_text(encoding="utf-8"), str(case.config), {})
    sinks = loaded.data.get("sinks") if isinstance(loaded.data, dict) else None
    if not isinstance(sinks, dict):
        return []
    return [name for name, opts in sinks.items() if isinstance(opts, dict) and "url" in opts]


def _ingest_path(case: Case, config: RouterConfig, registry: Registry) -> str:
    source = config.sources.get(case.source)
    if source is None:
        known = ", ".join(sorted(config.sources)) or "none"
        raise CaseFileError(f"{case.title}: no source {case.source!r} in {config.file} ({known})")
    if case.path is not None:
        return case.path
    for route in registry.sources[source.plugin].routes:
        if route.handler is None:
            path = source.prefix + source.paths.get(route.name, route.path)
            if "<" in path:
                raise CaseFileError(
                    f"{case.title}: the route {path} of source {case.source!r} has parameters; "
                    "give input.path"
                )
            return path
    raise CaseFileError(f"{case.title}: source {case.source!r} has no ingest route")


# -- running a case ------------------------------------------------------------------


async def run_case(
    case: Case, registries: dict[tuple[str, ...], Registry] | None = None
) -> Outcome:
    """Run one case through a daemon in this process; what came of it.

    ``registries`` keeps the plugins loaded for one case for the next ones.

    :raises ConfigError: if the case's config is not valid.
    :raises CaseFileError: if the case names no such source or sink.
    """
    from router.daemon import serve  # the daemon only when a case runs

    with tempfile.TemporaryDirectory(prefix="router-test-") as tmp, deterministic():
        data_dir = Path(tmp)
        async with trio.open_nursery() as outer:
            upstreams: dict[str, FakeUpstream] = {}
            for name in _sinks_with_url(case):
                reply = case.upstream.get(name, {})
                status = reply.get("status", 200)
                default = Reply(status, reply["body"]) if "body" in reply else Reply(status)
                upstream = FakeUpstream(default=default)
                await outer.start(upstream.serve)
                upstreams[name] = upstream
            config, registry = build_case_config(
                case, {name: up.url for name, up in upstreams.items()}, data_dir, registries
            )
            for name in (*case.upstream, *case.expect.get("sinks", {})):
                if name not in config.sinks:
                    known = ", ".join(sorted(config.sinks)) or "none"
                    raise CaseFileError(
                        f"{case.title}: no sink {name!r} in {config.file} ({known})"
                    )
            path = _ingest_path(case, config, registry)
            stop = trio.Event()
            async with trio.open_nursery() as inner:
                urls = await inner.start(
                    functools.partial(serve, config, registry, shutdown_trigger=stop.wait)
                )
                try:
                    outcome = await _exchange(case, urls[0], path)
                finally:
                    stop.set()
            outer.cancel_scope.cancel()
        for name, upstream in upstreams.items():
            outcome.payloads[name] = [
                event for request in upstream.requests for event in _events(request.body)
            ]
        _read_stores(data_dir, config, outcome)
    return outcome


async def _exchange(case: Case, url: str, path: str) -> Outcome:
    """Send the case's request; wait until every sink's queue is empty."""
    headers = {"x-request-id": REQUEST_ID, **case.headers}
    if case.body and "content-type" not in headers:
        headers["content-type"] = "application/json"
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        response = await client.request(case.method, path, content=case.body, headers=headers)
        try:
            body: Any = orjson.loads(response.content) if response.content else None
        except orjson.JSONDecodeError:
            body = response.text
        outcome = Outcome(response.status_code, dict(response.headers), body)
        pending: dict[str, int] = {}
        with trio.move_on_after(case.timeout):
            while True:
                ready = (await client.get("/readyz")).json()
                pending = {n: s["pending"] for n, s in ready["sinks"].items() if s["pending"]}
                if not pending:
                    break
                await trio.sleep(POLL_INTERVAL)
        for name, count in pending.items():
            last = ready["sinks"][name].get("last_error")
            outcome.problems.append(
                f"sink {name} still had {count} events pending after {case.timeout:g}s"
                + (f" (last error: {last})" if last else "")
            )
    return outcome


def _events(body: bytes) -> list[Any]:
    """The events in one request body: a JSON array's items, an envelope's, or the body."""
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        return [body.decode("utf-8", "replace")]
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        for name in ("messageBody", "data", "events"):
            if isinstance(value.get(name), list) and len(value) == 1:
                return value[name]
    return [value]


def _read_stores(data_dir: Path, config: RouterConfig, outcome: Outcome) -> None:
    if (data_dir / "spool.db").exists():
        with DeadLetters(data_dir) as store:
            present = store.sinks()
            for name in config.sinks:
                if not present.get(name):
                    continue
                outcome.dead_letters[name] = [
                    {"reason": d.reason, "payload": _json(d.payload), "status": d.status}
                    for d in store.list(name, limit=10_000)
                ]
    if (data_dir / "quarantine.db").exists():
        quarantine = Quarantine(data_dir / "quarantine.db")
        try:
            _, items = quarantine.list_sync(None, 0, 10_000)
        finally:
            quarantine.close()
        outcome.quarantined = [{"errors": q.errors, "event": q.event} for q in items]


def _json(payload: bytes) -> Any:
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError:
        return payload.decode("utf-8", "replace")


# -- the command ---------------------------------------------------------------------


def main(paths: Sequence[str], out: TextIO) -> int:
    """Run every case of the files (or directories) given; 0 if all pass, 1 if any fails.

    :raises CaseFileError: (exit 2) if a file cannot be read or breaks the format.
    :raises ConfigError: if a case's config is not valid.
    """
    cases = [case for path in case_files(paths) for case in load_cases(path)]
    passed = failed = 0
    registries: dict[tuple[str, ...], Registry] = {}
    for case in cases:
        outcome = trio.run(run_case, case, registries)
        failures = compare(case, outcome)
        if failures:
            failed += 1
            out.write(f"FAIL {case.title}\n")
            for failure in failures:
                out.write(f"  {failure}\n")
        else:
            passed += 1
            out.write(f"ok   {case.title}\n")
    out.write(f"{passed} passed, {failed} failed\n")
    return 1 if failed else 0
