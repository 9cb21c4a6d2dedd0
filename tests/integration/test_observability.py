"""What operators see: Powertools metrics per execution and model call, and INFO logs that carry
numbers and outcomes but never code, code output or keys."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_lambda_powertools import Metrics

from agentsapi.sandbox.port import ExecutionResult, OutputRun
from local import apigw
from tests.conftest import captured_logs

CODE_MARKER = "code-marker-1b7e"
OUTPUT_MARKER = "output-marker-93fa"


class ScriptedSandbox:
    """Answers each execution with the next status, printing a marker the logs must not contain."""

    def __init__(self, statuses: list[str]) -> None:
        self.statuses = list(statuses)

    def execute(self, request: Any) -> ExecutionResult:
        return ExecutionResult(status=self.statuses.pop(0), duration_ms=12.5,  # type: ignore[arg-type]
                               outputs=[OutputRun(stream="stdout", text=f"{OUTPUT_MARKER}\n")])


def code_turn(blocks: int) -> str:
    return "\n".join(f"```python\nprint('{CODE_MARKER}')\n```" for _ in range(blocks))


@pytest.fixture
def metric_set() -> Any:
    metrics = Metrics()
    metrics.clear_metrics()
    yield lambda: metrics.serialize_metric_set()
    metrics.clear_metrics()


def test_executions_outcomes_tokens_and_latency_are_metrics(services: Any, api: Any, metric_set: Any) -> None:
    from agentsapi.models.conversations import StartConversationRequest

    services.conversations.runtime.sandbox = ScriptedSandbox(["ok", "timeout", "memory", "error"])
    services.conversations.start("ws", StartConversationRequest.model_validate(
        {"model": "m", "inputs": code_turn(4), "tools": [{"type": "code_interpreter"}]})).buffered()
    emf = metric_set()
    names = {m["Name"] for m in emf["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert emf["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["service"]]  # what the alarms name
    assert emf["CodeExecutions"] == [1.0] * 4
    for outcome in ("Ok", "Timeout", "Memory", "Error"):
        assert emf[f"CodeExecutions{outcome}"] in (1.0, [1.0])
    assert emf["SandboxRunTime"] == [12.5] * 4 and len(emf["CodeExecutionLatency"]) == 4
    assert {"ModelCalls", "PromptTokens", "CompletionTokens", "ModelLatency"} <= names
    assert sum(emf["PromptTokens"]) > 0 and sum(emf["CompletionTokens"]) > 0


def test_info_logs_never_hold_code_output_or_keys(services: Any, api: Any) -> None:
    services.conversations.runtime.sandbox = ScriptedSandbox(["ok"])
    module = apigw.handler_module("conversations")
    with captured_logs(module.logger, level="INFO") as sink:
        status, _, _ = api("POST", "/v1/conversations",
                           {"model": "m", "inputs": code_turn(1), "tools": [{"type": "code_interpreter"}]},
                           key="agk_secret-key-0d3c")
    assert status == 200
    text = sink.getvalue()
    lines = [json.loads(line) for line in text.splitlines()]
    execution = next(line for line in lines if line["message"] == "code execution")
    assert execution["level"] == "INFO" and execution["outcome"] == "ok" and execution["sandbox_ms"] == 12.5
    assert any(line["message"] == "model call" for line in lines)
    for secret in (CODE_MARKER, OUTPUT_MARKER, "agk_secret-key-0d3c"):
        assert secret not in text


def test_a_failing_provider_is_counted_and_logged_without_its_text(services: Any, api: Any, metric_set: Any) -> None:
    from agentsapi.providers.chat_http import ProviderError

    class Down:
        def stream(self, request: Any) -> Any:
            raise ProviderError(f"upstream said: {OUTPUT_MARKER} (the prompt echoed back)", 503)
            yield  # a generator, like the real providers

    from agentsapi.models.conversations import StartConversationRequest

    services.conversations.runtime.provider = Down()
    with pytest.raises(ProviderError):
        services.conversations.start("ws", StartConversationRequest.model_validate({"model": "m", "inputs": "hi"})).buffered()
    assert metric_set()["ModelErrors"] in (1.0, [1.0])
    module = apigw.handler_module("conversations")
    with captured_logs(module.logger, level="INFO") as sink:
        status, body, _ = api("POST", "/v1/conversations", {"model": "m", "inputs": "hello"})
    assert status >= 500 and body["object"] == "error"
    lines = [json.loads(line) for line in sink.getvalue().splitlines()]
    assert {line["message"] for line in lines} >= {"model call failed", "request failed"}
    assert OUTPUT_MARKER not in sink.getvalue()
