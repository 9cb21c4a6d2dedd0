"""CORS on the local front end, as the stack's function URL does it once its Cors is set: a page
on another origin (the playground on API Gateway's domain, streaming from the function URL) may
read the streamed turns; a page of any origin not allowed may not; and without the setting,
nothing changes for same-origin pages and the SDK."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from local.apigw import web
from tests.conftest import front_end

PAGE = "http://page.test"
START = {"model": "m", "tools": [{"type": "code_interpreter"}], "inputs": "```python\nprint(1)\n```", "stream": True}
AUTH = {"Authorization": "Bearer test-key"}


def preflight(url: str, origin: str) -> httpx.Response:
    return httpx.options(f"{url}/v1/conversations", headers={
        "Origin": origin, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type"})


def test_a_page_of_an_allowed_origin_may_stream_a_turn(services: Any) -> None:
    with front_end("conversations", cors=web.Cors(frozenset({PAGE}))) as url:
        answer = preflight(url, PAGE)  # no key on a preflight: browsers never send one
        assert answer.status_code == 204
        assert answer.headers["Access-Control-Allow-Origin"] == PAGE
        assert "POST" in answer.headers["Access-Control-Allow-Methods"]
        assert {"authorization", "content-type"} <= set(answer.headers["Access-Control-Allow-Headers"].split(", "))
        turn = httpx.post(f"{url}/v1/conversations", json=START, headers={**AUTH, "Origin": PAGE}, timeout=30)
    assert turn.status_code == 200 and turn.headers["content-type"].startswith("text/event-stream")
    assert turn.headers["Access-Control-Allow-Origin"] == PAGE and turn.headers["Vary"] == "Origin"
    assert "conversation.response.done" in turn.text


def test_any_other_origin_gets_no_permission_and_errors_say_so_too(services: Any) -> None:
    with front_end("conversations", cors=web.Cors(frozenset({PAGE}))) as url:
        answer = preflight(url, "http://elsewhere.test")
        refused = httpx.post(f"{url}/v1/conversations", json=START, headers={"Origin": PAGE})  # no key
    assert answer.status_code == 204 and "Access-Control-Allow-Origin" not in answer.headers
    assert "Access-Control-Allow-Methods" not in answer.headers
    # The allowed page can read a refusal (to show why), in the API's error shape.
    assert refused.status_code == 401 and refused.headers["Access-Control-Allow-Origin"] == PAGE
    assert refused.json()["object"] == "error"


def test_without_the_setting_no_response_carries_cors_headers(services: Any) -> None:
    with front_end("conversations") as url:
        answer = preflight(url, PAGE)
        turn = httpx.post(f"{url}/v1/conversations", json=START, headers={**AUTH, "Origin": PAGE}, timeout=30)
    assert "Access-Control-Allow-Origin" not in answer.headers and answer.status_code != 204
    assert turn.status_code == 200 and "Access-Control-Allow-Origin" not in turn.headers


def test_the_setting_is_read_from_the_environment(monkeypatch: Any) -> None:
    monkeypatch.setenv("CORS_ALLOW_ORIGINS", " http://a.test/ , http://b.test:8080 ")
    cors = web.Cors.from_env()
    assert cors is not None and cors.origins == {"http://a.test", "http://b.test:8080"}
    assert cors.allowed("http://b.test:8080") == "http://b.test:8080" and cors.allowed("http://c.test") is None
    monkeypatch.setenv("CORS_ALLOW_ORIGINS", "*")
    assert web.Cors.from_env().allowed("http://any.test") == "*"  # type: ignore[union-attr]
    monkeypatch.setenv("CORS_ALLOW_ORIGINS", "")
    assert web.Cors.from_env() is None


def test_a_preflight_with_a_body_closes_the_connection_so_the_body_is_never_a_request(services: Any) -> None:
    """Found by review: the 204 left the body unread on a kept-alive connection, where it was
    parsed as the next request (request smuggling behind a proxy that reuses connections)."""
    import socket

    smuggled = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    with front_end("conversations", cors=web.Cors(frozenset({PAGE}))) as url:
        host, port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as connection:
            connection.sendall(b"OPTIONS /v1/conversations HTTP/1.1\r\nHost: x\r\nOrigin: " + PAGE.encode() +
                               b"\r\nAccess-Control-Request-Method: POST\r\n"
                               b"Content-Length: " + str(len(smuggled)).encode() + b"\r\n\r\n" + smuggled)
            answer = b""
            while chunk := connection.recv(65536):
                answer += chunk
    assert answer.startswith(b"HTTP/1.1 204") and answer.count(b"HTTP/1.1 ") == 1, answer


def test_every_origin_is_refused_where_any_key_is_accepted(monkeypatch: Any) -> None:
    """Found by review: with CORS_ALLOW_ORIGINS=* and make serve's open mode (any token is a
    workspace, the playground's is a constant), any web page could read the developer's data."""
    from local.serve import ConfigError, front_end_settings

    monkeypatch.setenv("CORS_ALLOW_ORIGINS", "*")
    with pytest.raises(ConfigError, match="CORS_ALLOW_ORIGINS=\\* while any bearer token is accepted"):
        front_end_settings(keys_open=True)
    stream_url, cors = front_end_settings(keys_open=False)  # with keys, the key is what protects the data
    assert stream_url is None and cors is not None and cors.allowed("http://any.test") == "*"
