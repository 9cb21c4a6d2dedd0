"""Each port's adapters side by side: the AWS one on moto, the embedded one on tmp_path."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from agentsapi.adapters.sqlite.batch import BATCH_MIGRATIONS, SqliteBatchStore
from agentsapi.adapters.sqlite.db import Database
from agentsapi.adapters.sqlite.queue import SqliteQueue
from agentsapi.adapters.sqlite.store import STORE_MIGRATIONS

# Long enough that a message a test holds stays hidden while the test restarts its backend on a
# loaded machine (1 s was not, with moto under the whole suite), short enough to wait out.
VISIBILITY_S = 2
MAX_RECEIVES = 2


@dataclass
class Backend:
    """One adapter family, and how to simulate a restart of the process using it."""

    kind: str
    path: Path | None = None
    db: Database | None = None

    def open_db(self) -> Database:
        assert self.path is not None
        self.db = Database(self.path, [*STORE_MIGRATIONS, *BATCH_MIGRATIONS])  # one file, as the server opens it
        return self.db

    def restart(self) -> None:
        """A new process: everything in memory is gone; what was stored remains."""
        if self.db is not None:
            self.db.close()
            self.open_db()

    def batch_store(self) -> Any:
        if self.kind == "aws":
            import boto3

            from agentsapi.adapters.dynamodb_batch import DynamoDBBatchStore

            return DynamoDBBatchStore(boto3.client("dynamodb"), "agents-api-test")
        assert self.db is not None
        return SqliteBatchStore(self.db)

    def queues(self, name: str = "batch") -> tuple[Any, Any]:
        """A queue with a visibility timeout of VISIBILITY_S and redrive to its DLQ after MAX_RECEIVES."""
        if self.kind == "aws":
            import boto3

            from agentsapi.jobqueue import SqsQueue

            sqs = boto3.client("sqs")
            urls = {q: sqs.get_queue_url(QueueName=q)["QueueUrl"] for q in (name, f"{name}-dlq")}
            return SqsQueue(sqs, urls[name]), SqsQueue(sqs, urls[f"{name}-dlq"])
        assert self.db is not None
        return (SqliteQueue(self.db, name, VISIBILITY_S, MAX_RECEIVES, f"{name}-dlq"),
                SqliteQueue(self.db, f"{name}-dlq", VISIBILITY_S))


@pytest.fixture(params=["aws", "sqlite"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "aws":
        import boto3

        from local.aws import create_queues

        request.getfixturevalue("aws")
        url, dlq = create_queues("batch", max_receives=MAX_RECEIVES)
        boto3.client("sqs").set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": str(VISIBILITY_S)})
        boto3.client("sqs").set_queue_attributes(QueueUrl=dlq, Attributes={"VisibilityTimeout": str(VISIBILITY_S)})
        yield Backend("aws")
    else:
        backend = Backend("sqlite", tmp_path / "data" / "agents.db")
        backend.open_db()
        yield backend
        assert backend.db is not None
        backend.db.close()
