"""The job-queue ports: batch requests become messages.

``JobQueue`` is the producer side (the API). ``QueueConsumer`` is the side Lambda's SQS event
source plays in AWS, and ``local/batch_poller.py`` plays locally: receive, then delete or retry
later. Two adapters implement both: SQS (here; moto locally with STORAGE=aws) and SQLite
(``adapters/sqlite/queue.py``). Delivery is at least once, as SQS: the batch store's claims are
what keep a redelivered request from running twice.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any, Protocol

from botocore.exceptions import ClientError


class JobQueue(Protocol):
    def send(self, messages: list[dict[str, Any]]) -> None: ...


@dataclass(frozen=True)
class Message:
    id: str
    receipt: str  # names this delivery; a later delivery of the same message gets another one
    body: str
    receive_count: int  # 1 on the first delivery
    sent_at: float  # epoch seconds


class QueueConsumer(Protocol):
    @property
    def arn(self) -> str: ...
    def receive(self, max_messages: int = 10, wait_s: float = 0) -> list[Message]:
        """Up to ``max_messages`` visible messages, each invisible to other receivers until it is
        deleted or its visibility timeout passes; waits up to ``wait_s`` for the first one."""
        ...
    def delete(self, receipt: str) -> None: ...
    def retry_later(self, receipt: str, delay_s: float) -> None:
        """Make a received message visible again after ``delay_s`` (SQS ChangeMessageVisibility)."""
        ...
    def pending(self) -> int:
        """Messages not yet deleted, visible or in flight."""
        ...


def _quiet_on_bad_receipt(exc: ClientError) -> None:
    # A receipt that names nothing (already deleted, or garbage) changes nothing, as with SQLite.
    if exc.response["Error"]["Code"] not in ("ReceiptHandleIsInvalid", "AWS.SimpleQueueService.MessageNotInflight",
                                             "MessageNotInflight"):
        raise exc


class SqsQueue:
    """Both ports on one SQS queue (with its redrive policy, when it has one, set on the queue)."""

    def __init__(self, client: Any, queue_url: str) -> None:
        self.client = client
        self.queue_url = queue_url
        self._arn: str | None = None

    def send(self, messages: list[dict[str, Any]]) -> None:
        for start in range(0, len(messages), 10):  # SendMessageBatch takes at most 10
            entries = [{"Id": str(n), "MessageBody": json.dumps(m), **_fair_group(m)}
                       for n, m in enumerate(messages[start : start + 10])]
            response = self.client.send_message_batch(QueueUrl=self.queue_url, Entries=entries)
            if response.get("Failed"):
                raise RuntimeError(f"SQS refused {len(response['Failed'])} batch messages")

    @property
    def arn(self) -> str:
        if self._arn is None:
            self._arn = self.client.get_queue_attributes(QueueUrl=self.queue_url,
                                                         AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        return self._arn

    def receive(self, max_messages: int = 10, wait_s: float = 0) -> list[Message]:
        found = self.client.receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=max(1, min(max_messages, 10)),
            WaitTimeSeconds=max(0, min(math.ceil(wait_s), 20)), AttributeNames=["All"]).get("Messages", [])
        return [Message(id=m["MessageId"], receipt=m["ReceiptHandle"], body=m["Body"],
                        receive_count=int(m.get("Attributes", {}).get("ApproximateReceiveCount", "1")),
                        sent_at=int(m.get("Attributes", {}).get("SentTimestamp", "0")) / 1000) for m in found]

    def delete(self, receipt: str) -> None:
        try:
            self.client.delete_message(QueueUrl=self.queue_url, ReceiptHandle=receipt)
        except ClientError as exc:
            _quiet_on_bad_receipt(exc)

    def retry_later(self, receipt: str, delay_s: float) -> None:
        try:
            self.client.change_message_visibility(QueueUrl=self.queue_url, ReceiptHandle=receipt,
                                                  VisibilityTimeout=max(0, min(math.ceil(delay_s), 43_200)))
        except ClientError as exc:
            _quiet_on_bad_receipt(exc)

    def pending(self) -> int:
        attributes = self.client.get_queue_attributes(
            QueueUrl=self.queue_url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])
        return sum(int(v) for v in attributes["Attributes"].values())


def _fair_group(message: dict[str, Any]) -> dict[str, str]:
    """SQS fair queues tell tenants apart by MessageGroupId on a standard queue: one workspace's
    backlog then no longer delays another's requests. The id is the workspace's SHA-256 (at most
    128 characters of a limited set are allowed; a workspace name is free text)."""
    workspace = message.get("ws")
    if not isinstance(workspace, str) or not workspace:
        return {}
    return {"MessageGroupId": hashlib.sha256(workspace.encode()).hexdigest()}
