"""The MCP envelope (agentsapi/mcp/protocol.py): what the official client never sends, refused
as the SDK's own server refuses it; and the version negotiation both eras of clients rely on."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from agentsapi.mcp.protocol import HANDSHAKE_VERSIONS, MODERN_VERSION, Call, Reply, parse
from agentsapi.mcp.server import McpServer

META = {"io.modelcontextprotocol/protocolVersion": MODERN_VERSION, "io.modelcontextprotocol/clientCapabilities": {}}
HEADERS = {"content-type": "application/json", "accept": "application/json, text/event-stream",
           "mcp-protocol-version": MODERN_VERSION}


def parsed(message: Any, headers: dict[str, str] | None = None, raw: bytes | None = None,
           max_bytes: int = 10_000) -> Call | Reply:
    body = raw if raw is not None else json.dumps(message).encode()
    return parse({**HEADERS, **(headers or {})}, body, max_bytes, max_depth=16)


def refusal(outcome: Call | Reply) -> tuple[int, int | None]:
    assert isinstance(outcome, Reply), outcome
    error = (outcome.body or {}).get("error") or {}
    return outcome.status, error.get("code")


def request(method: str, params: dict[str, Any] | None = None, request_id: Any = 1) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "method": method, "params": {**(params or {}), "_meta": META}}


def test_a_consistent_modern_request_is_a_call() -> None:
    call = parsed(request("tools/call", {"name": "run_python", "arguments": {}}, "abc"),
                  {"mcp-method": "tools/call", "mcp-name": "run_python"})
    assert call == Call("abc", "tools/call", {"name": "run_python", "arguments": {}, "_meta": META}, MODERN_VERSION)


def test_a_name_sent_as_base64_in_its_header_is_compared_decoded() -> None:
    uri = "sandbox://files/é"
    encoded = "=?base64?" + base64.b64encode(uri.encode()).decode() + "?="
    assert isinstance(parsed(request("resources/read", {"uri": uri}), {"mcp-method": "resources/read",
                                                                        "mcp-name": encoded}), Call)
    assert refusal(parsed(request("resources/read", {"uri": uri}), {"mcp-method": "resources/read",
                                                                     "mcp-name": "sandbox://files/e"})) == (400, -32020)


@pytest.mark.parametrize(("headers", "expected"), [
    ({"mcp-method": "tools/list", "mcp-protocol-version": "2099-01-01"}, (400, -32022)),
    ({"mcp-method": "tools/call"}, (400, -32020)),  # the header names another method than the body
    ({}, (400, -32020)),  # no Mcp-Method at all
    ({"mcp-method": "tools/list", "content-type": "text/plain"}, (415, -32600)),
    ({"mcp-method": "tools/list", "accept": "text/html"}, (406, -32600)),
])
def test_inconsistent_or_unsupported_requests_are_refused(headers: dict[str, str], expected: tuple[int, int]) -> None:
    assert refusal(parsed(request("tools/list"), headers)) == expected


def test_an_unsupported_version_names_the_supported_ones() -> None:
    reply = parsed(request("tools/list"), {"mcp-method": "tools/list", "mcp-protocol-version": "2099-01-01"})
    assert isinstance(reply, Reply) and reply.body is not None
    assert reply.body["error"]["data"] == {"supported": [MODERN_VERSION, *HANDSHAKE_VERSIONS], "requested": "2099-01-01"}


def test_the_body_version_must_match_the_header() -> None:
    message = request("tools/list")
    message["params"]["_meta"] = {**META, "io.modelcontextprotocol/protocolVersion": "2025-11-25"}
    assert refusal(parsed(message, {"mcp-method": "tools/list"})) == (400, -32020)


@pytest.mark.parametrize(("raw", "expected"), [
    (b"", (400, -32700)),
    (b"{", (400, -32700)),
    (b'{"jsonrpc": "2.0", "id": true, "method": "tools/list"}', (400, -32600)),  # a boolean id
    (b'{"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": [1]}', (400, -32600)),
    (b'{"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": {"a": ' + b'[' * 40 + b']' * 40 + b'}}}',
     (400, -32600)),  # nested deeper than MAX_JSON_DEPTH
    (b"x" * 10_001, (413, -32600)),
])
def test_bodies_that_are_not_one_request_are_refused(raw: bytes, expected: tuple[int, int]) -> None:
    assert refusal(parsed(None, {"mcp-method": "tools/list"}, raw=raw)) == expected


def test_no_accept_header_is_any_type_and_notifications_are_acknowledged() -> None:
    headers = {k: v for k, v in HEADERS.items() if k != "accept"}
    assert isinstance(parse({**headers, "mcp-method": "ping"}, json.dumps(request("ping")).encode(), 10_000, 16), Call)
    note = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    assert parsed(note, {"mcp-protocol-version": "2025-11-25"}) == Reply(202, None)


def server() -> McpServer:
    return McpServer(None, None, 10_000, 16)  # type: ignore[arg-type] - the handshake needs neither


def handshake(asked: str) -> dict[str, Any]:
    body = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": asked, "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
    headers = {k: v for k, v in HEADERS.items() if k != "mcp-protocol-version"}  # initialize carries none
    reply = server().handle("ws", headers, json.dumps(body).encode())
    assert reply.status == 200 and reply.body is not None, reply
    return dict(reply.body["result"])


def test_initialize_agrees_on_the_clients_revision_or_offers_the_newest_handshake_one() -> None:
    assert handshake("2025-06-18")["protocolVersion"] == "2025-06-18"
    assert handshake("2024-11-05")["protocolVersion"] == "2025-11-25"  # no Streamable HTTP in 2024-11-05
    assert handshake("2025-11-25")["serverInfo"]["name"]


def test_initialize_is_not_a_method_of_the_current_revision() -> None:
    reply = server().handle("ws", {**HEADERS, "mcp-method": "initialize"}, json.dumps(request("initialize")).encode())
    assert refusal(reply) == (404, -32601)
