"""The official mistralai SDK (3.x) against `make serve`: every agents and conversations call.

Each call must parse: the SDK validates every response against its own models.
"""

from __future__ import annotations

import json
import threading
import time

import pytest
from mistralai.client import Mistral

from tests.handshake import announce, marker, wait_for_cells

CODE = "```python\nx = 6 * 7\nprint('x is', x)\nx + 1\n```"


@pytest.fixture
def agent(client):  # noqa: ANN001, ANN201
    return client.beta.agents.create(model="mistral-medium-latest", name="calc", instructions="Compute.",
                                     tools=[{"type": "code_interpreter"}], completion_args={"temperature": 0.3})


def test_agent_lifecycle_versions_and_aliases(client) -> None:  # noqa: ANN001
    # Given a new agent
    agent = client.beta.agents.create(model="m", name="first", tools=[{"type": "code_interpreter"}])
    assert agent.version == 0 and agent.id.startswith("ag_") and agent.source == "api"
    # When it is updated twice, each update is a new active version
    v1 = client.beta.agents.update(agent_id=agent.id, name="second")
    v2 = client.beta.agents.update(agent_id=agent.id, instructions="be brief")
    assert (v1.version, v2.version) == (1, 2)
    assert client.beta.agents.get(agent_id=agent.id).name == "second"
    # Then versions can be read, switched and aliased
    assert [a.version for a in client.beta.agents.list_versions(agent_id=agent.id)] == [2, 1, 0]
    assert client.beta.agents.get_version(agent_id=agent.id, version="0").name == "first"
    switched = client.beta.agents.update_version(agent_id=agent.id, version=0)
    assert switched.version == 0 and client.beta.agents.get(agent_id=agent.id).name == "first"
    alias = client.beta.agents.create_version_alias(agent_id=agent.id, alias="prod", version=1)
    assert (alias.alias, alias.version) == ("prod", 1)
    assert client.beta.agents.get(agent_id=agent.id, agent_version="prod").version == 1
    assert [a.alias for a in client.beta.agents.list_version_aliases(agent_id=agent.id)] == ["prod"]
    client.beta.agents.delete_version_alias(agent_id=agent.id, alias="prod")
    assert client.beta.agents.list_version_aliases(agent_id=agent.id) == []
    # And listing finds it, by page and by token, until it is deleted
    assert agent.id in [a.id for a in client.beta.agents.list(page=0, page_size=100)]
    first = client.beta.agents.list_pages(page_size=1)
    seen = [a.id for a in first.result.data]
    second = first.next()  # the SDK follows next_page_token itself
    seen += [a.id for a in second.result.data] if second else []
    assert agent.id in seen and len(first.result.data) == 1
    client.beta.agents.delete(agent_id=agent.id)
    assert agent.id not in [a.id for a in client.beta.agents.list(page=0, page_size=100)]


def test_start_runs_code_in_the_sandbox(client, agent) -> None:  # noqa: ANN001
    response = client.beta.conversations.start(agent_id=agent.id, inputs=CODE)
    execution, message = response.outputs
    assert execution.type == "tool.execution" and execution.name == "code_interpreter"
    assert json.loads(execution.arguments) == {"code": "x = 6 * 7\nprint('x is', x)\nx + 1"}
    assert execution.info["code_output"] == "x is 42\n43\n"
    assert message.type == "message.output" and "x is 42" in message.content
    usage = response.usage
    assert usage.connectors == {"code_interpreter": 1}
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens + usage.connector_tokens


def test_append_restart_history_messages_get_list_delete(client, agent) -> None:  # noqa: ANN001
    first = client.beta.conversations.start(agent_id=agent.id, inputs="hello", metadata={"team": "e2e"})
    conversation_id = first.conversation_id
    second = client.beta.conversations.append(conversation_id=conversation_id, inputs="```python\nprint(2)\n```")
    assert second.conversation_id == conversation_id
    history = client.beta.conversations.get_history(conversation_id=conversation_id)
    assert [e.type for e in history.entries] == ["message.input", "message.output", "message.input",
                                                  "tool.execution", "message.output"]
    messages = client.beta.conversations.get_messages(conversation_id=conversation_id)
    assert [m.type for m in messages.messages] == ["message.input", "message.output", "message.input", "message.output"]
    # Restart from the first answer: a new conversation with history up to it, then the new turn
    restarted = client.beta.conversations.restart(conversation_id=conversation_id,
                                                  from_entry_id=history.entries[1].id, inputs="again")
    assert restarted.conversation_id != conversation_id
    copied = client.beta.conversations.get_history(conversation_id=restarted.conversation_id)
    assert [e.id for e in copied.entries[:2]] == [e.id for e in history.entries[:2]]
    assert len(copied.entries) == 4
    fetched = client.beta.conversations.get(conversation_id=conversation_id)
    assert fetched.id == conversation_id and fetched.agent_id == agent.id
    listed = client.beta.conversations.list(page=0, page_size=100, metadata={"team": "e2e"})
    # newest first; the restart inherited the metadata
    assert [c.id for c in listed] == [restarted.conversation_id, conversation_id]
    assert conversation_id in [c.id for c in client.beta.conversations.list(page=0, page_size=100)]
    client.beta.conversations.delete(conversation_id=conversation_id)
    with pytest.raises(Exception) as raised:
        client.beta.conversations.get(conversation_id=conversation_id)
    assert getattr(raised.value, "status_code", None) == 404


