"""The job-queue port: batch requests become messages. One adapter (SQS; moto locally)."""

from __future__ import annotations

import json
from typing import Any, Protocol


class JobQueue(Protocol):
    def send(self, messages: list[dict[str, Any]]) -> None: ...


class SqsQueue:
    def __init__(self, client: Any, queue_url: str) -> None:
        self.client = client
        self.queue_url = queue_url

    def send(self, messages: list[dict[str, Any]]) -> None:
        for start in range(0, len(messages), 10):  # SendMessageBatch takes at most 10
            entries = [{"Id": str(n), "MessageBody": json.dumps(m)} for n, m in enumerate(messages[start : start + 10])]
            response = self.client.send_message_batch(QueueUrl=self.queue_url, Entries=entries)
            if response.get("Failed"):
                raise RuntimeError(f"SQS refused {len(response['Failed'])} batch messages")
