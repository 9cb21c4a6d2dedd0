"""The MCP server at /mcp, driven by the official MCP Python SDK's Streamable HTTP client against a
real `make serve` (keys mode, two tenants), as an agent's MCP client would use it."""

from __future__ import annotations

import base64
import json
import struct
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import anyio
import httpx
import httpx2
import pytest
from mcp import Client, MCPError
from mcp.client.streamable_http import streamable_http_client

from local.launcher import Server
from tests.e2e.servers import A_KEY, B_KEY, start_server

FILES_MAX_BYTES = 200_000  # small, so that an upload over the Files API's limit is cheap to send
MODERN = "2026-07-28"
MODERN_HEADERS = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
                  "MCP-Protocol-Version": MODERN}
META = {"io.modelcontextprotocol/protocolVersion": MODERN, "io.modelcontextprotocol/clientCapabilities": {}}


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    running = start_server({"AUTH_MODE": "keys", "API_KEYS": f"{A_KEY},{B_KEY}", "RATE_LIMIT_PER_MINUTE": "0",
                            "FILES_MAX_BYTES": str(FILES_MAX_BYTES), "SANDBOX_TIMEOUT_S": "20"})
    yield running
    running.stop(timeout_s=15)


def with_client(server: Server, key: str | None, use: Callable[[Client], Awaitable[Any]], mode: str = "auto") -> Any:
    """Run ``use`` with the official client connected to the server's /mcp with ``key``."""
    async def main() -> Any:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        async with httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(60, read=120)) as http, \
                Client(streamable_http_client(f"{server.url}/mcp", http_client=http), mode=mode) as client:
            return await use(client)
    return anyio.run(main)


def texts(result: Any) -> str:
    return "\n".join(block.text for block in result.content if block.type == "text")


def session_of(result: Any) -> str:
    assert result.structured_content is not None, texts(result)
    return str(result.structured_content["session_id"])


def rpc(server: Server, body: Any, key: str = A_KEY, headers: dict[str, str] | None = None,
        raw: bytes | None = None) -> httpx.Response:
    """One raw POST to /mcp (for what the official client never sends)."""
    sent = {**MODERN_HEADERS, "Authorization": f"Bearer {key}", **(headers or {})}
    content = raw if raw is not None else json.dumps(body).encode()
    return httpx.post(f"{server.url}/mcp", content=content, headers=sent, timeout=60)


def call(name: str, arguments: dict[str, Any], request_id: int = 7) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "method": "tools/call",
            "params": {"name": name, "arguments": arguments, "_meta": META}}


def test_the_client_negotiates_the_current_revision_and_lists_the_four_tools(server: Server) -> None:
    async def use(client: Client) -> tuple[str, Any]:
        return client.protocol_version, await client.list_tools()

    version, listed = with_client(server, A_KEY, use)
    assert version == MODERN
    tools = {tool.name: tool for tool in listed.tools}
    assert set(tools) == {"run_python", "upload_file", "list_files", "read_file"}
    assert tools["run_python"].input_schema["required"] == ["code"]
    assert "session_id" in tools["run_python"].input_schema["properties"]
    assert tools["upload_file"].input_schema["required"] == ["name", "content"]
    assert all(tool.description for tool in tools.values())


def test_a_session_keeps_its_variables_between_calls_and_is_a_conversation(server: Server) -> None:
    async def use(client: Client) -> tuple[Any, Any]:
        first = await client.call_tool("run_python", {"code": "x = 41"})
        second = await client.call_tool("run_python", {"code": "print(x + 1)\nx * 2",
                                                       "session_id": session_of(first)})
        return first, second

    first, second = with_client(server, A_KEY, use)
    assert not first.is_error and not second.is_error, texts(second)
    assert session_of(second) == session_of(first)
    assert second.structured_content["output"] == "42\n82\n"  # printed, then the last value, as in conversations
    # The session is the API's conversation: its history holds both executions, code and output.
    history = httpx.get(f"{server.url}/v1/conversations/{session_of(first)}/history",
                        headers={"Authorization": f"Bearer {A_KEY}"}, timeout=30).json()
    executions = [e for e in history["entries"] if e["type"] == "tool.execution"]
    assert [e["info"]["code"] for e in executions] == ["x = 41", "print(x + 1)\nx * 2"]
    assert executions[1]["info"]["code_output"] == "42\n82\n"


