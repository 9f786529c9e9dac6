"""The documentation site and its API reference build with no warnings."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


@pytest.mark.slow
def test_the_api_reference_builds_with_no_warnings(tmp_path):
    mkdocs = Path(sys.executable).parent / "mkdocs"
    done = subprocess.run(
        [str(mkdocs), "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "WARNING" not in output, output
    hooks = (tmp_path / "site" / "reference" / "hooks" / "index.html").read_text()
    assert "router_startup" in hooks and "Registry" in hooks


def test_the_reference_covers_the_plugin_api_hooks_and_fixtures():
    import router
    from router import hookspecs
    from router.testing import fixtures

    pages = "".join(p.read_text() for p in (ROOT / "docs" / "reference").glob("*.md"))
    wire = (ROOT / "docs" / "reference" / "wire.md").read_text()
    documented = {line.rsplit(".", 1)[-1] for line in pages.splitlines() if line.startswith(":::")}
    documented |= {
        line.strip("- ").strip() for line in pages.splitlines() if line.startswith("        - ")
    }
    missing = set(router.__all__) - documented
    assert missing == set(), f"not in docs/reference: {sorted(missing)}"
    hooks = {name for name in dir(hookspecs) if name.startswith("router_")}
    assert hooks - documented == set()
    assert set(fixtures.__all__) - documented == set()
    assert "decimal_of" in wire


def _compiled_rules_in(text: str) -> set[str]:
    block = text.split("<!-- compiled-rules -->")[1].split("<!-- /compiled-rules -->")[0]
    return set(re.findall(r"`(\w+)`", block))


def test_plugins_md_lists_the_rules_the_compiler_supports():
    from router.compiler import SUPPORTED_RULES

    assert _compiled_rules_in((ROOT / "docs" / "plugins.md").read_text()) == set(SUPPORTED_RULES)


def test_plugins_md_names_the_testing_kit_with_its_signatures():
    import inspect

    from router.testing import fixtures
    from router.testing.daemon import running_daemon
    from router.testing.strategies import valid_for_spec

    docs = " ".join((ROOT / "docs" / "plugins.md").read_text().split())
    for name in fixtures.__all__:
        assert f"`{name}" in docs, name
    params = inspect.signature(running_daemon).parameters
    assert "running_daemon(config, *, data_dir, plugins=(), autoload=False, env=None, " in docs
    assert list(params) == ["config", "data_dir", "plugins", "autoload", "env", "registry"]
    assert list(inspect.signature(valid_for_spec).parameters) == ["spec"]
    assert "valid_for_spec(spec: ValidatorSpec)" in docs
    assert "`Sink(name, options, *, client, codec=None)`" in docs
    assert "`Source(name, options, quarantine=...)`" in docs


@pytest.mark.slow
def test_the_worked_examples_tests_pass_against_the_example_plugin(tmp_path):
    """Step 7 of plugins.md, run as a plugin author would, so the page cannot drift."""
    docs = (ROOT / "docs" / "plugins.md").read_text()
    step = docs[docs.index("### 7. Testing it") :]
    code = step[step.index("```python\n") + len("```python\n") :]
    (tmp_path / "test_worked_example.py").write_text(code[: code.index("```")])
    # The machine running the suite is shared: generation speed is not what is tested.
    (tmp_path / "conftest.py").write_text(
        "from hypothesis import HealthCheck, settings\n"
        "settings.register_profile('shared', suppress_health_check=[HealthCheck.too_slow],"
        " deadline=None)\n"
        "settings.load_profile('shared')\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT / "contrib" / "example-plugin")}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "trio_mode=true"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 passed" in done.stdout
