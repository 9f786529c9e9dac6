"""Checks on the project itself: hooks documented and tested, CI runs the README, API complete."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import router
from router import hookspecs

ROOT = Path(__file__).parents[1]
HOOKS = sorted(name for name in dir(hookspecs) if name.startswith("router_"))


def signature(name: str) -> str:
    fn = getattr(hookspecs, name)
    annotations = dict(fn.__annotations__)
    returns = annotations.pop("return")
    params = ", ".join(f"{param}: {kind}" for param, kind in annotations.items())
    return f"{name}({params}) -> {returns}"


def test_there_are_hooks():
    assert {
        "router_sources",
        "router_sinks",
        "router_codecs",
        "router_validators",
        "router_config_schema",
        "router_startup",
        "router_shutdown",
    } <= set(HOOKS)


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_documented_under_its_exact_signature(hook):
    docs = (ROOT / "docs" / "plugins.md").read_text()
    assert f"### `{signature(hook)}`" in docs
    assert getattr(hookspecs, hook).__doc__.strip()


def marked_hook_tests() -> dict[str, list[str]]:
    """hook name -> the tests decorated ``@pytest.mark.hook(name, ...)``, as ``path::name``."""
    found: dict[str, list[str]] = {}
    for path in sorted((ROOT / "tests").rglob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for decorator in node.decorator_list:
                if isinstance(decorator, ast.Call) and ast.unparse(decorator.func) == (
                    "pytest.mark.hook"
                ):
                    for arg in decorator.args:
                        test = f"{path.relative_to(ROOT)}::{node.name}"
                        found.setdefault(ast.literal_eval(arg), []).append(test)
    return found


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_called_by_a_test(hook):
    """A test marked ``@pytest.mark.hook(hook)`` exists; the marker fails it if it never calls it.

    The check that the marked test really calls the hook through a plugin
    manager is made while it runs (tests/helpers/hook_marker.py).
    """
    assert marked_hook_tests().get(hook), f"no test is marked @pytest.mark.hook({hook!r})"


def test_the_hook_marker_names_only_hooks_that_exist():
    assert set(marked_hook_tests()) <= set(HOOKS)


HOOK_MARKER_SUITE = """
import pytest
from router.pluginmanager import make_plugin_manager
from router.registry import build_registry

@pytest.mark.hook("router_sinks")
def test_calls_it_by_name():
    make_plugin_manager(autoload=False).hook.router_sinks()

@pytest.mark.hook("router_codecs")
def test_calls_it_through_the_registry():
    build_registry(make_plugin_manager(autoload=False))

@pytest.mark.hook("router_sources")
def test_only_builds_a_manager():
    make_plugin_manager(autoload=False)

@pytest.mark.hook("router_startup")
def test_calls_another_hook():
    make_plugin_manager(autoload=False).hook.router_sinks()