def test_the_legacy_handshake_works_too(server: Server) -> None:
    async def use(client: Client) -> tuple[str, Any]:
        return client.protocol_version, await client.call_tool("run_python", {"code": "6 * 7"})

    version, result = with_client(server, A_KEY, use, mode="legacy")
    assert version == "2025-11-25"
    assert not result.is_error and result.structured_content["output"] == "42\n"


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_a_matplotlib_plot_comes_back_as_png_image_content(server: Server) -> None:
    code = ("import matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt\n"
            "plt.plot([1, 2, 3], [3, 1, 2])\nplt.savefig('plot.png')\nprint('saved')")

    result = with_client(server, A_KEY, lambda client: client.call_tool("run_python", {"code": code}))
    assert not result.is_error, texts(result)
    images = [block for block in result.content if block.type == "image"]
    assert len(images) == 1 and images[0].mime_type == "image/png"
    width, height = _png_size(base64.b64decode(images[0].data))
    assert width > 100 and height > 100
    assert [f["name"] for f in result.structured_content["files"]] == ["plot.png"]


def test_an_uploaded_csv_is_read_by_pandas_in_the_next_call(server: Server) -> None:
    csv = "city,visits\nLyon,3\nNantes,4\nLille,5\n"

    async def use(client: Client) -> tuple[Any, Any, Any, Any]:
        uploaded = await client.call_tool("upload_file", {"name": "visits.csv", "content": csv})
        session = session_of(uploaded)
        summed = await client.call_tool("run_python", {"session_id": session, "code":
                                        "import pandas as pd\ndf = pd.read_csv('visits.csv')\nint(df.visits.sum())"})
        listed = await client.call_tool("list_files", {"session_id": session})
        read = await client.call_tool("read_file", {"session_id": session, "name": "visits.csv"})
        return uploaded, summed, listed, read

    uploaded, summed, listed, read = with_client(server, A_KEY, use)
    assert not uploaded.is_error, texts(uploaded)
    assert not summed.is_error and summed.structured_content["output"] == "12\n", texts(summed)
    assert [(f["name"], f["bytes"], f["origin"]) for f in listed.structured_content["files"]] == \
        [("visits.csv", len(csv), "uploaded")]
    assert texts(read) == csv


def test_binary_uploads_and_written_files_round_trip(server: Server) -> None:
    blob = bytes(range(256)) * 4

    async def use(client: Client) -> tuple[Any, Any, Any]:
        uploaded = await client.call_tool("upload_file", {"name": "blob.bin", "encoding": "base64",
                                                          "content": base64.b64encode(blob).decode()})
        session = session_of(uploaded)
        written = await client.call_tool("run_python", {"session_id": session, "code":
                                         "data = open('blob.bin', 'rb').read()\n"
                                         "open('report.txt', 'w').write(f'{len(data)} bytes, sum {sum(data)}')"})
        link = next(block for block in written.content if block.type == "resource_link")
        return written, link, await client.read_resource(link.uri)

    written, link, read = with_client(server, A_KEY, use)
    assert not written.is_error, texts(written)
    assert link.name == "report.txt"
    assert read.contents[0].text == f"1024 bytes, sum {sum(blob)}"


def test_a_cell_error_is_a_tool_result_with_is_error_and_the_session_survives(server: Server) -> None:
    async def use(client: Client) -> tuple[Any, Any]:
        first = await client.call_tool("run_python", {"code": "kept = 'still here'\n1 / 0"})
        after = await client.call_tool("run_python", {"code": "kept", "session_id": session_of(first)})
        return first, after

    first, after = with_client(server, A_KEY, use)
    assert first.is_error is True
    assert "ZeroDivisionError" in texts(first)
    assert not after.is_error and after.structured_content["output"] == "'still here'\n"


def test_a_second_key_cannot_use_the_first_keys_session(server: Server) -> None:
    secret = "tenant-a-secret-7731"

    async def as_a(client: Client) -> str:
        created = await client.call_tool("run_python", {"code": f"secret = {secret!r}"})
        await client.call_tool("upload_file", {"name": "a.txt", "content": secret, "session_id": session_of(created)})
        return session_of(created)

    session = with_client(server, A_KEY, as_a)

    async def as_b(client: Client) -> list[Any]:
        return [await client.call_tool("run_python", {"code": "print(secret)", "session_id": session}),
                await client.call_tool("list_files", {"session_id": session}),
                await client.call_tool("read_file", {"session_id": session, "name": "a.txt"}),
                await client.call_tool("upload_file", {"name": "b.txt", "content": "x", "session_id": session})]

    for result in with_client(server, B_KEY, as_b):
        assert result.is_error is True
        assert f"Conversation {session} not found" in texts(result)  # the id B gave, nothing of A's
        assert secret not in texts(result) and "a.txt" not in texts(result)
    # A's session is untouched: B's attempts stored nothing in it.
    history = httpx.get(f"{server.url}/v1/conversations/{session}/history",
                        headers={"Authorization": f"Bearer {A_KEY}"}, timeout=30).json()
    assert len(history["entries"]) == 2


