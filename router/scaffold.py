"""``router new-plugin``: a new plugin package, ready to install and test.

The templates are package data (``router/templates/plugin``): a pyproject
with the ``router.plugins`` entry point, a source, sink, codec and schema
that work together, and tests that run :mod:`router.testing.conformance`.
"""

from __future__ import annotations

import re
import string
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from router.errors import UsageError

__all__ = ["NAME", "new_plugin"]

#: A plugin name: the entry point's name, the vendor's, and part of the package's.
NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")
#: Template files end in this; the rest of the name is the generated file's.
SUFFIX = ".tmpl"


def new_plugin(name: str, directory: Path) -> Path:
    """Write the package for plugin ``name`` into ``directory/router-<name>``; return that path.

    :raises UsageError: if ``name`` is not a valid plugin name or the target exists.
    """
    if not NAME.fullmatch(name):
        raise UsageError(
            f"plugin name {name!r}: use lower-case letters, digits and _, starting with a "
            "letter (it becomes the Python package router_<name>)"
        )
    target = directory / f"router-{name.replace('_', '-')}"
    if target.exists():
        raise UsageError(f"{target} already exists; remove it or choose another --dir")
    words = {
        "name": name,
        "package": f"router_{name}",
        "project": target.name,
        "title": name.replace("_", " ").title(),
        "Title": "".join(part.title() for part in name.split("_")),
    }
    root = resources.files("router") / "templates" / "plugin"
    for template, relative in _templates(root, ()):
        path = target.joinpath(*(words["package"] if p == "package" else p for p in relative))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(string.Template(template.read_text()).substitute(words))
    return target


def _templates(
    folder: Traversable, at: tuple[str, ...]
) -> list[tuple[Traversable, tuple[str, ...]]]:
    """Every template below ``folder``, with its output path relative to the package root."""
    found = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.is_dir():
            found += _templates(entry, (*at, entry.name))
        elif entry.name.endswith(SUFFIX):
            found.append((entry, (*at, entry.name.removesuffix(SUFFIX))))
    return found
