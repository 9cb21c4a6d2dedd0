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


class SlowSandbox(EchoSandbox):
    """Each execution takes ``seconds`` of the fake clock."""

    def __init__(self, clock: list[float], seconds: float) -> None:
        super().__init__()
        self.clock, self.seconds = clock, seconds

    def execute(self, request: Any) -> ExecutionResult:
        self.clock[0] += self.seconds
        return super().execute(request)


def test_a_turn_starts_no_execution_or_model_call_it_could_not_finish_within_its_budget() -> None:
    now = [0.0]
    sandbox = SlowSandbox(now, 25.0)
    runtime = Runtime(OfflineModel(), sandbox, turn_timeout_s=100, execution_timeout_s=30, clock=lambda: now[0])
    turn = Turn()
    text = "\n".join(f"```python\nprint({n})\n```" for n in range(4))
    list(runtime.run(PERSONA, [MessageInputEntry(content=text)], turn))
    # 100 s: each execution needs its 30 s limit and 30 s more; after the first (25 s), 75 s are
    # left: the second runs (to 50 s); then 50 s left is not enough: the others are not run.
    assert sandbox.codes == ["print(0)", "print(1)"]
    executions = [o for o in turn.outputs if isinstance(o, ToolExecutionEntry)]
    assert [e.info["status"] for e in executions] == ["ok", "ok", "error", "error"]
    assert "not run: the turn has 50 s of its time budget left (TURN_TIMEOUT_S)" in executions[2].info["code_output"]
    assert turn.outputs[-1].type == "message.output"  # the model still answered (50 s > its 15 s minimum)


def test_a_turn_out_of_time_before_a_model_call_ends_with_a_note() -> None:
    now = [0.0]
    runtime = Runtime(OfflineModel(), SlowSandbox(now, 95.0), turn_timeout_s=200, execution_timeout_s=30,
                      clock=lambda: now[0])
    turn = Turn()
    list(runtime.run(PERSONA, [MessageInputEntry(content="```python\nprint(1)\n```\n```python\nprint(2)\n```")], turn))
    # two executions of 95 s leave 10 s: the answer's model call is not started
    assert [o.type for o in turn.outputs] == ["tool.execution", "tool.execution", "message.output"]
    assert turn.outputs[-1].content == "[stopped: the turn used its time budget (200 s, TURN_TIMEOUT_S); ask again to continue]"
