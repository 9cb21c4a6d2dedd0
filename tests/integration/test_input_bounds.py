"""Bounded input: names in bytes, entries per request and per conversation, JSON nesting. Each is
refused with a 4xx naming the field before anything is stored or reaches the sandbox."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from local.aws import create_queues
from tests.integration.test_files import upload
from tests.integration.test_internal_fields import snapshot

LONG_NAME = "é" * 200  # 200 characters, 400 bytes of UTF-8
CODE_TOOL = [{"type": "code_interpreter"}]


def nested(depth: int) -> Any:
    """A JSON value of ``depth`` levels of containers (alternating objects and lists)."""
    value: Any = "leaf"
    for level in range(depth):
        value = {"a": value} if level % 2 else [value]
    return value


def detail_locs(body: dict[str, Any]) -> list[list[Any]]:
    return [d["loc"] for d in body["message"]["detail"]]


@pytest.fixture
def conversation(api: Any) -> dict[str, str]:
    code, started, _ = api("POST", "/v1/conversations", {"model": "m", "tools": CODE_TOOL, "inputs": "hi"})
    assert code == 200
    return {"id": started["conversation_id"], "entry": started["outputs"][-1]["id"]}


# -- names --------------------------------------------------------------------------------------------

def test_an_upload_name_over_255_bytes_is_refused(api: Any) -> None:
    before = snapshot()
    code, body = upload(b"x", filename=LONG_NAME)
    assert code == 400 and body["param"] == "file" and "400 bytes" in body["message"]
    assert snapshot() == before
    code, record = upload(b"x", filename="é" * 127 + ".t")  # 256 bytes
    assert code == 400
    code, record = upload(b"x", filename="é" * 126 + ".t")  # 254 bytes
    assert code == 200 and record["filename"] == "é" * 126 + ".t"


def test_a_tool_file_name_over_255_bytes_never_reaches_the_sandbox(api: Any, fake_sandbox: Any) -> None:
    _, record = upload(b"1,2\n", filename="data.csv")
    before = snapshot()
    chunk = {"type": "tool_file", "tool": "code_interpreter", "file_id": record["id"], "file_name": LONG_NAME}
    code, body, _ = api("POST", "/v1/conversations", {"model": "m", "tools": CODE_TOOL, "inputs": [
        {"role": "user", "content": [{"type": "text", "text": "```python\nprint(1)\n```"}, chunk]}]})
    assert code == 422 and any(loc[-1] == "file_name" for loc in detail_locs(body))
    assert "400 bytes" in json.dumps(body)
    assert snapshot() == before and fake_sandbox.codes == []


def test_stored_names_that_are_unusable_are_not_handed_to_the_code(api: Any, services: Any) -> None:
    """A file stored before names were bounded stays downloadable but never reaches a cell."""
    from agentsapi.sandbox.port import ExecutionResult

    _, record = upload(b"1,2\n", filename="data.csv")
    ws = services.keys.authenticate("Bearer test-key").workspace
    legacy = services.store.get_file(ws, record["id"]).model_copy(update={"filename": LONG_NAME})
    services.store.delete_file(ws, record["id"])
    services.store.put_file(ws, legacy)
    seen: list[Any] = []
    services.conversations.runtime.sandbox = type("S", (), {"execute": lambda self, r: seen.append(r) or
                                                            ExecutionResult(status="ok")})()
    code, response, _ = api("POST", "/v1/conversations", {"model": "m", "tools": CODE_TOOL, "inputs": [
        {"role": "user", "content": [{"type": "text", "text": "```python\nprint(1)\n```"},
                                     {"type": "file", "file_id": record["id"]}]}]})
    assert code == 200 and seen[0].files == []
    assert "not handed to the code" in response["outputs"][0]["info"]["code_output"]


@pytest.mark.parametrize(("written", "saved"), [
    ("line\nbreak.csv", "output_1.csv"), ("bad\udcff.png", "output_1.png"), ("x" * 300, "output_1"),
])
def test_output_files_with_unusable_names_are_renamed_with_a_note(api: Any, services: Any, written: str,
                                                                 saved: str) -> None:
    import base64

    from agentsapi.sandbox.port import ExecutionResult, SandboxFile

    output = SandboxFile(name=written, content_b64=base64.b64encode(b"data").decode(), size=4)
    services.conversations.runtime.sandbox = type("S", (), {"execute": lambda self, r: ExecutionResult(
        status="ok", files=[output])})()
    code, response, _ = api("POST", "/v1/conversations", {"model": "m", "tools": CODE_TOOL,
                                                          "inputs": "```python\nwrite()\n```"})
    assert code == 200, response
    info = response["outputs"][0]["info"]
    assert info["files"][0]["file_name"] == saved and f"saved as '{saved}'" in info["code_output"]
    _, files, _ = api("GET", "/v1/files")
    assert [f["filename"] for f in files["data"]] == [saved]


# -- entries ------------------------------------------------------------------------------------------

def test_more_input_entries_than_allowed_per_request_is_422(api: Any, conversation: dict[str, str],
                                                            fake_sandbox: Any) -> None:
    before = snapshot()
    many = [{"role": "user", "content": "x"}] * 201
    for path, body in [("/v1/conversations", {"model": "m", "inputs": many}),
                       (f"/v1/conversations/{conversation['id']}", {"inputs": many}),
                       (f"/v1/conversations/{conversation['id']}/restart",
                        {"from_entry_id": conversation["entry"], "inputs": many})]:
        code, answer, _ = api("POST", path, body)
        assert code == 422, path
        assert detail_locs(answer) == [["body", "inputs"]] and "at most 200" in json.dumps(answer)
    assert snapshot() == before
    assert api("POST", f"/v1/conversations/{conversation['id']}", {"inputs": many[:200]})[0] == 200


def test_a_conversation_holds_a_bounded_number_of_entries(api: Any, services: Any, conversation: dict[str, str]) -> None:
    services.conversations.max_entries = 6  # the conversation holds 2 (input, answer)
    assert api("POST", f"/v1/conversations/{conversation['id']}", {"inputs": "hi"})[0] == 200  # 4
    before = snapshot()
    code, body, _ = api("POST", f"/v1/conversations/{conversation['id']}",
                        {"inputs": [{"role": "user", "content": "x"}] * 3})  # would start at 7
    assert code == 400 and body["param"] == "inputs" and "MAX_CONVERSATION_ENTRIES" in body["message"]
    _, history, _ = api("GET", f"/v1/conversations/{conversation['id']}/history")
    code, body, _ = api("POST", f"/v1/conversations/{conversation['id']}/restart",
                        {"from_entry_id": history["entries"][-1]["id"], "inputs": [{"role": "user", "content": "x"}] * 3})
    assert code == 400 and body["param"] == "inputs"
    code, body, _ = api("POST", "/v1/conversations", {"model": "m", "inputs": [{"role": "user", "content": "x"}] * 7})
    assert code == 400 and body["param"] == "inputs"
    assert snapshot() == before
    assert api("POST", f"/v1/conversations/{conversation['id']}", {"inputs": "one more"})[0] == 200  # 5 + answer


def test_the_limits_are_settings(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    from agentsapi.services import build_services
    from agentsapi.settings import Settings

    defaults = Settings()
    assert (defaults.max_json_depth, defaults.max_input_entries, defaults.max_conversation_entries) == (64, 200, 5000)
    monkeypatch.setenv("MAX_INPUT_ENTRIES", "7")
    monkeypatch.setenv("MAX_CONVERSATION_ENTRIES", "70")
    monkeypatch.setenv("MAX_JSON_DEPTH", "20")
    built = build_services(Settings(), sandbox=object())  # type: ignore[arg-type]
    assert (built.conversations.max_input_entries, built.conversations.max_entries) == (7, 70)
    assert (built.settings.max_json_depth, built.batch.max_json_depth) == (20, 20)


# -- nesting ------------------------------------------------------------------------------------------

def _agent(**extra: Any) -> dict[str, Any]:
    return {"model": "m", "name": "n", **extra}


DEEP_BODIES = [
    ("POST", "/v1/agents", _agent(metadata={"k": nested(250)}), "metadata"),
    ("POST", "/v1/agents", _agent(tools=[{"type": "function", "function": {"name": "f", "parameters": nested(250)}}]),
     "tools"),
    ("POST", "/v1/agents", _agent(completion_args={"response_format": {"type": "json_schema", "json_schema": {
        "name": "s", "schema": nested(250)}}}), "completion_args"),
    ("POST", "/v1/conversations", {"model": "m", "inputs": "hi", "metadata": {"k": nested(250)}}, "metadata"),
    ("POST", "/v1/conversations", {"model": "m", "inputs": [
        {"type": "function.call", "tool_call_id": "c", "name": "f", "arguments": nested(250)}]}, "inputs"),
    ("POST", "/v1/batch/jobs", {"endpoint": "/v1/conversations", "model": "m", "requests": [
        {"body": {"inputs": "hi", "metadata": nested(250)}}]}, "requests"),
]


@pytest.mark.parametrize(("method", "path", "body", "field"), DEEP_BODIES)
def test_json_nested_too_deep_is_422_before_anything_is_stored(api: Any, method: str, path: str, body: Any,
                                                               field: str) -> None:
    before = snapshot()
    code, answer, _ = api(method, path, body)
    assert code == 422 and answer["type"] == "invalid_request_error"
    (loc,) = detail_locs(answer)
    assert loc[:2] == ["body", field] and "deeper than 64" in json.dumps(answer)
    assert snapshot() == before
    for listing in ("/v1/agents", "/v1/conversations", "/v1/batch/jobs"):
        assert api("GET", listing)[0] == 200


def test_the_depth_limit_is_exact_and_deeper_than_python_can_parse_is_422_too(api: Any) -> None:
    # The body object is level 1, so metadata's value may hold 62 more levels.
    code, agent, _ = api("POST", "/v1/agents", _agent(metadata={"k": nested(62)}))
    assert code == 200 and api("GET", f"/v1/agents/{agent['id']}")[0] == 200
    assert api("POST", "/v1/agents", _agent(metadata={"k": nested(63)}))[0] == 422
    code, answer, _ = api("POST", "/v1/conversations", raw='{"model": "m", "inputs": ' + "[" * 100_000)
    assert code == 422 and detail_locs(answer) == [["body"]]


def test_an_unpaired_surrogate_escape_is_422_not_500(api: Any) -> None:
    before = snapshot()
    code, answer, _ = api("POST", "/v1/conversations", raw='{"model": "m", "inputs": "a\\ud800b"}')
    assert code == 422 and "surrogate" in json.dumps(answer)
    assert snapshot() == before
    assert api("POST", "/v1/conversations", raw='{"model": "m", "inputs": "pair \\ud83d\\ude00"}')[0] == 200


def test_a_deep_jsonl_line_fails_alone_and_the_job_still_finishes(api: Any, services: Any) -> None:
    from local.batch_poller import QueuePoller

    url, dlq = create_queues("bounds-test")
    services.batch.queue.queue_url = url
    lines = [{"custom_id": "deep", "body": {"inputs": "hi", "metadata": nested(250)}},
             {"custom_id": "fine", "body": {"inputs": "hi"}}]
    content = "".join(json.dumps(line) + "\n" for line in lines).encode() + b"[" * 5000 + b"\n"
    _, record = upload(content, filename="requests.jsonl", purpose="batch", content_type="application/jsonl")
    code, job, _ = api("POST", "/v1/batch/jobs", {"endpoint": "/v1/conversations", "model": "m",
                                                  "input_files": [record["id"]]})
    assert code == 200 and (job["total_requests"], job["failed_requests"]) == (3, 2)
    QueuePoller.over_sqs(url, dlq).drain()
    _, done, _ = api("GET", f"/v1/batch/jobs/{job['id']}")
    assert done["status"] == "SUCCESS" and done["succeeded_requests"] == 1
    assert api("GET", "/v1/batch/jobs")[0] == 200
    s3 = boto3.client("s3")
    assert s3.list_objects_v2(Bucket="agents-api-test")["KeyCount"] >= 3  # input, output and error files
