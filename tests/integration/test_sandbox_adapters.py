"""The sandbox adapters for real: the Lambda invoker against a stubbed boto3 client, the local
invoker without isolation, and the runner's refusal to run as root."""

from __future__ import annotations

import io
import json
import os

import boto3
import pytest
from botocore.stub import Stubber

from agentsapi.adapters.lambda_sandbox import LambdaSandbox
from agentsapi.adapters.local_sandbox import LocalSandbox, LocalSandboxConfig
from agentsapi.sandbox.port import ExecutionRequest


def lambda_client_answering(payload: dict, function_error: str | None = None) -> tuple[object, Stubber]:
    client = boto3.client("lambda", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    stubber = Stubber(client)
    response = {"StatusCode": 200, "Payload": io.BytesIO(json.dumps(payload).encode())}
    if function_error:
        response["FunctionError"] = function_error
    stubber.add_response("invoke", response, {"FunctionName": "sandbox-fn", "InvocationType": "RequestResponse",
                                              "Payload": json.dumps({"code": "print(1)", "timeout_s": 5.0}).encode()})
    stubber.activate()
    return client, stubber


def test_lambda_invoker_sends_the_protocol_and_validates_the_answer() -> None:
    client, stubber = lambda_client_answering({"status": "ok", "outputs": [{"stream": "stdout", "text": "1\n"}]})
    result = LambdaSandbox(client, "sandbox-fn").execute(ExecutionRequest(code="print(1)", timeout_s=5))
    stubber.assert_no_pending_responses()
    assert result.status == "ok" and result.code_output() == "1\n"


def test_lambda_function_error_is_a_clear_crash() -> None:
    client, _ = lambda_client_answering({"errorMessage": "Task timed out"}, function_error="Unhandled")
    result = LambdaSandbox(client, "sandbox-fn").execute(ExecutionRequest(code="print(1)", timeout_s=5))
    assert result.status == "crashed" and "fresh environment" in result.code_output()


def test_lambda_invoke_failure_is_unavailable_not_an_exception() -> None:
    client = boto3.client("lambda", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    stubber = Stubber(client)
    stubber.add_client_error("invoke", service_error_code="TooManyRequestsException", http_status_code=429)
    stubber.activate()
    result = LambdaSandbox(client, "sandbox-fn").execute(ExecutionRequest(code="1"))
    assert result.status == "unavailable" and "could not be invoked" in result.code_output()


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
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from agentsapi.adapters.lambda_sandbox import invoke_config

    calls: list[str] = []

    class Overloaded(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - stdlib name
            calls.append(self.path)
            self.rfile.read(int(self.headers["content-length"]))
            self.send_response(503)
            self.send_header("content-type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"Type": "Service", "message": "busy"}')

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Overloaded)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        client = boto3.client("lambda", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x",
                              endpoint_url=f"http://127.0.0.1:{server.server_address[1]}", config=invoke_config(30))
        assert client.meta.config.read_timeout == 90
        result = LambdaSandbox(client, "sandbox-fn").execute(ExecutionRequest(code="print(1)"))
    finally:
        server.shutdown()
    assert result.status == "unavailable" and len(calls) == 1
