"""Shared fixtures: moto with the template's table, one sandbox pool per session, handler calls."""

from __future__ import annotations

import functools
import io
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "layers"))

from local.apigw import function_for, invoke, make_event, web  # noqa: E402
from local.aws import create_bucket, create_table, fake_credentials  # noqa: E402

SANDBOX_PYTHON = os.environ.get("SANDBOX_PYTHON", "/opt/agents-sandbox/venv/bin/python")

os.environ.setdefault("AUTH_MODE", "auto")  # tests name workspaces by any bearer token (the default is keys)
os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "ERROR")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "AgentsApiTests")
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "agents-api")


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Any]:
    """One local bubblewrap worker pool for the whole session (a warm 'container')."""
    from agentsapi.adapters.local_sandbox import LocalSandbox, LocalSandboxConfig

    # A 4 MiB session limit (256 MiB by default): the tests that go over it stay small and fast.
    pool = LocalSandbox(LocalSandboxConfig(python=SANDBOX_PYTHON, runner_dir=str(ROOT / "sandbox_image"), workers=1,
                                           timeout_s=10, max_session_bytes=4 * 1024 * 1024, extra_env={"PLANTED_SECRET": "canary-7f3a9d1e",
                                                                    "AWS_SECRET_ACCESS_KEY": "awscanary-52c81b"}))
    pool.warm_up()
    yield pool
    pool.close()


@pytest.fixture(scope="module")
def lambda_rig() -> Iterator[Any]:
    """The sandbox image's handler as Lambda runs it (tests/lambda_mode/harness.py), with the real
    LambdaSandbox adapter and S3 on loopback; one per module that asks for it, stopped after it
    (its moto server shares the process's moto state with the tests that mock AWS in process)."""
    from tests.lambda_mode.harness import Harness, available

    if not available():
        pytest.skip("awslambdaric is not installed beside the sandbox venv (make test installs it)")
    harness = Harness()
    yield harness
    harness.close()


@pytest.fixture
def lambda_harness(lambda_rig: Any) -> Any:
    """The rig, with its bucket: moto's server shares the process's moto state, which the tests
    that mock AWS in process reset between them."""
    lambda_rig.ensure_bucket()
    return lambda_rig


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    from moto import mock_aws

    fake_credentials()
    monkeypatch.setenv("TABLE_NAME", "agents-api-test")
    monkeypatch.setenv("BUCKET_NAME", "agents-api-test")
    with mock_aws():
        # moto starts each test with no boto3 session; a new one parses every service's model again
        # (about 85 ms a client). One botocore session for the process keeps them parsed.
        boto3.DEFAULT_SESSION = _boto3_session()
        create_table("agents-api-test")
        create_bucket("agents-api-test")
        yield


@functools.lru_cache(maxsize=1)
def _boto3_session() -> Any:
    return boto3.Session()


class FakeSandbox:
    """Records the code it is asked to run; answers like a sandbox that printed 'ran'."""

    def __init__(self) -> None:
        self.codes: list[str] = []

    def execute(self, request: Any) -> Any:
        from agentsapi.sandbox.port import ExecutionResult, OutputRun

        self.codes.append(request.code)
        return ExecutionResult(status="ok", outputs=[OutputRun(stream="stdout", text=f"ran {len(self.codes)}\n")])


@pytest.fixture
def fake_sandbox() -> FakeSandbox:
    return FakeSandbox()


@pytest.fixture
def services(aws: None, fake_sandbox: FakeSandbox, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The real services on moto, with a recording sandbox (the real one is tested on its own)."""
    from agentsapi.services import build_services, use_services
    from agentsapi.settings import Settings

    monkeypatch.setenv("MAX_REQUEST_BYTES", "200000")
    built = build_services(Settings(), sandbox=fake_sandbox)
    use_services(built)
    yield built
    use_services(None)


class Api:
    """Calls the real Lambda handlers with API Gateway events, as API Gateway would."""

    def __init__(self, key: str = "test-key") -> None:
        self.key = key

    def __call__(self, method: str, path: str, body: Any = None, query: str = "", key: str | None = None,
                 raw: str | None = None, headers: dict[str, str] | None = None) -> tuple[int, Any, dict[str, str]]:
        all_headers = {"content-type": "application/json", **(headers or {})}
        token = self.key if key is None else key
        if token:
            all_headers["authorization"] = f"Bearer {token}"
        text = raw if raw is not None else (json.dumps(body) if body is not None else None)
        function = function_for(path)
        assert function, path
        event = make_event(method, path, all_headers, query, text)
        response = invoke(function, event)
        payload = response.get("body") or ""
        multi = response.get("multiValueHeaders") or {}
        content_type = (multi.get("Content-Type") or [""])[-1] or (response.get("headers") or {}).get("Content-Type", "")
        parsed = json.loads(payload) if payload and content_type.startswith("application/json") else payload
        merged = {name: values[-1] for name, values in multi.items() if values}
        return response["statusCode"], parsed, {**merged, **(response.get("headers") or {})}


@pytest.fixture
def api(services: Any) -> Api:
    return Api()


@contextmanager
def captured_logs(*loggers: Any, level: str = "INFO") -> Iterator[io.StringIO]:
    """What the functions' powertools Loggers write (JSON lines, as CloudWatch receives them) at ``level``."""
    sink = io.StringIO()
    saved = []
    for logger in loggers:
        handler = logger.registered_handler
        saved.append((logger, handler, handler.stream, logger.log_level))
        handler.stream = sink  # not setStream: it flushes the old stream, which pytest may have closed
        logger.setLevel(level)
    import logging

    names = {logger.name for logger in loggers}
    children = [child for name, child in logging.Logger.manager.loggerDict.items()  # powertools child=True loggers
                if isinstance(child, logging.Logger) and any(name.startswith(f"{n}.") for n in names)]
    child_levels = [(child, child.level) for child in children]
    for child in children:
        child.setLevel(level)
    try:
        yield sink
    finally:
        for logger, handler, stream, old_level in saved:
            handler.stream = stream
            logger.setLevel(old_level)
        for child, child_level in child_levels:
            child.setLevel(child_level)


@contextmanager
def front_end(*functions: str, cors: Any = None, policy: Any = None, gateway: Any = None) -> Iterator[str]:
    """The local HTTP front end (functions/conversations/web.py) over the real handlers, on a free
    port: every function as `make serve` routes them, or only ``functions`` (("conversations",) is
    the streaming function), with ``cors`` (a web.Cors) and ``policy`` (its ConnectionPolicy) if
    given, and ``gateway`` (API Gateway's rules, emulated). Yields its base URL."""
    import threading

    def route(path: str) -> Any:
        function = function_for(path)
        if function is None or (functions and function not in functions):
            return None
        return lambda event: invoke(function, event)

    server = web.FrontendServer(("127.0.0.1", 0), route, cors=cors, policy=policy, gateway=gateway)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
