"""``router test`` case files: their schema, and reading them into :class:`Case` objects.

The format is in ``docs/testing-configs.md``; a problem in a case file is a
:class:`CaseFileError` naming its file, line and key.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cerberus
import orjson

from router.errors import UsageError
from router.validation import flatten_errors
from router.yamlsource import Loaded, dotted, load_yaml

__all__ = ["Case", "CaseFileError", "Outcome", "case_files", "load_cases"]

#: How long a case waits, by default, for everything accepted to be delivered or dead-lettered.
SETTLE_TIMEOUT = 10.0

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
