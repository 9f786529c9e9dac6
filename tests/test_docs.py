"""The documentation site and its API reference build with no warnings."""

from __future__ import annotations

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
