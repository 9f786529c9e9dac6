"""SourceRuntime: the errors it renders, their headers and their context."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from router.errors import Overloaded, PluginFailure, RouterError
from router.testing.daemon import running_daemon

BODY = {"events": [{"kind": "view", "user": "u"}]}


@pytest.fixture
async def limited(tmp_path, sample, sample_config):
    sample_config["sources"]["in"]["rate_limit"] = {"rate": 0.001, "burst": 100}
    async with running_daemon(sample_config, data_dir=tmp_path / "d", plugins=sample) as rd:
        yield rd


async def test_an_error_a_plugin_raises_again_gets_each_requests_own_rate_limit_headers(limited):
    # One instance for every request: the pipeline used to write the first
    # request's rate-limit headers into it, and every later reply sent those.
    refused = Overloaded("downstream is busy", headers={"Retry-After": "3"})

    def accepted(request, result):
        raise refused

    limited.source("in").source.accepted = accepted
    first = await limited.client.post("/sample/events", json=BODY)
    second = await limited.client.post(
        "/sample/events", json=BODY, headers={"X-Request-Id": "second"}
    )
    assert first.status_code == second.status_code == 503
    assert second.json() == {"sample_error": "downstream is busy"}
    assert second.headers["retry-after"] == "3"
    remaining = [int(r.headers["x-ratelimit-remaining"]) for r in (first, second)]
    assert remaining[1] < remaining[0]
    assert refused.headers == {"Retry-After": "3"}
    # The context of the last request it answered.
    assert refused.source == "in" and refused.request_id == "second"


async def test_a_plugin_failure_is_in_the_error_tree_and_logged_with_its_hook_and_request(
    limited,
):
    assert issubclass(PluginFailure, RouterError)

    def accepted(request, result):
        raise ValueError("plugin bug")

    limited.source("in").source.accepted = accepted
    with capture_logs() as logs:
        r = await limited.client.post("/sample/events", json=BODY, headers={"X-Request-Id": "r7"})
    assert r.status_code == 500
    assert r.json() == {"sample_error": "the sample plugin failed while handling the request"}
    assert "x-ratelimit-remaining" in r.headers
    [line] = [entry for entry in logs if entry["event"] == "ingest.plugin_error"]
    assert line["hook"] == "accepted" and line["request_id"] == "r7"
    assert line["source"] == "in" and "ValueError: plugin bug" in line["error"]


def test_old_import_places_still_work():
    from router import errors, ingest, translate

    assert ingest.PluginFailure is errors.PluginFailure
    assert translate.UnknownVendor is errors.UnknownVendor
    assert issubclass(errors.UnknownVendor, errors.UsageError)
