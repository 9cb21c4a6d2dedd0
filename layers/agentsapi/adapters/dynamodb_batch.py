"""Batch jobs in the same DynamoDB table.

| item | PK | SK | GSI1PK / GSI1SK |
|---|---|---|---|
| job head | ``WS#<ws>#BATCH#<id>`` | ``HEAD`` | ``WS#<ws>#BATCHES`` / ``<created>#<id>`` |
| request | ``WS#<ws>#BATCH#<id>`` | ``R#000042`` | |

Counters are numeric attributes updated with ``ADD`` in the same transaction that settles a
request, so they never drift; a request is claimed with a conditional update (pending, or
running with an expired lease), so a redelivered message never runs it twice at once; the
job is finalised by whoever wins ``attribute_not_exists(finalized)``.
"""

from __future__ import annotations

import json
import random
import time
from typing import Any

from botocore.exceptions import ClientError

from ..errors import Conflict
from ..models.batch import BatchItem, BatchJob
from ..store import Page
from .dynamodb_store import HEAD, _decode_token, _encode_token, _n, _s, query_all

COUNTERS = ("total_requests", "completed_requests", "succeeded_requests", "failed_requests")
MUTABLE = ("status", "started_at", "completed_at", "output_file", "error_file")


def batch_pk(ws: str, job_id: str) -> str:
    return f"WS#{ws}#BATCH#{job_id}"


def item_sk(index: int) -> str:
    return f"R#{index:06d}"


def _item_from(item: dict[str, Any]) -> BatchItem:
    # ``state`` is the attribute claims and releases move; ``data`` holds it only as of the last settle.
    return BatchItem.model_validate_json(item["data"]["S"]).model_copy(update={"state": item["state"]["S"]})


def _conditional(call: Any, **kwargs: Any) -> bool:
    try:
        call(**kwargs)
        return True
    except ClientError as exc:
        if exc.response["Error"]["Code"] in ("ConditionalCheckFailedException", "TransactionCanceledException"):
            return False
        raise


