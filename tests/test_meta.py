"""Checks on the project itself: hooks documented and tested, CI runs the README, API complete."""

from __future__ import annotations

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


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_has_a_test(hook):
    pattern = re.compile(rf"def test_hook_{hook}\w*\(")
    assert any(pattern.search(path.read_text()) for path in (ROOT / "tests").rglob("test_*.py"))


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
