"""Bad input gets a clear error in the API's shape, and nothing already stored changes."""

from __future__ import annotations

from typing import Any

import boto3
import pytest


def snapshot() -> list[dict[str, Any]]:
    items = boto3.client("dynamodb").scan(TableName="agents-api-test")["Items"]
    return sorted(items, key=lambda i: (i["PK"]["S"], i["SK"]["S"]))


@pytest.fixture
def stored(api: Any) -> dict[str, str]:
    _, agent, _ = api("POST", "/v1/agents", {"model": "m", "name": "n", "tools": [{"type": "code_interpreter"}]})
    _, conversation, _ = api("POST", "/v1/conversations", {"agent_id": agent["id"], "inputs": "hi"})
    return {"agent": agent["id"], "conversation": conversation["conversation_id"]}


def field_locs(body: dict[str, Any]) -> list[list[str]]:
    return [d["loc"] for d in body["message"]["detail"]]


@pytest.mark.parametrize(("method", "path", "payload", "raw", "status", "names"), [
    ("POST", "/v1/agents", None, "{not json", 422, "malformed JSON"),
    ("POST", "/v1/agents", {"model": "m"}, None, 422, "name"),
    ("POST", "/v1/agents", {"model": "m", "name": "n", "user": "x"}, None, 422, "user"),
    ("POST", "/v1/agents", {"model": 5, "name": "n"}, None, 422, "model"),
    ("POST", "/v1/agents", {"model": "m", "name": "n", "tools": [{"type": "shell"}]}, None, 422, "tools"),
    ("POST", "/v1/agents", {"model": "m", "name": "n", "tools": [{"type": "code_interpreter", "config": {}}]}, None, 422,
     "config"),
    ("POST", "/v1/agents", {"model": "m", "name": "n", "completion_args": {"temperature": "hot"}}, None, 422, "temperature"),
    ("POST", "/v1/conversations", {"inputs": "x"}, None, 422, "agent_id"),
    ("POST", "/v1/conversations", {"inputs": "x", "model": "m", "agent_id": "ag_1"}, None, 422, "agent_id"),
    ("POST", "/v1/conversations", {"inputs": [{"type": "message.input", "role": "robot", "content": "x"}], "model": "m"},
     None, 422, "role"),
    ("POST", "/v1/conversations", {"model": "m"}, None, 422, "inputs"),
    ("POST", "/v1/conversations", {"inputs": 12, "model": "m"}, None, 422, "inputs"),
])
def test_invalid_bodies_are_422_naming_the_field(api: Any, stored: dict[str, str], method: str, path: str, payload: Any,
                                                 raw: str | None, status: int, names: str) -> None:
    before = snapshot()
    code, body, _ = api(method, path, payload, raw=raw)
    assert code == status
    assert body["object"] == "error" and body["type"] == "invalid_request_error"
    assert names in str(body["message"])
    assert snapshot() == before


def test_unknown_field_error_matches_mistral_shape(api: Any) -> None:
    code, body, _ = api("POST", "/v1/agents", {"model": "m", "name": "n", "user": "x"})
    assert code == 422
    assert body["message"]["detail"][0] == {"type": "extra_forbidden", "loc": ["body", "user"],
                                            "msg": "Extra inputs are not permitted", "input": "x"}


def test_oversized_body_is_413(api: Any, stored: dict[str, str]) -> None:
    before = snapshot()
    code, body, _ = api("POST", f"/v1/conversations/{stored['conversation']}", {"inputs": "x" * 300_000})
    assert code == 413 and "larger than" in body["message"]
    assert snapshot() == before


@pytest.mark.parametrize("path", [
    "/v1/agents/ag_0000", "/v1/agents/ag_0000/versions", "/v1/agents/ag_0000/aliases",
    "/v1/conversations/conv_0000", "/v1/conversations/conv_0000/history", "/v1/conversations/conv_0000/messages",
])
def test_unknown_ids_are_404(api: Any, path: str) -> None:
    code, body, _ = api("GET", path)
    assert code == 404 and body["type"] == "invalid_request_error"


def test_other_tenants_ids_are_404_and_untouched(api: Any, stored: dict[str, str]) -> None:
    before = snapshot()
    agent, conversation = stored["agent"], stored["conversation"]
    for method, path, payload in [
        ("GET", f"/v1/agents/{agent}", None),
        ("PATCH", f"/v1/agents/{agent}", {"name": "stolen"}),
        ("DELETE", f"/v1/agents/{agent}", None),
        ("GET", f"/v1/conversations/{conversation}", None),
        ("POST", f"/v1/conversations/{conversation}", {"inputs": "hijack"}),
        ("DELETE", f"/v1/conversations/{conversation}", None),
        ("POST", "/v1/conversations", {"agent_id": agent, "inputs": "use it"}),
    ]:
        code, _, _ = api(method, path, payload, key="another-tenant")
        assert code == 404, (method, path)
    assert snapshot() == before
    _, listed, _ = api("GET", "/v1/agents", key="another-tenant")
    assert listed == []


def test_missing_or_wrong_key_is_401(api: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    code, body, _ = api("GET", "/v1/agents", key="")
    assert code == 401 and body["type"] == "authentication_error"
    from agentsapi.auth import Authenticator

    services = __import__("agentsapi.services", fromlist=["get_services"]).get_services()
    monkeypatch.setattr(services, "keys", Authenticator("right-key", None))
    assert api("GET", "/v1/agents", key="wrong-key")[0] == 401
    assert api("GET", "/v1/agents", key="right-key")[0] == 200


def test_unknown_entry_for_restart_is_404(api: Any, stored: dict[str, str]) -> None:
    code, body, _ = api("POST", f"/v1/conversations/{stored['conversation']}/restart",
                        {"from_entry_id": "msg_nope", "inputs": "x"})
    assert code == 404 and body["param"] == "from_entry_id"


def test_bad_page_token_is_400(api: Any, stored: dict[str, str]) -> None:
    code, body, _ = api("GET", "/v1/agents/pages", query="page_token=bm90LWEtdG9rZW4")
    assert code == 400 and body["param"] == "page_token"


@pytest.mark.parametrize("query", ["page=-1", "page_size=0", "page_size=5000", "page=abc"])
def test_bad_paging_is_rejected(api: Any, query: str) -> None:
    code, body, _ = api("GET", "/v1/agents", query=query)
    assert code == 400 and body["param"] in query


def test_metadata_sentinel_is_ignored(api: Any, stored: dict[str, str]) -> None:
    code, body, _ = api("GET", "/v1/conversations", query="metadata=%22~%3F~unset~%3F~sentinel~%3F~%22")
    assert code == 200 and len(body) == 1


def test_invalid_alias_is_422(api: Any, stored: dict[str, str]) -> None:
    code, body, _ = api("PUT", f"/v1/agents/{stored['agent']}/aliases", query="alias=Bad Alias!&version=0")
    assert code == 422 and "alias" in str(body["message"])
