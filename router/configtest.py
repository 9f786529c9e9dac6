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

import difflib
import functools
import re
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import cerberus
import httpx
import orjson
import trio

from router.config import RouterConfig, blocked_plugins, load_config
from router.deadletters import DeadLetters
from router.errors import UsageError
from router.event import deterministic
from router.pluginmanager import make_plugin_manager
from router.quarantine import Quarantine
from router.registry import Registry, build_registry
from router.testing.upstream import FakeUpstream, Reply
from router.validation import flatten_errors
from router.yamlsource import Loaded, dotted, load_yaml

__all__ = [
    "Case",
    "CaseFileError",
    "Outcome",
    "compare",
    "load_cases",
    "main",
    "run_case",
]

#: How long a case waits, by default, for everything accepted to be delivered or dead-lettered.
SETTLE_TIMEOUT = 10.0
#: How often ``/readyz`` is read while waiting for the sinks' queues to empty.
POLL_INTERVAL = 0.02
#: The ``x-request-id`` a case's request carries unless its headers set one.
REQUEST_ID = "router-test"

_JSON = {"nullable": True}  # any JSON value

_MATCHERS = {
    "payloads": {"type": "list", "excludes": "match"},
    "match": {"type": "list", "excludes": "payloads"},
}
_CASE_SCHEMA: dict[str, Any] = {
    "name": {"type": "string", "required": True, "empty": False},
    "source": {"type": "string", "required": True, "empty": False},
    "env": {"type": "dict", "valuesrules": {"type": "string"}},
    "timeout": {"type": "number", "min": 0.1},
    "input": {
        "type": "dict",
        "required": True,
        "schema": {
            "method": {"type": "string", "regex": "[A-Z]+"},
            "path": {"type": "string", "regex": "/.*"},
            "headers": {"type": "dict", "valuesrules": {"type": "string"}},
            "body": {**_JSON, "excludes": "body_text"},
            "body_text": {"type": "string", "excludes": "body"},
        },
    },
    "upstream": {
        "type": "dict",
        "valuesrules": {
            "type": "dict",
            "schema": {
                "status": {"type": "integer", "min": 200, "max": 499, "required": True},
                "body": _JSON,
            },
        },
    },
    "expect": {
        "type": "dict",
        "required": True,
        "schema": {
            "response": {
                "type": "dict",
                "schema": {
                    "status": {"type": "integer", "min": 100, "max": 599},
                    "body": {**_JSON, "excludes": "match"},
                    "match": {"type": "dict", "excludes": "body"},
                    "headers": {"type": "dict", "valuesrules": {"type": "string"}},
                },
            },
            "sinks": {
                "type": "dict",
                "valuesrules": {
                    "anyof": [
                        {"type": "string", "allowed": ["nothing"]},
                        {"type": "dict", "schema": _MATCHERS},
                    ]
                },
            },
            "dead_letters": {
                "type": "dict",
                "valuesrules": {
                    "type": "list",
                    "schema": {
                        "type": "dict",
                        "schema": {
                            "reason": {"type": "string"},
                            "payload": _JSON,
                            "status": {"type": "integer", "nullable": True},
                        },
                    },
                },
            },
            "quarantined": {
                "type": "list",
                "schema": {
                    "type": "dict",
                    "schema": {
                        "errors": {"type": "list", "schema": {"type": "string"}},
                        "event": _JSON,
                    },
                },
            },
        },
    },
}
_FILE_SCHEMA: dict[str, Any] = {
    "config": {"type": "string", "required": True, "empty": False},
    "env": {"type": "dict", "valuesrules": {"type": "string"}},
    "cases": {
        "type": "list",
        "required": True,
        "empty": False,
        "schema": {"type": "dict", "schema": _CASE_SCHEMA},
    },
}

#: ``${NAME}`` with no ``:-default``: a case that does not set it gets a placeholder.
_BARE_VAR = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class CaseFileError(UsageError):
    """A case file that cannot be read or does not follow the format; names file, line, key."""