def test_without_a_valid_key_nothing_runs(server: Server) -> None:
    for key in (None, "not-a-key"):
        with pytest.raises(BaseExceptionGroup) as refused:
            with_client(server, key, lambda client: client.list_tools())
        assert refused.group_contains(MCPError)
    # A raw call straight to tools/call is refused by the authentication, before the tool.
    answer = httpx.post(f"{server.url}/mcp", content=json.dumps(call("run_python", {"code": "1"})),
                        headers=MODERN_HEADERS, timeout=30)
    assert answer.status_code == 401
    assert "result" not in answer.text


def test_an_unknown_tool_and_missing_code_are_clear_errors(server: Server) -> None:
    async def use(client: Client) -> tuple[Any, Any]:
        with pytest.raises(MCPError) as unknown:
            await client.call_tool("run_ruby", {"code": "puts 1"})
        missing = await client.call_tool("run_python", {"session_id": None})
        return unknown.value, missing

    unknown, missing = with_client(server, A_KEY, use)
    assert unknown.error.code == -32602 and "Unknown tool: run_ruby" in unknown.error.message
    assert missing.is_error is True and "code: Field required" in texts(missing)


@pytest.mark.parametrize(("body", "status", "code"), [
    (b'{"jsonrpc": "2.0", "id": 1, "method": ', 400, -32700),  # not JSON
    (b'[{"jsonrpc": "2.0", "id": 1, "method": "tools/list"}]', 400, -32600),  # a batch
    (b'{"id": 1, "method": "tools/list"}', 400, -32600),  # no jsonrpc member
    (b'{"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}', 400, -32602),  # no _meta envelope
    (json.dumps({"jsonrpc": "2.0", "id": 1, "method": "no/such", "params": {"_meta": META}}).encode(), 404, -32601),
])
def test_malformed_json_rpc_gets_a_json_rpc_error(server: Server, body: bytes, status: int, code: int) -> None:
    method = "no/such" if b"no/such" in body else "tools/list"
    answer = rpc(server, None, raw=body, headers={"Mcp-Method": method})
    assert answer.status_code == status
    assert answer.json()["error"]["code"] == code
    assert answer.json()["jsonrpc"] == "2.0"


def test_headers_that_contradict_the_body_are_refused(server: Server) -> None:
    body = call("run_python", {"code": "print('ran')"})
    answer = rpc(server, body, headers={"Mcp-Method": "tools/call", "Mcp-Name": "read_file"})
    assert answer.status_code == 400 and answer.json()["error"]["code"] == -32020
    assert "ran" not in answer.text


def test_an_oversized_upload_is_refused_and_nothing_is_stored(server: Server) -> None:
    headers = {"Authorization": f"Bearer {A_KEY}"}
    before = httpx.get(f"{server.url}/v1/usage", headers=headers, timeout=30).json()
    files_before = httpx.get(f"{server.url}/v1/files", headers=headers, timeout=30).json()["total"]
    over = "x" * (FILES_MAX_BYTES + 1)

    refused = with_client(server, A_KEY, lambda client: client.call_tool("upload_file", {"name": "big.txt",
                                                                                        "content": over}))
    assert refused.is_error is True
    assert "FILES_MAX_BYTES" in texts(refused)
    # A body beyond what the route takes at all is refused before it is read.
    too_long = rpc(server, call("upload_file", {"name": "huge.txt", "content": "y" * (4 * FILES_MAX_BYTES)}),
                   headers={"Mcp-Method": "tools/call", "Mcp-Name": "upload_file"})
    assert too_long.status_code == 413
    assert httpx.get(f"{server.url}/v1/files", headers=headers, timeout=30).json()["total"] == files_before
    assert httpx.get(f"{server.url}/v1/usage", headers=headers, timeout=30).json() == before
    # ... and the server goes on serving.
    still = with_client(server, A_KEY, lambda client: client.call_tool("run_python", {"code": "1 + 1"}))
    assert still.structured_content["output"] == "2\n"


def test_other_methods_on_the_endpoint_get_405_with_allow(server: Server) -> None:
    for method in ("GET", "DELETE"):
        answer = httpx.request(method, f"{server.url}/mcp", headers={"Authorization": f"Bearer {A_KEY}"}, timeout=30)
        assert answer.status_code == 405
        assert answer.headers["allow"] == "POST"
