"""``router new-plugin``: the generated package installs, lints clean and passes its own tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from router.cli import main
from router.errors import UsageError
from router.scaffold import new_plugin

BIN = Path(sys.executable).parent


def test_writes_an_installable_package(tmp_path):
    target = new_plugin("acme_co", tmp_path)
    assert target == tmp_path / "router-acme-co"
    assert sorted(p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file()) == [
        "README.md",
        "pyproject.toml",
        "router_acme_co/__init__.py",
        "router_acme_co/codec.py",
        "router_acme_co/schema.py",
        "router_acme_co/sink.py",
        "router_acme_co/source.py",
        "tests/test_codec.py",
        "tests/test_conformance.py",
    ]
    pyproject = (target / "pyproject.toml").read_text()
    assert '[project.entry-points."router.plugins"]\nacme_co = "router_acme_co"' in pyproject
    assert "${" not in (target / "router_acme_co" / "codec.py").read_text()


@pytest.mark.parametrize("name", ["Acme", "1acme", "acme-co", "", "a" * 41])
def test_refuses_a_name_that_is_no_package_name(tmp_path, name):
    with pytest.raises(UsageError, match="lower-case letters"):
        new_plugin(name, tmp_path)


def test_the_command_prints_one_line_for_a_mistake(tmp_path, capsys):
    assert main(["new-plugin", "acme", "--dir", str(tmp_path)]) == 0
    assert main(["new-plugin", "acme", "--dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"router: error: {tmp_path / 'router-acme'} already exists; remove it or "
        "choose another --dir"
    ]


def test_ruff_accepts_the_generated_code(tmp_path):
    target = new_plugin("acme", tmp_path)
    for args in (["check", "--no-cache"], ["format", "--check", "--no-cache"]):
        done = subprocess.run(
            [str(BIN / "ruff"), *args, "."], cwd=target, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.slow
def test_the_generated_plugin_installs_and_passes_its_own_tests(tmp_path):
    target = new_plugin("acme", tmp_path / "src")
    site = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(site),
            str(target),
        ],
        check=True,
        capture_output=True,
    )
    # Found through its entry point, as an installed plugin is.
    env = {**os.environ, "PYTHONPATH": str(site)}
    env.pop("PYTEST_ADDOPTS", None)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist"],
        cwd=target,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert " passed" in done.stdout and "skipped" not in done.stdout
