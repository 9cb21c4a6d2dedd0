"""Conversation behaviour users rely on: function calls, concurrency, store=false, request counts."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from agentsapi.errors import Conflict
from agentsapi.models.conversations import AppendConversationRequest
from agentsapi.providers.port import ModelRequest, TextDelta, ToolCallDelta, UsageReport

WEATHER_TOOL = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}


class FunctionCallingModel:
    """Calls get_weather once, then answers with the result it was given."""

    def stream(self, request: ModelRequest) -> Iterator[Any]:
        results = [m for m in request.messages if m.role == "tool"]
        if not results:
            yield ToolCallDelta(index=0, id="call12345", name="get_weather")
            yield ToolCallDelta(index=0, arguments='{"city": "Paris"}')
        else:
            yield TextDelta(f"The weather is {results[-1].content}.")
        yield UsageReport(10, 5)


@pytest.fixture
def function_model(services: Any) -> None:
    services.conversations.runtime.provider = FunctionCallingModel()


def test_function_call_ends_the_turn_and_result_continues_it(api: Any, function_model: None) -> None:
    code, started, _ = api("POST", "/v1/conversations", {"model": "m", "inputs": "weather?", "tools": [WEATHER_TOOL]})
    assert code == 200
    (call,) = started["outputs"]
    assert call["type"] == "function.call" and call["tool_call_id"] == "call12345" and call["name"] == "get_weather"
    assert call["arguments"] == '{"city": "Paris"}'
    conversation = started["conversation_id"]

    # Other inputs while the result is owed: Mistral's 400 with integer code 3001
    code, error, _ = api("POST", f"/v1/conversations/{conversation}", {"inputs": "hello?"})
    assert code == 400 and error["code"] == 3001 and error["object"] == "Error" and "call12345" in error["message"]

    # A result for a call that does not exist
    code, error, _ = api("POST", f"/v1/conversations/{conversation}",
                         {"inputs": [{"type": "function.result", "tool_call_id": "nope", "result": "x"}]})
    assert code == 400 and error["param"] == "inputs"

    code, answered, _ = api("POST", f"/v1/conversations/{conversation}",
                            {"inputs": [{"tool_call_id": "call12345", "result": "sunny", "object": "entry",
                                         "type": "function.result"}], "store": True, "handoff_execution": "server"})
    assert code == 200 and answered["outputs"][0]["content"] == "The weather is sunny."
    _, history, _ = api("GET", f"/v1/conversations/{conversation}/history")
    assert [e["type"] for e in history["entries"]] == ["message.input", "function.call", "function.result",
                                                       "message.output"]


def test_two_concurrent_appends_one_wins_nothing_lost(api: Any, services: Any) -> None:
    _, started, _ = api("POST", "/v1/conversations", {"model": "m", "inputs": "first"})
    conversation = started["conversation_id"]
    workspace = services.keys.authenticate("Bearer test-key").workspace
    # Both appends read the conversation before either writes.
    first = services.conversations.append(workspace, conversation, AppendConversationRequest(inputs="A"))
    second = services.conversations.append(workspace, conversation, AppendConversationRequest(inputs="B"))
    first.buffered()
    with pytest.raises(Conflict):
        second.buffered()
    _, history, _ = api("GET", f"/v1/conversations/{conversation}/history")
    texts = [e["content"] for e in history["entries"] if e["type"] == "message.input"]
    assert texts == ["first", "A"]
    # The loser can simply retry
    code, _, _ = api("POST", f"/v1/conversations/{conversation}", {"inputs": "B"})
    assert code == 200


def test_conflict_is_409_over_http(api: Any, services: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    _, started, _ = api("POST", "/v1/conversations", {"model": "m", "inputs": "first"})

    def conflicted(*_: Any, **__: Any) -> None:
        raise Conflict("the conversation was changed by a concurrent request; retry")

    monkeypatch.setattr(services.store, "append_entries", conflicted)
    code, body, _ = api("POST", f"/v1/conversations/{started['conversation_id']}", {"inputs": "x"})
    assert code == 409 and "retry" in body["message"]


def test_store_false_runs_without_persisting(api: Any) -> None:
    _, started, _ = api("POST", "/v1/conversations", {"model": "m", "inputs": "one"})
    conversation = started["conversation_id"]
    code, body, _ = api("POST", f"/v1/conversations/{conversation}", {"inputs": "ephemeral", "store": False})
    assert code == 200 and body["outputs"]
    _, history, _ = api("GET", f"/v1/conversations/{conversation}/history")
    assert len(history["entries"]) == 2


def test_agent_version_pins_and_aliases(api: Any) -> None:
    _, agent, _ = api("POST", "/v1/agents", {"model": "model-v0", "name": "a"})
    api("PATCH", f"/v1/agents/{agent['id']}", {"model": "model-v1"})
    api("PUT", f"/v1/agents/{agent['id']}/aliases", query="alias=stable&version=0")
    _, pinned, _ = api("POST", "/v1/conversations", {"agent_id": agent["id"], "agent_version": "stable", "inputs": "x"})
    assert pinned["outputs"][0]["model"] == "model-v0"
    _, latest, _ = api("POST", "/v1/conversations", {"agent_id": agent["id"], "inputs": "x"})
    assert latest["outputs"][0]["model"] == "model-v1"
    code, _, _ = api("POST", "/v1/conversations", {"agent_id": agent["id"], "agent_version": "nope", "inputs": "x"})
    assert code == 404


def test_a_turn_costs_few_dynamodb_requests(api: Any, services: Any) -> None:
    _, started, _ = api("POST", "/v1/conversations", {"model": "m", "inputs": "one"})
    before = services.store.requests
    api("POST", f"/v1/conversations/{started['conversation_id']}", {"inputs": "two"})
    # read the head, read the entries, one transaction for the whole turn
    assert services.store.requests - before == 3


def test_tool_loop_is_bounded(api: Any, services: Any) -> None:
    class Looping:
        def stream(self, request: ModelRequest) -> Iterator[Any]:
            yield ToolCallDelta(index=0, id="c", name="code_interpreter", arguments='{"code": "1"}')

    services.conversations.runtime.provider = Looping()
    code, body, _ = api("POST", "/v1/conversations", {"model": "m", "inputs": "go",
                                                       "tools": [{"type": "code_interpreter"}]})
    assert code == 200
    assert [o["type"] for o in body["outputs"]].count("tool.execution") == services.settings.max_tool_steps
    assert "step limit" in body["outputs"][-1]["content"]
    assert body["usage"]["connectors"] == {"code_interpreter": services.settings.max_tool_steps}
