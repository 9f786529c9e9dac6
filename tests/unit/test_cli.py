"""The command line in-process: translate, validate, plugins, check, dlq, and one-line errors."""

from __future__ import annotations

import io
import json

import pytest

from router.cli import main
from tests.helpers.spools import options, running_spools

ANON = "0b7e8a52-3c1d-4f7e-9a6b-2d4c8e1f5a90"
PING = {
    "clientId": "c1",
    "eventType": "PING",
    "eventLocation": "PAGE",
    "anonId": ANON,
    "pingId": "5f0c7a1e-2b3d-4c5e-8f9a-0b1c2d3e4f5a",
    "active": 1,
}


def run(argv, stdin: str, monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def ndjson(*values) -> str:
    return "".join(json.dumps(v) + "\n" if not isinstance(v, str) else v + "\n" for v in values)


def test_translate_conscent_to_moloco(monkeypatch, capsys):
    purchase = {**PING, "eventType": "PURCHASE", "userId": "u1", "purchaseId": "o1"}
    del purchase["pingId"], purchase["active"]
    text = ndjson(PING, {"messageBody": [purchase, {"eventType": "CLICK"}]}, "{oops")
    code, out, err = run(
        [
            "translate",
            "--from",
            "conscent",
            "--to",
            "moloco",
            "-o",
            "platform=web",
            "-o",
            "channel_type=SITE",
            "-o",
            "type_map={heartbeat: PAGE_VIEW}",
            "-o",
            "default_item_id=sku-1",
        ],
        text,
        monkeypatch,
        capsys,
    )
    assert code == 1
    events = [json.loads(line) for line in out.splitlines()]
    assert [e["event_type"] for e in events] == ["PAGE_VIEW", "PURCHASE"]
    assert events[0]["custom_id"] == ANON and events[0]["page_id"] == "PAGE"
    assert events[1]["user_id"] == "u1" and events[1]["items"] == [{"id": "sku-1"}]
    lines = err.splitlines()
    assert lines[0].startswith("line 2[1]: anonId: required field; clientId: required field")
    assert lines[1].startswith("line 3: invalid JSON")
    assert lines[-1] == "2 translated, 2 failed"


def test_translate_reports_untranslatable_events(monkeypatch, capsys):
    code, out, err = run(
        ["translate", "--from", "conscent", "--to", "moloco", "-o", "platform=web"],
        ndjson(PING),
        monkeypatch,
        capsys,
    )
    assert code == 1 and out == ""
    assert "line 1: cannot translate to moloco: " in err
    assert "type_map" in err


def test_translate_to_and_from_canonical_round_trips(monkeypatch, capsys):
    code, out, _ = run(
        ["translate", "--from", "conscent", "--to", "canonical"], ndjson(PING), monkeypatch, capsys
    )
    assert code == 0
    canonical = json.loads(out)
    assert canonical["type"] == "heartbeat" and canonical["identity"]["anonymous_id"] == ANON
    code, out, _ = run(
        ["translate", "--from", "canonical", "--to", "conscent"], out, monkeypatch, capsys
    )
    assert code == 0
    assert json.loads(out) == PING


def test_validate_names_the_failing_field(monkeypatch, capsys):
    bad = {**PING, "active": 2}
    code, out, err = run(
        ["validate", "--vendor", "conscent"], ndjson(PING, bad), monkeypatch, capsys
    )
    assert code == 1 and out == ""
    assert err.splitlines() == ["line 2: active: unallowed value 2", "1 valid, 1 invalid"]
    code, _, err = run(["validate", "--vendor", "conscent"], ndjson(PING), monkeypatch, capsys)
    assert code == 0 and err.strip() == "1 valid, 0 invalid"


def test_validate_single_event_vendor_and_unknown_vendor(monkeypatch, capsys):
    code, _, err = run(
        ["validate", "--vendor", "moloco"], ndjson({"event_type": "HOME"}), monkeypatch, capsys
    )
    assert code == 1
    assert "line 1: " in err and "channel_type" in err and "timestamp" in err
    code, _, err = run(["validate", "--vendor", "nosuch"], "", monkeypatch, capsys)
    assert code == 2 and "no vendor 'nosuch'" in err


@pytest.mark.parametrize("vendor", ["conscent", "segmento", "moloco", "endu"])
def test_plugins_lists_each_vendor(vendor, capsys):
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert f"\n{vendor} 0.1.0 (builtin)" in "\n" + out


def test_a_bug_is_one_line_and_router_debug_adds_the_traceback(monkeypatch):
    from router.cli import EXIT_BUG, report

    def fail():
        raise KeyError("spool")

    try:
        fail()
    except KeyError as exc:
        bug = exc
    monkeypatch.delenv("ROUTER_DEBUG", raising=False)
    err = io.StringIO()
    assert report(ExceptionGroup("nursery", [bug]), err) == EXIT_BUG
    (line,) = err.getvalue().splitlines()
    assert line.startswith("router: internal error: KeyError: 'spool'. This is a bug in router")
    assert line.endswith("; ROUTER_DEBUG=1 shows the traceback")
    monkeypatch.setenv("ROUTER_DEBUG", "1")
    err = io.StringIO()
    assert report(bug, err) == EXIT_BUG
    assert err.getvalue().startswith("Traceback (most recent call last):")
    assert "in fail" in err.getvalue()


def test_user_errors_inside_exception_groups_are_one_line(monkeypatch):
    from router.cli import EXIT_CONFIG, report
    from router.errors import DataDirLocked

    monkeypatch.delenv("ROUTER_DEBUG", raising=False)
    err = io.StringIO()
    group = ExceptionGroup("outer", [ExceptionGroup("inner", [DataDirLocked("data is in use")])])
    assert report(group, err) == EXIT_CONFIG
    assert err.getvalue() == "router: error: data is in use\n"


def test_translate_deterministic_gives_the_same_output_every_run(monkeypatch, capsys):
    argv = ["translate", "--from", "conscent", "--to", "canonical", "--deterministic"]
    runs = [run(argv, ndjson(PING, PING), monkeypatch, capsys) for _ in range(2)]
    assert runs[0] == runs[1]
    code, out, _ = runs[0]
    events = [json.loads(line) for line in out.splitlines()]
    assert code == 0
    assert [e["id"][-2:] for e in events] == ["01", "02"]
    assert {e["received_at"] for e in events} == {1_700_000_000_000}


CONFIG = """\
sources: {in: {plugin: conscent, auth: none}}
sinks: {out: {plugin: file, path: o.ndjson}}
routes: [{from: in, to: out}]
"""


def test_check_prints_one_ok_line_with_a_summary(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ROUTER_DISABLE_PLUGIN_AUTOLOAD", "1")
    path = tmp_path / "router.yaml"
    path.write_text(CONFIG)
    assert main(["check", "-c", str(path)]) == 0
    out = capsys.readouterr().out
    assert out == f"{path}: ok: 1 sources, 1 sinks, 1 routes, 5 plugins\n"


def test_dlq_on_a_data_dir_without_a_spool_says_so_in_one_line(tmp_path):
    err = io.StringIO()
    assert main(["dlq", "list", "out", "--data-dir", str(tmp_path / "none")], stderr=err) == 2
    assert err.getvalue() == (
        f"router: error: no spool at {tmp_path}/none/spool.db: "
        "has a daemon run with this data dir?\n"
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "--workers", "x"], "argument --workers: 'x' is not a number from 1 to 64"),
        (["run", "--workers", "0"], "argument --workers: '0' is not a number from 1 to 64"),
    ],
)
def test_a_bad_argument_is_one_line_pointing_at_help(argv, message, capsys):
    with pytest.raises(SystemExit) as caught:
        main(argv)
    assert caught.value.code == 2
    assert capsys.readouterr().err == f"router run: error: {message} (see router run --help)\n"


