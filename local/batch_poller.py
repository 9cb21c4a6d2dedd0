"""Locally, Lambda's SQS event source: receive from a queue and its dead-letter queue (any
QueueConsumer: SQLite under DATA_DIR, or SQS/moto) and call the real worker handlers with
Lambda's event shape, honouring partial batch failures."""

from __future__ import annotations

import hashlib
import threading
import time
from typing import Any

from agentsapi.jobqueue import Message, QueueConsumer
from local.apigw import FakeContext, handler_module

RETRY_DELAY_S = 1


def _event(messages: list[Message], queue_arn: str) -> dict[str, Any]:
    return {"Records": [{
        "messageId": m.id, "receiptHandle": m.receipt, "body": m.body,
        "attributes": {"ApproximateReceiveCount": str(m.receive_count), "SentTimestamp": str(int(m.sent_at * 1000)),
                       "ApproximateFirstReceiveTimestamp": str(int(m.sent_at * 1000)), "SenderId": "local"},
        "messageAttributes": {},
        "md5OfBody": hashlib.md5(m.body.encode()).hexdigest(),  # noqa: S324 - SQS's own checksum
        "eventSource": "aws:sqs", "eventSourceARN": queue_arn, "awsRegion": "us-east-1",
    } for m in messages]}


class QueuePoller:
    """Feeds the batch queue to ``lambda_handler`` and its dead letters to ``dlq_handler``."""

    def __init__(self, queue: QueueConsumer | str, dlq: QueueConsumer | str) -> None:
        if isinstance(queue, str) or isinstance(dlq, str):
            # Transitional: SQS queue URLs, as callers passed before the consumer port existed.
            urls = QueuePoller.over_sqs(str(queue), str(dlq))
            queue, dlq = urls.queue, urls.dlq
        self.queue: QueueConsumer = queue
        self.dlq: QueueConsumer = dlq
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="batch-poller", daemon=True)

    @classmethod
    def over_sqs(cls, queue_url: str, dlq_url: str, client: Any = None) -> QueuePoller:
        """A poller on two SQS queues (moto locally and in tests)."""
        import boto3

        from agentsapi.jobqueue import SqsQueue

        client = client or boto3.client("sqs")
        return cls(SqsQueue(client, queue_url), SqsQueue(client, dlq_url))

    def start(self) -> QueuePoller:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(timeout=10)

    def poll_once(self, wait_s: float = 1) -> int:
        """One receive on each queue; returns how many messages were handled. Only the batch queue
        is long-polled: dead letters are rare and can wait for the next round."""
        worker = handler_module("batch_worker")
        handled = 0
        for consumer, handler, wait in ((self.queue, worker.lambda_handler, wait_s), (self.dlq, worker.dlq_handler, 0)):
            messages = consumer.receive(10, wait)
            if not messages:
                continue
            handled += len(messages)
            try:
                response = handler(_event(messages, consumer.arn), FakeContext(function_name="batch-worker"))
                failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
            except Exception:  # noqa: BLE001 - as in Lambda, the whole batch is retried
                failed = {m.id for m in messages}
            for message in messages:
                if message.id in failed:
                    # Lambda retries after the visibility timeout; locally, after a short pause.
                    consumer.retry_later(message.receipt, RETRY_DELAY_S)
                else:
                    consumer.delete(message.receipt)
            getattr(worker, "metrics", None) and worker.metrics.clear_metrics()
        return handled

    def pending(self) -> int:
        return self.queue.pending() + self.dlq.pending()

    def drain(self, limit: int = 10_000) -> None:
        """Handle messages until both queues are empty, retries included (tests and benchmarks).

        Emptiness is believed only when an empty poll and a zero count agree twice in a row. The
        counts are approximate: SQS (and moto) read the visible and the in-flight messages one
        after the other, so a message whose retry delay ends between the two reads is in neither,
        and one zero would end the drain with that message still to run."""
        quiet = 0
        for _ in range(limit):
            if self.poll_once(wait_s=0):
                quiet = 0
            elif self.pending():
                quiet = 0
                time.sleep(0.1)  # messages waiting out their retry delay
            else:
                quiet += 1
                if quiet == 2:
                    return

    def _loop(self) -> None:
        while not self.stopped.is_set():
            try:
                self.poll_once()
            except Exception:  # noqa: BLE001 - keep polling, as the event source would
                self.stopped.wait(1.0)
