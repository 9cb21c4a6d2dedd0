"""Long non-streamed turns through the official SDK, unchanged (its default read timeout is 5 s),
behind API Gateway as template.yaml configures it: the conversation routes stream, so a turn
longer than any read timeout or API Gateway's 29 s succeeds; the same turn behind a buffered
integration is a 504, as in AWS. Scaled down: turns of 8 s against a 5 s buffered timeout."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from mistralai.client import Mistral

from agentsapi.errors import ApiError
from agentsapi.http.gateway import GatewayRules, Integration, Route, _path_pattern
from agentsapi.sandbox.port import ExecutionResult, OutputRun
from local.aws import load_template
from tests.conftest import front_end

TURN_S = 8.0  # longer than the SDK's 5 s read timeout


class SlowSandbox:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.ran = threading.Event()

    def execute(self, request: Any) -> ExecutionResult:
        time.sleep(self.seconds)
        self.ran.set()
        return ExecutionResult(status="ok", outputs=[OutputRun(stream="stdout", text="done after a while\n")])


def start(client: Mistral) -> Any:
    return client.beta.conversations.start(model="mistral-medium-latest", tools=[{"type": "code_interpreter"}],
                                           inputs="```python\nimport time\ntime.sleep(8)\n```")


def test_the_template_streams_conversation_routes_and_buffers_the_others() -> None:
    rules = GatewayRules.from_template(load_template())
    for method, path in (("POST", "/v1/conversations"), ("POST", "/v1/conversations/conv_1"),
                         ("POST", "/v1/conversations/conv_1/restart"), ("GET", "/v1/conversations")):
        assert rules.integration(method, path) == Integration(streamed=True, timeout_s=900.0), path
    assert rules.integration("POST", "/v1/agents") == Integration(streamed=False, timeout_s=29.0)
    assert rules.integration("GET", "/v1/files/abc/content") == Integration(streamed=False, timeout_s=29.0)
    assert rules.integration("GET", "/v1/nowhere") is None


def test_a_turn_longer_than_any_read_timeout_succeeds_through_the_sdk_unchanged(services: Any) -> None:
    services.conversations.runtime.sandbox = SlowSandbox(TURN_S)
    with front_end(gateway=GatewayRules.from_template(load_template())) as url:
        started = time.monotonic()
        response = start(Mistral(api_key="long-turn-key", server_url=url))
        took = time.monotonic() - started
    assert took >= TURN_S
    execution = next(o for o in response.outputs if o.type == "tool.execution")
    assert execution.info["code_output"] == "done after a while\n"
    assert response.outputs[-1].type == "message.output"


def test_behind_a_buffered_integration_the_same_turn_is_a_504_and_is_still_stored(services: Any) -> None:
    sandbox = SlowSandbox(TURN_S)
    services.conversations.runtime.sandbox = sandbox
    buffered = GatewayRules([Route(_path_pattern("/v1/conversations"), frozenset({"ANY"}), Integration(False, 5.0)),
                             Route(_path_pattern("/v1/conversations/{proxy+}"), frozenset({"ANY"}),
                                   Integration(False, 5.0))])
    with front_end(gateway=buffered) as url:
        client = Mistral(api_key="long-turn-key", server_url=url, timeout_ms=30_000)
        with pytest.raises(Exception) as refused:
            start(client)
        assert getattr(refused.value, "status_code", None) == 504
        assert "Endpoint request timed out" in str(refused.value)
        assert sandbox.ran.wait(10)  # the function went on, as Lambda's does after API Gateway's timeout
        deadline = time.monotonic() + 10
        while not client.beta.conversations.list() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(client.beta.conversations.list()) == 1


def test_a_model_failing_after_the_status_was_sent_is_the_apis_error_in_the_body(services: Any) -> None:
    """Once a long turn's 200 and headers are out, a failure can only be told in the body: the
    API's error object, which the SDK refuses to read as a conversation: it raises
    ResponseValidationError, whose raw_response is that error."""
    services.conversations.runtime.sandbox = SlowSandbox(3.0)
    provider = services.conversations.runtime.provider
    real_stream, calls = provider.stream, []

    def failing_second_call(request: Any) -> Any:
        calls.append(request)
        if len(calls) % 2 == 0:  # the answer after the execution, in every turn
            raise ApiError("the model provider answered 502 Bad Gateway")
        return real_stream(request)

    provider.stream = failing_second_call
    try:
        with front_end(gateway=GatewayRules.from_template(load_template())) as url:
            import httpx

            response = httpx.post(f"{url}/v1/conversations", headers={"Authorization": "Bearer long-turn-key"},
                                  json={"model": "m", "tools": [{"type": "code_interpreter"}],
                                        "inputs": "```python\nprint(1)\n```"}, timeout=30)
            assert response.status_code == 200  # committed after 2 s: the turn failed after that
            assert response.json() == {"object": "error", "message": "the model provider answered 502 Bad Gateway",
                                       "type": "server_error", "param": None, "code": None}
            from mistralai.client.errors import ResponseValidationError

            with pytest.raises(ResponseValidationError) as raised:  # a 200 whose body is not a conversation
                start(Mistral(api_key="long-turn-key", server_url=url))
            assert raised.value.raw_response.json()["message"] == "the model provider answered 502 Bad Gateway"
            assert Mistral(api_key="long-turn-key", server_url=url).beta.conversations.list() == []  # not stored
    finally:
        provider.stream = real_stream
