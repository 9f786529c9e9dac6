"""The ingest dispatch table: which source and route answer ``(method, path)``.

Built once per :class:`~router.topology.Topology` from its sources' routes
(``IngestRoute``), with each source's ``prefix`` and ``paths`` applied, and
read by :class:`~router.fastpath.IngestDispatcher` on every request. Paths use
Quart's syntax (``/v1/<platform>/events``); variables match one segment.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from router.ingest import SourceRuntime

__all__ = ["IngestRoutes"]

#: Quart/werkzeug path variables (``<platform>``, ``<int:id>``) as regex groups.
_VARIABLE = re.compile(r"<(?:[a-z]+:)?([A-Za-z_][A-Za-z0-9_]*)>")

Match = tuple["SourceRuntime", str, dict[str, str]]


class IngestRoutes:
    """Every source's routes: ingest routes to dispatch, and every path's methods for 405s."""

    def __init__(self) -> None:
        self._static: dict[tuple[str, str], tuple[SourceRuntime, str]] = {}
        self._patterns: list[tuple[str, re.Pattern[str], SourceRuntime, str]] = []
        #: Every source route's path (ingest or query): its source and methods, for 405s.
        self._paths: dict[str, tuple[SourceRuntime, set[str]]] = {}
        self._path_patterns: dict[str, tuple[re.Pattern[str], SourceRuntime, set[str]]] = {}

    @classmethod
    def of(cls, sources: Iterable[SourceRuntime]) -> IngestRoutes:
        """The table of ``sources``' routes as configured (``prefix`` + ``paths``)."""
        table = cls()
        for runtime in sources:
            for route in type(runtime.source).routes:
                path = runtime.config.prefix + runtime.config.paths.get(route.name, route.path)
                if route.handler is None:
                    table.add(route.method, path, runtime, route.name)
                else:
                    table.add_known(route.method, path, runtime)
        return table

    def add(self, method: str, path: str, runtime: SourceRuntime, route_name: str) -> None:
        """Serve ``method path`` (Quart path syntax) with ``runtime``'s ingest pipeline."""
        self.add_known(method, path, runtime)
        if "<" not in path:
            self._static[(method, path)] = (runtime, route_name)
            return
        self._patterns.append((method, compile_path(path), runtime, route_name))

    def add_known(self, method: str, path: str, runtime: SourceRuntime) -> None:
        """Record a route of ``runtime``'s, answered by the dispatcher (:meth:`add`) or the app.

        A request for a known path with none of its methods is answered by the
        dispatcher: 405 in the vendor's shape, with ``Allow``. ``GET`` allows
        ``HEAD`` too, as Quart does.
        """
        methods = {method, "HEAD"} if method == "GET" else {method}
        if "<" not in path:
            self._paths.setdefault(path, (runtime, set()))[1].update(methods)
        else:
            self._path_patterns.setdefault(path, (compile_path(path), runtime, set()))[2].update(
                methods
            )

    def match(self, method: str, path: str) -> Match | None:
        """The source, route name and path variables of an ingest route, or None."""
        found = self._static.get((method, path))
        if found is not None:
            return found[0], found[1], {}
        for route_method, pattern, runtime, name in self._patterns:
            if route_method == method:
                found_match = pattern.match(path)
                if found_match:
                    return runtime, name, found_match.groupdict()
        return None

    def source_of(self, path: str) -> SourceRuntime | None:
        """The source with an ingest route on ``path``, whatever the method."""
        for (_, route_path), (runtime, _) in self._static.items():
            if route_path == path:
                return runtime
        for _, pattern, runtime, _ in self._patterns:
            if pattern.match(path):
                return runtime
        return None

    def allowed(self, path: str) -> tuple[SourceRuntime, set[str]] | None:
        """The source with a route on ``path``, and every method its routes there take."""
        found = self._paths.get(path)
        if found is not None:
            return found
        for pattern, runtime, methods in self._path_patterns.values():
            if pattern.match(path):
                return runtime, methods
        return None


def _split(path: str) -> list[tuple[str, re.Match[str] | None]]:
    parts: list[tuple[str, re.Match[str] | None]] = []
    position = 0
    for match in _VARIABLE.finditer(path):
        parts.append((path[position : match.start()], None))
        parts.append(("", match))
        position = match.end()
    parts.append((path[position:], None))
    return parts


def compile_path(path: str) -> re.Pattern[str]:
    """``path`` (Quart path syntax, with variables) as a regex with a group per variable."""
    pattern = "".join(
        f"(?P<{m.group(1)}>[^/]+)" if m else re.escape(part) for part, m in _split(path)
    )
    return re.compile(pattern + r"\Z")
