"""`router test`: shipped cases pass, a broken mapping fails with a diff, bad files are one line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from router.configtest import compare, load_cases, run_case
from tests.helpers.ports import taken_port

ROOT = Path(__file__).parents[2]
EXAMPLES = ROOT / "config" / "examples"


def router_test(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "router", "test", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )


def test_the_shipped_cases_of_every_example_pass():
    result = router_test("config/examples/tests/")
    assert result.returncode == 0, result.stdout + result.stderr
    assert " 0 failed" in result.stdout
    tested = {line.split(":")[0].split("/")[-1] for line in result.stdout.splitlines()[:-1]}
    assert tested == {p.name for p in EXAMPLES.glob("*.yaml")}


def test_a_broken_mapping_fails_with_a_diff(tmp_path):
    config = (EXAMPLES / "conscent-to-moloco.yaml").read_text()
    broken = config.replace("heartbeat: PAGE_VIEW", "heartbeat: HOME")
    assert broken != config
    (tmp_path / "conscent-to-moloco.yaml").write_text(broken)
    cases = (EXAMPLES / "tests" / "conscent-to-moloco.yaml").read_text()
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "case.yaml").write_text(cases)

    result = router_test(str(tmp_path / "tests"))

    assert result.returncode == 1, result.stdout + result.stderr
    assert "FAIL " in result.stdout and "a ping becomes a PAGE_VIEW" in result.stdout
    assert '-    "event_type": "PAGE_VIEW",' in result.stdout
    assert '+    "event_type": "HOME",' in result.stdout
    assert "2 passed, 1 failed" in result.stdout


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("config: x.yaml\n", "cases: required field"),
        (
            "config: nowhere.yaml\ncases: [{name: a, source: s, input: {}, expect: {}}]\n",
            "no config",
        ),
        ("cases: [1]\nconfig: [", "invalid YAML"),
    ],
)
def test_a_bad_case_file_is_one_line_and_exit_2(tmp_path, text, message):
    path = tmp_path / "case.yaml"
    path.write_text(text)
    result = router_test(str(path))
    assert result.returncode == 2
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"router: error: {path}") and message in line


async def test_a_case_reports_what_is_not_listed(tmp_path):
    """What a case does not list must not happen: here the dead letter and the payload."""
    (tmp_path / "case.yaml").write_text(
        f"config: {EXAMPLES / 'endu-to-conscent.yaml'}\n"
        "cases:\n  - name: one\n    source: endu\n    input:\n      body:\n"
        "        property_id: P\n        organization_id: O\n        timestamp: '1672536219'\n"
        "        event_type: ITEM_PURCHASED\n        p_user_id: '7'\n"
        "        platform_type: Discord\n        event_data: {}\n"
        "    expect:\n      response: {status: 200}\n"
    )
    (case,) = load_cases(tmp_path / "case.yaml")
    outcome = await run_case(case)
    failures = compare(case, outcome)
    assert len(failures) == 1 and failures[0].startswith("dead letters of conscent:")
    assert "needs a userId" in failures[0]


async def test_a_case_opens_no_admin_listener_even_if_its_config_names_a_taken_port(tmp_path):
    with taken_port() as port:
        config = tmp_path / "router.yaml"
        config.write_text(
            (EXAMPLES / "endu-to-conscent.yaml").read_text()
            + f"admin: {{bind: 127.0.0.1:{port}}}\n"
        )
        (tmp_path / "case.yaml").write_text(
            f"config: {config}\n"
            "cases:\n  - name: one\n    source: endu\n    input:\n      body: {}\n"
            "    expect:\n      response: {status: 400}\n"
        )
        (case,) = load_cases(tmp_path / "case.yaml")
        outcome = await run_case(case)
    assert outcome.status == 400 and not outcome.problems