@dataclass(frozen=True, slots=True)
class Case:
    """One case of a case file, as written (JSON values decoded)."""

    file: Path
    line: int | None
    name: str
    config: Path
    env: Mapping[str, str]
    source: str
    method: str
    path: str | None
    headers: Mapping[str, str]
    body: bytes
    upstream: Mapping[str, Mapping[str, Any]]
    expect: Mapping[str, Any]
    timeout: float = SETTLE_TIMEOUT

    @property
    def title(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else str(self.file)
        return f"{where}: {self.name}"


@dataclass(slots=True)
class Outcome:
    """What came of a case: the answer, what each sink got, dead letters, quarantine."""

    status: int
    headers: dict[str, str]
    body: Any
    #: Sink name -> its events as the upstream received them, in arrival order.
    payloads: dict[str, list[Any]] = field(default_factory=dict)
    dead_letters: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    quarantined: list[dict[str, Any]] = field(default_factory=list)
    #: Why the run itself went wrong (a sink never settled), if it did.
    problems: list[str] = field(default_factory=list)


# -- reading case files ------------------------------------------------------------


def case_files(paths: Iterable[str | Path]) -> list[Path]:
    """The case files named, directories expanded to their ``*.yaml``/``*.yml`` (sorted)."""
    out: list[Path] = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml"))
            if not found:
                raise CaseFileError(f"{path}: no case files (*.yaml) in this directory")
            out.extend(found)
        elif path.is_file():
            out.append(path)
        else:
            raise CaseFileError(f"{path}: no such file or directory")
    return out


def load_cases(path: Path) -> list[Case]:
    """The cases of one file. :raises CaseFileError: naming the first problem and its line."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CaseFileError(
            f"{path}: cannot read: {getattr(exc, 'strerror', None) or exc}"
        ) from None
    # No interpolation in a case file: `$` is literal (an env: value is given as is).
    loaded = load_yaml(text.replace("${", "$${"), str(path), {})
    if loaded.problems:
        raise CaseFileError(str(loaded.problems[0]))
    doc = loaded.data
    if not isinstance(doc, dict):
        raise CaseFileError(f"{path}:1: a case file is a mapping with config: and cases:")
    validator = cerberus.Validator(_FILE_SCHEMA)
    if not validator.validate(doc):
        problem = flatten_errors(validator.errors)[0]
        raise CaseFileError(_located(loaded, problem.path, problem.message))
    config = (path.parent / doc["config"]).resolve()
    if not config.is_file():
        raise CaseFileError(
            _located(loaded, ("config",), f"no config at {config} (relative to the case file)")
        )
    cases = []
    names: set[str] = set()
    for i, raw in enumerate(doc["cases"]):
        if raw["name"] in names:
            raise CaseFileError(_located(loaded, ("cases", i, "name"), "duplicate case name"))
        names.add(raw["name"])
        for sink, expected in raw["expect"].get("sinks", {}).items():
            if isinstance(expected, dict) and not expected:
                where = ("cases", i, "expect", "sinks", sink)
                raise CaseFileError(_located(loaded, where, "give payloads:, match: or nothing"))
        given = raw["input"]
        if "body_text" in given:
            body = given["body_text"].encode()
        elif "body" in given:
            body = orjson.dumps(given["body"])
        else:
            body = b""
        cases.append(
            Case(
                file=path,
                line=loaded.lines.get(("cases", i)),
                name=raw["name"],
                config=config,
                env={**doc.get("env", {}), **raw.get("env", {})},
                source=raw["source"],
                method=given.get("method", "POST"),
                path=given.get("path"),
                headers={k.lower(): v for k, v in given.get("headers", {}).items()},
                body=body,
                upstream=raw.get("upstream", {}),
                expect=raw["expect"],
                timeout=float(raw.get("timeout", SETTLE_TIMEOUT)),
            )
        )
    return cases


def _located(loaded: Loaded, path: Sequence[str | int], message: str) -> str:
    line = loaded.line(tuple(path))
    where = f"{loaded.file}:{line}" if line else loaded.file
    return f"{where}: {dotted(tuple(path)) or '(top)'}: {message}"


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
    ``workers`` (1); each sink's ``url`` (its upstream); Redis queues and
    limits become local ones (``buffer: disk``, ``backend: memory``).

    :raises ConfigError: if the config is not valid.
    """
    text = case.config.read_text(encoding="utf-8")
    loaded = load_yaml(text, str(case.config), _CaseEnv(case.env, set(_BARE_VAR.findall(text))))
    data = loaded.data
    if isinstance(data, dict):
        server = data.get("server") if isinstance(data.get("server"), dict) else {}
        data["server"] = {**server, "bind": "127.0.0.1:0", "data_dir": str(data_dir), "workers": 1}
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


# -- comparing -----------------------------------------------------------------------


def compare(case: Case, outcome: Outcome) -> list[str]:
    """Every way the outcome differs from what the case expects, each a readable block."""
    expect = case.expect
    failures = list(outcome.problems)
    response = expect.get("response", {})
    if "status" in response and response["status"] != outcome.status:
        failures.append(
            f"response status: expected {response['status']}, got {outcome.status}"
            f"\n{_show(outcome.body)}"
        )
    if "body" in response and not _equal(response["body"], outcome.body):
        failures.append("response body:\n" + _diff(response["body"], outcome.body))
    if "match" in response and not matches(response["match"], outcome.body):
        failures.append(
            "response body (match):\n"
            + _diff(response["match"], project(response["match"], outcome.body))
        )
    got_headers = {k.lower(): v for k, v in outcome.headers.items()}
    for name, value in response.get("headers", {}).items():
        if got_headers.get(name.lower()) != value:
            failures.append(
                f"response header {name}: expected {value!r}, got {got_headers.get(name.lower())!r}"
            )
    sinks = expect.get("sinks", {})
    for name in sorted({*sinks, *outcome.payloads}):
        failures += _compare_sink(name, sinks.get(name, "nothing"), outcome.payloads.get(name, []))
    dead = expect.get("dead_letters", {})
    for name in sorted({*dead, *outcome.dead_letters}):
        failures += _compare_list(
            f"dead letters of {name}",
            dead.get(name, []),
            outcome.dead_letters.get(name, []),
            _dead_letter_matches,
        )
    failures += _compare_list(
        "quarantined events",
        expect.get("quarantined", []),
        outcome.quarantined,
        _quarantined_matches,
    )
    return failures


def _compare_sink(name: str, expected: Any, got: list[Any]) -> list[str]:
    if expected == "nothing" or expected.get("payloads") == []:
        if got:
            shown = _show(sorted(got, key=_key))
            return [f"sink {name}: expected nothing, got {len(got)}:\n{shown}"]
        return []
    if "payloads" in expected:
        want = sorted(expected["payloads"], key=_key)
        have = sorted(got, key=_key)
        if len(want) != len(have) or not all(map(_equal, want, have)):
            return [f"sink {name} payloads:\n" + _diff(want, have)]
        return []
    return _compare_list(f"sink {name} payloads (match)", expected["match"], got, matches)


def _compare_list(what: str, want: list[Any], got: list[Any], match: Any) -> list[str]:
    """Each expected item must match a different actual one, and no actual one be left over."""
    left = list(got)
    paired: list[Any] = []
    missing = False
    for expected in want:
        found = next((i for i, actual in enumerate(left) if match(expected, actual)), None)
        if found is None:
            missing = True
            paired.append(project(expected, left.pop(0)) if left else None)
        else:
            paired.append(project(expected, left.pop(found)))
    if not missing and not left:
        return []
    return [f"{what}:\n" + _diff(want, paired + left)]


def _dead_letter_matches(expected: Mapping[str, Any], actual: Mapping[str, Any]) -> bool:
    if "reason" in expected and expected["reason"] not in actual["reason"]:
        return False
    if "status" in expected and expected["status"] != actual["status"]:
        return False
    return "payload" not in expected or matches(expected["payload"], actual["payload"])


def _quarantined_matches(expected: Mapping[str, Any], actual: Mapping[str, Any]) -> bool:
    for part in expected.get("errors", []):
        if not any(part in error for error in actual["errors"]):
            return False
    return "event" not in expected or matches(expected["event"], actual["event"])


def matches(expected: Any, actual: Any) -> bool:
    """Whether ``actual`` has everything ``expected`` has: a dict's keys may be more, a
    list must be as long, with each item matching; a ``reason`` or an ``errors`` entry
    of a dead letter or quarantined event is matched as a substring elsewhere."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            key in actual and matches(value, actual[key]) for key, value in expected.items()
        )
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(expected) == len(actual)
            and all(map(matches, expected, actual))
        )
    return _equal(expected, actual)


def project(expected: Any, actual: Any) -> Any:
    """``actual`` cut down to the keys ``expected`` names, so a diff shows only those."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        return {k: project(expected[k], actual[k]) for k in expected if k in actual}
    if isinstance(expected, list) and isinstance(actual, list):
        return [project(e, a) for e, a in zip(expected, actual, strict=False)] + actual[
            len(expected) :
        ]
    return actual


def _equal(a: Any, b: Any) -> bool:
    """JSON equality: ``1`` equals ``1.0`` as JSON numbers do, but ``true`` is not ``1``."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(map(_equal, a, b))
    return a == b


def _key(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def _show(value: Any) -> str:
    text = orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode()
    return "\n".join(f"    {line}" for line in text.splitlines())


def _diff(expected: Any, actual: Any) -> str:
    def lines(value: Any) -> list[str]:
        return orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode()

    diff = difflib.unified_diff(
        lines(expected).splitlines(),
        lines(actual).splitlines(),
        "expected",
        "actual",
        lineterm="",
        n=3,
    )
    return "\n".join(f"    {line}" for line in diff)


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