"""


def test_the_hook_marker_fails_a_test_that_does_not_call_its_hook(pytester):
    pytester.makepyfile(test_marked=HOOK_MARKER_SUITE)
    result = pytester.runpytest_inprocess(
        "-p", "tests.helpers.hook_marker", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*_ test_only_builds_a_manager _*",
            "*never called router_sources through a plugin manager*",
            "*_ test_calls_another_hook _*",
            "*never called router_startup through a plugin manager*",
        ]
    )


def test_the_hook_marker_refuses_a_name_that_is_no_hook(pytester):
    pytester.makepyfile(
        test_typo="import pytest\n\n@pytest.mark.hook('router_sink')\ndef test_x():\n    pass\n"
    )
    result = pytester.runpytest_inprocess(
        "-p", "tests.helpers.hook_marker", "-p", "no:cacheprovider"
    )
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*no such hook*'router_sink'*the hooks are*"])


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    commands = re.findall(r"```sh\n(.+?)\n```", readme)
    install_and_run, install_and_test = commands[:2]
    assert "router run" in install_and_run and "pytest" in install_and_test
    assert install_and_test in (ROOT / ".ci" / "run").read_text().splitlines()


def test_public_api_is_complete_and_resolves():
    for name in router.__all__:
        assert getattr(router, name) is not None
    public = {name for name in vars(router) if not name.startswith("_")}
    modules = {name for name in public if type(getattr(router, name)).__name__ == "module"}
    assert public - modules == set(router.__all__)


def test_every_package_is_installed():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    listed = set(config["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in ROOT.glob("router/**/__init__.py")}
    found |= {
        ".".join(("router_plugins", *p.parent.relative_to(ROOT / "plugins").parts)).rstrip(".")
        for p in (ROOT / "plugins").glob("**/__init__.py")
    }
    assert found == listed


def test_every_vendor_has_the_same_test_files():
    vendors = sorted(p.parent.name for p in (ROOT / "plugins").glob("*/__init__.py"))
    files = {
        vendor: sorted(p.name for p in (ROOT / "tests" / "plugins" / vendor).glob("test_*.py"))
        for vendor in vendors
    }
    assert vendors and all(files.values()), files
    assert all(names == files[vendors[0]] for names in files.values()), files


def test_tests_import_their_helpers_by_name_without_editing_the_import_path():
    edit = "sys." + "path"  # spelled apart so this file does not match itself
    assert [p for p in (ROOT / "tests").rglob("*.py") if edit in p.read_text()] == []


def test_ci_checks_the_import_contracts():
    lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert ".venv/bin/lint-imports" in lines


def test_import_contracts_hold():
    """Plugins use only ``router``, the core never imports them, layers hold, no cycles."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    contracts = config["tool"]["importlinter"]["contracts"]
    assert {c["type"] for c in contracts} == {"forbidden", "layers", "acyclic_siblings"}
    lint = Path(sys.executable).parent / "lint-imports"
    done = subprocess.run(
        [str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"Contracts: {len(contracts)} kept, 0 broken." in done.stdout


def test_every_core_module_has_a_layer():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    (layers,) = [c for c in config["tool"]["importlinter"]["contracts"] if c["type"] == "layers"]
    placed = [name.strip() for layer in layers["layers"] for name in re.split(r"[:|]", layer)]
    modules = {p.stem for p in (ROOT / "router").glob("*.py") if p.name != "__init__.py"}
    modules |= {p.parent.name for p in (ROOT / "router").glob("*/__init__.py")}
    assert sorted(placed) == sorted(modules)


def core_modules() -> list[str]:
    """Every module of router as ``mod`` or ``pkg_mod``, but ``__init__`` and ``__main__``."""
    found = []
    for path in sorted((ROOT / "router").rglob("*.py")):
        parts = path.relative_to(ROOT / "router").with_suffix("").parts
        if parts[-1] in ("__init__", "__main__"):
            continue
        found.append("_".join(parts))
    return found


def test_every_core_module_has_its_unit_test_file():
    """router/<mod>.py: tests/unit/test_<mod>.py; router/<pkg>/<mod>.py: test_<pkg>_<mod>.py."""
    unit = ROOT / "tests" / "unit"
    missing = [f"test_{mod}.py" for mod in core_modules() if not (unit / f"test_{mod}.py").exists()]
    assert missing == [], f"tests/unit/ has no {missing}"


def test_every_unit_test_file_is_named_after_a_core_module():
    """test_<mod>.py, test_<mod>_<aspect>.py for one side of a module, or test_<pkg>.py."""
    packages = [p.parent.name for p in (ROOT / "router").glob("*/__init__.py")]
    modules = [*core_modules(), *packages]
    stray = [
        path.name
        for path in sorted((ROOT / "tests" / "unit").glob("test_*.py"))
        if not any(
            path.stem == f"test_{mod}" or path.stem.startswith(f"test_{mod}_") for mod in modules
        )
    ]
    assert stray == [], f"tests/unit/{stray} tests no module of router by name"
