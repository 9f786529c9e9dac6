"""YAML loading that remembers where every key is, and ``${VAR}`` interpolation.

PyYAML's constructors drop line numbers, so this walks the composed node tree
itself: the result is plain data plus a map from key path to line, which the
config module uses to print ``FILE:LINE: key.path: message``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from router.errors import ConfigProblem

__all__ = ["Loaded", "load_yaml"]

Path_ = tuple[str | int, ...]

#: ``${NAME}``, ``${NAME:-default}``, and ``$${`` as an escaped literal ``${``.
_VAR = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


@dataclass
class Loaded:
    """A parsed YAML document with the line of each key and each interpolated value."""

    file: str
    data: Any
    lines: dict[Path_, int] = field(default_factory=dict)
    #: Values that came from the environment: never logged.
    secrets: set[str] = field(default_factory=set)
    problems: list[ConfigProblem] = field(default_factory=list)
    #: Paths whose value could not be interpolated.
    failed_paths: set[Path_] = field(default_factory=set)
    #: Paths whose value keeps an unset ``${VAR}`` as written (``placeholders=True``).
    placeholders: set[Path_] = field(default_factory=set)

    def line(self, path: Path_) -> int | None:
        """The line of ``path``, or of its nearest ancestor that has one."""
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get(())


def load_yaml(
    text: str, file: str, env: Mapping[str, str] | None = None, *, placeholders: bool = False
) -> Loaded:
    """Parse ``text``; syntax errors and undefined variables become ``problems``.

    With ``placeholders``, an undefined variable is no problem: it stays
    ``${NAME}`` in the value, whose path goes in ``Loaded.placeholders``.
    """
    env = os.environ if env is None else env
    loaded = Loaded(file=file, data=None)
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            loaded.data = {}
            return loaded
        loaded.lines[()] = node.start_mark.line + 1
        loaded.data = _Walker(loader, loaded, env, placeholders).walk(node, ())
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        loaded.problems.append(
            ConfigProblem(
                file, mark.line + 1 if mark else None, "", f"invalid YAML: {exc.problem or exc}"
            )
        )
    finally:
        loader.dispose()
    return loaded


class _Walker:
    def __init__(
        self, loader: yaml.SafeLoader, loaded: Loaded, env: Mapping[str, str], placeholders: bool
    ):
        self.loader = loader
        self.loaded = loaded
        self.env = env
        self.placeholders = placeholders

    def walk(self, node: yaml.Node, path: Path_) -> Any:
        if isinstance(node, yaml.MappingNode):
            self.loader.flatten_mapping(node)
            out: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                key = self.loader.construct_object(key_node, deep=True)
                line = key_node.start_mark.line + 1
                if not isinstance(key, str | int | float | bool) or key is None:
                    self.problem(path, line, f"unsupported key {key!r}")
                    continue
                if key in out:
                    self.problem((*path, key), line, "duplicate key")
                self.loaded.lines[(*path, key)] = line
                out[key] = self.walk(value_node, (*path, key))
            return out
        if isinstance(node, yaml.SequenceNode):
            items = []
            for i, item in enumerate(node.value):
                self.loaded.lines[(*path, i)] = item.start_mark.line + 1
                items.append(self.walk(item, (*path, i)))
            return items
        return self.scalar(node, path)

    def scalar(self, node: yaml.ScalarNode, path: Path_) -> Any:
        if "$" not in node.value or node.tag != "tag:yaml.org,2002:str":
            return self.loader.construct_object(node, deep=True)
        text = self.interpolate(node.value, path, node.start_mark.line + 1)
        if node.style is None:
            # A plain scalar is typed after interpolation: `workers: ${N:-2}` is an int.
            tag = self.loader.resolve(yaml.ScalarNode, text, (True, False))
            return self.loader.construct_object(yaml.ScalarNode(tag, text), deep=True)
        return text

    def interpolate(self, text: str, path: Path_, line: int) -> str:
        def replace(match: re.Match[str]) -> str:
            if match.group(0) == "$${":
                return "${"
            name, default = match.group(1), match.group(2)
            value = self.env.get(name)
            if value is None or (value == "" and default is not None):
                if default is None and self.placeholders:
                    self.loaded.placeholders.add(path)
                    return match.group(0)
                if default is None:
                    self.problem(path, line, f"environment variable ${{{name}}} is not set")
                    self.loaded.failed_paths.add(path)
                    return ""
                return default
            if value:
                self.loaded.secrets.add(value)
            return value

        return _VAR.sub(replace, text)

    def problem(self, path: Path_, line: int, message: str) -> None:
        self.loaded.problems.append(ConfigProblem(self.loaded.file, line, dotted(path), message))


def dotted(path: Path_) -> str:
    """``("sinks", "out", "batch", 0)`` as ``sinks.out.batch[0]``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out
