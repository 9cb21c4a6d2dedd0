"""QueuePoller.drain, which tests and benchmarks use to run a batch to its end, must not stop while
a retried message is still to run, even when the queue's count reads zero for a moment."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

import local.batch_poller as batch_poller
from agentsapi.jobqueue import Message
from local.batch_poller import QueuePoller


class RetryingQueue:
    """One message. Its count reads zero once, at the instant its retry delay ends, as SQS's and
    moto's do: they read the visible and the in-flight messages one after the other."""

    arn = "arn:aws:sqs:us-east-1:000000000000:drain-test"

    def __init__(self) -> None:
        self.state = "visible"
        self.deliveries = 0

    def receive(self, max_messages: int = 10, wait_s: float = 0) -> list[Message]:
        if self.state != "visible":
            return []
        self.state, self.deliveries = "in flight", self.deliveries + 1
        return [Message(id="m", receipt=f"r{self.deliveries}", body="{}", receive_count=self.deliveries, sent_at=0)]

    def retry_later(self, receipt: str, delay_s: float) -> None:
        self.state = "waiting"

    def delete(self, receipt: str) -> None:
        self.state = "deleted"

    def pending(self) -> int:
        if self.state == "waiting":
            self.state = "visible"  # turned visible between the two reads: counted in neither
            return 0
        return 0 if self.state == "deleted" else 1


class EmptyQueue(RetryingQueue):
    def __init__(self) -> None:
        super().__init__()
        self.state = "deleted"


def test_drain_runs_a_retried_message_whose_count_read_zero_for_a_moment(monkeypatch: pytest.MonkeyPatch) -> None:
    handled: list[int] = []

    def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        record = event["Records"][0]
        handled.append(int(record["attributes"]["ApproximateReceiveCount"]))
        failed = len(handled) == 1  # the first try fails: the message goes back for a retry
        return {"batchItemFailures": [{"itemIdentifier": record["messageId"]}] if failed else []}

    worker = SimpleNamespace(lambda_handler=lambda_handler, dlq_handler=lambda_handler)
    monkeypatch.setattr(batch_poller, "handler_module", lambda name: worker)
    queue = RetryingQueue()
    QueuePoller(queue, EmptyQueue()).drain()
    assert handled == [1, 2] and queue.state == "deleted"
