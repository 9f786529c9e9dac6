"""adminreply: the admin listener's JSON answers and its one error shape."""

from __future__ import annotations

import orjson

from router.adminreply import error_response, json_response


async def test_json_keeps_non_string_keys_and_the_status():
    response = json_response({1: "a"}, 207)
    assert response.status_code == 207
    assert response.content_type == "application/json"
    assert orjson.loads(await response.get_data()) == {"1": "a"}


async def test_an_error_has_the_ingest_ports_shape_and_its_headers():
    response = error_response(
        401, "Unauthorized", "needs a token", **{"WWW-Authenticate": "Bearer"}
    )
    assert response.status_code == 401
    assert orjson.loads(await response.get_data()) == {
        "error": "Unauthorized",
        "message": "needs a token",
        "status": 401,
    }
    assert response.headers["WWW-Authenticate"] == "Bearer"
