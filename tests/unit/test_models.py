"""Models: what the SDK insists on, and what requests may not contain."""

from __future__ import annotations

import re

import pytest
from pydantic import ValidationError

from agentsapi.models.agents import AgentHead, AgentVersion, CreateAgentRequest, agent_response
from agentsapi.models.common import new_id, now
from agentsapi.models.conversations import StartConversationRequest, Usage
from agentsapi.models.entries import MessageInputEntry, ToolExecutionEntry, entry_to_api


def test_ids_have_mistral_shape_and_sort_by_time() -> None:
    first, second = new_id("msg_"), new_id("msg_")
    assert re.fullmatch(r"msg_[0-9a-f]{32}", first)
    assert first[:16] <= second[:16]


def test_agent_response_has_the_fields_the_sdk_requires() -> None:
    moment = now()
    version = AgentVersion(id="ag_1", version=0, model="m", name="n", created_at=moment)
    body = agent_response(AgentHead(id="ag_1", active_version=0, latest_version=0, created_at=moment, updated_at=moment),
                          version)
    for field in ("model", "name", "id", "version", "versions", "created_at", "updated_at", "deployment_chat", "source"):
        assert field in body
    assert body["tools"] == [] and body["completion_args"]["tool_choice"] == "auto"
    assert body["created_at"].endswith("Z")


def test_tool_execution_always_has_string_arguments() -> None:
    entry = ToolExecutionEntry(id="tool_exec_1", name="code_interpreter", created_at=now())
    assert entry_to_api(entry)["arguments"] == ""


def test_sdk_added_keys_on_input_entries_are_accepted() -> None:
    request = StartConversationRequest.model_validate(
        {"inputs": [{"role": "user", "content": "hi", "object": "entry", "type": "message.input", "prefix": False}],
         "model": "m", "stream": False})
    assert isinstance(request.inputs[0], MessageInputEntry)


def test_entry_without_type_is_a_user_message() -> None:
    request = StartConversationRequest.model_validate({"inputs": [{"role": "user", "content": "hi"}], "model": "m"})
    assert request.inputs[0].type == "message.input"


def test_code_interpreter_with_config_key_is_refused() -> None:
    with pytest.raises(ValidationError) as raised:
        CreateAgentRequest.model_validate({"model": "m", "name": "n", "tools": [{"type": "code_interpreter", "config": {}}]})
    assert "config" in str(raised.value)


def test_usage_total_counts_connector_tokens() -> None:
    usage = Usage()
    usage.add_model_call(10, 5)
    usage.add_connector_call("code_interpreter", 7)
    usage.add_connector_call("code_interpreter", 3)
    assert usage.to_api() == {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 25, "connector_tokens": 10,
                              "connectors": {"code_interpreter": 2}}


def test_an_entry_owns_exactly_one_session_key() -> None:
    from agentsapi.blobs import is_own_session, session_key

    own = session_key("ws-1", "conv_a", "tool_exec_1")
    assert is_own_session(own, "ws-1", "conv_a", "tool_exec_1")
    for ref, ws, conversation, entry in (
            (own, "ws-2", "conv_a", "tool_exec_1"),  # another workspace
            (own, "ws-1", "conv_b", "tool_exec_1"),  # the same workspace's other conversation
            (own, "ws-1", "conv_a", "tool_exec_2"),  # the same conversation's other entry
            (own + "x", "ws-1", "conv_a", "tool_exec_1"),  # a key that only begins like its own
            ("sessions/ws-1/conv_a/../conv_b/tool_exec_1", "ws-1", "conv_a", "../conv_b/tool_exec_1"),
            (session_key("ws-1", "conv_a", ""), "ws-1", "conv_a", ""),  # no entry id at all
            (session_key("ws-1", "conv_a", "x/y"), "ws-1", "conv_a", "x/y"),  # an id that is a path
            ("files/ws-1/f-1", "ws-1", "conv_a", "tool_exec_1")):
        assert not is_own_session(ref, ws, conversation, entry), (ref, ws, conversation, entry)
