"""The streaming function's web app: a client sees the execution start before the code finishes."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from agentsapi.sandbox.port import ExecutionResult, OutputRun
from local.apigw import ROOT
from tests.conftest import front_end


class SlowSandbox:
    def execute(self, request: Any) -> ExecutionResult:
        time.sleep(1.5)
        return ExecutionResult(status="ok", outputs=[OutputRun(stream="stdout", text="done\n")])


@pytest.fixture
def stream_url(services: Any) -> Iterator[str]:
    services.conversations.runtime.sandbox = SlowSandbox()
    with front_end("conversations") as url:  # what the streaming function serves
        yield url


def test_events_arrive_while_the_code_runs(stream_url: str) -> None:
    body = {"model": "m", "stream": True, "tools": [{"type": "code_interpreter"}], "inputs": "```python\nslow()\n```"}
    arrivals: dict[str, float] = {}
    started = time.monotonic()
    with httpx.stream("POST", f"{stream_url}/v1/conversations", json=body, timeout=30,
                      headers={"Authorization": "Bearer k", "Accept": "text/event-stream"}) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("event: "):
                arrivals.setdefault(line.removeprefix("event: "), time.monotonic() - started)
    assert arrivals["tool.execution.done"] - arrivals["tool.execution.started"] >= 1.0
    assert arrivals["conversation.response.done"] >= 1.5


def test_health_check_and_json_routes(stream_url: str) -> None:
    assert httpx.get(f"{stream_url}/healthz").status_code == 200
    response = httpx.post(f"{stream_url}/v1/conversations", headers={"Authorization": "Bearer k"},
                          json={"model": "m", "inputs": "hi"})
    assert response.status_code == 200 and json.loads(response.text)["object"] == "conversation.response"
    assert httpx.get(f"{stream_url}/v1/agents").status_code == 404  # this function serves conversations only


def test_the_conversations_function_streams_under_the_web_adapter() -> None:
    from local.aws import load_template

    function = load_template()["Resources"]["ConversationsFunction"]["Properties"]
    assert {e["Properties"]["ResponseTransferMode"] for e in function["Events"].values()} == {"RESPONSE_STREAM"}
    assert function["Handler"] == "run.sh" and function["CodeUri"] == "functions/conversations/"
    assert function["Environment"]["Variables"]["AWS_LWA_INVOKE_MODE"] == "response_stream"
    assert (ROOT / "functions" / "conversations" / "run.sh").stat().st_mode & 0o111
