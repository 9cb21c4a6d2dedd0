"""The sandbox adapters for real: the Lambda invoker against a stubbed boto3 client (each
execution runs as its caller's tenant, never without one), the local invoker without isolation,
and the runner's refusal to run as root."""

from __future__ import annotations

import io
import json
import os
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import botocore.session
import pytest
from botocore.stub import ANY, Stubber

from agentsapi.adapters.lambda_sandbox import LambdaSandbox, tenant_id
from agentsapi.adapters.local_sandbox import LocalSandbox, LocalSandboxConfig
from agentsapi.sandbox.port import ExecutionRequest

OK = {"status": "ok", "outputs": [{"stream": "stdout", "text": "1\n"}]}


def lambda_client(**options: Any) -> Any:
    return boto3.client("lambda", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x", **options)


@contextmanager
def lambda_endpoint(handle: Callable[[BaseHTTPRequestHandler], None], **options: Any) -> Iterator[Any]:
    """A Lambda client talking to a local HTTP endpoint whose POSTs ``handle`` answers: what
    botocore really sends and how it retries, without AWS."""

    class Endpoint(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - stdlib name
            handle(self)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Endpoint)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield lambda_client(endpoint_url=f"http://127.0.0.1:{server.server_address[1]}", **options)
    finally:
        server.shutdown()


def answer(payload: dict[str, Any], function_error: str | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {"StatusCode": 200, "Payload": io.BytesIO(json.dumps(payload).encode())}
    if function_error:
        response["FunctionError"] = function_error
    return response


def lambda_client_answering(payload: dict, function_error: str | None = None, tenant: str = "team-a"
                            ) -> tuple[object, Stubber]:
    client = lambda_client()
    stubber = Stubber(client)
    stubber.add_response("invoke", answer(payload, function_error),
                         {"FunctionName": "sandbox-fn", "InvocationType": "RequestResponse",
                          "Payload": json.dumps({"code": "print(1)", "timeout_s": 5.0}).encode(),
                          "TenantId": tenant_id(tenant)})
    stubber.activate()
    return client, stubber


def test_lambda_invoker_sends_the_protocol_and_validates_the_answer() -> None:
    client, stubber = lambda_client_answering(OK)
    result = LambdaSandbox(client, "sandbox-fn").execute(ExecutionRequest(code="print(1)", timeout_s=5, tenant="team-a"))
    stubber.assert_no_pending_responses()
    assert result.status == "ok" and result.code_output() == "1\n"


def test_lambda_function_error_is_a_clear_crash() -> None:
    client, _ = lambda_client_answering({"errorMessage": "Task timed out"}, function_error="Unhandled")
    result = LambdaSandbox(client, "sandbox-fn").execute(ExecutionRequest(code="print(1)", timeout_s=5, tenant="team-a"))
    assert result.status == "crashed" and "fresh environment" in result.code_output()


def test_lambda_invoke_failure_is_unavailable_not_an_exception() -> None:
    client = lambda_client()
    stubber = Stubber(client)
    stubber.add_client_error("invoke", service_error_code="TooManyRequestsException", http_status_code=429)
    stubber.activate()
    result = LambdaSandbox(client, "sandbox-fn").execute(ExecutionRequest(code="1", tenant="team-a"))
    assert result.status == "unavailable" and "could not be invoked (TooManyRequestsException)" in result.code_output()
    assert "try again" in result.code_output()


# -- tenant isolation: every execution runs as its caller's workspace, or not at all ---------------

def test_each_workspace_is_invoked_as_its_own_tenant_and_the_sandbox_is_not_told() -> None:
    client = lambda_client()
    stubber = Stubber(client)
    for workspace in ("team-a", "team-b", "team-a"):
        stubber.add_response("invoke", answer(OK), {"FunctionName": "sandbox-fn", "InvocationType": "RequestResponse",
                                                    "Payload": json.dumps({"code": "print(1)"}).encode(),
                                                    "TenantId": tenant_id(workspace)})
    stubber.activate()
    sandbox = LambdaSandbox(client, "sandbox-fn")
    for workspace in ("team-a", "team-b", "team-a"):
        assert sandbox.execute(ExecutionRequest(code="print(1)", tenant=workspace)).status == "ok"
    stubber.assert_no_pending_responses()  # the payloads above are exactly the code: no tenant in the event
    assert tenant_id("team-a") != tenant_id("team-b")


@pytest.mark.parametrize("tenant", [None, ""])
def test_an_execution_without_a_tenant_is_refused_and_never_invoked(tenant: str | None) -> None:
    client = lambda_client()
    calls: list[dict[str, Any]] = []
    client.meta.events.register("provide-client-params.lambda.Invoke", lambda params, **_: calls.append(params))
    stubber = Stubber(client)  # no response queued: an invoke would fail the stubber
    stubber.activate()
    result = LambdaSandbox(client, "sandbox-fn").execute(ExecutionRequest(code="print('should not run')", tenant=tenant))
    assert calls == []
    stubber.assert_no_pending_responses()
    assert result.status == "unavailable" and "names no workspace" in result.code_output()
    assert "could not be invoked" not in result.code_output()


WORKSPACE_NAMES = ["team-a", "Team-A", "team-a ", " team-a", "a" * 64, "x" * 300, "é" * 200, "ws/1", "ws:1",
                   "ws\r\nX-Amz-Tenant-Id: team-b", "0" * 32, "", "\u2028", "emoji-\U0001f600"]


def test_tenant_ids_fit_lambdas_rules_for_any_workspace_name_and_never_collide() -> None:
    """A TenantId is 1-256 characters of a small set and travels as a header; a workspace name is
    whatever its key record says. The hash fits either way, and distinct names stay distinct
    (names differing only in case or surrounding spaces too)."""
    shape = botocore.session.get_session().get_service_model("lambda").operation_model("Invoke") \
        .input_shape.members["TenantId"]
    assert shape.serialization == {"location": "header", "name": "X-Amz-Tenant-Id"}
    pattern = re.compile(f"^(?:{shape.metadata['pattern']})$")
    ids = [tenant_id(name) for name in WORKSPACE_NAMES]
    for value in ids:
        assert shape.metadata["min"] <= len(value) <= shape.metadata["max"] and pattern.match(value)
        assert re.fullmatch(r"[0-9a-f]{64}", value)
    assert len(set(ids)) == len(WORKSPACE_NAMES)
    assert tenant_id("team-a") == tenant_id("team-a")  # stable: the same workspace finds its warm environments


def test_the_tenant_travels_as_the_invoke_header_not_in_the_event() -> None:
    """What botocore actually sends, on a local endpoint: X-Amz-Tenant-Id, and a body without it."""
    seen: list[tuple[str | None, bytes]] = []

    def succeed(request: BaseHTTPRequestHandler) -> None:
        seen.append((request.headers.get("X-Amz-Tenant-Id"), request.rfile.read(int(request.headers["content-length"]))))
        body = json.dumps(OK).encode()
        request.send_response(200)
        request.send_header("content-type", "application/json")
        request.send_header("content-length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)

    with lambda_endpoint(succeed) as client:
        result = LambdaSandbox(client, "sandbox-fn").execute(ExecutionRequest(code="print(1)", tenant="team-a"))
    assert result.status == "ok"
    [(header, body)] = seen
    assert header == tenant_id("team-a")
    assert json.loads(body) == {"code": "print(1)"}


CODE = "```python\nprint(1)\n```"


@pytest.fixture
def stubbed_lambda(services: Any) -> Iterator[Stubber]:
    """The real services (moto), running code through the Lambda invoker on a stubbed client."""
    client = lambda_client()
    stubber = Stubber(client)
    stubber.activate()
    services.conversations.runtime.sandbox = LambdaSandbox(client, "sandbox-fn")
    yield stubber
    stubber.deactivate()


def test_every_path_that_runs_code_invokes_as_the_callers_workspace(api: Any, services: Any,
                                                                      stubbed_lambda: Stubber) -> None:
    """The API (start, append), the streaming function and the batch worker all build the request
    in the runtime from the conversation's workspace: two keys, two tenants, in the order called."""
    import httpx

    from local.aws import create_queues
    from local.batch_poller import QueuePoller
    from tests.conftest import front_end

    keys = {"alice-key": services.keys.authenticate("Bearer alice-key").workspace,
            "bob-key": services.keys.authenticate("Bearer bob-key").workspace}
    assert len(set(keys.values())) == 2
    order = ["alice-key", "bob-key", "alice-key", "bob-key", "alice-key"]
    for key in order:
        stubbed_lambda.add_response("invoke", answer(OK), {"FunctionName": "sandbox-fn", "InvocationType": "RequestResponse",
                                                           "Payload": ANY, "TenantId": tenant_id(keys[key])})
    body = {"model": "m", "inputs": CODE, "tools": [{"type": "code_interpreter"}]}

    def ran(response: dict[str, Any]) -> bool:  # a mismatched TenantId would read "unavailable" here
        return [o["info"]["status"] for o in response["outputs"] if o["type"] == "tool.execution"] == ["ok"]

    status, started, _ = api("POST", "/v1/conversations", body, key="alice-key")
    assert status == 200 and ran(started)
    status, other, _ = api("POST", "/v1/conversations", body, key="bob-key")
    assert status == 200 and ran(other)
    status, appended, _ = api("POST", f"/v1/conversations/{started['conversation_id']}", {"inputs": CODE},
                              key="alice-key")
    assert status == 200 and ran(appended)
    url, dlq = create_queues("tenant-test", max_receives=3)
    services.batch.queue.queue_url = url
    status, job, _ = api("POST", "/v1/batch/jobs", {"endpoint": "/v1/conversations", "model": "m", "requests": [
        {"custom_id": "r0", "body": {"inputs": CODE, "tools": [{"type": "code_interpreter"}]}}]}, key="bob-key")
    assert status == 200, job
    QueuePoller.over_sqs(url, dlq).drain()
    with front_end("conversations") as stream_url:  # what the streaming function serves
        response = httpx.post(f"{stream_url}/v1/conversations", json={**body, "stream": True}, timeout=30,
                              headers={"Authorization": "Bearer alice-key", "Accept": "text/event-stream"})
    assert response.status_code == 200 and re.search(r'"status":\s*"ok"', response.text)
    stubbed_lambda.assert_no_pending_responses()


def test_without_bubblewrap_code_is_refused_with_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("agentsapi.adapters.local_sandbox.shutil.which", lambda _: None)
    pool = LocalSandbox(LocalSandboxConfig(python="/nonexistent/python", runner_dir="sandbox_image"))
    result = pool.execute(ExecutionRequest(code="print('should not run')"))
    assert result.status == "unavailable" and "bubblewrap" in result.code_output()
    assert "should not run" not in result.code_output()


@pytest.mark.skipif(os.geteuid() != 0, reason="checks the refusal to run as root")
def test_runner_refuses_to_run_code_as_root(tmp_path: object) -> None:
    from sandbox_runner.protocol import SandboxConfig
    from sandbox_runner.runner import Runner, SandboxStartError

    with pytest.raises(SandboxStartError, match="root"):
        Runner(SandboxConfig(work_root=str(tmp_path)))


def test_sandbox_handler_answers_bad_requests_without_running_anything() -> None:
    from sandbox_runner import handler

    assert handler.handle({"code": 42}, None) == {"status": "bad_request", "message": "code must be a string"}
    assert handler._runner is None  # nothing was started for it


def test_lambda_invoke_is_never_retried_and_waits_past_the_deadline() -> None:
    """boto3's defaults (60 s read timeout, retries) would run the same code twice: one attempt,
    and a read timeout above the execution deadline."""
    from agentsapi.adapters.lambda_sandbox import INVOKE_HEADROOM_S, invoke_config

    calls: list[str] = []

    def overloaded(request: BaseHTTPRequestHandler) -> None:
        calls.append(request.path)
        request.rfile.read(int(request.headers["content-length"]))
        request.send_response(503)
        request.send_header("content-type", "application/json")
        request.end_headers()
        request.wfile.write(b'{"Type": "Service", "message": "busy"}')

    with lambda_endpoint(overloaded, config=invoke_config(30)) as client:
        assert client.meta.config.read_timeout == 30 + INVOKE_HEADROOM_S  # past the sandbox function's own timeout
        result = LambdaSandbox(client, "sandbox-fn").execute(ExecutionRequest(code="print(1)", tenant="team-a"))
    assert result.status == "unavailable" and len(calls) == 1
