"""Model providers for real, against a local server that answers as Mistral's API does."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from agentsapi.providers.chat_http import MistralProvider, OpenAICompatibleProvider, ProviderError
from agentsapi.providers.port import (
    CODE_INTERPRETER_SPEC,
    ModelMessage,
    ModelRequest,
    TextDelta,
    ToolCallDelta,
    UsageReport,
)
from tests.fakes.chat_server import FakeChatServer, Reply, chunk, text_reply, tool_call_reply

REQUEST = ModelRequest(model="mistral-small-latest",
                       messages=[ModelMessage(role="system", content="Be brief."), ModelMessage(role="user", content="hi")],
                       tools=[CODE_INTERPRETER_SPEC],
                       completion_args={"temperature": 0.2, "max_tokens": 100, "random_seed": 7, "tool_choice": "any",
                                        "stop": ["END"]})


@pytest.fixture
def server() -> Iterator[FakeChatServer]:
    fake = FakeChatServer()
    yield fake
    fake.close()


def collect(provider: Any, request: ModelRequest = REQUEST) -> list[Any]:
    return list(provider.stream(request))


def test_mistral_text_stream_and_usage(server: FakeChatServer) -> None:
    server.script.append(text_reply("Hello there!", prompt=11, completion=4))
    events = collect(MistralProvider(server.url, "secret"))
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Hello there!"
    assert events[-1] == UsageReport(11, 4)
    sent = server.requests[0]
    assert sent["model"] == "mistral-small-latest" and sent["stream"] is True
    assert sent["messages"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]
    assert sent["tools"][0]["function"]["name"] == "code_interpreter"
    assert (sent["temperature"], sent["max_tokens"], sent["random_seed"], sent["tool_choice"], sent["stop"]) == \
        (0.2, 100, 7, "any", ["END"])
    assert server.headers[0]["authorization"] == "Bearer secret"


def test_mistral_tool_call_in_one_chunk(server: FakeChatServer) -> None:
    server.script.append(tool_call_reply("code_interpreter", '{"code": "print(1)"}', call_id="abcDEF123"))
    calls = [e for e in collect(MistralProvider(server.url, None)) if isinstance(e, ToolCallDelta)]
    assert calls == [ToolCallDelta(index=0, id="abcDEF123", name="code_interpreter", arguments='{"code": "print(1)"}')]


def test_openai_tool_call_split_over_chunks_and_dialect(server: FakeChatServer) -> None:
    server.script.append(tool_call_reply("code_interpreter", '{"code": "print(123)"}', split=True))
    events = collect(OpenAICompatibleProvider(server.url + "/v1", "k"))
    arguments = "".join(e.arguments for e in events if isinstance(e, ToolCallDelta))
    assert json.loads(arguments) == {"code": "print(123)"}
    sent = server.requests[0]
    assert sent["seed"] == 7 and "random_seed" not in sent and sent["tool_choice"] == "required"
    assert sent["stream_options"] == {"include_usage": True}


def test_history_with_tool_results_is_sent_as_chat_messages(server: FakeChatServer) -> None:
    from agentsapi.domain.runtime import history_to_messages
    from agentsapi.models.entries import MessageInputEntry, ToolExecutionEntry

    history = [MessageInputEntry(content="run it"),
               ToolExecutionEntry(id="tool_exec_1", name="code_interpreter", arguments='{"code": "1"}',
                                  info={"code_output": "1\n"})]
    collect(MistralProvider(server.url, None), ModelRequest("m", history_to_messages(None, history)))
    assert server.requests[0]["messages"][1:] == [
        {"role": "assistant", "content": "", "tool_calls": [{"id": "tool_exec_1", "type": "function",
                                                             "function": {"name": "code_interpreter",
                                                                          "arguments": '{"code": "1"}'}}]},
        {"role": "tool", "content": "1\n", "tool_call_id": "tool_exec_1", "name": "code_interpreter"},
    ]


def test_429_is_retried_after_the_time_the_provider_asks(server: FakeChatServer) -> None:
    waits: list[float] = []
    server.script += [Reply(status=429, headers={"Retry-After": "2"}), Reply(status=503), text_reply("fine")]
    events = collect(MistralProvider(server.url, None, sleep=waits.append, backoff_s=0.01))
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "fine"
    assert len(server.requests) == 3 and waits[0] == 2.0 and 0 <= waits[1] <= 0.02


def test_retries_are_bounded_then_a_clear_error(server: FakeChatServer) -> None:
    server.script += [Reply(status=500)] * 3
    with pytest.raises(ProviderError) as raised:
        collect(MistralProvider(server.url, None, max_retries=2, sleep=lambda _: None))
    assert raised.value.status == 502 and "500" in raised.value.message and len(server.requests) == 3


def test_rate_limit_that_persists_is_429(server: FakeChatServer) -> None:
    server.script += [Reply(status=429, headers={"Retry-After": "0"})] * 2
    with pytest.raises(ProviderError) as raised:
        collect(MistralProvider(server.url, None, max_retries=1, sleep=lambda _: None))
    assert raised.value.status == 429 and raised.value.error_type == "rate_limit_error"


def test_client_errors_are_not_retried(server: FakeChatServer) -> None:
    server.script.append(Reply(status=400, body=json.dumps({"message": "Invalid model: nope"})))
    with pytest.raises(ProviderError) as raised:
        collect(MistralProvider(server.url, None, sleep=lambda _: None))
    assert raised.value.status == 400 and "Invalid model" in raised.value.message and len(server.requests) == 1


def test_a_provider_that_hangs_times_out(server: FakeChatServer) -> None:
    server.script += [Reply(hang_s=3)] * 2
    with pytest.raises(ProviderError) as raised:
        collect(MistralProvider(server.url, None, timeout_s=0.5, max_retries=1, sleep=lambda _: None))
    assert raised.value.status == 504


def test_a_stream_that_stalls_mid_answer_times_out(server: FakeChatServer) -> None:
    server.script.append(Reply(chunks=[chunk({"content": "partial"})] * 2, chunk_delay_s=2))
    with pytest.raises(ProviderError) as raised:
        collect(MistralProvider(server.url, None, timeout_s=0.5))
    assert raised.value.status == 504


def test_unreachable_provider(server: FakeChatServer) -> None:
    url = server.url
    server.close()
    with pytest.raises(ProviderError) as raised:
        collect(MistralProvider(url, None, max_retries=1, sleep=lambda _: None))
    assert raised.value.status == 502


# -- through the API -----------------------------------------------------------------------------

@pytest.fixture
def mistral_api(api: Any, services: Any, server: FakeChatServer) -> Any:
    services.conversations.runtime.provider = MistralProvider(server.url, None, max_retries=0, sleep=lambda _: None)
    return api


def test_provider_failure_is_an_api_error_and_nothing_is_stored(mistral_api: Any, server: FakeChatServer) -> None:
    _, started, _ = mistral_api("POST", "/v1/conversations", {"model": "m", "inputs": "one"})
    conversation = started["conversation_id"]
    server.script.append(Reply(status=503))
    code, body, _ = mistral_api("POST", f"/v1/conversations/{conversation}", {"inputs": "two"})
    assert code == 502 and body["type"] == "server_error" and "503" in body["message"]
    _, history, _ = mistral_api("GET", f"/v1/conversations/{conversation}/history")
    assert len(history["entries"]) == 2


def test_provider_failure_mid_stream_is_a_stream_error_event(mistral_api: Any, server: FakeChatServer) -> None:
    server.script.append(Reply(status=500))
    code, body, _ = mistral_api("POST", "/v1/conversations", {"model": "m", "inputs": "x", "stream": True})
    assert code == 200
    blocks = [b for b in body.split("\n\n") if b]
    assert blocks[0].startswith("event: conversation.response.started")
    assert blocks[-1].startswith("event: conversation.response.error")
    error = json.loads(blocks[-1].split("data: ", 1)[1])
    assert error["code"] == 502 and isinstance(error["message"], str)
    conversation = json.loads(blocks[0].split("data: ", 1)[1])["conversation_id"]
    assert mistral_api("GET", f"/v1/conversations/{conversation}")[0] == 404


def test_code_interpreter_twice_then_answer_with_usage(mistral_api: Any, server: FakeChatServer,
                                                        fake_sandbox: Any) -> None:
    from tests.fakes.chat_server import two_executions_then_answer

    server.brain = two_executions_then_answer
    code, body, _ = mistral_api("POST", "/v1/conversations", {"model": "mistral-small-latest", "inputs": "compute",
                                                              "tools": [{"type": "code_interpreter"}],
                                                              "completion_args": {"temperature": 0.1}})
    assert code == 200, body
    assert [o["type"] for o in body["outputs"]] == ["tool.execution", "tool.execution", "message.output"]
    assert fake_sandbox.codes == ["x = 21\nprint(x)", "print(21 * 2)"]
    assert body["outputs"][-1]["content"] == "First ran 1, then ran 2."
    usage = body["usage"]
    assert (usage["prompt_tokens"], usage["completion_tokens"]) == (30 + 30 + 20, 12 + 12 + 5)
    assert usage["connectors"] == {"code_interpreter": 2}
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] + usage["connector_tokens"]
    assert all(r["temperature"] == 0.1 for r in server.requests)


def test_openai_compatible_text_answer_with_usage(server: FakeChatServer) -> None:
    server.script.append(text_reply("Bonjour", prompt=3, completion=2))
    events = collect(OpenAICompatibleProvider(server.url + "/v1", None),
                     ModelRequest("llama3.1:8b", [ModelMessage(role="user", content="hi")],
                                  completion_args={"top_p": 0.9, "response_format": {"type": "json_object"}}))
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Bonjour" and events[-1] == UsageReport(3, 2)
    sent = server.requests[0]
    assert sent["model"] == "llama3.1:8b" and sent["top_p"] == 0.9 and sent["response_format"] == {"type": "json_object"}
    assert "tools" not in sent and "tool_choice" not in sent


@pytest.mark.parametrize(("bad_line", "expected"), [
    ('{"object": "error", "message": "model overloaded"}', "overloaded"),
    ("this is not json", "malformed"),
])
def test_an_error_or_garbage_mid_stream_is_a_provider_error(server: FakeChatServer, bad_line: str,
                                                            expected: str) -> None:
    reply = text_reply("partial answer")
    reply.raw_after = {1: bad_line}  # after the first content chunk
    server.script.append(reply)
    with pytest.raises(ProviderError) as raised:
        collect(MistralProvider(server.url, None))
    assert raised.value.status == 502 and expected in raised.value.message


def test_null_content_and_comment_lines_are_skipped(server: FakeChatServer) -> None:
    reply = text_reply("fine")
    reply.raw_after = {0: '{"choices": [{"index": 0, "delta": {"content": null}}]}'}
    server.script.append(reply)
    events = collect(MistralProvider(server.url, None))
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "fine"


@pytest.mark.parametrize("stored,key", [("sk-plain\n", "sk-plain"), (b"sk-binary", "sk-binary"),
                                        ('{"api_key": "sk-json"}', "sk-json"), ('{"anything": "sk-only"}', "sk-only")])
def test_secret_forms(stored: str | bytes, key: str) -> None:
    from agentsapi.services import api_key_from_secret

    assert api_key_from_secret(stored) == key


def test_ambiguous_json_secret_is_refused_without_showing_values() -> None:
    from agentsapi.services import api_key_from_secret

    with pytest.raises(ValueError, match="fields: \\['a', 'b'\\]") as refused:
        api_key_from_secret('{"a": "sk-one", "b": "sk-two"}')
    assert "sk-one" not in str(refused.value)


@pytest.mark.parametrize("where", ["secretsmanager", "ssm"])
def test_provider_key_is_read_from_secrets_manager_or_ssm(aws: None, server: FakeChatServer, where: str,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A deployed stack names the key's secret (ModelApiKeySecret); the key itself is in no env var."""
    import boto3

    from agentsapi.services import build_provider
    from agentsapi.settings import Settings

    if where == "secretsmanager":
        reference = boto3.client("secretsmanager").create_secret(Name="agents/mistral", SecretString="sk-from-sm")["ARN"]
        expected = "sk-from-sm"
    else:
        boto3.client("ssm").put_parameter(Name="/agents/mistral", Value="sk-from-ssm", Type="SecureString")
        reference, expected = "/agents/mistral", "sk-from-ssm"
    server.brain = lambda body: text_reply("ok")
    settings = Settings(MODEL_PROVIDER="mistral", MISTRAL_SERVER_URL=server.url, MODEL_API_KEY_SECRET=reference)
    collect(build_provider(settings))
    assert server.headers[-1]["authorization"] == f"Bearer {expected}"
