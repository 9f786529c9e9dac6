"""Generating, compiling and loading the source of one predicate, for :mod:`router.compiler`.

:class:`CodeGen` holds the lines, the constants the code refers to by name
and the rules that could not be compiled; :meth:`CodeGen.build` turns the
lines into a function whose source :mod:`linecache` knows, so tracebacks
point into it. The names the generated code calls at run time
(``_lookup``, ``_CRASH``, ``_MISSING``) are defined here too.
"""

from __future__ import annotations

import itertools
import linecache
from collections.abc import Callable, Iterable, Mapping, Sequence, Sized
from dataclasses import dataclass, field
from typing import Any

__all__ = ["CodeGen", "Compiled", "Ctx", "join"]

_counter = itertools.count()


@dataclass(frozen=True, slots=True)
class Compiled:
    """The result of :func:`compile_schema`.

    :param is_valid: The predicate, or ``None`` when the schema uses a rule
        the compiler does not support (use cerberus then).
    :param unsupported: The rule names that forced the fallback.
    :param reasons: Where each unsupported rule was found (``"items.price:
        rule 'anyof'"``), for the startup log.
    :param source: The generated Python source, for reading and debugging.
    """

    is_valid: Callable[[Any], bool] | None
    unsupported: frozenset[str] = frozenset()
    reasons: tuple[str, ...] = ()
    source: str | None = field(default=None, repr=False)

    @property
    def compiled(self) -> bool:
        return self.is_valid is not None


@dataclass(frozen=True, slots=True)
class Ctx:
    """What a child validator inherits: allow_unknown, require_all, and what kind of
    document it validates (a real mapping, or cerberus's synthetic one for list
    items / keysrules / valuesrules, where dependencies mean something else)."""

    allow_unknown: bool
    require_all: bool
    kind: str


class CodeGen:
    """The lines of one generated function, with its constants and its problems."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.indent = 0
        self.names = itertools.count()
        self.consts: dict[str, Any] = {
            "_Mapping": Mapping,
            "_Sequence": Sequence,
            "_Iterable": Iterable,
            "_Sized": Sized,
            "_lookup": _lookup,
            "_CRASH": _CRASH,
            "_MISSING": _MISSING,
        }
        self.problems: dict[str, list[str]] = {}

    # --- plumbing -----------------------------------------------------------

    def emit(self, line: str) -> None:
        self.lines.append("    " * self.indent + line)

    def var(self, prefix: str) -> str:
        return f"{prefix}{next(self.names)}"

    def const(self, value: Any, prefix: str = "_k") -> str:
        """A name bound to ``value`` in the generated function's globals."""
        name = f"{prefix}{next(self.names)}"
        self.consts[name] = value
        return name

    def literal(self, value: Any) -> str:
        """Source for a field name or small constant: a literal when exact, else a const."""
        if type(value) in (str, int) or value is None:
            return repr(value)
        return self.const(value)

    def unsupported(self, rule: str, where: str, why: str = "") -> None:
        detail = f"{where or '<root>'}: rule {rule!r}" + (f" ({why})" if why else "")
        self.problems.setdefault(rule, []).append(detail)

    def failed(self) -> Compiled:
        reasons = tuple(r for rs in self.problems.values() for r in rs)
        return Compiled(None, frozenset(self.problems), reasons)

    def build(self) -> Compiled:
        source = "\n".join(self.lines) + "\n"
        filename = f"<compiled cerberus schema {next(_counter)}>"
        try:
            code = compile(source, filename, "exec")
        except (SyntaxError, RecursionError, MemoryError) as exc:
            # Too deeply nested for CPython's block/indent limits.
            self.unsupported("schema", "", f"too deeply nested to compile: {exc}")
            return self.failed()
        namespace = dict(self.consts)
        exec(code, namespace)
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        return Compiled(namespace["is_valid"], source=source)


class _Crash:
    """cerberus would raise on this document: report invalid, let cerberus raise."""

    def __repr__(self) -> str:
        return "_CRASH"


_CRASH: Any = _Crash()


def _lookup(context: Any, parts: tuple[str, ...], missing: Any) -> Any:
    """cerberus's ``_lookup_field``: the value at ``parts``, ``missing`` if a part
    is not there, or ``_CRASH`` where cerberus itself raises."""
    try:
        for part in parts:
            if part not in context:
                return missing
            context = context.get(part, {})
    except (TypeError, AttributeError):
        return _CRASH
    return context


class _Missing:
    def __repr__(self) -> str:
        return "_MISSING"


_MISSING: Any = _Missing()


def join(where: str, name: Any) -> str:
    """The dotted path of field ``name`` under ``where`` (for messages)."""
    return f"{where}.{name}" if where else str(name)
