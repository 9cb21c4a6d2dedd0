"""A sandbox with no worker free in time raises ServiceUnavailable: every way a turn runs answers
503 with Retry-After (or, mid-stream, a conversation.response.error), the turn is not stored, and
the batch worker retries the request instead of failing it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from agentsapi.errors import ServiceUnavailable
from agentsapi.sandbox.port import ExecutionRequest, ExecutionResult, OutputRun
from local.aws import create_queues
from local.batch_poller import QueuePoller
from tests.conftest import front_end
from tests.integration.test_internal_fields import snapshot

CODE = "```python\nprint(1)\n```"
START = {"model": "m", "tools": [{"type": "code_interpreter"}], "inputs": CODE}


class BusySandbox:
    """Busy for the first ``busy_for`` executions (every one, by default), then runs them."""

    def __init__(self, busy_for: int = 1_000_000) -> None:
        self.busy_for = busy_for
        self.calls = 0

    def execute(self, request: ExecutionRequest) -> ExecutionResult:
        self.calls += 1
        if self.calls <= self.busy_for:
            raise ServiceUnavailable("every sandbox worker is busy; try again shortly", retry_after_s=7)
        return ExecutionResult(status="ok", outputs=[OutputRun(stream="stdout", text="1\n")])


@pytest.fixture
def busy(services: Any) -> Iterator[BusySandbox]:
    sandbox = BusySandbox()
    services.conversations.runtime.sandbox = sandbox
    yield sandbox


def assert_503(code: int, body: Any, headers: dict[str, str]) -> None:
    assert code == 503 and headers["Retry-After"] == "7"
    assert body == {"object": "error", "message": "every sandbox worker is busy; try again shortly",
                    "type": "service_unavailable", "param": None, "code": None}


def test_start_append_and_restart_answer_503_and_store_nothing(api: Any, services: Any, busy: BusySandbox) -> None:
    busy.busy_for = 0
    code, started, _ = api("POST", "/v1/conversations", START)
    assert code == 200
    conversation, entry = started["conversation_id"], started["outputs"][-1]["id"]
    busy.busy_for, busy.calls = 1_000_000, 0
    before = snapshot()
    assert_503(*api("POST", "/v1/conversations", START))
    assert_503(*api("POST", f"/v1/conversations/{conversation}", {"inputs": CODE}))
    assert_503(*api("POST", f"/v1/conversations/{conversation}/restart", {"from_entry_id": entry, "inputs": CODE}))
    assert busy.calls == 3 and snapshot() == before


def test_mid_stream_it_is_a_response_error_event_and_nothing_is_stored(services: Any, busy: BusySandbox) -> None:
    before = snapshot()
    with front_end("conversations") as url:
        response = httpx.post(f"{url}/v1/conversations", json={**START, "stream": True}, timeout=30,
                              headers={"Authorization": "Bearer test-key"})
    assert response.status_code == 200  # the stream had started: the error is its last event
    events = [json.loads(line[6:]) for line in response.text.splitlines() if line.startswith("data: ")]
    assert [e["type"] for e in events][0] == "conversation.response.started"
    assert events[-1]["type"] == "conversation.response.error"
    assert events[-1]["code"] == 503 and "busy" in events[-1]["message"]
    assert not any(e["type"] == "conversation.response.done" for e in events)
    assert snapshot() == before


def test_the_buffered_stream_through_api_gateway_ends_with_the_error_too(api: Any, busy: BusySandbox) -> None:
    code, body, _ = api("POST", "/v1/conversations", {**START, "stream": True})
    assert code == 200 and body.rstrip().splitlines()[-2] == "event: conversation.response.error"
    assert api("GET", "/v1/conversations")[1] == []


@pytest.fixture
def poller(services: Any) -> QueuePoller:
    url, dlq = create_queues("busy-test", max_receives=3)
    services.batch.queue.queue_url = url
    services.batch.max_receives = 3
    return QueuePoller.over_sqs(url, dlq)


def test_the_batch_worker_retries_a_busy_sandbox_then_succeeds(api: Any, services: Any, busy: BusySandbox,
                                                               poller: QueuePoller) -> None:
    busy.busy_for = 1
    code, job, _ = api("POST", "/v1/batch/jobs", {"endpoint": "/v1/conversations", "model": "m",
                                                  "requests": [{"custom_id": "r", "body": {"inputs": CODE,
                                                                "tools": START["tools"]}}]})
    assert code == 200
    ws = services.keys.authenticate("Bearer test-key").workspace
    with pytest.raises(ServiceUnavailable):  # the message goes back to the queue
        services.batch.process(ws, job["id"], 0, receive_count=1)
    assert services.batch.store.get_item(ws, job["id"], 0).state == "pending"
    assert api("GET", "/v1/conversations")[1] == []  # the busy attempt stored nothing
    poller.drain()
    _, done, _ = api("GET", f"/v1/batch/jobs/{job['id']}")
    assert (done["status"], done["succeeded_requests"], busy.calls) == ("SUCCESS", 1, 2)
    assert len(api("GET", "/v1/conversations")[1]) == 1


def test_a_sandbox_busy_on_every_try_fails_the_request_after_the_bounded_tries(api: Any, busy: BusySandbox,
                                                                               poller: QueuePoller) -> None:
    code, job, _ = api("POST", "/v1/batch/jobs", {"endpoint": "/v1/conversations", "model": "m",
                                                  "requests": [{"custom_id": "r", "body": {"inputs": CODE,
                                                                "tools": START["tools"]}}]})
    assert code == 200
    poller.drain()
    _, done, _ = api("GET", f"/v1/batch/jobs/{job['id']}")
    assert (done["status"], done["failed_requests"], busy.calls) == ("FAILED", 1, 3)
    assert api("GET", "/v1/conversations")[1] == []
