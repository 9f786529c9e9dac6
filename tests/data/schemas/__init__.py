"""Cerberus schemas for the compiler's differential tests, the strategies' tests and the bench.

Every module here (except this one) defines ``SPECS: list[ValidatorSpec]``.
To add a schema, drop a module with a ``SPECS`` list in this folder: the
differential tests (``tests/unit/test_compiler.py``), the strategy tests
and ``python -m bench.validation`` pick it up. The vendor plugins' real
specs join through ``PLUGINS`` below, as each plugin lands.

The loaders are imported by file path (``tests`` is not a package), see
``load_catalog()`` in the test modules and the bench.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path

from router.validation import ValidatorSpec

#: Built-in plugins (``router_plugins.<name>``) whose ``router_validators``
#: hook supplies real vendor specs; add a name when its plugin lands.
PLUGINS: list[str] = ["conscent", "segmento", "moloco", "endu"]

HERE = Path(__file__).resolve().parent


def test_specs() -> Iterator[ValidatorSpec]:
    """The specs of the schema modules in this folder, in file order."""
    for path in sorted(HERE.glob("*.py")):
        if path.name.startswith("_"):
            continue
        name = f"_router_test_schemas_{path.stem}"
        module = sys.modules.get(name)
        if module is None:
            spec = importlib.util.spec_from_file_location(name, path)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            spec.loader.exec_module(module)
        yield from module.SPECS


def plugin_specs() -> Iterator[ValidatorSpec]:
    """The specs the listed built-in plugins register."""
    for plugin in PLUGINS:
        module = importlib.import_module(f"router_plugins.{plugin}")
        yield from module.router_validators() or ()


def all_specs() -> list[ValidatorSpec]:
    return [*test_specs(), *plugin_specs()]


def spec_id(spec: ValidatorSpec) -> str:
    return f"{spec.vendor}.{spec.event_type}"
