"""`make serve` with MISTRAL_SERVER_URL: a model that runs code twice then answers, through the SDK."""

from __future__ import annotations

from typing import Any

import pytest
from mistralai.client import Mistral


@pytest.fixture
def client(mistral_server_url: str) -> Mistral:
    return Mistral(api_key="e2e-key", server_url=mistral_server_url)


def test_two_executions_then_answer(client: Mistral, fake_mistral: Any) -> None:
    agent = client.beta.agents.create(model="mistral-small-latest", name="calc", tools=[{"type": "code_interpreter"}],
                                      completion_args={"temperature": 0.3})
    response = client.beta.conversations.start(agent_id=agent.id, inputs="Compute 21 * 2 in two steps.")
    first, second, answer = response.outputs
    assert (first.info["code_output"], second.info["code_output"]) == ("21\n", "42\n")
    assert answer.content == "First 21, then 42."
    usage = response.usage
    assert usage.connectors == {"code_interpreter": 2}
    assert (usage.prompt_tokens, usage.completion_tokens) == (80, 29)
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens + usage.connector_tokens
    assert fake_mistral.requests[-1]["temperature"] == 0.3
    assert fake_mistral.headers[-1]["authorization"] == "Bearer fake-key"


def test_two_executions_then_answer_streamed(client: Mistral) -> None:
    with client.beta.conversations.start_stream(model="mistral-small-latest", inputs="Compute it.",
                                                tools=[{"type": "code_interpreter"}]) as stream:
        events = list(stream)
    kinds = [e.event for e in events]
    assert kinds.count("tool.execution.started") == 2 and kinds.count("tool.execution.done") == 2
    # the second call's arguments arrived split over chunks, and were streamed as deltas; its live
    # output deltas carry "" as arguments, so joining a call's arguments still gives its code
    second = [e.data.id for e in events if e.event == "tool.execution.started"][1]
    deltas = [e.data.arguments for e in events if e.event == "tool.execution.delta" and e.data.id == second]
    assert len([d for d in deltas if d]) >= 2 and "".join(deltas) == '{"code": "print(21 * 2)"}'
    text = "".join(e.data.content for e in events if e.event == "message.output.delta")
    assert text == "First 21, then 42."
    done = events[-1]
    assert done.event == "conversation.response.done" and done.data.usage.connectors == {"code_interpreter": 2}
