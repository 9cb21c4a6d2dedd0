"""The real `make serve` process (embedded storage, bubblewrap sandbox, offline model) for SDK tests."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from local.launcher import Server
from tests.e2e.servers import start_server

ROOT = Path(__file__).resolve().parents[2]


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
    """A `make serve` of its own, on a fresh DATA_DIR."""
    data_dir = tempfile.mkdtemp(prefix="agents-e2e-data-")
    env = {"SANDBOX_WORKERS": "2", "SANDBOX_TIMEOUT_S": "10", "DATA_DIR": data_dir, **extra_env}
    try:
        server = Server(env, log_path=log_path)
    except RuntimeError as exc:
        pytest.fail(str(exc))
    yield server.url
    server.stop(timeout_s=15)
    shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture
def client(server_url: str):  # noqa: ANN201 - the SDK's own type
    from mistralai.client import Mistral

    return Mistral(api_key="e2e-key", server_url=server_url)


@pytest.fixture
def serve() -> Iterator[object]:
    """Start a `make serve` of the test's own: ``serve(env, nofile=None, data_dir=None)``; each is
    stopped, and its DATA_DIR removed, after the test."""
    started: list[Server] = []

    def start(env: dict[str, str] | None = None, nofile: int | None = None, data_dir: str | None = None) -> Server:
        server = start_server(env or {}, nofile, data_dir)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop(timeout_s=15)
        shutil.rmtree(server.data_dir, ignore_errors=True)  # type: ignore[attr-defined]
