"""SQLite adapter of the BatchStore port, with DynamoDBBatchStore's semantics.

A job is a row of ``batch_jobs`` (its model as JSON in ``data``, plus the columns that change:
status, times, result files and the counters); a request is a row of ``batch_requests`` (its
model as JSON, plus ``state`` and ``lease``, which the conditions read). Every transition is one
``UPDATE ... WHERE <condition>`` inside a ``BEGIN IMMEDIATE`` transaction, and ``rowcount`` says
whether the condition held: the same claims, releases and exactly-once settlement as DynamoDB's
conditional writes, with counters moved in the transaction that settles, so they never drift.
Everything is reached by primary key or index, so a settle costs the same at item 1 and 10,000.
"""

from __future__ import annotations

import base64
import binascii
import json
import sqlite3
from typing import Any

from ...errors import Conflict, InvalidRequest
from ...models.batch import BatchItem, BatchJob
from ...store import Page
from .db import Database, Migration
from .queue import FAIR_QUEUE_MIGRATION, QUEUE_MIGRATION

COUNTERS = ("total_requests", "completed_requests", "succeeded_requests", "failed_requests")
MUTABLE = ("status", "started_at", "completed_at", "output_file", "error_file")

BATCH_TABLES = Migration(2, "batch jobs and requests", [
    f"""CREATE TABLE batch_jobs (
        ws TEXT NOT NULL,
        id TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        data TEXT NOT NULL,
        status TEXT NOT NULL,
        started_at INTEGER,
        completed_at INTEGER,
        output_file TEXT,
        error_file TEXT,
        {", ".join(f"{name} INTEGER NOT NULL" for name in COUNTERS)},
        finalized INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (ws, id)
    )""",
    "CREATE INDEX batch_jobs_by_age ON batch_jobs (ws, created_at, id)",
    """CREATE TABLE batch_requests (
        ws TEXT NOT NULL,
        job_id TEXT NOT NULL,
        idx INTEGER NOT NULL,
        state TEXT NOT NULL,
        lease INTEGER,
        data TEXT NOT NULL,
        PRIMARY KEY (ws, job_id, idx)
    )""",
    # Only the requests in flight: what release_abandoned_claims looks for at start-up, without a scan.
    "CREATE INDEX batch_requests_running ON batch_requests (state) WHERE state = 'running'",
])
# Everything batch jobs need in the database, the queue included; versions above the store's 1.
BATCH_MIGRATIONS: list[Migration] = [BATCH_TABLES, QUEUE_MIGRATION, FAIR_QUEUE_MIGRATION]

_BAD_TOKEN = "page_token is not a token this API returned"


class SqliteBatchStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- jobs ---------------------------------------------------------------------------------
    def create_job(self, ws: str, job: BatchJob, items: list[BatchItem]) -> None:
        try:
            with self.db.write() as connection:  # the head and all its requests, or nothing
                connection.execute(
                    f"INSERT INTO batch_jobs (ws, id, created_at, data, status, {', '.join(COUNTERS)}) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (ws, job.id, job.created_at, job.model_dump_json(), job.status,
                     *(getattr(job, name) for name in COUNTERS)))
                connection.executemany(
                    "INSERT INTO batch_requests (ws, job_id, idx, state, data) VALUES (?, ?, ?, ?, ?)",
                    [(ws, job.id, i.index, i.state, i.model_dump_json()) for i in items])
        except sqlite3.IntegrityError as exc:
            raise Conflict(f"batch job {job.id} already exists") from exc

    def get_job(self, ws: str, job_id: str) -> BatchJob | None:
        row = self.db.connection().execute("SELECT * FROM batch_jobs WHERE ws = ? AND id = ?", (ws, job_id)).fetchone()
        return _job_from(row) if row else None

    def list_jobs(self, ws: str, limit: int, token: str | None) -> Page:
        after = _decode_token(token, ws) if token else None
        where, values = "ws = ?", [ws]
        if after is not None:
            where += " AND (created_at, id) < (?, ?)"
            values += after
        rows = self.db.connection().execute(
            f"SELECT * FROM batch_jobs WHERE {where} ORDER BY created_at DESC, id DESC LIMIT ?",
            (*values, limit + 1)).fetchall()  # one more than asked: whether another page exists
        jobs = [_job_from(row) for row in rows[:limit]]
        more = len(rows) > limit
        return Page(jobs, _encode_token(ws, jobs[-1]) if more and jobs else None)  # type: ignore[arg-type]

    def mark_running(self, ws: str, job_id: str, now: int) -> None:
        self._update("UPDATE batch_jobs SET status = 'RUNNING', started_at = ? WHERE ws = ? AND id = ? "
                     "AND status = 'QUEUED'", (now, ws, job_id))

    def request_cancel(self, ws: str, job_id: str) -> bool:
        return self._update("UPDATE batch_jobs SET status = 'CANCELLATION_REQUESTED' WHERE ws = ? AND id = ? "
                            "AND status IN ('QUEUED', 'RUNNING')", (ws, job_id))

    def claim_finalization(self, ws: str, job_id: str) -> bool:
        return self._update("UPDATE batch_jobs SET finalized = 1 WHERE ws = ? AND id = ? AND finalized = 0", (ws, job_id))

    def finish(self, ws: str, job_id: str, status: str, now: int, output_file: str | None,
               error_file: str | None) -> None:
        sets, values = ["status = ?", "completed_at = ?"], [status, now]
        for name, value in (("output_file", output_file), ("error_file", error_file)):
            if value:  # as DynamoDB's adapter: a missing result file leaves the field as it was
                sets.append(f"{name} = ?")
                values.append(value)
        self._update(f"UPDATE batch_jobs SET {', '.join(sets)} WHERE ws = ? AND id = ?", (*values, ws, job_id))

    # -- requests -----------------------------------------------------------------------------
    def get_item(self, ws: str, job_id: str, index: int) -> BatchItem | None:
        row = self.db.connection().execute("SELECT state, data FROM batch_requests WHERE ws = ? AND job_id = ? AND idx = ?",
                                           (ws, job_id, index)).fetchone()
        return _item_from(row) if row else None

    def items(self, ws: str, job_id: str) -> list[BatchItem]:
        rows = self.db.connection().execute("SELECT state, data FROM batch_requests WHERE ws = ? AND job_id = ? "
                                            "ORDER BY idx", (ws, job_id)).fetchall()
        return [_item_from(row) for row in rows]

    def claim(self, ws: str, job_id: str, index: int, now: int, lease_until: int) -> bool:
        """pending → running, or take over a running claim whose lease expired (its worker died)."""
        return self._update("UPDATE batch_requests SET state = 'running', lease = ? WHERE ws = ? AND job_id = ? AND idx = ? "
                            "AND (state = 'pending' OR (state = 'running' AND lease < ?))",
                            (lease_until, ws, job_id, index, now))

    def release(self, ws: str, job_id: str, index: int) -> None:
        self._update("UPDATE batch_requests SET state = 'pending' WHERE ws = ? AND job_id = ? AND idx = ? "
                     "AND state = 'running'", (ws, job_id, index))

    def settle(self, ws: str, job_id: str, item: BatchItem) -> bool:
        """running → succeeded/failed and the job's counters, in one transaction; False (nothing
        written) when the request was not running: settled already, by a redelivery."""
        counter = "succeeded_requests" if item.state == "succeeded" else "failed_requests"
        with self.db.write() as connection:
            settled = connection.execute(
                "UPDATE batch_requests SET state = ?, data = ?, lease = NULL WHERE ws = ? AND job_id = ? AND idx = ? "
                "AND state = 'running'", (item.state, item.model_dump_json(), ws, job_id, item.index)).rowcount
            if settled:
                connection.execute(f"UPDATE batch_jobs SET completed_requests = completed_requests + 1, "
                                   f"{counter} = {counter} + 1 WHERE ws = ? AND id = ?", (ws, job_id))
        return bool(settled)

    def release_abandoned_claims(self) -> int:
        """running → pending for every request. Only for the start-up of a server that is the one
        worker on this database: each claim it finds was made by the process that died, and
        without this its lease (minutes) would outlast the redelivered messages' receive budget,
        sending them to the dead-letter queue instead of running them. Returns how many."""
        with self.db.write() as connection:
            return connection.execute("UPDATE batch_requests SET state = 'pending' WHERE state = 'running'").rowcount

    def _update(self, sql: str, values: tuple[Any, ...]) -> bool:
        with self.db.write() as connection:
            return connection.execute(sql, values).rowcount > 0


def _job_from(row: sqlite3.Row) -> BatchJob:
    job = BatchJob.model_validate_json(row["data"])
    updates: dict[str, Any] = {name: row[name] for name in COUNTERS}
    updates.update({name: row[name] for name in MUTABLE if row[name] is not None})
    return job.model_copy(update=updates)


def _item_from(row: sqlite3.Row) -> BatchItem:
    # ``state`` is the column the conditions move; the JSON holds it only as of the last settle.
    return BatchItem.model_validate_json(row["data"]).model_copy(update={"state": row["state"]})


def _encode_token(ws: str, last: BatchJob) -> str:
    return base64.urlsafe_b64encode(json.dumps({"ws": ws, "created_at": last.created_at, "id": last.id}).encode()).decode()


def _decode_token(token: str, ws: str) -> list[Any]:
    """The (created_at, id) a page ends at; only from a token of this workspace's listing."""
    try:
        key = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (binascii.Error, ValueError, UnicodeError) as exc:
        raise InvalidRequest(_BAD_TOKEN, param="page_token") from exc
    if (not isinstance(key, dict) or key.get("ws") != ws or not isinstance(key.get("created_at"), int)
            or not isinstance(key.get("id"), str)):
        raise InvalidRequest(_BAD_TOKEN, param="page_token")
    return [key["created_at"], key["id"]]
