"""The MCP server's edge cases through its real handler, on the AWS adapters (moto) with a recording
sandbox: what a review found could crash it, store what it should not, or reach another tenant."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

MODERN = "2026-07-28"
META = {"io.modelcontextprotocol/protocolVersion": MODERN, "io.modelcontextprotocol/clientCapabilities": {}}
CONFIRMED_INTERPRETER = {"type": "code_interpreter", "tool_configuration": {"requires_confirmation": ["code_interpreter"]}}


def mcp(api: Any, method: str, params: dict[str, Any], key: str | None = None, raw: str | None = None) -> Any:
    headers = {"accept": "application/json", "mcp-protocol-version": MODERN, "mcp-method": method}
    if method == "tools/call":
        headers["mcp-name"] = params["name"]
    if method == "resources/read":
        headers["mcp-name"] = params["uri"]
    status, body, _ = api("POST", "/mcp", {"jsonrpc": "2.0", "id": 1, "method": method,
                                          "params": {**params, "_meta": META}}, key=key, raw=raw, headers=headers)
    return status, body


def tool(api: Any, tool_name: str, key: str | None = None, **arguments: Any) -> dict[str, Any]:
    status, body = mcp(api, "tools/call", {"name": tool_name, "arguments": arguments}, key=key)
    assert status == 200 and "result" in body, body
    return dict(body["result"])


def text(result: dict[str, Any]) -> str:
    return "\n".join(block["text"] for block in result["content"] if block["type"] == "text")


def entries(api: Any, conversation_id: str) -> list[dict[str, Any]]:
    return list(api("GET", f"/v1/conversations/{conversation_id}/history")[1]["entries"])


def test_a_conversation_owed_a_confirmation_is_not_driven_and_keeps_its_history(api: Any, fake_sandbox: Any) -> None:
    _, agent, _ = api("POST", "/v1/agents", {"model": "m", "name": "careful", "tools": [CONFIRMED_INTERPRETER]})
    _, pending, _ = api("POST", "/v1/conversations", {"agent_id": agent["id"], "inputs": "```python\nprint(1)\n```"})
    session, before = pending["conversation_id"], entries(api, pending["conversation_id"])
    ran = tool(api, "run_python", code="print('sneaked in')", session_id=session)
    uploaded = tool(api, "upload_file", name="a.txt", content="x", session_id=session)
    for result in (ran, uploaded):
        assert result["isError"] is True and "function results are still missing" in text(result)
    assert fake_sandbox.codes == [] and entries(api, session) == before
    assert api("GET", "/v1/files")[1]["total"] == 0  # the refused upload kept no file


def test_another_workspaces_file_cannot_be_read_or_listed_as_a_resource(api: Any) -> None:
    uploaded = tool(api, "upload_file", name="secret.txt", content="tenant A only")
    uri = uploaded["structuredContent"]["file"]["uri"]
    status, own = mcp(api, "resources/read", {"uri": uri})
    assert status == 200 and own["result"]["contents"][0]["text"] == "tenant A only"
    status, other = mcp(api, "resources/read", {"uri": uri}, key="tenant-b-key")
    assert status == 200 and other["error"]["code"] == -32002 and "tenant A" not in str(other)
    status, listed = mcp(api, "resources/list", {}, key="tenant-b-key")
    assert status == 200 and listed["result"]["resources"] == []


@pytest.mark.parametrize(("arguments", "said"), [
    ({"name": "bin.dat", "encoding": "base64", "content": "é" * 8}, "content is not valid base64"),
    ({"name": "a.txt", "content": "x", "session_id": "conv_" + "0" * 3000}, "session_id"),
    ({"name": "../a.txt", "content": "x"}, "name contains a path separator"),
])
def test_bad_upload_arguments_are_tool_errors_and_store_nothing(api: Any, arguments: dict[str, Any], said: str) -> None:
    result = tool(api, "upload_file", **arguments)
    assert result["isError"] is True and said in text(result), text(result)
    assert api("GET", "/v1/files")[1]["total"] == 0 and api("GET", "/v1/conversations")[1] == []


def test_a_lone_surrogate_is_refused_before_anything_runs(api: Any, fake_sandbox: Any) -> None:
    message = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
               "params": {"name": "run_python", "arguments": {"code": "print('SURROGATE')"}, "_meta": META}}
    raw = json.dumps(message).replace("SURROGATE", "\\ud800")  # an escape json.dumps would never write
    status, body = mcp(api, "tools/call", {"name": "run_python"}, raw=raw)
    assert status == 400 and body["error"]["code"] == -32600 and "surrogate" in body["error"]["message"]
    assert fake_sandbox.codes == []


def test_code_too_large_to_store_is_refused_before_it_runs(api: Any, fake_sandbox: Any) -> None:
    result = tool(api, "run_python", code="x = 1\n" * 40_000)
    assert result["isError"] is True and "MAX_ENTRY_BYTES" in text(result)
    assert fake_sandbox.codes == [] and api("GET", "/v1/conversations")[1] == []


def test_a_session_whose_uploaded_file_was_deleted_still_runs(api: Any, fake_sandbox: Any) -> None:
    uploaded = tool(api, "upload_file", name="gone.csv", content="a\n1\n")
    session = uploaded["structuredContent"]["session_id"]
    file_id = uploaded["structuredContent"]["file"]["uri"].rsplit("/", 1)[-1]
    assert api("DELETE", f"/v1/files/{file_id}")[0] == 200
    ran = tool(api, "run_python", code="print(1)", session_id=session)
    assert ran["isError"] is False and "were deleted" in ran["structuredContent"]["output"]
    assert tool(api, "list_files", session_id=session)["structuredContent"]["files"] == []


def test_plots_are_inlined_within_one_responses_budget(api: Any, services: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Several images: as many as fit MCP_READ_MAX_BYTES together are images, the rest links."""
    from agentsapi.sandbox.port import ExecutionResult, SandboxFile

    png = b"\x89PNG\r\n\x1a\n" + b"\0" * 600
    files = [SandboxFile(name=f"plot_{n}.png", mime_type="image/png", size=len(png),
                         content_b64=base64.b64encode(png).decode()) for n in range(3)]
    monkeypatch.setattr(services.mcp.sessions, "read_max_bytes", 2 * len(png) + 10)
    monkeypatch.setattr(services.sandbox, "execute", lambda request: ExecutionResult(status="ok", files=files))
    result = tool(api, "run_python", code="plots()")
    kinds = [block["type"] for block in result["content"]]
    assert kinds.count("image") == 2 and kinds.count("resource_link") == 1, kinds