class DynamoDBBatchStore:
    def __init__(self, client: Any, table_name: str) -> None:
        self.client = client
        self.table = table_name

    def _key(self, ws: str, job_id: str, sk: str = HEAD) -> dict[str, Any]:
        return {"PK": _s(batch_pk(ws, job_id)), "SK": _s(sk)}

    def create_job(self, ws: str, job: BatchJob, items: list[BatchItem]) -> None:
        head = {
            **self._key(ws, job.id), "GSI1PK": _s(f"WS#{ws}#BATCHES"), "GSI1SK": _s(f"{job.created_at:012d}#{job.id}"),
            "data": _s(job.model_dump_json()), "status": _s(job.status),
            **{name: _n(getattr(job, name)) for name in COUNTERS},
        }
        requests = [{"PutRequest": {"Item": {**self._key(ws, job.id, item_sk(i.index)), "state": _s(i.state),
                                             "data": _s(i.model_dump_json())}}} for i in items]
        # The requests first: a job whose head is visible always has all its requests.
        for start in range(0, len(requests), 25):
            pending: dict[str, Any] = {self.table: requests[start : start + 25]}
            while pending:
                pending = self.client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
        if not _conditional(self.client.put_item, TableName=self.table, Item=head,
                            ConditionExpression="attribute_not_exists(PK)"):
            raise Conflict(f"batch job {job.id} already exists")

    def _job_from(self, item: dict[str, Any]) -> BatchJob:
        job = BatchJob.model_validate_json(item["data"]["S"])
        updates: dict[str, Any] = {name: int(item[name]["N"]) for name in COUNTERS if name in item}
        for name in MUTABLE:
            if name in item:
                updates[name] = item[name].get("S") if "S" in item[name] else int(item[name]["N"])
        return job.model_copy(update=updates)

    def get_job(self, ws: str, job_id: str) -> BatchJob | None:
        item = self.client.get_item(TableName=self.table, Key=self._key(ws, job_id), ConsistentRead=True).get("Item")
        return self._job_from(item) if item else None

    def list_jobs(self, ws: str, limit: int, token: str | None) -> Page:
        gsi_pk = f"WS#{ws}#BATCHES"
        kwargs: dict[str, Any] = {"TableName": self.table, "IndexName": "GSI1", "KeyConditionExpression": "GSI1PK = :pk",
                                  "ExpressionAttributeValues": {":pk": _s(gsi_pk)}, "ScanIndexForward": False,
                                  "Limit": limit}
        if token:
            kwargs["ExclusiveStartKey"] = _decode_token(token, gsi_pk)
        response = self.client.query(**kwargs)
        last = response.get("LastEvaluatedKey")
        # GSI items are eventually consistent: re-read each head for its current counters.
        jobs = [self.get_job(ws, json.loads(i["data"]["S"])["id"]) for i in response.get("Items", [])]
        return Page([j for j in jobs if j is not None], _encode_token(last) if last else None)  # type: ignore[arg-type]

    def get_item(self, ws: str, job_id: str, index: int) -> BatchItem | None:
        item = self.client.get_item(TableName=self.table, Key=self._key(ws, job_id, item_sk(index)),
                                    ConsistentRead=True).get("Item")
        return _item_from(item) if item else None

    def items(self, ws: str, job_id: str) -> list[BatchItem]:
        found = query_all(self.client, TableName=self.table, ConsistentRead=True,
                          KeyConditionExpression="PK = :pk AND begins_with(SK, :r)",
                          ExpressionAttributeValues={":pk": _s(batch_pk(ws, job_id)), ":r": _s("R#")})
        return [_item_from(item) for item in found]

    def claim(self, ws: str, job_id: str, index: int, now: int, lease_until: int) -> bool:
        """pending → running, or take over a running claim whose lease expired (its worker died)."""
        return _conditional(
            self.client.update_item, TableName=self.table, Key=self._key(ws, job_id, item_sk(index)),
            UpdateExpression="SET #state = :running, lease = :lease",
            ConditionExpression="#state = :pending OR (#state = :running AND lease < :now)",
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues={":running": _s("running"), ":pending": _s("pending"), ":lease": _n(lease_until),
                                       ":now": _n(now)},
        )

    def release(self, ws: str, job_id: str, index: int) -> None:
        """running → pending, so a retry of a transient failure can claim it at once."""
        _conditional(self.client.update_item, TableName=self.table, Key=self._key(ws, job_id, item_sk(index)),
                     UpdateExpression="SET #state = :pending", ConditionExpression="#state = :running",
                     ExpressionAttributeNames={"#state": "state"},
                     ExpressionAttributeValues={":pending": _s("pending"), ":running": _s("running")})

    def settle(self, ws: str, job_id: str, item: BatchItem) -> bool:
        """running → succeeded/failed, and the job's counters, in one transaction.

        False when the request was not running (settled already: a redelivery). Concurrent
        settlements of one job contend on its head item (TransactionConflict): retried here.
        """
        for attempt in range(12):
            try:
                self._settle_once(ws, job_id, item)
                return True
            except ClientError as exc:
                reasons = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
                if "TransactionConflict" in reasons or exc.response["Error"]["Code"] == "TransactionConflictException":
                    time.sleep(random.uniform(0, 0.02 * (2 ** min(attempt, 5))))
                    continue
                if exc.response["Error"]["Code"] in ("TransactionCanceledException", "ConditionalCheckFailedException"):
                    return False
                raise
        raise RuntimeError(f"could not settle request {item.index} of {job_id}: too much contention")

    def _settle_once(self, ws: str, job_id: str, item: BatchItem) -> None:
        counter = "succeeded_requests" if item.state == "succeeded" else "failed_requests"
        self.client.transact_write_items(TransactItems=[
            {"Update": {"TableName": self.table, "Key": self._key(ws, job_id, item_sk(item.index)),
                        "UpdateExpression": "SET #state = :state, #data = :data REMOVE lease",
                        "ConditionExpression": "#state = :running",
                        "ExpressionAttributeNames": {"#state": "state", "#data": "data"},
                        "ExpressionAttributeValues": {":state": _s(item.state), ":data": _s(item.model_dump_json()),
                                                      ":running": _s("running")}}},
            {"Update": {"TableName": self.table, "Key": self._key(ws, job_id),
                        "UpdateExpression": f"ADD completed_requests :one, {counter} :one",
                        "ExpressionAttributeValues": {":one": _n(1)}}},
        ])

    def mark_running(self, ws: str, job_id: str, now: int) -> None:
        _conditional(self.client.update_item, TableName=self.table, Key=self._key(ws, job_id),
                     UpdateExpression="SET #status = :running, started_at = :now",
                     ConditionExpression="#status = :queued", ExpressionAttributeNames={"#status": "status"},
                     ExpressionAttributeValues={":running": _s("RUNNING"), ":queued": _s("QUEUED"), ":now": _n(now)})

    def request_cancel(self, ws: str, job_id: str) -> bool:
        return _conditional(self.client.update_item, TableName=self.table, Key=self._key(ws, job_id),
                            UpdateExpression="SET #status = :cancelling",
                            ConditionExpression="#status IN (:queued, :running)",
                            ExpressionAttributeNames={"#status": "status"},
                            ExpressionAttributeValues={":cancelling": _s("CANCELLATION_REQUESTED"),
                                                       ":queued": _s("QUEUED"), ":running": _s("RUNNING")})

    def claim_finalization(self, ws: str, job_id: str) -> bool:
        """Exactly one caller wins the right to write the job's result files."""
        return _conditional(self.client.update_item, TableName=self.table, Key=self._key(ws, job_id),
                            UpdateExpression="SET finalized = :yes", ConditionExpression="attribute_not_exists(finalized)",
                            ExpressionAttributeValues={":yes": _n(1)})

    def finish(self, ws: str, job_id: str, status: str, now: int, output_file: str | None,
               error_file: str | None) -> None:
        names = {"#status": "status"}
        values: dict[str, Any] = {":status": _s(status), ":now": _n(now)}
        expression = "SET #status = :status, completed_at = :now"
        for name, value in (("output_file", output_file), ("error_file", error_file)):
            if value:
                expression += f", {name} = :{name}"
                values[f":{name}"] = _s(value)
        self.client.update_item(TableName=self.table, Key=self._key(ws, job_id), UpdateExpression=expression,
                                ExpressionAttributeNames=names, ExpressionAttributeValues=values)
