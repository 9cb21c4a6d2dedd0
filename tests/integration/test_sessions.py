"""Interpreter sessions: state survives between executions, even on a new sandbox container."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from agentsapi.adapters.local_sandbox import LocalSandbox, LocalSandboxConfig
from tests.conftest import ROOT, SANDBOX_PYTHON


def fresh_pool() -> LocalSandbox:
    """A new worker: a cold container that has never seen this conversation."""
    return LocalSandbox(LocalSandboxConfig(python=SANDBOX_PYTHON, runner_dir=str(ROOT / "sandbox_image"), workers=1))


@pytest.fixture
def real_sandbox(services: Any, sandbox: Any) -> Iterator[Any]:
    services.conversations.runtime.sandbox = sandbox
    yield services
    services.conversations.runtime.sandbox = None


def run(api: Any, conversation: str | None, code: str, **extra: Any) -> dict[str, Any]:
    body = {"inputs": f"```python\n{code}\n```", **extra}
    if conversation is None:
        body.update(model="m", tools=[{"type": "code_interpreter"}])
        code_, response, _ = api("POST", "/v1/conversations", body)
    else:
        code_, response, _ = api("POST", f"/v1/conversations/{conversation}", body)
    assert code_ == 200, response
    return response


def output(response: dict[str, Any]) -> str:
    return next(o for o in response["outputs"] if o["type"] == "tool.execution")["info"]["code_output"]


def test_variables_functions_imports_and_files_survive_a_new_container(api: Any, real_sandbox: Any) -> None:
    first = run(api, None, "import numpy as np\nx = np.arange(4)\ndef double(a):\n    return a * 2\n"
                           "open('saved.txt', 'w').write('kept')\nprint('defined')")
    assert output(first) == "defined\n"
    other = fresh_pool()
    real_sandbox.conversations.runtime.sandbox = other
    try:
        second = run(api, first["conversation_id"], "print(double(x).tolist(), np.pi > 3, open('saved.txt').read())")
    finally:
        other.close()
    assert output(second) == "[0, 2, 4, 6] True kept\n"


def test_what_cannot_be_carried_is_named_and_the_rest_survives(api: Any, real_sandbox: Any) -> None:
    first = run(api, None, "import socket\nsock = socket.socket(socket.AF_UNIX)\ngen = (i for i in range(3))\n"
                           "big = bytes(5 * 1024 * 1024)\nkeep = 42")
    notes = output(first)
    assert "gen (generator" in notes and "big (value" in notes and "sock (socket" in notes
    second = run(api, first["conversation_id"], "print(keep, 'gen' in globals(), 'big' in globals())")
    assert output(second) == "42 False False\n"


def test_restart_resumes_the_state_at_that_entry_and_restarts_do_not_share(api: Any, real_sandbox: Any) -> None:
    first = run(api, None, "x = 1")
    conversation = first["conversation_id"]
    run(api, conversation, "x = 2")
    at_first = first["outputs"][-1]["id"]  # the answer after x = 1
    restarted = []
    for code in ("x = x + 100\nprint(x)", "print(x)"):
        code_, response, _ = api("POST", f"/v1/conversations/{conversation}/restart",
                                 {"from_entry_id": at_first, "inputs": f"```python\n{code}\n```"})
        assert code_ == 200
        restarted.append(output(response))
    assert restarted == ["101\n", "1\n"]


def test_state_is_deleted_with_the_conversation(api: Any, real_sandbox: Any) -> None:
    import boto3

    first = run(api, None, "x = 1")
    s3 = boto3.client("s3")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="agents-api-test").get("Contents", [])]
    assert any(k.startswith("sessions/") and first["conversation_id"] in k for k in keys)
    api("DELETE", f"/v1/conversations/{first['conversation_id']}")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="agents-api-test").get("Contents", [])]
    assert not any(k.startswith("sessions/") for k in keys)


def test_expired_state_starts_fresh_and_says_so(api: Any, real_sandbox: Any) -> None:
    first = run(api, None, "x = 1")
    real_sandbox.conversations.session_ttl_s = 0
    second = run(api, first["conversation_id"], "print('x' in globals())")
    assert "False" in output(second) and "expired" in output(second)
