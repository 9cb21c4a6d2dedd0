"""The real `make serve` process (moto, bubblewrap sandbox, offline model) for SDK tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    yield from _serve({}, "/tmp/agents-api-e2e-server.log")


@pytest.fixture(scope="session")
def fake_mistral() -> Iterator[object]:
    from tests.fakes.chat_server import FakeChatServer, two_executions_then_answer

    fake = FakeChatServer(brain=two_executions_then_answer)
    yield fake
    fake.close()


@pytest.fixture(scope="session")
def mistral_server_url(fake_mistral: object) -> Iterator[str]:
    """`make serve` configured with MISTRAL_SERVER_URL pointing at a fake Mistral API."""
    yield from _serve({"MISTRAL_SERVER_URL": fake_mistral.url, "MISTRAL_API_KEY": "fake-key",  # type: ignore[attr-defined]
                       "SANDBOX_WORKERS": "1"}, "/tmp/agents-api-e2e-mistral-server.log")


def _serve(extra_env: dict[str, str], log_path: str) -> Iterator[str]:
    port = _free_port()
    env = {**os.environ, "PORT": str(port), "SANDBOX_WORKERS": "2", "SANDBOX_TIMEOUT_S": "10", **extra_env}
    process = subprocess.Popen([sys.executable, "-m", "local.serve", "--port", str(port)], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 120
    lines = []
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if "listening on" in line:
            break
    else:
        process.kill()
        pytest.fail("server did not start:\n" + "".join(lines))
    if process.poll() is not None:
        pytest.fail("server exited:\n" + "".join(lines))
    # Keep draining its log (one line per request) into a file a failing test can point at.
    log = Path(log_path)

    def drain() -> None:
        with log.open("w") as sink:
            for line in process.stdout:  # type: ignore[union-attr]
                sink.write(line)
                sink.flush()

    threading.Thread(target=drain, daemon=True).start()
    yield f"http://127.0.0.1:{port}"
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.fixture
def client(server_url: str):  # noqa: ANN201 - the SDK's own type
    from mistralai.client import Mistral

    return Mistral(api_key="e2e-key", server_url=server_url)
