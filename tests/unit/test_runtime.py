"""The runtime with the offline model: its contract, and streamed events that fold into the outputs."""

from __future__ import annotations

from typing import Any

from agentsapi.domain.runtime import Persona, Runtime, Turn, history_to_messages
from agentsapi.models.entries import MessageInputEntry, ToolExecutionEntry
from agentsapi.models.tools import CodeInterpreterTool, CompletionArgs
from agentsapi.providers.offline import NO_PROVIDER, OfflineModel
from agentsapi.sandbox.port import ExecutionResult, OutputRun

PERSONA = Persona("m", "Compute.", [CodeInterpreterTool(type="code_interpreter")], CompletionArgs())


class EchoSandbox:
    def __init__(self) -> None:
        self.codes: list[str] = []

    def execute(self, request: Any) -> ExecutionResult:
        self.codes.append(request.code)
        return ExecutionResult(status="ok", outputs=[OutputRun(stream="stdout", text=f"out:{request.code}\n")])


def run(text: str, persona: Persona = PERSONA) -> tuple[list[dict[str, Any]], Turn, EchoSandbox]:
    sandbox = EchoSandbox()
    turn = Turn()
    events = list(Runtime(OfflineModel(), sandbox).run(persona, [MessageInputEntry(content=text)], turn))
    return events, turn, sandbox


def test_each_python_block_runs_once_in_order_then_one_answer() -> None:
    events, turn, sandbox = run("first\n```python\nprint(1)\n```\nthen\n```python\nprint(2)\n```")
    assert sandbox.codes == ["print(1)", "print(2)"]
    assert [o.type for o in turn.outputs] == ["tool.execution", "tool.execution", "message.output"]
    assert "out:print(1)" in turn.outputs[-1].content and "out:print(2)" in turn.outputs[-1].content
    assert turn.usage.connectors == {"code_interpreter": 2}


def test_no_code_block_explains_how_to_configure_a_provider() -> None:
    _, turn, sandbox = run("hello")
    assert sandbox.codes == [] and turn.outputs[0].content == NO_PROVIDER


def test_streamed_events_fold_into_the_same_outputs() -> None:
    events, turn, _ = run("```python\nprint(1)\n```")
    started = [e for e in events if e["type"] == "tool.execution.started"]
    deltas = "".join(e["arguments"] for e in events if e["type"] == "tool.execution.delta")
    done = [e for e in events if e["type"] == "tool.execution.done"]
    text = "".join(e["content"] for e in events if e["type"] == "message.output.delta")
    execution, message = turn.outputs
    assert started[0]["arguments"] == "" and started[0]["id"] == execution.id == done[0]["id"]
    assert deltas == execution.arguments
    assert done[0]["info"] == execution.info
    assert text == message.content
    assert {e["output_index"] for e in events if e["type"].startswith("tool.")} == {0}
    assert {e["output_index"] for e in events if e["type"] == "message.output.delta"} == {1}


def test_history_becomes_call_and_result_messages() -> None:
    entry = ToolExecutionEntry(id="tool_exec_1", name="code_interpreter", arguments='{"code": "1"}',
                               info={"code_output": "1\n"})
    messages = history_to_messages("sys", [MessageInputEntry(content="q"), entry])
    assert [m.role for m in messages] == ["system", "user", "assistant", "tool"]
    assert messages[2].tool_calls[0].arguments == '{"code": "1"}' and messages[3].content == "1\n"