def test_streams_parse_and_match_the_stored_turn(client, agent) -> None:  # noqa: ANN001
    with client.beta.conversations.start_stream(agent_id=agent.id, inputs=CODE) as stream:
        events = list(stream)
    kinds = [e.event for e in events]
    assert kinds[0] == "conversation.response.started" and kinds[-1] == "conversation.response.done"
    assert kinds.index("tool.execution.started") < kinds.index("tool.execution.done") < kinds.index("message.output.delta")
    conversation_id = events[0].data.conversation_id
    done = [e for e in events if e.event == "tool.execution.done"][0]
    assert done.data.info["code_output"] == "x is 42\n43\n"
    text = "".join(e.data.content for e in events if e.event == "message.output.delta")
    history = client.beta.conversations.get_history(conversation_id=conversation_id)
    assert history.entries[-1].content == text
    with client.beta.conversations.append_stream(conversation_id=conversation_id, inputs="thanks") as stream:
        assert [e.event for e in stream][-1] == "conversation.response.done"
    with client.beta.conversations.restart_stream(conversation_id=conversation_id,
                                                  from_entry_id=history.entries[0].id, inputs="again") as stream:
        assert [e.event for e in stream][-1] == "conversation.response.done"


def test_model_conversation_without_agent(client) -> None:  # noqa: ANN001
    response = client.beta.conversations.start(model="mistral-small-latest", inputs=[{"role": "user", "content": CODE}],
                                               tools=[{"type": "code_interpreter"}], store=False)
    assert response.outputs[0].info["code_output"] == "x is 42\n43\n"
    with pytest.raises(Exception) as raised:  # store=False: nothing kept
        Mistral(api_key="e2e-key", server_url=client.sdk_configuration.server_url).beta.conversations.get(
            conversation_id=response.conversation_id)
    assert getattr(raised.value, "status_code", None) == 404


def test_other_workspace_sees_nothing(client, server_url, agent) -> None:  # noqa: ANN001
    other = Mistral(api_key="someone-else", server_url=server_url)
    with pytest.raises(Exception) as raised:
        other.beta.agents.get(agent_id=agent.id)
    assert getattr(raised.value, "status_code", None) == 404
    assert agent.id not in [a.id for a in other.beta.agents.list()]


def test_api_keeps_serving_while_code_runs(client, agent, server_url) -> None:  # noqa: ANN001
    other = Mistral(api_key="e2e-other-key", server_url=server_url)

    def other_calls() -> float:
        """The same workspace's API call, and another workspace's code."""
        started = time.monotonic()
        client.beta.agents.get(agent_id=agent.id)
        other.beta.conversations.start(model="m", tools=[{"type": "code_interpreter"}],
                                       inputs="```python\nprint('quick')\n```")
        return time.monotonic() - started

    other_calls()
    normal = min(other_calls() for _ in range(3))  # measured here, on this machine as loaded now
    # Given a long-running execution in flight (its cell has begun)
    running = marker()
    slow = threading.Thread(target=lambda: client.beta.conversations.start(
        agent_id=agent.id, inputs=f"```python\n{announce(running)}import time\ntime.sleep(3)\n```"))
    slow.start()
    wait_for_cells(running, server_pid="*")
    # When other calls arrive, they are answered without waiting for it (a workspace's own
    # executions beyond its share of the workers queue behind its others, not another's)
    took = other_calls()
    still_running = slow.is_alive()
    slow.join(timeout=30)
    assert still_running, "the slow cell ended before the other calls were measured"
    assert took < 3 * normal + 0.5, f"{took:.2f} s while code ran, {normal:.2f} s without"
