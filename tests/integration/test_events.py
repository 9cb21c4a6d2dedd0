"""Every sample event in events/ through its real handler, under moto, as API Gateway delivers it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from local import apigw

EVENTS = Path(__file__).resolve().parents[2] / "events"


def invoke(function: str, name: str, **ids: str) -> dict[str, Any]:
    text = (EVENTS / function / f"{name}.json").read_text()
    for key, value in ids.items():
        text = text.replace("{" + key + "}", value)
    event = json.loads(text)
    if "httpMethod" in event:
        return apigw.invoke(function, event)
    module = apigw.handler_module(function)  # SQS and S3 events: the worker's handlers
    handler = {"sqs_request": "lambda_handler", "sqs_dead_letter": "dlq_handler", "s3_inbox": "inbox_handler",
               "s3_upload": "uploads_handler"}[name]
    return getattr(module, handler)(event, apigw.FakeContext())


def body(response: dict[str, Any]) -> Any:
    return json.loads(response["body"])


def content_type(response: dict[str, Any]) -> str:
    headers = response.get("multiValueHeaders") or {}
    return (headers.get("Content-Type") or [""])[-1] or (response.get("headers") or {}).get("Content-Type", "")


@pytest.fixture
def ids(services: Any) -> dict[str, str]:
    agent = body(invoke("agents", "create_agent"))
    conversation = body(invoke("conversations", "start_conversation", agent_id=agent["id"]))
    return {"agent_id": agent["id"], "conversation_id": conversation["conversation_id"],
            "entry_id": conversation["outputs"][-1]["id"]}


AGENT_EVENTS = ["get_agent", "update_agent", "switch_agent_version", "list_agent_versions", "get_agent_version",
                "put_agent_alias", "list_agent_aliases", "list_agents", "list_agents_pages"]
CONVERSATION_EVENTS = ["start_conversation", "append_conversation", "restart_conversation", "list_conversations",
                       "get_conversation", "get_conversation_history", "get_conversation_messages"]


@pytest.mark.parametrize("name", AGENT_EVENTS)
def test_agent_events(ids: dict[str, str], name: str) -> None:
    response = invoke("agents", name, **ids)
    assert response["statusCode"] == 200, response["body"]
    assert content_type(response) == "application/json"


@pytest.mark.parametrize("name", CONVERSATION_EVENTS)
def test_conversation_events(ids: dict[str, str], name: str) -> None:
    response = invoke("conversations", name, **ids)
    assert response["statusCode"] == 200, response["body"]


def test_start_runs_code_through_the_sandbox_port(ids: dict[str, str], fake_sandbox: Any) -> None:
    response = body(invoke("conversations", "start_conversation", **ids))
    assert fake_sandbox.codes[-1] == "print(6 * 7)"
    assert [o["type"] for o in response["outputs"]] == ["tool.execution", "message.output"]
    assert isinstance(response["outputs"][0]["arguments"], str)


def test_stream_event_is_buffered_sse_in_lambda(ids: dict[str, str]) -> None:
    response = invoke("conversations", "start_conversation_stream", **ids)
    assert response["statusCode"] == 200
    assert content_type(response).startswith("text/event-stream")
    blocks = [b for b in response["body"].split("\n\n") if b]
    assert all(b.startswith("event: ") and "\ndata: {" in b for b in blocks)
    assert blocks[-1].startswith("event: conversation.response.done") and "[DONE]" not in response["body"]


def test_deletes_answer_204_with_no_body(ids: dict[str, str]) -> None:
    invoke("agents", "put_agent_alias", **ids)
    for function, name in (("agents", "delete_agent_alias"), ("conversations", "delete_conversation"),
                           ("agents", "delete_agent")):
        response = invoke(function, name, **ids)
        assert (response["statusCode"], response["body"]) == (204, ""), name
    assert invoke("agents", "get_agent", **ids)["statusCode"] == 404
    assert invoke("conversations", "get_conversation", **ids)["statusCode"] == 404


@pytest.mark.parametrize("name", ["retrieve_file", "list_files", "download_file", "get_file_signed_url", "delete_file"])
def test_file_events(services: Any, name: str) -> None:
    uploaded = invoke("files", "upload_file")
    assert uploaded["statusCode"] == 200, uploaded["body"]
    response = invoke("files", name, file_id=body(uploaded)["id"])
    assert response["statusCode"] == 200, response["body"]


def test_signed_upload_events(services: Any) -> None:
    """The announcement through the files function; S3's notification through the uploads function
    once the bytes are in (under moto a plain put stands for the client's presigned POST)."""
    announced = invoke("files", "create_signed_upload")
    assert announced["statusCode"] == 200, announced["body"]
    upload = body(announced)
    assert upload["max_bytes"] == 200_000_000 and upload["fields"]["key"] == f"uploads/sample-workspace/{upload['id']}"
    assert invoke("files", "retrieve_file", file_id=upload["id"])["statusCode"] == 404  # pending: not a file
    small = services.files.uploads.create("sample-workspace", "rows.csv", "ocr", 10)
    services.files.blobs.put(small["fields"]["key"], b"x" * 9)  # not the announced size: never a file
    assert invoke("files", "s3_upload", ws="sample-workspace", file_id=small["id"]) == {"recorded": 0}
    small = services.files.uploads.create("sample-workspace", "rows.csv", "ocr", 10)
    services.files.blobs.put(small["fields"]["key"], b"x" * 10)
    assert invoke("files", "s3_upload", ws="sample-workspace", file_id=small["id"]) == {"recorded": 1}
    assert body(invoke("files", "retrieve_file", file_id=small["id"]))["bytes"] == 10


def test_batch_events_end_to_end(services: Any) -> None:
    import boto3

    from local.aws import create_queues
    from local.batch_poller import QueuePoller

    url, dlq = create_queues("events-batch")
    services.batch.queue.queue_url = url
    created = body(invoke("batch", "create_batch_job"))
    ids = {"job_id": created["id"]}
    for name in ("list_batch_jobs", "get_batch_job"):
        assert invoke("batch", name, **ids)["statusCode"] == 200, name
    # the worker's own sample events, filled in with this job
    ws = "sample-workspace"  # the authorizer context in the sample API events
    worker = invoke("batch_worker", "sqs_request", ws=ws, **ids)
    assert worker == {"batchItemFailures": []}
    assert body(invoke("batch", "get_batch_job", **ids))["status"] == "SUCCESS"
    # a dead letter of an already-settled request changes nothing
    assert invoke("batch_worker", "sqs_dead_letter", ws=ws, **ids) == {"batchItemFailures": []}
    boto3.client("s3").put_object(Bucket="agents-api-test", Key=f"batch-inbox/{ws}/model/mistral-small-latest/nightly.jsonl",
                                  Body=b'{"custom_id": "n", "body": {"inputs": "hi"}}\n')
    started = invoke("batch_worker", "s3_inbox", ws=ws, bucket="agents-api-test")
    assert len(started["jobs"]) == 1
    assert invoke("batch", "cancel_batch_job", job_id=started["jobs"][0])["statusCode"] == 200
    QueuePoller.over_sqs(url, dlq).drain()


def test_an_api_gateway_event_streams_through_the_web_app(services: Any) -> None:
    """ConversationsFunction: the Lambda Web Adapter replays API Gateway's event as an HTTP
    request to functions/conversations/web.py; so does this test."""
    import httpx

    from tests.conftest import front_end

    event = json.loads((EVENTS / "conversations" / "start_conversation_stream.json").read_text())
    # Over HTTP the workspace is the key's own (no authorizer context): a model conversation, so
    # that no agent of the sample workspace is needed.
    request = {**{k: v for k, v in json.loads(event["body"]).items() if k != "agent_id"},
               "model": "mistral-medium-latest", "tools": [{"type": "code_interpreter"}]}
    with front_end("conversations") as base:
        response = httpx.request(event["httpMethod"], f"{base}{event['path']}", headers=event["headers"],
                                 content=json.dumps(request), timeout=30)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    kinds = [line.removeprefix("event: ") for line in response.text.splitlines() if line.startswith("event: ")]
    assert kinds[0] == "conversation.response.started" and kinds[-1] == "conversation.response.done"
    assert "tool.execution.done" in kinds


def test_mcp_events_run_code_in_a_session_stored_in_dynamodb(services: Any, fake_sandbox: Any) -> None:
    """The MCP server's events through its handler, on the AWS adapters (DynamoDB, S3 under moto):
    a session is a conversation, and a second call appends to it."""
    def mcp(name: str, **arguments: str) -> dict[str, Any]:
        event = json.loads((EVENTS / "conversations" / f"{name}.json").read_text())
        message = json.loads(event["body"])
        message["params"].get("arguments", {}).update(arguments)
        event["body"] = json.dumps(message)
        return apigw.invoke("conversations/mcp_app", event)

    listed = mcp("mcp_tools_list")
    assert listed["statusCode"] == 200, listed["body"]
    assert [tool["name"] for tool in body(listed)["result"]["tools"]] == \
        ["run_python", "upload_file", "list_files", "read_file"]
    first = body(mcp("mcp_run_python"))["result"]
    assert fake_sandbox.codes == ["print(6 * 7)"]
    assert (first["isError"], first["structuredContent"]["output"]) == (False, "ran 1\n")
    session = first["structuredContent"]["session_id"]
    second = body(mcp("mcp_run_python", session_id=session))["result"]
    assert second["structuredContent"]["session_id"] == session
    history = body(invoke("conversations", "get_conversation_history", conversation_id=session))
    assert [e["info"]["code_output"] for e in history["entries"]] == ["ran 1\n", "ran 2\n"]