async def test_dlq_list_and_show_print_no_configured_secret(tmp_path, capsys):
    # An upstream that quotes the key it was sent puts it into the dead letter.
    secret = "sk-live-9f8e7d6c5b4a"
    async with running_spools(tmp_path) as start:
        spool = await start(sinks=[("out", options())], path=tmp_path / "spool.db")
        queue = spool.queues["out"]
        await queue.put([("e1", b'{"eventType":"PING"}')], 0.0)
        batch = await queue.get_batch(1, 1 << 20, 0)
        await queue.dead_letter(
            batch,
            reason=f"rejected: invalid key {secret}",
            attempts=1,
            status=401,
            response=f'{{"error": "key {secret} is not valid"}}',
        )
    config = tmp_path / "router.yaml"
    config.write_text(
        f"server: {{data_dir: {str(tmp_path)!r}}}\n"
        "sources: {in: {plugin: conscent, auth: none}}\n"
        f"sinks: {{out: {{plugin: conscent, url: 'http://127.0.0.1:9/', api_key: {secret}}}}}\n"
        "routes: [{from: in, to: out}]\n"
    )
    assert main(["dlq", "show", "out", "-c", str(config)]) == 0
    assert main(["dlq", "list", "out", "-c", str(config)]) == 0
    out = capsys.readouterr().out
    assert secret not in out
    assert out.count("[redacted]") == 3  # the reason and the response, and the list's reason
    assert '"status": 401' in out and "e1" in out
