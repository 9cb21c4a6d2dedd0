"""Handoffs: an agent hands the conversation to another, run by the server or left to the client."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from agentsapi.providers.port import ModelRequest, TextDelta, ToolCallDelta, UsageReport


class Triage:
    """Agent A (instructions 'triage') hands off to the first agent offered; others answer."""

    def stream(self, request: ModelRequest) -> Iterator[Any]:
        system = request.messages[0].content if request.messages and request.messages[0].role == "system" else ""
        handoff = next((t.name for t in request.tools if t.name.startswith("handoff_to_")), None)
        if system == "triage" and handoff:
            yield ToolCallDelta(index=0, id="call00001", name=handoff, arguments="{}")
        else:
            yield TextDelta(f"{system} answering")
        yield UsageReport(5, 2)


@pytest.fixture
def agents(api: Any, services: Any) -> dict[str, str]:
    services.conversations.runtime.provider = Triage()
    _, maths, _ = api("POST", "/v1/agents", {"model": "m", "name": "Maths", "instructions": "maths",
                                             "description": "Solves equations."})
    _, triage, _ = api("POST", "/v1/agents", {"model": "m", "name": "Triage", "instructions": "triage",
                                              "handoffs": [maths["id"]]})
    return {"maths": maths["id"], "triage": triage["id"]}


def test_server_side_handoff_continues_with_the_next_agent(api: Any, agents: dict[str, str]) -> None:
    code, body, _ = api("POST", "/v1/conversations", {"agent_id": agents["triage"], "inputs": "solve x"})
    assert code == 200
    handoff, answer = body["outputs"]
    assert handoff["type"] == "agent.handoff" and handoff["id"].startswith("handoff_")
    assert (handoff["previous_agent_id"], handoff["previous_agent_name"]) == (agents["triage"], "Triage")
    assert (handoff["next_agent_id"], handoff["next_agent_name"]) == (agents["maths"], "Maths")
    assert answer["content"] == "maths answering" and answer["agent_id"] == agents["maths"]
    # the next turn stays with the agent the conversation was handed to
    _, follow_up, _ = api("POST", f"/v1/conversations/{body['conversation_id']}", {"inputs": "and y?"})
    assert follow_up["outputs"][0]["agent_id"] == agents["maths"]


def test_client_side_handoff_returns_at_the_handoff(api: Any, agents: dict[str, str]) -> None:
    _, body, _ = api("POST", "/v1/conversations", {"agent_id": agents["triage"], "inputs": "solve x",
                                                   "handoff_execution": "client"})
    assert [o["type"] for o in body["outputs"]] == ["agent.handoff"]


def test_handoff_events_stream(api: Any, agents: dict[str, str]) -> None:
    _, body, _ = api("POST", "/v1/conversations", {"agent_id": agents["triage"], "inputs": "x", "stream": True})
    kinds = [block.split("\n", 1)[0].removeprefix("event: ") for block in body.split("\n\n") if block]
    assert kinds[:3] == ["conversation.response.started", "agent.handoff.started", "agent.handoff.done"]
    assert kinds[-1] == "conversation.response.done"


def test_handoff_targets_must_exist(api: Any) -> None:
    code, body, _ = api("POST", "/v1/agents", {"model": "m", "name": "n", "handoffs": ["ag_missing"]})
    assert code == 400 and body["param"] == "handoffs"


def test_the_official_sdk_parses_handoff_entries_and_events(api: Any, agents: dict[str, str]) -> None:
    import json

    from mistralai.client.models import ConversationEvents, ConversationResponse

    _, body, _ = api("POST", "/v1/conversations", {"agent_id": agents["triage"], "inputs": "x"})
    parsed = ConversationResponse.model_validate(body)
    assert type(parsed.outputs[0]).__name__ == "AgentHandoffEntry"
    _, stream, _ = api("POST", "/v1/conversations", {"agent_id": agents["triage"], "inputs": "x", "stream": True})
    for block in (b for b in stream.split("\n\n") if b):
        name, data = block.split("\n", 1)
        event = ConversationEvents.model_validate({"event": name.removeprefix("event: "),
                                                   "data": json.loads(data.removeprefix("data: "))})
        assert "Unknown" not in type(event.data).__name__, block
