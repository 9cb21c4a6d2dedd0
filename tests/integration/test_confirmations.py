"""tool_configuration.requires_confirmation: the call waits for the user's allow or deny."""

from __future__ import annotations

from typing import Any

import pytest

CONFIRMED_INTERPRETER = {"type": "code_interpreter", "tool_configuration": {"requires_confirmation": ["code_interpreter"]}}


@pytest.fixture
def pending(api: Any) -> dict[str, Any]:
    _, agent, _ = api("POST", "/v1/agents", {"model": "m", "name": "careful", "tools": [CONFIRMED_INTERPRETER]})
    code, body, _ = api("POST", "/v1/conversations", {"agent_id": agent["id"], "inputs": "```python\nprint(1)\n```"})
    assert code == 200
    return body


def test_the_call_waits_instead_of_running(pending: dict[str, Any], fake_sandbox: Any) -> None:
    (call,) = pending["outputs"]
    assert call["type"] == "function.call" and call["name"] == "code_interpreter"
    assert call["confirmation_status"] == "pending" and fake_sandbox.codes == []


def test_allow_runs_the_code_and_the_model_continues(api: Any, pending: dict[str, Any], fake_sandbox: Any) -> None:
    call = pending["outputs"][0]
    code, body, _ = api("POST", f"/v1/conversations/{pending['conversation_id']}",
                        {"tool_confirmations": [{"tool_call_id": call["tool_call_id"], "confirmation": "allow"}]})
    assert code == 200, body
    execution, answer = body["outputs"]
    assert execution["type"] == "tool.execution" and fake_sandbox.codes == ["print(1)"]
    assert "ran 1" in answer["content"]
    assert body["usage"]["connectors"] == {"code_interpreter": 1}


def test_deny_never_runs_it(api: Any, pending: dict[str, Any], fake_sandbox: Any) -> None:
    call = pending["outputs"][0]
    code, body, _ = api("POST", f"/v1/conversations/{pending['conversation_id']}",
                        {"tool_confirmations": [{"tool_call_id": call["tool_call_id"], "confirmation": "deny"}]})
    assert code == 200 and fake_sandbox.codes == []
    assert body["outputs"][0]["type"] == "function.result" and "denied" in body["outputs"][0]["result"]


def test_other_inputs_while_a_confirmation_is_owed_are_3001(api: Any, pending: dict[str, Any]) -> None:
    code, body, _ = api("POST", f"/v1/conversations/{pending['conversation_id']}", {"inputs": "never mind"})
    assert code == 400 and body["code"] == 3001


def test_confirming_an_unknown_call_is_400(api: Any, pending: dict[str, Any]) -> None:
    code, body, _ = api("POST", f"/v1/conversations/{pending['conversation_id']}",
                        {"tool_confirmations": [{"tool_call_id": "nope", "confirmation": "allow"}]})
    assert code == 400 and body["param"] == "tool_confirmations"
