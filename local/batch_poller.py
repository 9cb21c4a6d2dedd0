"""Locally, Lambda's SQS event source: poll moto's queues and call the real worker handlers."""

from __future__ import annotations

import hashlib
import threading
import time
from typing import Any

import boto3

from local.apigw import FakeContext, handler_module

RETRY_DELAY_S = 1


def _event(messages: list[dict[str, Any]], queue_arn: str) -> dict[str, Any]:
    return {"Records": [{
        "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
        "attributes": {k: str(v) for k, v in m.get("Attributes", {}).items()}, "messageAttributes": {},
        "md5OfBody": hashlib.md5(m["Body"].encode()).hexdigest(),  # noqa: S324 - SQS's own checksum
        "eventSource": "aws:sqs", "eventSourceARN": queue_arn, "awsRegion": "us-east-1",
    } for m in messages]}


class QueuePoller:
    """Feeds the batch queue to ``lambda_handler`` and its dead letters to ``dlq_handler``."""

    def __init__(self, queue_url: str, dlq_url: str) -> None:
        self.sqs = boto3.client("sqs")
        self.queue_url = queue_url
        self.dlq_url = dlq_url
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="batch-poller", daemon=True)

    def _arn(self, url: str) -> str:
        return self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]

    def start(self) -> QueuePoller:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(timeout=10)

    def poll_once(self, wait_s: int = 1) -> int:
        """One receive on each queue; returns how many messages were handled."""
        worker = handler_module("batch_worker")
        handled = 0
        for url, handler in ((self.queue_url, worker.lambda_handler), (self.dlq_url, worker.dlq_handler)):
            messages = self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=wait_s,
                                                AttributeNames=["All"]).get("Messages", [])
            if not messages:
                continue
            handled += len(messages)
            try:
                response = handler(_event(messages, self._arn(url)), FakeContext(function_name="batch-worker"))
                failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
            except Exception:  # noqa: BLE001 - as in Lambda, the whole batch is retried
                failed = {m["MessageId"] for m in messages}
            for message in messages:
                if message["MessageId"] in failed:
                    # Lambda retries after the visibility timeout; locally, after a short pause.
                    self.sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"],
                                                       VisibilityTimeout=RETRY_DELAY_S)
                else:
                    self.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            getattr(worker, "metrics", None) and worker.metrics.clear_metrics()
        return handled

    def _pending(self) -> int:
        total = 0
        for url in (self.queue_url, self.dlq_url):
            attributes = self.sqs.get_queue_attributes(
                QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])
            total += sum(int(v) for v in attributes["Attributes"].values())
        return total

    def drain(self, limit: int = 10_000) -> None:
        """Handle messages until both queues are empty, retries included (tests and benchmarks)."""
        for _ in range(limit):
            if not self.poll_once(wait_s=0):
                if not self._pending():
                    return
                time.sleep(0.1)  # messages waiting out their retry delay

    def _loop(self) -> None:
        while not self.stopped.is_set():
            try:
                self.poll_once()
            except Exception:  # noqa: BLE001 - keep polling, as the event source would
                self.stopped.wait(1.0)
